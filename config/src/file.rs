//! The JSON config file: per-scheme settings for private buckets and internal stores.
//! Found at `$PTEX_CONFIG`, else `<user config dir>/ptex/config.json`; validated on load, so
//! a typo or a bad endpoint is reported before any network I/O.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use crate::{
    AuthSpec, CacheEntry, CacheSpec, ConfigError, CredentialHelpers, Env, MirrorSpec, Routing,
};

/// Everything the config file can say.
#[derive(Clone, Debug, Default)]
pub struct ConfigFile {
    /// Settings for `s3://` sources.
    pub s3: S3Config,
    /// Settings for `gs://` sources.
    pub gs: GcsConfig,
    /// Per-host credentials, by `host` or `host:port`.
    pub auth: BTreeMap<String, AuthSpec>,
    /// Timeouts, retries and connections (the `PTEX_*` environment variables override
    /// each).
    pub network: Network,
    /// The compiled `mirrors`, `allow`, `block` and `blocked_message`.
    pub routing: Routing,
    /// The content-addressed caches, tried before any other source (`caches`).
    pub caches: Vec<CacheSpec>,
    /// Executables that give the headers for hosts matching a glob (Bazel's protocol).
    pub credential_helpers: CredentialHelpers,
    /// `false` stops reading science's `SCIENCE_AUTH_<NAME>_*` variables (default: read).
    pub science_auth: Option<bool>,
    /// `false` stops treating `UV_PYTHON_INSTALL_MIRROR` as a mirror rule (default: on).
    pub uv_python_install_mirror: Option<bool>,
    /// Problems worth a warning (literal secrets).
    pub warnings: Vec<String>,
}

/// S3 settings; each may be given for all buckets and overridden per bucket.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    #[serde(flatten)]
    pub defaults: S3Bucket,
    /// Per-bucket settings, by bucket name.
    #[serde(default)]
    pub buckets: BTreeMap<String, S3Bucket>,
}

/// S3 settings of one bucket (or the defaults for all).
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct S3Bucket {
    /// AWS region, e.g. `eu-west-1`.
    pub region: Option<String>,
    /// Endpoint of an S3-compatible store, e.g. `https://minio.corp.example:9000`.
    pub endpoint: Option<String>,
    /// Profile in `~/.aws/credentials` / `~/.aws/config`.
    pub profile: Option<String>,
    /// Address the bucket as `https://<bucket>.<endpoint host>` (default: path style for
    /// custom endpoints, virtual-host style on AWS).
    pub virtual_host_style: Option<bool>,
    /// Send `x-amz-request-payer: requester`.
    pub requester_pays: Option<bool>,
    /// Never sign requests (a public bucket), even when credentials exist.
    pub anonymous: Option<bool>,
}

impl S3Config {
    /// The settings for `bucket`: its own entry where it says something, else the defaults.
    pub fn bucket(&self, bucket: &str) -> S3Bucket {
        let d = &self.defaults;
        match self.buckets.get(bucket) {
            None => d.clone(),
            Some(b) => S3Bucket {
                region: b.region.clone().or_else(|| d.region.clone()),
                endpoint: b.endpoint.clone().or_else(|| d.endpoint.clone()),
                profile: b.profile.clone().or_else(|| d.profile.clone()),
                virtual_host_style: b.virtual_host_style.or(d.virtual_host_style),
                requester_pays: b.requester_pays.or(d.requester_pays),
                anonymous: b.anonymous.or(d.anonymous),
            },
        }
    }
}

/// Google Cloud Storage settings.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct GcsConfig {
    /// JSON API endpoint (default `https://storage.googleapis.com`; `STORAGE_EMULATOR_HOST`
    /// overrides it).
    pub endpoint: Option<String>,
    /// A service-account or authorized-user JSON key file.
    pub credentials_file: Option<PathBuf>,
    /// The name of an environment variable holding an OAuth2 access token.
    pub token_env: Option<String>,
    /// Never sign requests (public objects only).
    pub anonymous: Option<bool>,
}

/// The shortest timeout: below it, every read or connection would time out.
pub const MIN_TIMEOUT: f64 = 0.1;
/// The longest timeout or wait, a day.
pub const MAX_SECONDS: f64 = 86_400.0;

/// The `network` section: each field as its `PTEX_*` environment variable takes it.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Network {
    /// Seconds (`PTEX_CONNECT_TIMEOUT`).
    pub connect_timeout: Option<f64>,
    /// Seconds (`PTEX_READ_TIMEOUT`).
    pub read_timeout: Option<f64>,
    /// Bytes per second; 0 turns the floor off (`PTEX_LOW_SPEED_LIMIT`).
    pub low_speed_limit: Option<u64>,
    /// Seconds (`PTEX_LOW_SPEED_TIME`).
    pub low_speed_time: Option<f64>,
    /// Extra rounds, 0 to 10 (`PTEX_RETRIES`).
    pub retries: Option<u32>,
    /// Seconds; 0 allowed (`PTEX_RETRY_BACKOFF`).
    pub retry_backoff: Option<f64>,
    /// Seconds (`PTEX_RETRY_MAX_WAIT`).
    pub retry_max_wait: Option<f64>,
    /// Seconds (`PTEX_LOCK_WAIT`).
    pub lock_wait: Option<f64>,
    /// 1 to 32 (`PTEX_CONNECTIONS`).
    pub connections: Option<u64>,
    /// Bytes (`PTEX_SPLIT_SIZE`).
    pub split_size: Option<u64>,
    /// Seconds; 0 allowed (`PTEX_SPLIT_AFTER`).
    pub split_after: Option<f64>,
    /// Seconds (`PTEX_FILL_TIMEOUT`).
    pub fill_timeout: Option<f64>,
    /// Seconds; 0 allowed (`PTEX_CACHE_WAIT`).
    pub cache_wait: Option<f64>,
    /// Seconds (`PTEX_CREDENTIAL_HELPER_TIMEOUT`).
    pub credential_helper_timeout: Option<f64>,
}

impl Network {
    /// Refuses values the environment variables would refuse too.
    fn check(&self) -> Result<(), String> {
        let timeouts = [
            ("connect_timeout", self.connect_timeout),
            ("read_timeout", self.read_timeout),
            ("low_speed_time", self.low_speed_time),
            ("lock_wait", self.lock_wait),
            ("fill_timeout", self.fill_timeout),
            ("retry_max_wait", self.retry_max_wait),
            ("credential_helper_timeout", self.credential_helper_timeout),
        ];
        for (name, value) in timeouts {
            if let Some(v) = value
                && !(MIN_TIMEOUT..=MAX_SECONDS).contains(&v)
            {
                return Err(format!(
                    "network.{name}: expected a number of seconds from {MIN_TIMEOUT} to \
                     {MAX_SECONDS}, got {v}"
                ));
            }
        }
        let may_be_zero = [
            ("retry_backoff", self.retry_backoff),
            ("split_after", self.split_after),
            ("cache_wait", self.cache_wait),
        ];
        for (name, value) in may_be_zero {
            if let Some(v) = value
                && !(0.0..=MAX_SECONDS).contains(&v)
            {
                return Err(format!(
                    "network.{name}: expected a number of seconds from 0 to {MAX_SECONDS}, got {v}"
                ));
            }
        }
        if let Some(n) = self.retries.filter(|&n| n > 10) {
            return Err(format!(
                "network.retries: expected a whole number from 0 to 10, got {n}"
            ));
        }
        if let Some(n) = self.connections.filter(|n| !(1..=32).contains(n)) {
            return Err(format!(
                "network.connections: expected a whole number from 1 to 32, got {n}"
            ));
        }
        if self.split_size == Some(0) {
            return Err("network.split_size: expected at least 1 byte".to_string());
        }
        Ok(())
    }
}

impl ConfigFile {
    /// Loads the config file: `flag` (`--config`), else `$PTEX_CONFIG`, else the default
    /// location; an empty config when there is none.
    pub fn load(env: &dyn Env, flag: Option<&Path>) -> Result<ConfigFile, ConfigError> {
        let from_env = env
            .var_os("PTEX_CONFIG")
            .filter(|p| !p.is_empty())
            .map(PathBuf::from);
        let (path, required) = match flag.map(Path::to_path_buf).or(from_env) {
            Some(path) => (path, true),
            None => match directories::ProjectDirs::from("", "", "ptex") {
                Some(dirs) => (dirs.config_dir().join("config.json"), false),
                None => return Ok(ConfigFile::default()),
            },
        };
        match crate::local_file::read(&path) {
            Ok(bytes) => ConfigFile::parse(&bytes, &path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
                Ok(ConfigFile::default())
            }
            Err(source) => Err(ConfigError::ConfigUnreadable { path, source }),
        }
    }

    /// Parses and validates config JSON read from `path`.
    pub fn parse(bytes: &[u8], path: &Path) -> Result<ConfigFile, ConfigError> {
        let invalid = |reason: String| ConfigError::ConfigInvalid {
            path: path.to_path_buf(),
            reason,
        };
        let value: Value = serde_json::from_slice(bytes).map_err(|e| invalid(e.to_string()))?;
        let Value::Object(top) = value else {
            return Err(invalid("expected a JSON object".to_string()));
        };
        // Each part is read on its own, so an error names where it is (`mirrors[1]: …`).
        let part = |key: &str| top.get(key).cloned().unwrap_or(Value::Null);
        let mut config = ConfigFile::default();
        let mut mirrors: Vec<MirrorSpec> = Vec::new();
        let (mut allow, mut block, mut blocked_message) = (Vec::new(), Vec::new(), None);
        for key in top.keys() {
            let value = part(key);
            let named = |e: serde_json::Error| invalid(format!("{key}: {e}"));
            match key.as_str() {
                "s3" => config.s3 = serde_json::from_value(value).map_err(named)?,
                "network" => config.network = serde_json::from_value(value).map_err(named)?,
                "gs" => config.gs = serde_json::from_value(value).map_err(named)?,
                "allow" => allow = serde_json::from_value(value).map_err(named)?,
                "block" => block = serde_json::from_value(value).map_err(named)?,
                "science_auth" => {
                    config.science_auth = serde_json::from_value(value).map_err(named)?
                }
                "uv_python_install_mirror" => {
                    config.uv_python_install_mirror =
                        serde_json::from_value(value).map_err(named)?;
                }
                "credential_helpers" => {
                    let helpers = serde_json::from_value(value).map_err(named)?;
                    config.credential_helpers =
                        CredentialHelpers::from_map(helpers).map_err(invalid)?;
                }
                "blocked_message" => {
                    blocked_message = serde_json::from_value(value).map_err(named)?;
                }
                "mirrors" => mirrors = mirror_rules(value).map_err(invalid)?,
                "caches" => config.caches = cache_entries(value).map_err(invalid)?,
                "auth" => {
                    config.auth = auth_entries(value, &mut config.warnings).map_err(invalid)?;
                }
                other => {
                    return Err(invalid(format!(
                        "unknown key `{other}` (known: s3, gs, mirrors, caches, allow, \
                         block, blocked_message, auth, credential_helpers, network, \
                         science_auth, uv_python_install_mirror)"
                    )));
                }
            }
        }
        config.routing =
            Routing::new(&mirrors, &allow, &block, blocked_message).map_err(invalid)?;
        config.check_endpoints().map_err(invalid)?;
        config.network.check().map_err(invalid)?;
        Ok(config)
    }

    /// Every S3 and GCS endpoint must be usable, said with where it is.
    fn check_endpoints(&self) -> Result<(), String> {
        let s3 = std::iter::once(("s3".to_string(), &self.s3.defaults)).chain(
            self.s3
                .buckets
                .iter()
                .map(|(name, b)| (format!("s3.buckets.{name}"), b)),
        );
        let s3 = s3.filter_map(|(place, b)| Some((place, b.endpoint.as_ref()?)));
        let gs = self.gs.endpoint.iter().map(|e| ("gs".to_string(), e));
        for (place, endpoint) in s3.chain(gs) {
            check_endpoint(endpoint).map_err(|e| format!("{place}.endpoint: {e}"))?;
        }
        Ok(())
    }
}

/// The `mirrors` list, each rule read on its own so an error names its index.
fn mirror_rules(value: Value) -> Result<Vec<MirrorSpec>, String> {
    let Value::Array(rules) = value else {
        return Err("mirrors: expected a list of rules".to_string());
    };
    let rule =
        |(index, rule)| serde_json::from_value(rule).map_err(|e| format!("mirrors[{index}]: {e}"));
    rules.into_iter().enumerate().map(rule).collect()
}

/// The `caches` list, each entry checked.
fn cache_entries(value: Value) -> Result<Vec<CacheSpec>, String> {
    let Value::Array(entries) = value else {
        return Err("caches: expected a list of URL templates".into());
    };
    let entry = |(index, entry)| {
        let at = |e: String| format!("caches[{index}]: {e}");
        let entry: CacheEntry = serde_json::from_value(entry).map_err(|e| {
            at(format!(
                "expected a URL template or {{\"url\": …, \"fill\": true}} ({e})"
            ))
        })?;
        entry.check().map_err(at)
    };
    entries.into_iter().enumerate().map(entry).collect()
}

/// The `auth` table by host, in the spelling requests are judged in; what is allowed but
/// unwise goes to `warnings`.
fn auth_entries(
    value: Value,
    warnings: &mut Vec<String>,
) -> Result<BTreeMap<String, AuthSpec>, String> {
    let Value::Object(hosts) = value else {
        return Err("auth: expected an object of hosts".to_string());
    };
    let mut auth = BTreeMap::new();
    for (host, entry) in hosts {
        // serde quotes the values it rejects: they may be secrets.
        let spec: AuthSpec = serde_json::from_value(entry)
            .map_err(|e| format!("auth.{host:?}: {}", unquoted(&e.to_string())))?;
        warnings.extend(spec.check(&host)?);
        let key = crate::normalize_host(&host).unwrap_or(host);
        auth.insert(key, spec);
    }
    Ok(auth)
}

/// An endpoint must be an absolute http(s) URL with a host (and a valid port, if any).
pub fn check_endpoint(endpoint: &str) -> Result<(), String> {
    let rest = endpoint
        .strip_prefix("https://")
        .or_else(|| endpoint.strip_prefix("http://"))
        .ok_or_else(|| format!("{endpoint:?} must start with https:// or http://"))?;
    let no_host = || format!("{endpoint:?} has no valid host");
    // The url crate reads `http:///h` as host `h`: an endpoint names its host at once.
    if rest.starts_with(['/', '\\']) {
        return Err(no_host());
    }
    match url::Url::parse(endpoint) {
        Ok(url) if url.host_str().is_some_and(|h| !h.is_empty()) => Ok(()),
        Ok(_) => Err(no_host()),
        Err(e) => Err(format!("{endpoint:?} is not a valid URL: {e}")),
    }
}

/// `message` with every double-quoted value in it masked: serde quotes the values it
/// rejects, and in the `auth` table those are secrets.
fn unquoted(message: &str) -> String {
    let mut out = String::new();
    let mut parts = message.split('"');
    if let Some(first) = parts.next() {
        out.push_str(first);
    }
    let rest: Vec<&str> = parts.collect();
    // Quoted runs are the odd pieces; an unmatched quote masks everything after it.
    for (index, piece) in rest.iter().enumerate() {
        if index % 2 == 0 {
            out.push_str("\"…");
            if index + 1 == rest.len() {
                out.push('"');
            }
        } else {
            out.push('"');
            out.push_str(piece);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_errors_never_quote_a_value() {
        let message = unquoted(r#"invalid type: string "tok:s3cret", expected struct BasicSpec"#);
        assert!(!message.contains("s3cret"), "{message}");
        assert!(message.contains("expected struct BasicSpec"), "{message}");
        assert!(!unquoted(r#"a "b"#).contains('b'));
    }

    fn parse(text: &str) -> Result<ConfigFile, ConfigError> {
        ConfigFile::parse(text.as_bytes(), Path::new("/etc/ptex.json"))
    }

    #[test]
    fn bucket_settings_override_defaults() {
        let config = parse(
            r#"{"s3": {"region": "us-east-1", "endpoint": "https://s3.corp.example",
                       "buckets": {"mirror": {"region": "eu-west-1", "requester_pays": true}}},
                "gs": {"endpoint": "http://127.0.0.1:9023", "token_env": "GCS_TOKEN"}}"#,
        )
        .unwrap();
        let mirror = config.s3.bucket("mirror");
        assert_eq!(mirror.region.as_deref(), Some("eu-west-1"));
        assert_eq!(mirror.endpoint.as_deref(), Some("https://s3.corp.example"));
        assert_eq!(mirror.requester_pays, Some(true));
        let other = config.s3.bucket("other");
        assert_eq!(other.region.as_deref(), Some("us-east-1"));
        assert_eq!(other.requester_pays, None);
        assert_eq!(config.gs.token_env.as_deref(), Some("GCS_TOKEN"));
    }

    #[test]
    fn typos_and_bad_endpoints_are_named() {
        for (text, words) in [
            (
                r#"{"s3": {"regoin": "x"}}"#,
                vec!["regoin", "/etc/ptex.json"],
            ),
            (r#"{"s4": {}}"#, vec!["s4"]),
            (
                r#"{"s3": {"endpoint": "minio:9000"}}"#,
                vec!["s3.endpoint", "https://"],
            ),
            (
                r#"{"s3": {"buckets": {"b": {"endpoint": "http:///x"}}}}"#,
                vec!["s3.buckets.b.endpoint", "host"],
            ),
            (r#"{"gs": {"endpoint": "ftp://x"}}"#, vec!["gs.endpoint"]),
            ("not json", vec!["/etc/ptex.json"]),
        ] {
            let err = parse(text).unwrap_err().to_string();
            for word in words {
                assert!(err.contains(word), "{text}: {word:?} missing from {err}");
            }
        }
    }

    #[test]
    fn endpoints_are_absolute_http_urls_with_a_host_and_a_valid_port() {
        for good in [
            "http://127.0.0.1:9000",
            "https://s3.corp.example/base/",
            "http://[::1]:1",
        ] {
            assert_eq!(check_endpoint(good), Ok(()), "{good}");
        }
        for (bad, word) in [
            ("minio:9000", "must start with"),
            ("HTTP://h", "must start with"),
            ("http://", "empty host"),
            ("http:///x", "no valid host"),
            ("http://a b", "not a valid URL"),
            ("http://h:99999", "invalid port number"),
            ("https://?x", "empty host"),
        ] {
            let err = check_endpoint(bad).unwrap_err();
            assert!(err.contains(word), "{bad}: {err}");
        }
    }

    #[test]
    fn drop_in_switches_and_helpers_are_read() {
        let config = parse(
            r#"{"science_auth": false, "uv_python_install_mirror": false,
                "credential_helpers": {"*.corp.example": "/opt/helper"}}"#,
        )
        .unwrap();
        assert_eq!(config.science_auth, Some(false));
        assert_eq!(config.uv_python_install_mirror, Some(false));
        assert!(
            config
                .credential_helpers
                .for_host("a.corp.example")
                .is_some()
        );
        let err = parse(r#"{"science_auth": "no"}"#).unwrap_err().to_string();
        assert!(err.contains("science_auth"), "{err}");
        let err = parse(r#"{"credential_helpers": {"https://x": "/h"}}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("credential_helpers"), "{err}");
    }

    #[test]
    fn example_config_is_valid() {
        let example = include_str!("../examples/config.json");
        let config = parse(example).unwrap();
        assert!(!config.s3.buckets.is_empty());
    }

    #[test]
    fn missing_default_file_is_fine_but_missing_ptex_config_is_not() {
        let env: std::collections::HashMap<String, String> = [(
            "PTEX_CONFIG".to_string(),
            "/nonexistent/ptex.json".to_string(),
        )]
        .into();
        let err = ConfigFile::load(&env, None).unwrap_err().to_string();
        assert!(err.contains("/nonexistent/ptex.json"), "{err}");
    }
}
