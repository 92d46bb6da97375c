//! How `gs://` buckets are reached, resolved before any request from the ptex config and
//! the environment: the endpoint (an emulator's with `STORAGE_EMULATOR_HOST`, as the
//! gcloud tools do) and the one credential source that will be used, first found wins:
//! the config's `anonymous`, an access token (the config's `token_env` variable, else
//! `GOOGLE_OAUTH_ACCESS_TOKEN`), the emulator (no token), a key file (the config's
//! `credentials_file`, `GOOGLE_APPLICATION_CREDENTIALS`, gcloud's application-default
//! file), else the GCE metadata server if a Google one answers, else unsigned.

use std::path::PathBuf;

use crate::{Env, GcsConfig, check_endpoint};

/// The metadata server's address when no variable names another.
const METADATA_IP: &str = "169.254.169.254";

/// Where a Google access token comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum GcsCredentials {
    /// The config reads GCS unsigned.
    Anonymous,
    /// An access token from an environment variable.
    Token {
        /// The variable's name.
        var: String,
        /// The token (a secret: not in `Debug`).
        token: String,
    },
    /// An emulator, which checks no token: unsigned.
    Emulator,
    /// A service-account or authorized-user key file, exchanged for a token.
    KeyFile {
        /// The file.
        path: PathBuf,
        /// What named it.
        from: &'static str,
    },
    /// The GCE metadata server at `host[:port]` if a Google one answers; else unsigned.
    MetadataServer {
        /// `GCE_METADATA_HOST`, `GCE_METADATA_IP`, else 169.254.169.254.
        host: String,
        /// The token variable that was looked at first (for the "none found" message).
        token_var: String,
    },
}

impl std::fmt::Debug for GcsCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GcsCredentials::Token { var, .. } => f
                .debug_struct("Token")
                .field("var", var)
                .field("token", &"<redacted>")
                .finish(),
            other => f.write_str(&other.describe()),
        }
    }
}

impl GcsCredentials {
    /// The source by name, never a secret.
    pub fn describe(&self) -> String {
        match self {
            GcsCredentials::Anonymous => "none, unsigned (anonymous in the ptex config)".into(),
            GcsCredentials::Token { var, .. } => format!("the access token in {var}"),
            GcsCredentials::Emulator => {
                "none, unsigned (the emulator, STORAGE_EMULATOR_HOST)".into()
            }
            GcsCredentials::KeyFile { path, from } => {
                format!("the key file {} (from {from})", path.display())
            }
            GcsCredentials::MetadataServer { host, .. } => {
                format!("the metadata server at {host} if a Google one answers, else unsigned")
            }
        }
    }
}

/// Everything needed to reach GCS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GcsSettings {
    /// A custom endpoint, validated, without a trailing `/`; `None` is Google's.
    pub endpoint: Option<String>,
    /// Where the endpoint came from.
    pub endpoint_from: &'static str,
    /// The credential source that will be used.
    pub credentials: GcsCredentials,
}

impl GcsSettings {
    /// Resolves the settings; a bad endpoint is refused (the message starts with "GCS
    /// endpoint").
    pub fn resolve(config: &GcsConfig, env: &dyn Env) -> Result<GcsSettings, String> {
        let emulator = env.non_empty("STORAGE_EMULATOR_HOST").map(|host| {
            if host.contains("://") {
                host
            } else {
                format!("http://{host}")
            }
        });
        let (endpoint, endpoint_from) = match (&emulator, &config.endpoint) {
            (Some(e), _) => (Some(e.clone()), "STORAGE_EMULATOR_HOST"),
            (None, Some(e)) => (Some(e.clone()), "gs.endpoint in the ptex config"),
            (None, None) => (None, "Google"),
        };
        if let Some(endpoint) = &endpoint {
            check_endpoint(endpoint).map_err(|reason| format!("GCS endpoint: {reason}"))?;
        }
        Ok(GcsSettings {
            endpoint: endpoint.map(|e| e.trim_end_matches('/').to_string()),
            endpoint_from,
            credentials: credentials(config, env, emulator.is_some()),
        })
    }

    /// What `--dry-run` says: endpoint and the credential source, by name only.
    pub fn describe(&self) -> String {
        let endpoint = match &self.endpoint {
            Some(endpoint) => format!("endpoint {endpoint} ({})", self.endpoint_from),
            None => "endpoint Google".to_string(),
        };
        format!(
            "GCS {endpoint}; credentials: {}",
            self.credentials.describe()
        )
    }
}

/// The first credential source that is set up, in the order of the module's contract.
fn credentials(config: &GcsConfig, env: &dyn Env, emulator: bool) -> GcsCredentials {
    let token_var = config
        .token_env
        .clone()
        .unwrap_or_else(|| "GOOGLE_OAUTH_ACCESS_TOKEN".to_string());
    if config.anonymous == Some(true) {
        return GcsCredentials::Anonymous;
    }
    if let Some(token) = env.non_empty(&token_var) {
        return GcsCredentials::Token {
            var: token_var,
            token,
        };
    }
    if emulator {
        return GcsCredentials::Emulator;
    }
    let key_file = config
        .credentials_file
        .clone()
        .map(|p| (p, "the config's credentials_file"))
        .or_else(|| {
            env.non_empty("GOOGLE_APPLICATION_CREDENTIALS")
                .map(|p| (PathBuf::from(p), "GOOGLE_APPLICATION_CREDENTIALS"))
        })
        .or_else(|| gcloud_adc_file(env).map(|p| (p, "gcloud application-default credentials")));
    if let Some((path, from)) = key_file {
        return GcsCredentials::KeyFile { path, from };
    }
    let host = env
        .non_empty("GCE_METADATA_HOST")
        .or_else(|| env.non_empty("GCE_METADATA_IP"))
        .unwrap_or_else(|| METADATA_IP.to_string());
    GcsCredentials::MetadataServer { host, token_var }
}

/// gcloud's application-default credentials file (`$CLOUDSDK_CONFIG`, else
/// `~/.config/gcloud`), if it exists.
fn gcloud_adc_file(env: &dyn Env) -> Option<PathBuf> {
    let dir = match env.non_empty("CLOUDSDK_CONFIG") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env.non_empty("HOME")?).join(".config/gcloud"),
    };
    let path = dir.join("application_default_credentials.json");
    path.is_file().then_some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::env::from_pairs as env;

    fn config(json: &str) -> GcsConfig {
        serde_json::from_str(json).expect("a gs section")
    }

    fn resolve(pairs: &[(&str, &str)], json: &str) -> GcsSettings {
        GcsSettings::resolve(&config(json), &env(pairs)).expect("valid settings")
    }

    #[test]
    fn emulator_wins_over_the_config_endpoint_and_needs_no_token() {
        let s = resolve(
            &[("STORAGE_EMULATOR_HOST", "127.0.0.1:9023")],
            r#"{"endpoint": "https://gcs.corp/"}"#,
        );
        assert_eq!(s.endpoint.as_deref(), Some("http://127.0.0.1:9023"));
        assert_eq!(s.credentials, GcsCredentials::Emulator);
        let s = resolve(&[], r#"{"endpoint": "https://gcs.corp/"}"#);
        assert_eq!(s.endpoint.as_deref(), Some("https://gcs.corp"));
        assert_eq!(s.endpoint_from, "gs.endpoint in the ptex config");
        assert_eq!(resolve(&[], "{}").endpoint, None);
    }

    #[test]
    fn endpoints_are_validated() {
        let bad = GcsSettings::resolve(&config("{}"), &env(&[("STORAGE_EMULATOR_HOST", "")]));
        assert!(bad.is_ok(), "an empty variable is unset");
        let err =
            GcsSettings::resolve(&config(r#"{"endpoint": "gcs.corp"}"#), &env(&[])).unwrap_err();
        assert!(err.starts_with("GCS endpoint: "), "{err}");
        let err =
            GcsSettings::resolve(&config("{}"), &env(&[("STORAGE_EMULATOR_HOST", "ftp://h")]))
                .unwrap_err();
        assert!(err.starts_with("GCS endpoint: "), "{err}");
    }

    #[test]
    fn credential_precedence() {
        let token = [("GOOGLE_OAUTH_ACCESS_TOKEN", "ya29.secret")];
        let key = [("GOOGLE_APPLICATION_CREDENTIALS", "/env.json")];
        let both = [token[0], key[0]];
        let cred = |pairs: &[(&str, &str)], json: &str| resolve(pairs, json).credentials;
        assert_eq!(
            cred(&both, r#"{"anonymous": true}"#),
            GcsCredentials::Anonymous
        );
        assert_eq!(
            cred(&both, "{}"),
            GcsCredentials::Token {
                var: "GOOGLE_OAUTH_ACCESS_TOKEN".into(),
                token: "ya29.secret".into()
            }
        );
        // `token_env` names another variable: the default one is not read.
        assert_eq!(
            cred(&both, r#"{"token_env": "MY_TOKEN"}"#),
            GcsCredentials::KeyFile {
                path: "/env.json".into(),
                from: "GOOGLE_APPLICATION_CREDENTIALS"
            }
        );
        assert_eq!(
            cred(&key, r#"{"credentials_file": "/cfg.json"}"#),
            GcsCredentials::KeyFile {
                path: "/cfg.json".into(),
                from: "the config's credentials_file"
            }
        );
        let none = [
            ("HOME", "/nonexistent-home"),
            ("GCE_METADATA_HOST", "127.0.0.1:1"),
        ];
        assert_eq!(
            cred(&none, "{}"),
            GcsCredentials::MetadataServer {
                host: "127.0.0.1:1".into(),
                token_var: "GOOGLE_OAUTH_ACCESS_TOKEN".into()
            }
        );
        let debug = format!("{:?}", cred(&both, "{}"));
        assert!(!debug.contains("ya29"), "{debug}");
    }

    #[test]
    fn gcloud_application_default_file_is_found_under_cloudsdk_config() {
        let dir = std::env::temp_dir().join(format!("ptex-gcloud-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("application_default_credentials.json"), "{}").unwrap();
        let dir_text = dir.to_string_lossy().into_owned();
        let found = resolve(&[("CLOUDSDK_CONFIG", &dir_text)], "{}").credentials;
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            found,
            GcsCredentials::KeyFile {
                path: dir.join("application_default_credentials.json"),
                from: "gcloud application-default credentials"
            }
        );
    }
}
