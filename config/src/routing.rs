//! Where a file may come from: mirror rewrite rules turn each manifest URL into an ordered
//! list of candidates, and allow/block patterns filter them. Pure functions of the config,
//! so a person can see the result with `--dry-run` before any request.

use serde::Deserialize;
use url::Url;

use crate::{normalize_host, normalize_url};

/// One `mirrors[]` entry as written in the config file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MirrorSpec {
    /// Replace this prefix of a URL...
    pub prefix: Option<String>,
    /// ...or rewrite URLs matching this (anchored) regex, `$1`… being its captures.
    pub regex: Option<String>,
    /// The replacement(s), in the order to try them.
    pub urls: Vec<String>,
    /// Whether the original URL is tried too.
    #[serde(default)]
    pub origin: OriginPlacement,
}

/// Where the original URL goes among a rule's rewrites.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum OriginPlacement {
    /// Before the rewrites.
    First,
    /// After the rewrites (the default: mirror first, origin as fallback).
    #[default]
    Last,
    /// Not at all.
    Never,
}

/// A candidate source for a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// The URL to try.
    pub url: String,
    /// Why it is there: `origin`, or the rule that produced it (`mirrors[0]`).
    pub via: String,
    /// Whether allow/block filtered it out.
    pub blocked: bool,
}

/// Compiled mirror rules and allow/block patterns.
#[derive(Clone, Debug, Default)]
pub struct Routing {
    rules: Vec<Rule>,
    allow: Vec<Pattern>,
    block: Vec<Pattern>,
    blocked_message: Option<String>,
}

#[derive(Clone, Debug)]
struct Rule {
    matcher: Matcher,
    urls: Vec<String>,
    origin: OriginPlacement,
    /// What `--dry-run` names it by: `mirrors[0]`, or the variable it came from.
    via: String,
}

/// The prefix `UV_PYTHON_INSTALL_MIRROR` replaces, as uv does: python-build-standalone's
/// release downloads.
pub const UV_PYTHON_MIRRORED: &str =
    "https://github.com/astral-sh/python-build-standalone/releases/download";

#[derive(Clone, Debug)]
enum Matcher {
    Prefix(String),
    Regex(regex_lite::Regex),
}

/// `host-glob` or `scheme://host-glob`.
#[derive(Clone, Debug)]
pub(crate) struct Pattern {
    scheme: Option<String>,
    host: String,
}

impl Routing {
    /// Compiles the config's rules; an error names the rule at fault (`mirrors[1]: …`).
    pub fn new(
        mirrors: &[MirrorSpec],
        allow: &[String],
        block: &[String],
        blocked_message: Option<String>,
    ) -> Result<Routing, String> {
        let mut rules = Vec::new();
        for (index, spec) in mirrors.iter().enumerate() {
            let at = |reason: String| format!("mirrors[{index}]: {reason}");
            let matcher = match (&spec.prefix, &spec.regex) {
                (Some(prefix), None) if !prefix.is_empty() => Matcher::Prefix(prefix.clone()),
                (None, Some(regex)) => {
                    // Anchored on both ends, whatever the author wrote.
                    let anchored = format!("^(?:{regex})$");
                    let compiled = regex_lite::Regex::new(&anchored)
                        .map_err(|e| at(format!("bad regex {regex:?}: {e}")))?;
                    Matcher::Regex(compiled)
                }
                (Some(_), Some(_)) => return Err(at("give `prefix` or `regex`, not both".into())),
                _ => return Err(at("needs a non-empty `prefix` or a `regex`".into())),
            };
            if spec.urls.is_empty() {
                return Err(at("`urls` is empty".into()));
            }
            for url in &spec.urls {
                if !url.contains("://") {
                    return Err(at(format!("{url:?} is not a URL (scheme://…)")));
                }
            }
            rules.push(Rule {
                matcher,
                urls: spec.urls.clone(),
                origin: spec.origin,
                via: format!("mirrors[{index}]"),
            });
        }
        let patterns = |list: &[String], name: &str| {
            list.iter()
                .enumerate()
                .map(|(i, p)| Pattern::parse(p).map_err(|e| format!("{name}[{i}]: {e}")))
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(Routing {
            rules,
            allow: patterns(allow, "allow")?,
            block: patterns(block, "block")?,
            blocked_message,
        })
    }

    /// The candidates for a file whose manifest lists `urls`: each URL normalised (see
    /// [`normalize_url`]) and expanded by the first rule that matches it, in order,
    /// de-duplicated, each marked blocked or not.
    pub fn candidates(&self, urls: &[String]) -> Vec<Candidate> {
        let mut out: Vec<Candidate> = Vec::new();
        for url in urls {
            let url = normalize_url(url);
            for (candidate, via) in self.expand(&url) {
                // A rewrite is judged in the same spelling as the URL it came from.
                let candidate = normalize_url(&candidate);
                if out.iter().all(|c| c.url != candidate) {
                    out.push(Candidate {
                        blocked: self.is_blocked(&candidate),
                        url: candidate,
                        via,
                    });
                }
            }
        }
        out
    }

    /// Puts a prefix rule before the config's own (an environment variable's, which wins
    /// over the file): URLs starting with `prefix` are tried at `mirror` (its trailing `/`
    /// dropped) first, then at their origin; `via` names the variable.
    pub fn prepend_mirror(&mut self, prefix: &str, mirror: &str, via: &str) -> Result<(), String> {
        if !mirror.contains("://") {
            return Err(format!("{via}: {mirror:?} is not a URL (scheme://…)"));
        }
        let rule = Rule {
            matcher: Matcher::Prefix(prefix.to_string()),
            urls: vec![mirror.trim_end_matches('/').to_string()],
            origin: OriginPlacement::Last,
            via: via.to_string(),
        };
        self.rules.insert(0, rule);
        Ok(())
    }

    /// The message to show when every candidate of a file is blocked.
    pub fn blocked_message(&self) -> &str {
        self.blocked_message
            .as_deref()
            .unwrap_or("every source is blocked by the ptex config file")
    }

    fn expand(&self, url: &str) -> Vec<(String, String)> {
        let origin = || (url.to_string(), "origin".to_string());
        for rule in &self.rules {
            let rewritten: Vec<String> = match &rule.matcher {
                Matcher::Prefix(prefix) => match url.strip_prefix(prefix.as_str()) {
                    Some(rest) => rule.urls.iter().map(|u| format!("{u}{rest}")).collect(),
                    None => continue,
                },
                Matcher::Regex(regex) => match regex.captures(url) {
                    Some(captures) => rule
                        .urls
                        .iter()
                        .map(|u| {
                            let mut out = String::new();
                            captures.expand(u, &mut out);
                            out
                        })
                        .collect(),
                    None => continue,
                },
            };
            let via = rule.via.clone();
            let mut list: Vec<(String, String)> =
                rewritten.into_iter().map(|u| (u, via.clone())).collect();
            match rule.origin {
                OriginPlacement::First => list.insert(0, origin()),
                OriginPlacement::Last => list.push(origin()),
                OriginPlacement::Never => {}
            }
            return list;
        }
        vec![origin()]
    }

    /// Whether allow/block keep `url` out (a cache URL is filtered as any source is).
    pub fn is_blocked(&self, url: &str) -> bool {
        let parsed = Url::parse(url).ok();
        let scheme = parsed.as_ref().map_or("", |u| u.scheme());
        let host = parsed.as_ref().and_then(|u| u.host_str()).unwrap_or("");
        let hit = |patterns: &[Pattern]| patterns.iter().any(|p| p.matches(scheme, host));
        !hit(&self.allow) && hit(&self.block)
    }
}

impl Pattern {
    /// Parses `host-glob` or `scheme://host-glob`.
    pub(crate) fn parse(text: &str) -> Result<Pattern, String> {
        let (scheme, host) = match text.split_once("://") {
            Some((scheme, host)) => (Some(scheme.to_ascii_lowercase()), host),
            None => (None, text),
        };
        let host = host.trim_end_matches('/');
        let bad = || format!("{text:?} is not a host glob (`*.corp.example`) or scheme://host");
        if host.is_empty() || host.contains(['/', ' ']) {
            return Err(bad());
        }
        // In the spelling URLs are judged in (IDNA, no trailing dot); a bucket name of
        // `s3://` or `gs://` is not a host name and is only lower-cased.
        let host = match scheme.as_deref() {
            Some("http" | "https" | "ftp") | None => normalize_host(host).ok_or_else(bad)?,
            Some(_) => host.to_ascii_lowercase(),
        };
        Ok(Pattern { scheme, host })
    }

    /// Whether a URL of `scheme` to `host` matches.
    pub(crate) fn matches(&self, scheme: &str, host: &str) -> bool {
        self.scheme.as_deref().is_none_or(|s| s == scheme)
            && glob(&self.host, &host.to_ascii_lowercase())
    }
}

/// `*` matches any run of characters (dots included); everything else matches itself.
fn glob(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, tail)) => {
            let Some(rest) = text.strip_prefix(head) else {
                return false;
            };
            (0..=rest.len()).any(|i| rest.is_char_boundary(i) && glob(tail, &rest[i..]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> Vec<MirrorSpec> {
        serde_json::from_str(json).unwrap()
    }

    fn urls(candidates: &[Candidate]) -> Vec<&str> {
        candidates.iter().map(|c| c.url.as_str()).collect()
    }

    const GH: &str = "https://github.com/astral-sh/python-build-standalone/releases/download/";

    #[test]
    fn prefix_rules_with_each_origin_placement() {
        for (origin, expected) in [
            (
                "first",
                vec![format!("{GH}v1/py.tgz"), "s3://corp/pbs/v1/py.tgz".into()],
            ),
            (
                "last",
                vec!["s3://corp/pbs/v1/py.tgz".into(), format!("{GH}v1/py.tgz")],
            ),
            ("never", vec!["s3://corp/pbs/v1/py.tgz".into()]),
        ] {
            let rules = spec(&format!(
                r#"[{{"prefix": "{GH}", "urls": ["s3://corp/pbs/"], "origin": "{origin}"}}]"#
            ));
            let routing = Routing::new(&rules, &[], &[], None).unwrap();
            let got = routing.candidates(&[format!("{GH}v1/py.tgz")]);
            assert_eq!(urls(&got), expected, "{origin}");
        }
    }

    #[test]
    fn regex_rules_expand_captures_and_first_match_wins() {
        let rules = spec(
            r#"[{"regex": "https://files\\.example\\.org/(.*)", "urls": ["https://proxy/x/$1", "file:///m/$1"], "origin": "never"},
                {"prefix": "https://files.", "urls": ["https://never-used/"]}]"#,
        );
        let routing = Routing::new(&rules, &[], &[], None).unwrap();
        let got = routing.candidates(&["https://files.example.org/a/b.tgz".into()]);
        assert_eq!(urls(&got), ["https://proxy/x/a/b.tgz", "file:///m/a/b.tgz"]);
        assert_eq!(got[0].via, "mirrors[0]");
        // Anchored: a URL that only contains the pattern does not match it.
        let got = routing.candidates(&["https://x/?u=https://files.example.org/a".into()]);
        assert_eq!(urls(&got), ["https://x/?u=https://files.example.org/a"]);
    }

    #[test]
    fn candidates_are_deduplicated_in_order() {
        let rules = spec(r#"[{"prefix": "https://a/", "urls": ["https://m/"]}]"#);
        let routing = Routing::new(&rules, &[], &[], None).unwrap();
        let got = routing.candidates(&["https://a/f".into(), "https://m/f".into()]);
        assert_eq!(urls(&got), ["https://m/f", "https://a/f"]);
    }

    #[test]
    fn allow_overrides_block() {
        let routing = Routing::new(
            &[],
            &["*.corp.example".into(), "s3://corp-artifacts".into()],
            &["*".into()],
            Some("use the mirror".into()),
        )
        .unwrap();
        let got = routing.candidates(&[
            "https://mirror.corp.example/f".into(),
            "s3://corp-artifacts/f".into(),
            "s3://other/f".into(),
            "https://github.com/f".into(),
            "file:///tmp/f".into(),
        ]);
        let blocked: Vec<bool> = got.iter().map(|c| c.blocked).collect();
        assert_eq!(blocked, [false, false, true, true, true]);
        assert_eq!(routing.blocked_message(), "use the mirror");
    }

    #[test]
    fn bad_rules_are_named() {
        for (json, allow, words) in [
            (
                r#"[{"regex": "(", "urls": ["https://m/"]}]"#,
                vec![],
                vec!["mirrors[0]", "regex"],
            ),
            (
                r#"[{"prefix": "", "urls": ["https://m/"]}]"#,
                vec![],
                vec!["mirrors[0]"],
            ),
            (
                r#"[{"prefix": "a", "regex": "b", "urls": ["https://m/"]}]"#,
                vec![],
                vec!["not both"],
            ),
            (r#"[{"prefix": "a", "urls": []}]"#, vec![], vec!["urls"]),
            (
                r#"[{"prefix": "a", "urls": ["mirror/"]}]"#,
                vec![],
                vec!["not a URL"],
            ),
            ("[]", vec!["a b".to_string()], vec!["allow[0]"]),
        ] {
            let err = Routing::new(&spec(json), &allow, &[], None).unwrap_err();
            for word in words {
                assert!(err.contains(word), "{json}: {word:?} missing from {err}");
            }
        }
        assert!(
            serde_json::from_str::<Vec<MirrorSpec>>(r#"[{"prefx": "a", "urls": []}]"#).is_err()
        );
    }

    #[test]
    fn every_spelling_of_a_host_is_blocked_and_mirrored_alike() {
        let rules = spec(r#"[{"prefix": "https://github.com/", "urls": ["https://m.corp/"]}]"#);
        let routing = Routing::new(&rules, &[], &["github.com".into()], None).unwrap();
        for spelled in [
            "https://github.com/f",
            "\u{3000}https://github.com/f",
            "\u{a0}https://github.com/f",
            "https://GitHub.com./f",
        ] {
            let got = routing.candidates(&[spelled.to_string()]);
            assert_eq!(
                urls(&got),
                ["https://m.corp/f", "https://github.com/f"],
                "{spelled:?}"
            );
            assert!(got[1].blocked, "{spelled:?}");
        }
        let idn = Routing::new(&[], &[], &["bücher.example.".into()], None).unwrap();
        assert!(idn.candidates(&["https://BÜCHER.example/f".into()])[0].blocked);
    }

    #[test]
    fn globs() {
        assert!(glob("*", ""));
        assert!(glob("*.corp.example", "a.b.corp.example"));
        assert!(!glob("*.corp.example", "corp.example"));
        assert!(glob("mirror-*.corp", "mirror-1.corp"));
        assert!(!glob("github.com", "github.com.evil"));
    }

    #[test]
    fn a_prepended_mirror_wins_and_keeps_the_origin_last() {
        let rules = spec(r#"[{"prefix": "https://github.com/", "urls": ["https://other/"]}]"#);
        let mut routing = Routing::new(&rules, &[], &[], None).unwrap();
        routing
            .prepend_mirror(
                UV_PYTHON_MIRRORED,
                "https://m.corp/pbs/",
                "UV_PYTHON_INSTALL_MIRROR",
            )
            .unwrap();
        let got = routing.candidates(&[format!("{GH}v1/py.tgz")]);
        assert_eq!(
            urls(&got),
            vec![
                "https://m.corp/pbs/v1/py.tgz".to_string(),
                format!("{GH}v1/py.tgz")
            ]
        );
        assert_eq!(got[0].via, "UV_PYTHON_INSTALL_MIRROR");
        assert_eq!(got[1].via, "origin");
        let other = routing.candidates(&["https://github.com/x".to_string()]);
        assert_eq!(other[0].via, "mirrors[0]");
        assert!(routing.prepend_mirror(GH, "m.corp", "V").is_err());
    }
}
