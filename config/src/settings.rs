//! Resolved settings for one ptex run: the spool directory, timeouts, retries, the config
//! file, credentials, and the environment the cloud backends see.
//! Precedence is flag > environment > config file > default.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::file::{MAX_SECONDS, MIN_TIMEOUT};
use crate::{
    CacheSpec, Caches, CloudEnv, ConfigError, ConfigFile, Credentials, Env, Netrc, Network,
    UV_PYTHON_MIRRORED,
};

/// uv's variable for a python-build-standalone mirror.
const UV_MIRROR: &str = "UV_PYTHON_INSTALL_MIRROR";

/// Network timeouts. None of them limits a slow download that keeps making progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// Limit for establishing a connection, TLS handshake included (`PTEX_CONNECT_TIMEOUT`).
    pub connect: Duration,
    /// Limit for waiting on the next bytes of a response (`PTEX_READ_TIMEOUT`).
    pub read: Duration,
    /// A transfer slower than this many bytes per second... (`PTEX_LOW_SPEED_LIMIT`)
    pub low_speed_limit: u64,
    /// ...for this long is abandoned (`PTEX_LOW_SPEED_TIME`).
    pub low_speed_time: Duration,
    /// How long to wait for another run fetching the same file while it makes no progress,
    /// before fetching separately (`PTEX_LOCK_WAIT`).
    pub lock_wait: Duration,
    /// The longest a credential helper may run before it is killed and its host gets no
    /// headers from it (`PTEX_CREDENTIAL_HELPER_TIMEOUT`).
    pub credential_helper: Duration,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts {
            connect: Duration::from_secs(10),
            read: Duration::from_secs(30),
            low_speed_limit: 1024,
            low_speed_time: Duration::from_secs(30),
            lock_wait: Duration::from_secs(10),
            credential_helper: Duration::from_secs(10),
        }
    }
}

/// How often to try a source again after a transient failure, and how long to wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Extra rounds over the sources after the first (`PTEX_RETRIES`, default 3).
    pub retries: u32,
    /// The backoff before the first retry round; it doubles each round, with full jitter
    /// (`PTEX_RETRY_BACKOFF`, seconds, default 1).
    pub backoff: Duration,
    /// The longest wait between tries, `Retry-After` included, and the most the waits a
    /// server asks for (`Retry-After`) may add up to for one file (`PTEX_RETRY_MAX_WAIT`,
    /// seconds, default 30).
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            retries: 3,
            backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(30),
        }
    }
}

/// Fetching one large file over several connections at once, where its source serves parts
/// of it (http(s) with `Accept-Ranges: bytes`, s3, gs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Parallel {
    /// Connections for one file at most (`PTEX_CONNECTIONS`, 1 to 32, default 8); 1 fetches
    /// every file over one connection.
    pub connections: usize,
    /// What is left of a file is split only from this many bytes on (`PTEX_SPLIT_SIZE`,
    /// default 32 MiB): a small file is faster over one connection.
    pub min_size: u64,
    /// How long one connection runs before its speed decides whether more are opened
    /// (`PTEX_SPLIT_AFTER`, default 0.25 s; 0 splits at once, whatever the speed).
    pub probe: Duration,
}

impl Default for Parallel {
    fn default() -> Parallel {
        Parallel {
            connections: 8,
            min_size: 32 << 20,
            probe: Duration::from_millis(250),
        }
    }
}

/// TLS files named by the environment, and whether plain http needs TLS too.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsFiles {
    /// The first of `SSL_CERT_FILE`, `CURL_CA_BUNDLE` and `REQUESTS_CA_BUNDLE` that is set:
    /// the variable's name and the PEM bundle it names.
    pub ca_bundle: Option<(&'static str, PathBuf)>,
    /// `SSL_CLIENT_CERT`: a PEM file with a client certificate and its private key, as uv
    /// reads it, presented to every host that asks (an `auth` entry's `client_cert` wins).
    pub client_cert: Option<PathBuf>,
    /// `AWS_CA_BUNDLE`: a PEM bundle the AWS tools trust, added for the storage clients
    /// (s3, gs, ftp share them) on top of the above.
    pub aws_ca_bundle: Option<PathBuf>,
    /// Whether plain http requests go through a proxy reached over TLS (`HTTP_PROXY` or
    /// `ALL_PROXY`, either case, an `https://` URL; reqwest reads these itself): then
    /// they need the roots too.
    pub http_proxy_is_tls: bool,
}

impl TlsFiles {
    fn from_env(env: &dyn Env) -> TlsFiles {
        let path = |name: &str| {
            env.var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        TlsFiles {
            ca_bundle: ["SSL_CERT_FILE", "CURL_CA_BUNDLE", "REQUESTS_CA_BUNDLE"]
                .into_iter()
                .find_map(|name| Some((name, path(name)?))),
            client_cert: path("SSL_CLIENT_CERT"),
            aws_ca_bundle: path("AWS_CA_BUNDLE"),
            http_proxy_is_tls: ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"]
                .iter()
                .filter_map(|name| env.non_empty(name))
                .any(|proxy| proxy.trim().to_ascii_lowercase().starts_with("https://")),
        }
    }
}

/// Everything a run needs to know about its user's setup.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Where partial downloads are spooled before verification (`PTEX_CACHE_DIR`, else the
    /// user cache directory, e.g. `~/.cache/ptex`).
    pub cache_dir: PathBuf,
    /// Network timeouts.
    pub timeouts: Timeouts,
    /// Retries of transient failures.
    pub retry: RetryPolicy,
    /// Concurrent parts for large files.
    pub parallel: Parallel,
    /// Content-addressed caches: `PTEX_CACHES` (read only) if set, else the config's
    /// `caches`; with the fill and wait bounds.
    pub caches: Caches,
    /// Per-host credentials: `PTEX_AUTH_*`, the config's `auth`, and netrc (`$NETRC` or
    /// `~/.netrc`, if that file exists and parses).
    pub credentials: Credentials,
    /// The config file's contents (empty when there is none).
    pub file: ConfigFile,
    /// CA bundle and client certificate files from the environment.
    pub tls: TlsFiles,
    /// The variables the `s3://` and `gs://` backends read (AWS, Google, gcloud, the
    /// home directory, the config's `gs.token_env`), captured here.
    pub cloud: CloudEnv,
    /// Problems that do not stop the run (for example a malformed netrc), to show the user.
    pub warnings: Vec<String>,
}

impl Settings {
    /// Reads the settings from `env` and the config file (`config` if given, as by
    /// `--config`). Fails only on values that make the run impossible.
    pub fn load(env: &dyn Env, config: Option<&Path>) -> Result<Settings, ConfigError> {
        let mut warnings = Vec::new();
        trust_store(env)?;
        let netrc = Netrc::load(env).unwrap_or_else(|e| {
            warnings.push(format!("{e}; netrc credentials are not used"));
            None
        });
        let mut file = ConfigFile::load(env, config)?;
        warnings.extend(file.warnings.iter().cloned());
        let credentials =
            Credentials::new(env, &file.auth, netrc, file.science_auth != Some(false));
        // uv's variable, as uv reads it; an environment variable wins over the file's rules.
        if file.uv_python_install_mirror != Some(false)
            && let Some(mirror) = env.non_empty(UV_MIRROR)
        {
            file.routing
                .prepend_mirror(UV_PYTHON_MIRRORED, mirror.trim(), UV_MIRROR)
                .map_err(|reason| ConfigError::InvalidEnv {
                    name: UV_MIRROR,
                    value: mirror.clone(),
                    reason,
                })?;
        }
        let net = &file.network;
        let timeouts = Timeouts::load(env, net)?;
        let retry = RetryPolicy::load(env, net)?;
        let parallel = Parallel::load(env, net)?;
        let caches = Caches::load(env, net, &file.caches)?;
        let token_env = file.gs.token_env.as_deref();
        let cloud = CloudEnv::capture(env, token_env.as_slice());
        Ok(Settings {
            caches,
            cloud,
            credentials,
            file,
            tls: TlsFiles::from_env(env),
            cache_dir: cache_dir(env)?,
            timeouts,
            retry,
            parallel,
            warnings,
        })
    }
}

/// Seconds from the config's `network`. In each `load` below a value is its environment
/// variable, else the config's `network`, else the default.
fn from_file(v: Option<f64>) -> Option<Duration> {
    v.map(Duration::from_secs_f64)
}

impl Timeouts {
    /// The timeouts, from `PTEX_*` variables, `net`, the defaults.
    fn load(env: &dyn Env, net: &Network) -> Result<Timeouts, ConfigError> {
        Ok(Timeouts {
            connect: seconds(env, "PTEX_CONNECT_TIMEOUT")?
                .or(from_file(net.connect_timeout))
                .unwrap_or(Timeouts::default().connect),
            read: seconds(env, "PTEX_READ_TIMEOUT")?
                .or(from_file(net.read_timeout))
                .unwrap_or(Timeouts::default().read),
            // Bytes per second; 0 turns the floor off.
            low_speed_limit: whole(env, "PTEX_LOW_SPEED_LIMIT", 0..=u64::MAX)?
                .or(net.low_speed_limit)
                .unwrap_or(Timeouts::default().low_speed_limit),
            low_speed_time: seconds(env, "PTEX_LOW_SPEED_TIME")?
                .or(from_file(net.low_speed_time))
                .unwrap_or(Timeouts::default().low_speed_time),
            lock_wait: seconds(env, "PTEX_LOCK_WAIT")?
                .or(from_file(net.lock_wait))
                .unwrap_or(Timeouts::default().lock_wait),
            credential_helper: seconds(env, "PTEX_CREDENTIAL_HELPER_TIMEOUT")?
                .or(from_file(net.credential_helper_timeout))
                .unwrap_or(Timeouts::default().credential_helper),
        })
    }
}

impl RetryPolicy {
    /// The retry policy, from `PTEX_*` variables, `net`, the defaults.
    fn load(env: &dyn Env, net: &Network) -> Result<RetryPolicy, ConfigError> {
        Ok(RetryPolicy {
            retries: whole(env, "PTEX_RETRIES", 0..=10)?
                .map(|n| n as u32)
                .or(net.retries)
                .unwrap_or(RetryPolicy::default().retries),
            // Zero is allowed here, unlike for timeouts: no wait between rounds.
            backoff: seconds_or_zero(env, "PTEX_RETRY_BACKOFF")?
                .or(from_file(net.retry_backoff))
                .unwrap_or(RetryPolicy::default().backoff),
            max_backoff: seconds(env, "PTEX_RETRY_MAX_WAIT")?
                .or(from_file(net.retry_max_wait))
                .unwrap_or(RetryPolicy::default().max_backoff),
        })
    }
}

impl Parallel {
    /// The parts policy, from `PTEX_*` variables, `net`, the defaults.
    fn load(env: &dyn Env, net: &Network) -> Result<Parallel, ConfigError> {
        Ok(Parallel {
            connections: whole(env, "PTEX_CONNECTIONS", 1..=32)?
                .or(net.connections)
                .map_or(Parallel::default().connections, |n| n as usize),
            min_size: whole(env, "PTEX_SPLIT_SIZE", 1..=u64::MAX)?
                .or(net.split_size)
                .unwrap_or(Parallel::default().min_size),
            probe: seconds_or_zero(env, "PTEX_SPLIT_AFTER")?
                .or(from_file(net.split_after))
                .unwrap_or(Parallel::default().probe),
        })
    }
}

impl Caches {
    /// `PTEX_CACHES` (read only) if set, else the config's `caches`; with the bounds.
    fn load(env: &dyn Env, net: &Network, listed: &[CacheSpec]) -> Result<Caches, ConfigError> {
        Ok(Caches {
            list: match env.non_empty("PTEX_CACHES") {
                Some(list) => {
                    CacheSpec::from_env_list(&list).map_err(|reason| ConfigError::InvalidEnv {
                        name: "PTEX_CACHES",
                        value: list.clone(),
                        reason,
                    })?
                }
                None => listed.to_vec(),
            },
            fill_timeout: seconds(env, "PTEX_FILL_TIMEOUT")?
                .or(from_file(net.fill_timeout))
                .unwrap_or(Caches::default().fill_timeout),
            wait: match env.non_empty("PTEX_CACHE_WAIT") {
                Some(v) if v.trim() == "0" => Duration::ZERO,
                _ => seconds(env, "PTEX_CACHE_WAIT")?
                    .or(from_file(net.cache_wait))
                    .unwrap_or(Caches::default().wait),
            },
        })
    }
}

/// Refuses an `SSL_CERT_FILE` that is there but not a regular file (a FIFO would hang the
/// TLS set-up, which runs for every scheme): said before any request.
fn trust_store(env: &dyn Env) -> Result<(), ConfigError> {
    let Some(value) = env.non_empty("SSL_CERT_FILE") else {
        return Ok(());
    };
    match crate::local_file::regular(Path::new(&value)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(ConfigError::InvalidEnv {
            name: "SSL_CERT_FILE",
            value,
            reason: e.to_string(),
        }),
        _ => Ok(()),
    }
}

fn cache_dir(env: &dyn Env) -> Result<PathBuf, ConfigError> {
    if let Some(dir) = env.var_os("PTEX_CACHE_DIR").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    directories::ProjectDirs::from("", "", "ptex")
        .map(|dirs| dirs.cache_dir().to_path_buf())
        .ok_or(ConfigError::NoCacheDir)
}

/// A whole number within `range` from `name`.
fn whole(
    env: &dyn Env,
    name: &'static str,
    range: std::ops::RangeInclusive<u64>,
) -> Result<Option<u64>, ConfigError> {
    let Some(value) = env.non_empty(name) else {
        return Ok(None);
    };
    match value.trim().parse::<u64>() {
        Ok(n) if range.contains(&n) => Ok(Some(n)),
        _ => Err(ConfigError::InvalidEnv {
            name,
            value,
            reason: format!(
                "expected a whole number from {} to {}",
                range.start(),
                range.end()
            ),
        }),
    }
}

/// A number of seconds from [`MIN_TIMEOUT`] to [`MAX_SECONDS`], fractions allowed (`0.5`),
/// from `name`.
fn seconds(env: &dyn Env, name: &'static str) -> Result<Option<Duration>, ConfigError> {
    let Some(value) = env.non_empty(name) else {
        return Ok(None);
    };
    match value.trim().parse::<f64>() {
        Ok(secs) if (MIN_TIMEOUT..=MAX_SECONDS).contains(&secs) => {
            Ok(Some(Duration::from_secs_f64(secs)))
        }
        _ => Err(ConfigError::InvalidEnv {
            name,
            value,
            reason: format!("expected a number of seconds from {MIN_TIMEOUT} to {MAX_SECONDS}"),
        }),
    }
}

/// A number of seconds from 0 (however written: `0`, `0.0`) to [`MAX_SECONDS`], from
/// `name`.
fn seconds_or_zero(env: &dyn Env, name: &'static str) -> Result<Option<Duration>, ConfigError> {
    let Some(value) = env.non_empty(name) else {
        return Ok(None);
    };
    match value.trim().parse::<f64>() {
        Ok(secs) if (0.0..=MAX_SECONDS).contains(&secs) => Ok(Some(Duration::from_secs_f64(secs))),
        _ => Err(ConfigError::InvalidEnv {
            name,
            value,
            reason: format!("expected a number of seconds from 0 to {MAX_SECONDS}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        let mut map = crate::env::from_pairs(pairs);
        map.entry("HOME".into()).or_insert("/nonexistent".into());
        map
    }

    #[test]
    fn defaults() {
        let s = Settings::load(&env(&[("PTEX_CACHE_DIR", "/tmp/c")]), None).unwrap();
        assert_eq!(s.cache_dir, PathBuf::from("/tmp/c"));
        assert_eq!(s.timeouts, Timeouts::default());
        assert!(s.credentials.netrc().is_none());
        assert!(s.warnings.is_empty());
    }

    #[test]
    fn timeouts_from_env() {
        let s = Settings::load(
            &env(&[
                ("PTEX_CACHE_DIR", "/tmp/c"),
                ("PTEX_CONNECT_TIMEOUT", "0.5"),
                ("PTEX_READ_TIMEOUT", "2"),
            ]),
            None,
        )
        .unwrap();
        assert_eq!(s.timeouts.connect, Duration::from_millis(500));
        assert_eq!(s.timeouts.read, Duration::from_secs(2));
        let s = Settings::load(
            &env(&[
                ("PTEX_CACHE_DIR", "/tmp/c"),
                ("PTEX_LOW_SPEED_LIMIT", "100"),
                ("PTEX_LOW_SPEED_TIME", "1.5"),
            ]),
            None,
        )
        .unwrap();
        assert_eq!(s.timeouts.low_speed_limit, 100);
        assert_eq!(s.timeouts.low_speed_time, Duration::from_millis(1500));
    }

    #[test]
    fn retry_policy_from_env() {
        let s = Settings::load(
            &env(&[
                ("PTEX_CACHE_DIR", "/tmp/c"),
                ("PTEX_RETRIES", "0"),
                ("PTEX_RETRY_BACKOFF", "0.01"),
            ]),
            None,
        )
        .unwrap();
        assert_eq!(s.retry.retries, 0);
        assert_eq!(s.retry.backoff, Duration::from_millis(10));
        let s = Settings::load(&env(&[("PTEX_CACHE_DIR", "/tmp/c")]), None).unwrap();
        assert_eq!(s.retry, RetryPolicy::default());
        for bad in ["-1", "11", "many"] {
            let err = Settings::load(
                &env(&[("PTEX_CACHE_DIR", "/tmp/c"), ("PTEX_RETRIES", bad)]),
                None,
            )
            .unwrap_err()
            .to_string();
            assert!(err.contains("PTEX_RETRIES"), "{err}");
        }
    }

    #[test]
    fn bad_timeouts_are_named() {
        for bad in ["0", "0.0", "1e-300", "0.05", "-1", "soon", "NaN", "1e9"] {
            let err = Settings::load(
                &env(&[("PTEX_CACHE_DIR", "/tmp/c"), ("PTEX_READ_TIMEOUT", bad)]),
                None,
            )
            .unwrap_err()
            .to_string();
            assert!(err.contains("PTEX_READ_TIMEOUT"), "{err}");
        }
    }

    #[test]
    fn zero_is_zero_however_written() {
        for zero in ["0", "0.0", "0e0", " 0.000 "] {
            let s = Settings::load(
                &env(&[
                    ("PTEX_CACHE_DIR", "/tmp/c"),
                    ("PTEX_RETRY_BACKOFF", zero),
                    ("PTEX_SPLIT_AFTER", zero),
                ]),
                None,
            )
            .unwrap();
            assert_eq!(
                (s.retry.backoff, s.parallel.probe),
                (Duration::ZERO, Duration::ZERO)
            );
        }
        let s = Settings::load(
            &env(&[("PTEX_CACHE_DIR", "/tmp/c"), ("PTEX_RETRY_MAX_WAIT", "2")]),
            None,
        )
        .unwrap();
        assert_eq!(s.retry.max_backoff, Duration::from_secs(2));
    }

    #[test]
    fn network_section_of_the_config_file_under_the_environment() {
        let path = std::env::temp_dir().join(format!("ptex-network-{}.json", std::process::id()));
        std::fs::write(
            &path,
            r#"{"network": {"read_timeout": 7.5, "retries": 5, "retry_backoff": 0,
                "connections": 4, "split_size": 1048576, "lock_wait": 2}}"#,
        )
        .unwrap();
        let load = |pairs: &[(&str, &str)]| {
            let mut all = vec![("PTEX_CACHE_DIR", "/tmp/c")];
            all.extend_from_slice(pairs);
            Settings::load(&env(&all), Some(&path))
        };
        let s = load(&[]).unwrap();
        assert_eq!(s.timeouts.read, Duration::from_millis(7500));
        assert_eq!(s.timeouts.connect, Timeouts::default().connect);
        assert_eq!(s.timeouts.lock_wait, Duration::from_secs(2));
        assert_eq!((s.retry.retries, s.retry.backoff), (5, Duration::ZERO));
        assert_eq!(
            s.parallel,
            Parallel {
                connections: 4,
                min_size: 1 << 20,
                probe: Parallel::default().probe,
            }
        );
        let s = load(&[("PTEX_READ_TIMEOUT", "3"), ("PTEX_CONNECTIONS", "1")]).unwrap();
        assert_eq!(s.timeouts.read, Duration::from_secs(3));
        assert_eq!(s.parallel.connections, 1);

        std::fs::write(&path, r#"{"network": {"connections": 64}}"#).unwrap();
        let err = load(&[]).unwrap_err().to_string();
        assert!(err.contains("network.connections"), "{err}");
        std::fs::write(&path, r#"{"network": {"read_timout": 3}}"#).unwrap();
        let err = load(&[]).unwrap_err().to_string();
        assert!(err.contains("read_timout"), "{err}");
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn caches_from_the_file_or_the_environment() {
        let path = std::env::temp_dir().join(format!("ptex-caches-{}.json", std::process::id()));
        std::fs::write(
            &path,
            r#"{"caches": [{"url": "s3://cas/{sha256}", "fill": true}],
                "network": {"fill_timeout": 5, "cache_wait": 0}}"#,
        )
        .unwrap();
        let load = |pairs: &[(&str, &str)]| {
            let mut all = vec![("PTEX_CACHE_DIR", "/tmp/c")];
            all.extend_from_slice(pairs);
            Settings::load(&env(&all), Some(&path))
        };
        let s = load(&[]).unwrap();
        assert_eq!(s.caches.list.len(), 1);
        assert!(s.caches.list[0].fill);
        assert_eq!(s.caches.fill_timeout, Duration::from_secs(5));
        assert_eq!(s.caches.wait, Duration::ZERO);
        let s = load(&[
            ("PTEX_CACHES", "https://c/{sha256} file:///d/{sha256}"),
            ("PTEX_CACHE_WAIT", "2"),
        ])
        .unwrap();
        assert_eq!(s.caches.list.len(), 2);
        assert!(s.caches.list.iter().all(|c| !c.fill));
        assert_eq!(s.caches.wait, Duration::from_secs(2));
        let err = load(&[("PTEX_CACHES", "https://c/latest")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("PTEX_CACHES"), "{err}");
        std::fs::write(
            &path,
            r#"{"caches": [{"url": "ftp://c/{sha256}", "fill": true}]}"#,
        )
        .unwrap();
        let err = load(&[]).unwrap_err().to_string();
        assert!(
            err.contains("caches[0]") && err.contains("cannot be filled"),
            "{err}"
        );
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn malformed_netrc_is_a_warning() {
        let path = std::env::temp_dir().join(format!("ptex-bad-netrc-{}", std::process::id()));
        std::fs::write(&path, "password before machine").unwrap();
        let s = Settings::load(
            &env(&[
                ("PTEX_CACHE_DIR", "/tmp/c"),
                ("NETRC", path.to_str().unwrap()),
            ]),
            None,
        )
        .unwrap();
        std::fs::remove_file(&path).unwrap();
        assert!(s.credentials.netrc().is_none());
        assert_eq!(s.warnings.len(), 1);
        assert!(s.warnings[0].contains("malformed"), "{:?}", s.warnings);
    }

    #[test]
    fn ca_bundles_in_order_and_the_client_cert() {
        let tls = |pairs: &[(&str, &str)]| {
            let mut all = vec![("PTEX_CACHE_DIR", "/tmp/c")];
            all.extend_from_slice(pairs);
            Settings::load(&env(&all), None).unwrap().tls
        };
        let bundle = |t: TlsFiles| t.ca_bundle.map(|(n, p)| (n, p.display().to_string()));
        let all = [
            ("REQUESTS_CA_BUNDLE", "/r"),
            ("CURL_CA_BUNDLE", "/c"),
            ("SSL_CERT_FILE", "/s"),
        ];
        assert_eq!(bundle(tls(&all)), Some(("SSL_CERT_FILE", "/s".into())));
        assert_eq!(
            bundle(tls(&all[..2])),
            Some(("CURL_CA_BUNDLE", "/c".into()))
        );
        assert_eq!(
            bundle(tls(&all[..1])),
            Some(("REQUESTS_CA_BUNDLE", "/r".into()))
        );
        assert_eq!(tls(&[("SSL_CERT_FILE", "")]), TlsFiles::default());
        let cert = tls(&[("SSL_CLIENT_CERT", "/id.pem")]).client_cert;
        assert_eq!(cert, Some(PathBuf::from("/id.pem")));
    }

    #[test]
    fn uv_mirror_is_a_rule_unless_switched_off() {
        let urls = [format!("{UV_PYTHON_MIRRORED}/20240101/py.tgz")];
        let s = Settings::load(
            &env(&[
                ("PTEX_CACHE_DIR", "/tmp/c"),
                ("UV_PYTHON_INSTALL_MIRROR", "https://m.corp/pbs/"),
            ]),
            None,
        )
        .unwrap();
        let got = s.file.routing.candidates(&urls);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].url, "https://m.corp/pbs/20240101/py.tgz");
        assert_eq!(got[0].via, "UV_PYTHON_INSTALL_MIRROR");
        let path = std::env::temp_dir().join(format!("ptex-uv-off-{}.json", std::process::id()));
        std::fs::write(&path, r#"{"uv_python_install_mirror": false}"#).unwrap();
        let s = Settings::load(
            &env(&[
                ("PTEX_CACHE_DIR", "/tmp/c"),
                ("UV_PYTHON_INSTALL_MIRROR", "https://m.corp/pbs/"),
            ]),
            Some(&path),
        )
        .unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(s.file.routing.candidates(&urls).len(), 1);
        let err = Settings::load(
            &env(&[
                ("PTEX_CACHE_DIR", "/tmp/c"),
                ("UV_PYTHON_INSTALL_MIRROR", "m.corp"),
            ]),
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("UV_PYTHON_INSTALL_MIRROR"), "{err}");
    }
}
