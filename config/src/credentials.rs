//! Per-host credentials from the environment (`PTEX_AUTH_<HOST>_*`, then science's
//! `SCIENCE_AUTH_<HOST>_*`), the config file's `auth` table and netrc, resolved for one
//! request at a time so each credential goes only to its own host. Precedence: the
//! environment, then the config file, then netrc (`-H`, URL userinfo and credential helpers,
//! handled by the HTTP backend, come before all of them).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::{ConfigError, Env, Netrc};

/// One `auth` entry as written in the config file.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSpec {
    /// Name of an environment variable holding a bearer token.
    pub bearer_env: Option<String>,
    /// A literal bearer token (accepted, with a warning).
    pub bearer: Option<String>,
    /// Names of environment variables holding a user and a password.
    pub basic_env: Option<BasicSpec>,
    /// A literal user and password (accepted, with a warning).
    pub basic: Option<BasicSpec>,
    /// Extra headers for this host.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Send these credentials over plain http to a non-loopback host too.
    #[serde(default)]
    pub allow_http: bool,
    /// A PEM file holding a client certificate and its private key, presented to this host
    /// when its TLS server asks for one (mutual TLS).
    pub client_cert: Option<PathBuf>,
}

/// A user and a password (or the names of the variables holding them).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicSpec {
    pub user: String,
    pub password: String,
}

impl fmt::Debug for AuthSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthSpec")
            .field("bearer_env", &self.bearer_env)
            .field("bearer", &self.bearer.as_ref().map(|_| "<redacted>"))
            .field(
                "basic_env",
                &self.basic_env.as_ref().map(|b| (&b.user, &b.password)),
            )
            .field(
                "basic",
                &self.basic.as_ref().map(|b| (&b.user, "<redacted>")),
            )
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("allow_http", &self.allow_http)
            .field("client_cert", &self.client_cert)
            .finish()
    }
}

impl AuthSpec {
    /// Checks the entry for `host`; returns warnings (literal secrets).
    pub(crate) fn check(&self, host: &str) -> Result<Vec<String>, String> {
        let at = |reason: &str| format!("auth.{host:?}: {reason}");
        let kinds = [
            self.bearer_env.is_some(),
            self.bearer.is_some(),
            self.basic_env.is_some(),
            self.basic.is_some(),
        ];
        if kinds.iter().filter(|k| **k).count() > 1 {
            return Err(at("give one of bearer_env, bearer, basic_env, basic"));
        }
        for (name, value) in &self.headers {
            let bad_name = name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
            if bad_name || value.contains(['\r', '\n', '\0']) {
                return Err(at(&format!("header {name:?} is not a valid header")));
            }
        }
        if self
            .client_cert
            .as_ref()
            .is_some_and(|p| p.as_os_str().is_empty())
        {
            return Err(at("client_cert is empty"));
        }
        let mut warnings = Vec::new();
        if self.bearer.is_some() || self.basic.is_some() {
            warnings.push(format!(
                "the config file holds a literal secret for {host}; prefer bearer_env or \
                 basic_env, which name environment variables"
            ));
        }
        Ok(warnings)
    }
}

/// An Authorization to send.
#[derive(Clone, PartialEq, Eq)]
pub enum Authorization {
    Bearer(String),
    Basic { user: String, password: String },
}

impl fmt::Debug for Authorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Authorization::Bearer(_) => f.write_str("Bearer(<redacted>)"),
            Authorization::Basic { user, .. } => write!(f, "Basic({user}, <redacted>)"),
        }
    }
}

/// What to send to one host.
#[derive(Clone, Debug, Default)]
pub struct HostCredentials {
    /// The Authorization, if any source has one for this host.
    pub authorization: Option<Authorization>,
    /// Extra headers from the config's `auth` entry.
    pub headers: Vec<(String, String)>,
    /// Where the Authorization comes from, by name (`PTEX_AUTH_…_BEARER`,
    /// `SCIENCE_AUTH_…_BEARER`, `auth."host" bearer_env X`, `netrc`), or `none`.
    pub source: String,
}

/// Every per-host credential a run knows of.
#[derive(Clone, Default)]
pub struct Credentials {
    /// `PTEX_AUTH_*` (and, unless switched off, `SCIENCE_AUTH_*`) variables, and the
    /// variables `auth` entries name.
    env: BTreeMap<String, String>,
    /// The prefixes of host-named variables read, in precedence order.
    prefixes: Vec<&'static str>,
    auth: BTreeMap<String, AuthSpec>,
    netrc: Option<Netrc>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("env", &self.env.keys().collect::<Vec<_>>())
            .field("auth", &self.auth)
            .field("netrc", &self.netrc)
            .finish()
    }
}

impl Credentials {
    /// Collects the variables of `env` that hold credentials: `PTEX_AUTH_*`, `SCIENCE_AUTH_*`
    /// when `science` is on, and those `auth` names.
    pub(crate) fn new(
        env: &dyn Env,
        auth: &BTreeMap<String, AuthSpec>,
        netrc: Option<Netrc>,
        science: bool,
    ) -> Credentials {
        let mut prefixes = vec![ENV_PREFIX];
        if science {
            prefixes.push(SCIENCE_PREFIX);
        }
        let mut vars: BTreeMap<String, String> = BTreeMap::new();
        for prefix in &prefixes {
            vars.extend(env.vars_with_prefix(prefix));
        }
        let named = auth.values().flat_map(|spec| {
            let basic = spec.basic_env.iter().flat_map(|b| [&b.user, &b.password]);
            spec.bearer_env.iter().chain(basic)
        });
        for name in named {
            if let Some(value) = env.non_empty(name) {
                vars.insert(name.clone(), value);
            }
        }
        Credentials {
            env: vars,
            prefixes,
            auth: auth.clone(),
            netrc,
        }
    }

    /// The client certificate (a PEM file with its key) the config's `auth` entry names for
    /// `host` and `port` (`port` if not the scheme's default): the entry keyed `host:port`,
    /// else the one keyed `host`.
    pub fn client_cert(&self, host: &str, port: Option<u16>) -> Option<&Path> {
        let host = host.to_ascii_lowercase();
        let exact = port.map(|p| origin_key(&host, Some(p)));
        exact
            .iter()
            .chain(std::iter::once(&host))
            .find_map(|key| self.auth.get(key)?.client_cert.as_deref())
    }

    /// Every client certificate the config's `auth` names, by host key.
    pub fn client_certs(&self) -> impl Iterator<Item = (&str, &Path)> {
        self.auth
            .iter()
            .filter_map(|(key, spec)| Some((key.as_str(), spec.client_cert.as_deref()?)))
    }

    /// The parsed netrc file, if there is one (FTP logins come from it).
    pub fn netrc(&self) -> Option<&Netrc> {
        self.netrc.as_ref()
    }

    /// The credentials for a request to `host` (`port` if not the scheme's default) over
    /// https or not. A URL the user named (`redirected` false) also takes the entries of
    /// its host without a port, and netrc's `default`; a hop a redirect led to from another
    /// origin takes only what is keyed for exactly its host and port (a netrc `machine` only
    /// on the scheme's default port), never netrc's `default`. Fails when a config entry
    /// names an environment variable that is unset.
    pub fn for_host(
        &self,
        host: &str,
        port: Option<u16>,
        https: bool,
        redirected: bool,
    ) -> Result<HostCredentials, ConfigError> {
        let host = host.to_ascii_lowercase();
        let mut origins = vec![(host.as_str(), port)];
        if port.is_some() && !redirected {
            origins.push((host.as_str(), None));
        }
        let keys: Vec<String> = origins.iter().map(|&(h, p)| origin_key(h, p)).collect();
        let (entry_key, entry) = match keys.iter().find_map(|k| self.auth.get(k).map(|e| (k, e))) {
            Some((key, entry)) => (Some(key.clone()), Some(entry)),
            None => (None, None),
        };
        let mut found = HostCredentials {
            source: "none".to_string(),
            ..HostCredentials::default()
        };
        let exposed = !https && !is_loopback(&host);
        if !exposed || entry.is_some_and(|e| e.allow_http) {
            // Ours first, then science's, each over the same host-to-NAME mapping.
            if let Some((authorization, source)) = self.prefixes.iter().find_map(|prefix| {
                origins
                    .iter()
                    .find_map(|&(h, p)| env_authorization(&self.env, prefix, h, p))
            }) {
                found.authorization = Some(authorization);
                found.source = source;
            }
            if let (Some(key), Some(entry)) = (&entry_key, entry) {
                if found.authorization.is_none()
                    && let Some((authorization, source)) = self.entry_authorization(key, entry)?
                {
                    found.authorization = Some(authorization);
                    found.source = source;
                }
                found.headers = entry
                    .headers
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
            }
        }
        // netrc behaves as in curl (and so the original ptex): its own host, any scheme;
        // netrc names no port, so after a redirect it is that host's default port only.
        let netrc = self.netrc.as_ref().and_then(|n| match redirected {
            false => n.lookup(&host),
            true if port.is_none() => n.machine(&host),
            true => None,
        });
        if found.authorization.is_none()
            && let Some(entry) = netrc
            && let (Some(user), Some(password)) = (&entry.login, &entry.password)
        {
            found.authorization = Some(Authorization::Basic {
                user: user.clone(),
                password: password.clone(),
            });
            found.source = "netrc".to_string();
        }
        Ok(found)
    }

    fn entry_authorization(
        &self,
        key: &str,
        entry: &AuthSpec,
    ) -> Result<Option<(Authorization, String)>, ConfigError> {
        let var = |name: &String| {
            self.env
                .get(name)
                .cloned()
                .ok_or_else(|| ConfigError::MissingSecret {
                    entry: format!("auth.{key:?}"),
                    variable: name.clone(),
                })
        };
        let at = format!("auth.{key:?}");
        Ok(if let Some(name) = &entry.bearer_env {
            Some((
                Authorization::Bearer(var(name)?),
                format!("{at} bearer_env {name}"),
            ))
        } else if let Some(token) = &entry.bearer {
            Some((Authorization::Bearer(token.clone()), format!("{at} bearer")))
        } else if let Some(names) = &entry.basic_env {
            let authorization = Authorization::Basic {
                user: var(&names.user)?,
                password: var(&names.password)?,
            };
            let source = format!("{at} basic_env {}/{}", names.user, names.password);
            Some((authorization, source))
        } else {
            entry.basic.as_ref().map(|basic| {
                let authorization = Authorization::Basic {
                    user: basic.user.clone(),
                    password: basic.password.clone(),
                };
                (authorization, format!("{at} basic"))
            })
        })
    }
}

/// The prefix of ptex's own per-host variables.
const ENV_PREFIX: &str = "PTEX_AUTH_";

/// The prefix of science's per-host variables (`SCIENCE_AUTH_<NAME>_BEARER`), read after
/// ours with the same NAME for each host.
pub const SCIENCE_PREFIX: &str = "SCIENCE_AUTH_";

/// `host` or `host:port`, as the config's `auth` table and `_HOST` variables write it.
fn origin_key(host: &str, port: Option<u16>) -> String {
    match port {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    }
}

/// The NAME of a host's variables (`<PREFIX><NAME>_BEARER`), when the host can be named
/// without ambiguity: an IPv4 address or a DNS name of letters, digits and dots only, whose
/// last label is not a number, upper-cased with each `.` (and the `:` before a non-default
/// port) written `_`: `mirror.corp.example:8443` -> `MIRROR_CORP_EXAMPLE_8443`. No two hosts
/// (with or without a port) get the same NAME. Any other host (with `-` or `_`, an IPv6
/// address) has no implicit NAME: its variables must state it (see [`env_authorization`]).
pub fn env_key(host: &str, port: Option<u16>) -> Option<String> {
    let host = host.to_ascii_lowercase();
    let labels: Vec<&str> = host.split('.').collect();
    let plain = |l: &&str| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric());
    if !labels.iter().all(plain) {
        return None;
    }
    let numeric = |l: &str| l.bytes().all(|b| b.is_ascii_digit());
    let ipv4 = host
        .parse::<std::net::Ipv4Addr>()
        .is_ok_and(|ip| ip.to_string() == host);
    // A number as the last label is an IPv4 address (four of them), never a domain; so a
    // trailing number in a NAME is a port, and a NAME reads back as one host only.
    if labels.last().is_some_and(|l| numeric(l)) && !ipv4 {
        return None;
    }
    let mut name = host.to_ascii_uppercase().replace('.', "_");
    if let Some(port) = port {
        name.push_str(&format!("_{port}"));
    }
    Some(name)
}

/// The Authorization that variables starting with `prefix` (`PTEX_AUTH_`, or another
/// scheme of host-named variables) hold for exactly `host` and `port`, and the names of
/// the variables it came from. `vars` holds (at least) every variable with that prefix.
///
/// A set of variables `<prefix><NAME>_BEARER` (or `_BASIC_USER` and `_BASIC_PASS`) is
/// for the host its `<prefix><NAME>_HOST` states (`host` or `host:port`, compared in the
/// normalised spelling); without a `_HOST`, for the one host whose [`env_key`] is NAME.
pub fn env_authorization(
    vars: &BTreeMap<String, String>,
    prefix: &str,
    host: &str,
    port: Option<u16>,
) -> Option<(Authorization, String)> {
    let wanted = origin_key(&host.to_ascii_lowercase(), port);
    let stated = vars.iter().find_map(|(var, value)| {
        let name = var.strip_prefix(prefix)?.strip_suffix("_HOST")?;
        (crate::normalize_host(value).as_deref() == Some(wanted.as_str())).then_some(name)
    });
    let name = match stated {
        Some(name) => name.to_string(),
        None => {
            let name = env_key(host, port)?;
            // A NAME whose `_HOST` states another host belongs to that host only.
            if vars.contains_key(&format!("{prefix}{name}_HOST")) {
                return None;
            }
            name
        }
    };
    let var = |suffix: &str| format!("{prefix}{name}_{suffix}");
    if let Some(token) = vars.get(&var("BEARER")) {
        return Some((Authorization::Bearer(token.clone()), var("BEARER")));
    }
    let (user, pass) = (var("BASIC_USER"), var("BASIC_PASS"));
    vars.get(&user).map(|u| {
        let password = vars.get(&pass).cloned().unwrap_or_default();
        let authorization = Authorization::Basic {
            user: u.clone(),
            password,
        };
        (authorization, format!("{user}/{pass}"))
    })
}

/// Whether `host` is this machine (`localhost` or a loopback address), where credentials may
/// go over plain http.
pub fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn creds(env: &[(&str, &str)], auth: &str, netrc: Option<&str>) -> Credentials {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let auth: BTreeMap<String, AuthSpec> = serde_json::from_str(auth).unwrap();
        Credentials::new(&env, &auth, netrc.map(|n| Netrc::parse(n).unwrap()), true)
    }

    fn bearer(c: &HostCredentials) -> Option<&str> {
        match &c.authorization {
            Some(Authorization::Bearer(t)) => Some(t),
            _ => None,
        }
    }

    #[test]
    fn env_beats_config_beats_netrc() {
        let auth = r#"{"m.corp": {"bearer_env": "TOKEN"}}"#;
        let netrc = Some("machine m.corp login n password p");
        let all = creds(
            &[
                ("PTEX_AUTH_M_CORP_BEARER", "from-env"),
                ("TOKEN", "from-config"),
            ],
            auth,
            netrc,
        );
        let got = all.for_host("m.corp", None, true, false).unwrap();
        assert_eq!(
            (bearer(&got), got.source.as_str()),
            (Some("from-env"), "PTEX_AUTH_M_CORP_BEARER")
        );
        let config = creds(&[("TOKEN", "from-config")], auth, netrc);
        let got = config.for_host("m.corp", None, true, false).unwrap();
        assert_eq!(bearer(&got), Some("from-config"));
        assert!(got.source.contains("bearer_env TOKEN"), "{}", got.source);
        let got = creds(&[], "{}", netrc)
            .for_host("M.corp", None, true, false)
            .unwrap();
        assert_eq!(got.source, "netrc");
    }

    #[test]
    fn credentials_stay_with_their_host_and_port() {
        let c = creds(
            &[("PTEX_AUTH_127_0_0_1_8080_BEARER", "t8080")],
            r#"{"h.corp:9000": {"headers": {"X-Team": "a"}}}"#,
            None,
        );
        assert_eq!(
            bearer(&c.for_host("127.0.0.1", Some(8080), false, false).unwrap()),
            Some("t8080")
        );
        assert_eq!(
            c.for_host("127.0.0.1", Some(8081), false, false)
                .unwrap()
                .source,
            "none"
        );
        assert_eq!(
            c.for_host("h.corp", Some(9000), true, false)
                .unwrap()
                .headers
                .len(),
            1
        );
        assert!(
            c.for_host("h.corp", None, true, false)
                .unwrap()
                .headers
                .is_empty()
        );
        assert!(
            c.for_host("other", None, true, false)
                .unwrap()
                .authorization
                .is_none()
        );
    }

    #[test]
    fn never_over_plain_http_to_remote_hosts_unless_allowed() {
        let env = [
            ("PTEX_AUTH_M_CORP_BEARER", "t"),
            ("PTEX_AUTH_N_CORP_BEARER", "t"),
        ];
        let c = creds(&env, r#"{"n.corp": {"allow_http": true}}"#, None);
        assert!(
            c.for_host("m.corp", None, false, false)
                .unwrap()
                .authorization
                .is_none()
        );
        assert!(
            c.for_host("m.corp", None, true, false)
                .unwrap()
                .authorization
                .is_some()
        );
        assert!(
            c.for_host("n.corp", None, false, false)
                .unwrap()
                .authorization
                .is_some()
        );
        let local = creds(&[("PTEX_AUTH_LOCALHOST_BEARER", "t")], "{}", None);
        assert!(
            local
                .for_host("localhost", None, false, false)
                .unwrap()
                .authorization
                .is_some()
        );
    }

    #[test]
    fn unset_variable_is_named() {
        let c = creds(
            &[],
            r#"{"m.corp": {"basic_env": {"user": "U", "password": "P"}}}"#,
            None,
        );
        let err = c
            .for_host("m.corp", None, true, false)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("auth.\"m.corp\"") && err.contains('U'),
            "{err}"
        );
    }

    #[test]
    fn literal_secrets_warn_and_never_show() {
        let spec: AuthSpec = serde_json::from_str(r#"{"bearer": "s3cret"}"#).unwrap();
        assert_eq!(spec.check("h").unwrap().len(), 1);
        assert!(!format!("{spec:?}").contains("s3cret"));
        let both: AuthSpec = serde_json::from_str(r#"{"bearer": "a", "bearer_env": "B"}"#).unwrap();
        assert!(both.check("h").is_err());
        let bad: AuthSpec = serde_json::from_str(r#"{"headers": {"X": "a\nb"}}"#).unwrap();
        assert!(bad.check("h").is_err());
    }

    #[test]
    fn env_keys_name_one_host_or_none() {
        let key = |h: &str, p: Option<u16>| env_key(h, p);
        assert_eq!(
            key("mirror.corp.example", None).as_deref(),
            Some("MIRROR_CORP_EXAMPLE")
        );
        assert_eq!(
            key("127.0.0.1", Some(8080)).as_deref(),
            Some("127_0_0_1_8080")
        );
        assert_eq!(key("h.test", Some(8443)).as_deref(), Some("H_TEST_8443"));
        for ambiguous in [
            "mirror-corp.test",
            "mirror_corp.test",
            "a..b",
            "[::1]",
            "a.80",
            "1.2.3",
        ] {
            assert_eq!(key(ambiguous, None), None, "{ambiguous}");
        }
    }

    #[test]
    fn no_two_origins_share_a_name() {
        // Every host of up to three labels over a small alphabet (with the characters that
        // made names collide), with and without a port.
        let labels = ["a", "b", "1", "2", "a-b", "a_b", "80", "0x1"];
        let mut hosts: Vec<String> = labels.iter().map(|l| l.to_string()).collect();
        for _ in 0..2 {
            let longer: Vec<String> = hosts
                .iter()
                .flat_map(|h| labels.iter().map(move |l| format!("{h}.{l}")))
                .collect();
            hosts.extend(longer);
        }
        hosts.extend(["1.2.3.4", "1.2.3.4.5", "10.0.0.1"].map(String::from));
        hosts.sort();
        hosts.dedup();
        let mut seen = std::collections::HashMap::new();
        for host in &hosts {
            for port in [None, Some(80), Some(2)] {
                if let Some(name) = env_key(host, port) {
                    let origin = (host.clone(), port);
                    if let Some(other) = seen.insert(name.clone(), origin.clone()) {
                        panic!("{name} names both {other:?} and {origin:?}");
                    }
                }
            }
        }
        assert!(seen.len() > 100);
    }

    #[test]
    fn look_alike_hosts_get_nothing() {
        let c = creds(&[("PTEX_AUTH_MIRROR_CORP_TEST_BEARER", "t")], "{}", None);
        assert_eq!(
            bearer(&c.for_host("mirror.corp.test", None, true, false).unwrap()),
            Some("t")
        );
        for look_alike in ["mirror-corp.test", "mirror.corp-test", "mirror_corp.test"] {
            let got = c.for_host(look_alike, None, true, false).unwrap();
            assert!(got.authorization.is_none(), "{look_alike}");
        }
    }

    #[test]
    fn stated_hosts_take_their_variables_and_only_theirs() {
        let c = creds(
            &[
                ("PTEX_AUTH_CORP_HOST", "Mirror-Corp.test."),
                ("PTEX_AUTH_CORP_BEARER", "stated"),
                ("PTEX_AUTH_H_TEST_HOST", "other.test:8443"),
                ("PTEX_AUTH_H_TEST_BEARER", "moved"),
            ],
            "{}",
            None,
        );
        let got = c.for_host("mirror-corp.test", None, true, false).unwrap();
        assert_eq!(
            (bearer(&got), got.source.as_str()),
            (Some("stated"), "PTEX_AUTH_CORP_BEARER")
        );
        assert!(
            c.for_host("corp", None, true, false)
                .unwrap()
                .authorization
                .is_none()
        );
        assert!(
            c.for_host("h.test", None, true, false)
                .unwrap()
                .authorization
                .is_none()
        );
        let other = c.for_host("other.test", Some(8443), true, false).unwrap();
        assert_eq!(bearer(&other), Some("moved"));
        assert!(
            c.for_host("other.test", None, true, false)
                .unwrap()
                .authorization
                .is_none()
        );
    }

    #[test]
    fn a_redirect_takes_only_what_is_keyed_for_its_exact_origin() {
        let c = creds(
            &[("PTEX_AUTH_B_TEST_BEARER", "host-only")],
            r#"{"c.test": {"headers": {"X-Team": "a"}}}"#,
            Some("machine d.test login u password p\ndefault login anon password guest"),
        );
        // Named by the user: host-only keys hold on any port, netrc's default for anyone.
        assert!(
            c.for_host("b.test", Some(8443), true, false)
                .unwrap()
                .authorization
                .is_some()
        );
        assert_eq!(
            c.for_host("e.test", None, true, false).unwrap().source,
            "netrc"
        );
        // Reached by a redirect: exactly the origin, never netrc's default.
        assert!(
            c.for_host("b.test", Some(8443), true, true)
                .unwrap()
                .authorization
                .is_none()
        );
        assert!(
            c.for_host("b.test", None, true, true)
                .unwrap()
                .authorization
                .is_some()
        );
        assert!(
            c.for_host("c.test", Some(1), true, true)
                .unwrap()
                .headers
                .is_empty()
        );
        assert_eq!(
            c.for_host("e.test", None, true, true).unwrap().source,
            "none"
        );
        assert_eq!(
            c.for_host("d.test", None, true, true).unwrap().source,
            "netrc"
        );
        assert_eq!(
            c.for_host("d.test", Some(1), true, true).unwrap().source,
            "none"
        );
    }

    #[test]
    fn science_variables_come_after_ours_and_can_be_switched_off() {
        let env = [
            ("SCIENCE_AUTH_API_GITHUB_COM_BEARER", "science"),
            ("SCIENCE_AUTH_M_CORP_BASIC_USER", "u"),
            ("SCIENCE_AUTH_M_CORP_BASIC_PASS", "p"),
            ("PTEX_AUTH_M_CORP_BEARER", "ours"),
        ];
        let c = creds(&env, "{}", None);
        let got = c.for_host("api.github.com", None, true, false).unwrap();
        assert_eq!(
            (bearer(&got), got.source.as_str()),
            (Some("science"), "SCIENCE_AUTH_API_GITHUB_COM_BEARER")
        );
        let got = c.for_host("m.corp", None, true, false).unwrap();
        assert_eq!(bearer(&got), Some("ours"));
        for look_alike in ["api-github.com", "api.github-com", "api_github.com"] {
            let got = c.for_host(look_alike, None, true, false).unwrap();
            assert!(got.authorization.is_none(), "{look_alike}");
        }
        let pairs: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let off = Credentials::new(&pairs, &BTreeMap::new(), None, false);
        let got = off.for_host("api.github.com", None, true, false).unwrap();
        assert_eq!(got.source, "none");
        assert!(!format!("{off:?}").contains("SCIENCE"));
    }

    #[test]
    fn client_certs_by_host_and_port() {
        let c = creds(
            &[],
            r#"{"m.corp": {"client_cert": "/a.pem"}, "m.corp:8443": {"client_cert": "/b.pem"}}"#,
            None,
        );
        assert_eq!(c.client_cert("M.corp", None), Some(Path::new("/a.pem")));
        assert_eq!(
            c.client_cert("m.corp", Some(8443)),
            Some(Path::new("/b.pem"))
        );
        assert_eq!(c.client_cert("m.corp", Some(1)), Some(Path::new("/a.pem")));
        assert_eq!(c.client_cert("n.corp", None), None);
        assert_eq!(c.client_certs().count(), 2);
    }
}
