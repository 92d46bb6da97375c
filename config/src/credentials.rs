//! Per-host credentials from the environment (`PTEX_AUTH_<HOST>_*`), the config file's
//! `auth` table and netrc, resolved for one request at a time so each credential goes only
//! to its own host. Precedence: environment > config file > netrc (`-H` and URL userinfo,
//! handled by the HTTP backend, come before all of them).

use std::collections::BTreeMap;
use std::fmt;

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
    /// `auth."host" bearer_env X`, `netrc`), or `none`.
    pub source: String,
}

/// Every per-host credential a run knows of.
#[derive(Clone, Default)]
pub struct Credentials {
    /// `PTEX_AUTH_*` variables, and the variables `auth` entries name.
    env: BTreeMap<String, String>,
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
    pub(crate) fn new(
        env: &dyn Env,
        auth: &BTreeMap<String, AuthSpec>,
        netrc: Option<Netrc>,
    ) -> Credentials {
        let mut vars: BTreeMap<String, String> = env.vars_with_prefix("PTEX_AUTH_");
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
            auth: auth.clone(),
            netrc,
        }
    }

    /// The parsed netrc file, if there is one (FTP logins come from it).
    pub fn netrc(&self) -> Option<&Netrc> {
        self.netrc.as_ref()
    }

    /// The credentials for a request to `host` (`port` if not the scheme's default) over
    /// https or not. Fails when a config entry names an environment variable that is unset.
    pub fn for_host(
        &self,
        host: &str,
        port: Option<u16>,
        https: bool,
    ) -> Result<HostCredentials, ConfigError> {
        let host = host.to_ascii_lowercase();
        let keys: Vec<String> = port
            .map(|p| format!("{host}:{p}"))
            .into_iter()
            .chain([host.clone()])
            .collect();
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
            if let Some((authorization, source)) = self.env_authorization(&keys) {
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
        // netrc behaves as in curl (and so the original ptex): its own host, any scheme.
        if found.authorization.is_none()
            && let Some(entry) = self.netrc.as_ref().and_then(|n| n.lookup(&host))
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

    fn env_authorization(&self, keys: &[String]) -> Option<(Authorization, String)> {
        keys.iter().find_map(|key| {
            let prefix = format!("PTEX_AUTH_{}", env_key(key));
            let bearer = format!("{prefix}_BEARER");
            if let Some(token) = self.env.get(&bearer) {
                return Some((Authorization::Bearer(token.clone()), bearer));
            }
            let (user, pass) = (
                format!("{prefix}_BASIC_USER"),
                format!("{prefix}_BASIC_PASS"),
            );
            self.env.get(&user).map(|u| {
                let password = self.env.get(&pass).cloned().unwrap_or_default();
                (
                    Authorization::Basic {
                        user: u.clone(),
                        password,
                    },
                    format!("{user}/{pass}"),
                )
            })
        })
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

/// `mirror.corp.example` -> `MIRROR_CORP_EXAMPLE`: upper case, every other character `_`.
pub fn env_key(host: &str) -> String {
    host.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

fn is_loopback(host: &str) -> bool {
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
        Credentials::new(&env, &auth, netrc.map(|n| Netrc::parse(n).unwrap()))
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
        let got = all.for_host("m.corp", None, true).unwrap();
        assert_eq!(
            (bearer(&got), got.source.as_str()),
            (Some("from-env"), "PTEX_AUTH_M_CORP_BEARER")
        );
        let config = creds(&[("TOKEN", "from-config")], auth, netrc);
        let got = config.for_host("m.corp", None, true).unwrap();
        assert_eq!(bearer(&got), Some("from-config"));
        assert!(got.source.contains("bearer_env TOKEN"), "{}", got.source);
        let got = creds(&[], "{}", netrc)
            .for_host("M.corp", None, true)
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
            bearer(&c.for_host("127.0.0.1", Some(8080), false).unwrap()),
            Some("t8080")
        );
        assert_eq!(
            c.for_host("127.0.0.1", Some(8081), false).unwrap().source,
            "none"
        );
        assert_eq!(
            c.for_host("h.corp", Some(9000), true)
                .unwrap()
                .headers
                .len(),
            1
        );
        assert!(c.for_host("h.corp", None, true).unwrap().headers.is_empty());
        assert!(
            c.for_host("other", None, true)
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
            c.for_host("m.corp", None, false)
                .unwrap()
                .authorization
                .is_none()
        );
        assert!(
            c.for_host("m.corp", None, true)
                .unwrap()
                .authorization
                .is_some()
        );
        assert!(
            c.for_host("n.corp", None, false)
                .unwrap()
                .authorization
                .is_some()
        );
        let local = creds(&[("PTEX_AUTH_LOCALHOST_BEARER", "t")], "{}", None);
        assert!(
            local
                .for_host("localhost", None, false)
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
        let err = c.for_host("m.corp", None, true).unwrap_err().to_string();
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
    fn env_keys() {
        assert_eq!(env_key("mirror.corp.example"), "MIRROR_CORP_EXAMPLE");
        assert_eq!(env_key("127.0.0.1:8080"), "127_0_0_1_8080");
    }
}
