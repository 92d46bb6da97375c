//! The AWS CLI's shared files (`~/.aws/config`, `~/.aws/credentials`) as plain sections of
//! keys, read once, so the credential chain, the region and the endpoint all see the same
//! profiles. Parsing only: no credential is fetched here.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::Env;

/// The keys of one section. A nested block (`s3 =` followed by indented `key = value`
/// lines) is stored as `s3.key`.
pub type AwsSection = BTreeMap<String, String>;

/// Both shared files, parsed. A missing or unreadable file reads as empty: the AWS CLI does
/// the same, and the chain names both paths when a profile is not found.
#[derive(Clone, Default)]
pub struct AwsFiles {
    /// `AWS_CONFIG_FILE`, else `~/.aws/config`.
    pub config_path: PathBuf,
    /// `AWS_SHARED_CREDENTIALS_FILE`, else `~/.aws/credentials`.
    pub credentials_path: PathBuf,
    /// Sections of the config file by their full header (`default`, `profile NAME`,
    /// `sso-session NAME`, `services NAME`).
    config: BTreeMap<String, AwsSection>,
    /// Sections of the credentials file by profile name.
    credentials: BTreeMap<String, AwsSection>,
}

// Secrets live in these sections: only the section names are shown.
impl std::fmt::Debug for AwsFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsFiles")
            .field("config_path", &self.config_path)
            .field("config_sections", &self.config.keys().collect::<Vec<_>>())
            .field("credentials_path", &self.credentials_path)
            .field(
                "credentials_sections",
                &self.credentials.keys().collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// One profile as both files describe it.
#[derive(Clone, Copy)]
pub struct AwsProfile<'a> {
    /// The profile's name.
    pub name: &'a str,
    /// Its `[profile NAME]` (or `[default]`) section of the config file.
    pub config: Option<&'a AwsSection>,
    /// Its `[NAME]` section of the credentials file.
    pub credentials: Option<&'a AwsSection>,
}

impl<'a> AwsProfile<'a> {
    /// `key` from the credentials file, else from the config file (the AWS CLI's merge).
    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.credentials
            .and_then(|s| s.get(key))
            .or_else(|| self.config.and_then(|s| s.get(key)))
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// `key` from the config file only.
    pub fn config_value(&self, key: &str) -> Option<&'a str> {
        self.config
            .and_then(|s| s.get(key))
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// `key` from the credentials file only.
    pub fn credentials_value(&self, key: &str) -> Option<&'a str> {
        self.credentials
            .and_then(|s| s.get(key))
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

impl AwsFiles {
    /// Reads both files from where `env` says they are.
    pub fn load(env: &dyn Env) -> AwsFiles {
        let home = env.non_empty("HOME").map(PathBuf::from).unwrap_or_default();
        let config_path = env
            .non_empty("AWS_CONFIG_FILE")
            .map_or_else(|| home.join(".aws/config"), PathBuf::from);
        let credentials_path = env
            .non_empty("AWS_SHARED_CREDENTIALS_FILE")
            .map_or_else(|| home.join(".aws/credentials"), PathBuf::from);
        let read = |path: &PathBuf| std::fs::read_to_string(path).unwrap_or_default();
        AwsFiles {
            config: parse(&read(&config_path)),
            credentials: parse(&read(&credentials_path)),
            config_path,
            credentials_path,
        }
    }

    /// Both files from text, for tests.
    pub fn from_text(config: &str, credentials: &str) -> AwsFiles {
        AwsFiles {
            config_path: PathBuf::from("~/.aws/config"),
            credentials_path: PathBuf::from("~/.aws/credentials"),
            config: parse(config),
            credentials: parse(credentials),
        }
    }

    /// Profile `name`, if either file has it.
    pub fn profile<'a>(&'a self, name: &'a str) -> Option<AwsProfile<'a>> {
        let config = self.config.get(&format!("profile {name}")).or_else(|| {
            // `[default]` is the default profile's header; `[profile default]` works too.
            (name == "default")
                .then(|| self.config.get("default"))
                .flatten()
        });
        let credentials = self.credentials.get(name);
        (config.is_some() || credentials.is_some()).then_some(AwsProfile {
            name,
            config,
            credentials,
        })
    }

    /// The `[sso-session NAME]` section.
    pub fn sso_session(&self, name: &str) -> Option<&AwsSection> {
        self.config.get(&format!("sso-session {name}"))
    }

    /// The `[services NAME]` section.
    pub fn services(&self, name: &str) -> Option<&AwsSection> {
        self.config.get(&format!("services {name}"))
    }
}

/// Sections of an INI file in the AWS CLI's dialect: `#`/`;` comments, `key = value`, and
/// nested blocks of indented lines under a key with an empty value.
fn parse(text: &str) -> BTreeMap<String, AwsSection> {
    let mut sections: BTreeMap<String, AwsSection> = BTreeMap::new();
    let mut current: Option<String> = None;
    let mut parent: Option<String> = None;
    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let name = header.split_whitespace().collect::<Vec<_>>().join(" ");
            sections.entry(name.clone()).or_default();
            current = Some(name);
            parent = None;
            continue;
        }
        let (Some(section), Some((key, value))) = (&current, line.split_once('=')) else {
            continue;
        };
        let (key, value) = (key.trim().to_string(), value.trim().to_string());
        let nested = raw.starts_with([' ', '\t']);
        let entry = sections.entry(section.clone()).or_default();
        match (&parent, nested) {
            (Some(parent), true) => {
                entry.insert(format!("{parent}.{key}"), value);
            }
            _ => {
                parent = value.is_empty().then(|| key.clone());
                entry.insert(key, value);
            }
        }
    }
    sections
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "\
[default]
region = us-west-2
s3 =
  addressing_style = path

# a comment
[profile corp]
role_arn = arn:aws:iam::123456789012:role/reader
source_profile=base
services = local
[profile   spaced]
region=eu-west-1
[sso-session my-sso]
sso_region = us-east-1
sso_start_url = https://example.awsapps.com/start
[services local]
s3 =
  endpoint_url = http://127.0.0.1:9000
sts =
  endpoint_url = http://127.0.0.1:9001
";

    #[test]
    fn profiles_sessions_services_and_nested_keys() {
        let files = AwsFiles::from_text(
            CONFIG,
            "[base]\naws_access_key_id = AKIA\naws_secret_access_key = s\n",
        );
        let default = files.profile("default").unwrap();
        assert_eq!(default.get("region"), Some("us-west-2"));
        assert_eq!(default.get("s3.addressing_style"), Some("path"));
        assert_eq!(default.get("s3"), None);
        let corp = files.profile("corp").unwrap();
        assert_eq!(corp.get("source_profile"), Some("base"));
        assert!(corp.credentials.is_none());
        assert_eq!(
            files.profile("spaced").unwrap().get("region"),
            Some("eu-west-1")
        );
        let base = files.profile("base").unwrap();
        assert_eq!(base.credentials_value("aws_access_key_id"), Some("AKIA"));
        assert!(base.config.is_none());
        assert!(files.profile("missing").is_none());
        assert_eq!(
            files.sso_session("my-sso").unwrap()["sso_region"],
            "us-east-1"
        );
        let services = files.services("local").unwrap();
        assert_eq!(services["sts.endpoint_url"], "http://127.0.0.1:9001");
        assert_eq!(services["s3.endpoint_url"], "http://127.0.0.1:9000");
    }

    #[test]
    fn credentials_file_wins_over_config_and_debug_hides_values() {
        let files = AwsFiles::from_text(
            "[profile p]\naws_access_key_id = from-config\n",
            "[p]\naws_access_key_id = from-credentials\n",
        );
        let p = files.profile("p").unwrap();
        assert_eq!(p.get("aws_access_key_id"), Some("from-credentials"));
        assert_eq!(p.config_value("aws_access_key_id"), Some("from-config"));
        let debug = format!("{files:?}");
        assert!(!debug.contains("from-c"), "{debug}");
    }

    #[test]
    fn files_from_the_environment() {
        let dir = std::env::temp_dir().join(format!("ptex-aws-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("c"), "[profile x]\nregion = r\n").unwrap();
        let env: std::collections::HashMap<String, String> = [
            ("AWS_CONFIG_FILE", dir.join("c")),
            ("AWS_SHARED_CREDENTIALS_FILE", dir.join("missing")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string_lossy().into_owned()))
        .collect();
        let files = AwsFiles::load(&env);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(files.profile("x").unwrap().get("region"), Some("r"));
        assert!(files.profile("default").is_none());
    }
}
