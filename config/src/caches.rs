//! Content-addressed caches: URL templates keyed by a file's sha256 (`caches` in the config
//! file, `PTEX_CACHES` in the environment), checked when loaded and expanded per file.

use std::time::Duration;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;

/// One entry of `caches`: a plain template string (read only) or `{"url": …, "fill": true}`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum CacheEntry {
    /// A read-only cache.
    Url(String),
    /// A cache that may also be filled.
    Spec {
        /// The template.
        url: String,
        /// Whether verified bytes fetched elsewhere are written here.
        #[serde(default)]
        fill: bool,
    },
}

/// A cache's URL template and whether ptex fills it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheSpec {
    /// A URL with `{sha256}`, and optionally `{size}` and `{name}`.
    pub template: String,
    /// Whether a miss here is filled with the bytes verified from a later source.
    pub fill: bool,
}

/// The caches of a run, and how long filling and waiting on them may take.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caches {
    /// The caches, in the order to try them.
    pub list: Vec<CacheSpec>,
    /// The longest a fill may take, after the bytes are on stdout (`PTEX_FILL_TIMEOUT`,
    /// `network.fill_timeout`, default 60 s).
    pub fill_timeout: Duration,
    /// How long to wait on a filling cache while another host holds its fresh lease
    /// (`PTEX_CACHE_WAIT`, `network.cache_wait`, default 60 s; 0 turns the lease off).
    pub wait: Duration,
}

impl Default for Caches {
    fn default() -> Caches {
        Caches {
            list: Vec::new(),
            fill_timeout: Duration::from_secs(60),
            wait: Duration::from_secs(60),
        }
    }
}

/// The placeholders a template may use.
const PLACEHOLDERS: [&str; 3] = ["{sha256}", "{size}", "{name}"];

/// Schemes whose caches ptex can fill (it writes objects there, conditionally; on http(s)
/// by a PUT with `If-None-Match: *`).
const FILLABLE: [&str; 5] = ["s3://", "gs://", "file://", "https://", "http://"];

impl CacheEntry {
    /// The checked spec of this entry.
    pub fn check(self) -> Result<CacheSpec, String> {
        let (template, fill) = match self {
            CacheEntry::Url(url) => (url, false),
            CacheEntry::Spec { url, fill } => (url, fill),
        };
        CacheSpec::new(template, fill)
    }
}

impl CacheSpec {
    /// A cache at `template`; refuses a template that is not a URL, has no `{sha256}` or an
    /// unknown placeholder, or asks to fill a scheme ptex cannot write.
    pub fn new(template: String, fill: bool) -> Result<CacheSpec, String> {
        if !template.contains("://") {
            return Err(format!("{template:?} is not a URL (scheme://…)"));
        }
        if !template.contains("{sha256}") {
            return Err(format!(
                "{template:?} has no {{sha256}}: a cache is keyed by the file's hash"
            ));
        }
        let mut rest = template.clone();
        for placeholder in PLACEHOLDERS {
            rest = rest.replace(placeholder, "");
        }
        if rest.contains(['{', '}']) {
            return Err(format!(
                "{template:?} has an unknown placeholder (known: {})",
                PLACEHOLDERS.join(", ")
            ));
        }
        if fill && !FILLABLE.iter().any(|s| template.starts_with(s)) {
            return Err(format!(
                "{template:?} cannot be filled: ptex fills s3://, gs://, file:// and http(s):// \
                 caches"
            ));
        }
        Ok(CacheSpec { template, fill })
    }

    /// The read-only caches of `PTEX_CACHES`: templates separated by spaces.
    pub fn from_env_list(list: &str) -> Result<Vec<CacheSpec>, String> {
        list.split_whitespace()
            .map(|t| CacheSpec::new(t.to_string(), false))
            .collect()
    }

    /// The URL of the file with this `sha256` (lowercase hex), `size` and `name`.
    pub fn url(&self, sha256: &str, size: u64, name: &str) -> String {
        self.template
            .replace("{sha256}", sha256)
            .replace("{size}", &size.to_string())
            .replace("{name}", &percent_encode_name(name))
    }
}

/// What stays unescaped in a name: RFC 3986's unreserved characters, and `+`.
const NAME_KEEPS: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'+');

/// `name` as one URL path segment: everything but unreserved characters escaped.
fn percent_encode_name(name: &str) -> String {
    utf8_percent_encode(name, NAME_KEEPS).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_parse_and_expand() {
        let entries: Vec<CacheEntry> = serde_json::from_str(
            r#"[{"url": "s3://cas/sha256/{sha256}", "fill": true},
                "https://cache:8080/cas/{sha256}/{size}/{name}"]"#,
        )
        .unwrap();
        let specs: Vec<CacheSpec> = entries.into_iter().map(|e| e.check().unwrap()).collect();
        assert!(specs[0].fill && !specs[1].fill);
        // An HTTP cache is filled by PUT.
        let http = CacheSpec::new("https://cache/cas/{sha256}".to_string(), true).unwrap();
        assert!(http.fill);
        assert_eq!(specs[0].url("ab", 3, "x"), "s3://cas/sha256/ab");
        assert_eq!(
            specs[1].url("ab", 3, "py 3/a+b.tgz"),
            "https://cache:8080/cas/ab/3/py%203%2Fa+b.tgz"
        );
    }

    #[test]
    fn bad_templates_are_refused() {
        for (template, fill, word) in [
            ("cas/{sha256}", false, "not a URL"),
            ("s3://cas/latest", false, "{sha256}"),
            ("s3://cas/{sha1}/{sha256}", false, "unknown placeholder"),
            ("ftp://cache/{sha256}", true, "cannot be filled"),
        ] {
            let err = CacheSpec::new(template.to_string(), fill).unwrap_err();
            assert!(err.contains(word), "{template}: {err}");
        }
        let env = CacheSpec::from_env_list(" https://a/{sha256}  file:///c/{sha256} ").unwrap();
        assert_eq!(env.len(), 2);
        assert!(env.iter().all(|c| !c.fill));
    }
}
