//! The part of the environment the cloud backends read (AWS, Google, gcloud, the home
//! directory), captured once when the settings load: `ptex-schemes` reads these through
//! it and never the process environment, so every cloud setting can be resolved from a
//! map in tests.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;

use crate::Env;

/// Variables captured by prefix.
const PREFIXES: &[&str] = &["AWS_", "GOOGLE_", "GCE_", "CLOUDSDK_"];
/// Variables captured by name: where the shared files and gcloud's directory are, and
/// the emulator switch the gcloud tools honour.
const NAMES: &[&str] = &[
    "HOME",
    "USERPROFILE",
    "APPDATA",
    "XDG_CONFIG_HOME",
    "STORAGE_EMULATOR_HOST",
];

/// A snapshot of the cloud variables (non-empty UTF-8 values only, as the backends read
/// them). Its `Debug` shows names only: values include secret keys and tokens.
#[derive(Clone, Default)]
pub struct CloudEnv {
    vars: BTreeMap<String, String>,
}

impl CloudEnv {
    /// The cloud variables of `env`, plus the variables named in `extra` (such as the
    /// config's `gs.token_env`).
    pub fn capture(env: &dyn Env, extra: &[&str]) -> CloudEnv {
        let mut vars = BTreeMap::new();
        for prefix in PREFIXES {
            vars.extend(env.vars_with_prefix(prefix));
        }
        for name in NAMES.iter().chain(extra) {
            if let Some(value) = env.non_empty(name) {
                vars.insert(name.to_string(), value);
            }
        }
        CloudEnv { vars }
    }

    /// Every captured variable, for libraries that take the environment as a map.
    pub fn vars(&self) -> &BTreeMap<String, String> {
        &self.vars
    }

    /// The home directory: `HOME`, else `USERPROFILE` (Windows).
    pub fn home(&self) -> Option<PathBuf> {
        self.non_empty("HOME")
            .or_else(|| self.non_empty("USERPROFILE"))
            .map(PathBuf::from)
    }
}

impl Env for CloudEnv {
    fn var_os(&self, name: &str) -> Option<OsString> {
        self.vars.get(name).map(OsString::from)
    }

    fn vars_with_prefix(&self, prefix: &str) -> BTreeMap<String, String> {
        self.vars
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

impl std::fmt::Debug for CloudEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.vars.keys()).finish()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn captures_cloud_variables_only_and_hides_values() {
        let env: HashMap<String, String> = [
            ("AWS_SECRET_ACCESS_KEY", "s3cr3t"),
            ("AWS_REGION", ""),
            ("GOOGLE_APPLICATION_CREDENTIALS", "/k.json"),
            ("HOME", "/home/u"),
            ("GCS_TOKEN", "tok"),
            ("PATH", "/bin"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let cloud = CloudEnv::capture(&env, &["GCS_TOKEN"]);
        assert_eq!(
            cloud.non_empty("AWS_SECRET_ACCESS_KEY").as_deref(),
            Some("s3cr3t")
        );
        assert_eq!(cloud.non_empty("AWS_REGION"), None);
        assert_eq!(cloud.non_empty("GCS_TOKEN").as_deref(), Some("tok"));
        assert_eq!(cloud.non_empty("PATH"), None);
        assert_eq!(cloud.home(), Some(PathBuf::from("/home/u")));
        assert_eq!(
            cloud.vars_with_prefix("GOOGLE_").keys().collect::<Vec<_>>(),
            ["GOOGLE_APPLICATION_CREDENTIALS"]
        );
        let debug = format!("{cloud:?}");
        assert!(debug.contains("AWS_SECRET_ACCESS_KEY") && !debug.contains("s3cr3t"));
    }
}
