//! How one `s3://` bucket is reached, resolved before any request from the ptex config,
//! the environment and the AWS CLI's shared files: endpoint, region, profile, addressing
//! style, and the credential sources in the order the chain tries them. Fetching the
//! credentials (STS, SSO, a process, the metadata services) is `ptex-schemes`' job; what
//! is tried, and in which order, is decided here.

use crate::{AwsFiles, AwsProfile, Env, S3Config, check_endpoint};

/// Which profile the chain reads and who named it; only a named profile must exist.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProfileChoice {
    /// The profile's name.
    pub name: String,
    /// Where the name came from (`AWS_PROFILE`, the config file), or `None` for `default`.
    pub named_by: Option<&'static str>,
}

/// One source of AWS credentials, in the AWS CLI's order ([`aws_credential_steps`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AwsStep {
    /// `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY` (+ a session token).
    Environment,
    /// The profile: `role_arn`, SSO, keys, `credential_process`.
    Profile,
    /// `AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN`.
    WebIdentity,
    /// `AWS_CONTAINER_CREDENTIALS_FULL_URI` or `_RELATIVE_URI`.
    Container,
    /// The EC2 instance metadata service, if one answers.
    InstanceMetadata,
}

impl AwsStep {
    /// The step as messages name it.
    pub fn name(self, profile: &str) -> String {
        match self {
            AwsStep::Environment => "the environment (AWS_ACCESS_KEY_ID)".to_string(),
            AwsStep::Profile => format!("AWS profile {profile:?}"),
            AwsStep::WebIdentity => "web identity (AWS_WEB_IDENTITY_TOKEN_FILE)".to_string(),
            AwsStep::Container => {
                "container credentials (AWS_CONTAINER_CREDENTIALS_*_URI)".to_string()
            }
            AwsStep::InstanceMetadata => "instance metadata (IMDS)".to_string(),
        }
    }

    /// Whether the user set this step up, so that it will give credentials or fail
    /// naming itself. Instance metadata is never known to be there before it is asked.
    fn is_set_up(self, env: &dyn Env, profile: Option<AwsProfile<'_>>) -> bool {
        match self {
            AwsStep::Environment => ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]
                .iter()
                .any(|name| env.non_empty(name).is_some()),
            AwsStep::Profile => profile.is_some_and(|p| {
                [
                    "role_arn",
                    "sso_session",
                    "sso_start_url",
                    "aws_access_key_id",
                    "aws_secret_access_key",
                    "credential_process",
                ]
                .iter()
                .any(|key| p.get(key).is_some())
            }),
            AwsStep::WebIdentity => env.non_empty("AWS_WEB_IDENTITY_TOKEN_FILE").is_some(),
            AwsStep::Container => [
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            ]
            .iter()
            .any(|name| env.non_empty(name).is_some()),
            AwsStep::InstanceMetadata => false,
        }
    }
}

/// The credential sources the chain tries, in order: the environment, the profile (when
/// either file has it), web identity, container credentials, then instance metadata
/// unless `AWS_EC2_METADATA_DISABLED=true`.
pub fn aws_credential_steps(env: &dyn Env, profile: Option<AwsProfile<'_>>) -> Vec<AwsStep> {
    let imds_disabled = env
        .non_empty("AWS_EC2_METADATA_DISABLED")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    [
        Some(AwsStep::Environment),
        profile.map(|_| AwsStep::Profile),
        Some(AwsStep::WebIdentity),
        Some(AwsStep::Container),
        (!imds_disabled).then_some(AwsStep::InstanceMetadata),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// The endpoint configured for AWS service `service` (`STS`, `SSO`, `S3`) and where it
/// was found: the service-specific variable, `AWS_ENDPOINT_URL`, the profile's `services`
/// section, the profile's `endpoint_url`; none of them with
/// `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true`.
pub fn aws_configured_endpoint(
    env: &dyn Env,
    profile: Option<AwsProfile<'_>>,
    files: &AwsFiles,
    service: &str,
) -> Option<(String, String)> {
    if env
        .non_empty("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    {
        return None;
    }
    let specific = format!("AWS_ENDPOINT_URL_{service}");
    let from_profile = || {
        let profile = profile?;
        let key = format!("{}.endpoint_url", service.to_ascii_lowercase());
        let from_services = profile.get("services").and_then(|name| {
            let value = files.services(name)?.get(&key)?.clone();
            Some((value, format!("[services {name}] {key}")))
        });
        from_services.or_else(|| {
            let value = profile.get("endpoint_url")?.to_string();
            Some((
                value,
                format!("endpoint_url of AWS profile {:?}", profile.name),
            ))
        })
    };
    env.non_empty(&specific)
        .map(|e| (e, specific))
        .or_else(|| {
            env.non_empty("AWS_ENDPOINT_URL")
                .map(|e| (e, "AWS_ENDPOINT_URL".to_string()))
        })
        .or_else(from_profile)
        .filter(|(e, _)| !e.is_empty())
}

/// A value and where it came from (for `--dry-run` and messages).
pub type FromWhere<T> = (T, String);

/// Everything needed to reach one bucket, except the credentials themselves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Settings {
    /// The bucket.
    pub bucket: String,
    /// A custom endpoint, validated, without a trailing `/`; `None` is AWS.
    pub endpoint: Option<FromWhere<String>>,
    /// The region; `None` means AWS is asked where the bucket lives.
    pub region: Option<FromWhere<String>>,
    /// The profile the credential chain reads, and the region and addressing style come from.
    pub profile: ProfileChoice,
    /// Virtual-host style addressing (`https://<bucket>.<host>`), else path style.
    pub virtual_host: bool,
    /// Send `x-amz-request-payer: requester`.
    pub requester_pays: bool,
    /// Never sign (the config's `anonymous`).
    pub anonymous: bool,
}

impl S3Settings {
    /// Resolves `bucket`'s settings. Each value: the bucket's entry in the ptex config,
    /// the environment, the AWS profile, the config's default, else the built-in default.
    /// A bad endpoint is refused here (the message starts with "S3 endpoint").
    pub fn resolve(
        bucket: &str,
        config: &S3Config,
        env: &dyn Env,
        files: &AwsFiles,
    ) -> Result<S3Settings, String> {
        let own = config.buckets.get(bucket).cloned().unwrap_or_default();
        let defaults = &config.defaults;
        let profile = profile_choice(env, own.profile.as_deref(), defaults.profile.as_deref());
        let aws_profile = files.profile(&profile.name);
        let endpoint = own
            .endpoint
            .clone()
            .map(|e| {
                (
                    e,
                    format!("s3.buckets.{bucket}.endpoint in the ptex config"),
                )
            })
            .or_else(|| aws_configured_endpoint(env, aws_profile, files, "S3"))
            .or_else(|| {
                let e = defaults.endpoint.clone()?;
                Some((e, "s3.endpoint in the ptex config".to_string()))
            })
            .map(|(e, from)| (e.trim_end_matches('/').to_string(), from));
        if let Some((endpoint, _)) = &endpoint {
            check_endpoint(endpoint).map_err(|reason| format!("S3 endpoint: {reason}"))?;
        }
        let region =
            region(env, &own.region, aws_profile, &defaults.region, bucket).or_else(|| {
                endpoint.as_ref()?;
                Some((
                    "us-east-1".to_string(),
                    "the default for a custom endpoint".to_string(),
                ))
            });
        let settings = config.bucket(bucket);
        let addressing = aws_profile.and_then(|p| p.get("s3.addressing_style"));
        let virtual_host = settings.virtual_host_style.unwrap_or(match addressing {
            Some("path") => false,
            Some("virtual") => true,
            _ => endpoint.is_none() && !bucket.contains('.'),
        });
        Ok(S3Settings {
            bucket: bucket.to_string(),
            endpoint,
            region,
            profile,
            virtual_host,
            requester_pays: settings.requester_pays == Some(true),
            anonymous: settings.anonymous == Some(true),
        })
    }

    /// What `--dry-run` says about the bucket: endpoint, region, profile, addressing and
    /// the credential source that will be used, by name only.
    pub fn describe(&self, env: &dyn Env, files: &AwsFiles) -> String {
        let endpoint = match &self.endpoint {
            Some((endpoint, from)) => format!("endpoint {endpoint} ({from})"),
            None => "endpoint AWS".to_string(),
        };
        let region = match &self.region {
            Some((region, from)) => format!("region {region} ({from})"),
            None => "region asked of the bucket".to_string(),
        };
        let profile = match self.profile.named_by {
            Some(by) => format!("profile {} ({by})", self.profile.name),
            None => format!("profile {}", self.profile.name),
        };
        let style = match self.virtual_host {
            true => "virtual-host style",
            false => "path style",
        };
        format!(
            "S3 {endpoint}, {region}, {profile}, {style}; credentials: {}",
            self.credential_source(env, files)
        )
    }

    /// The credential source the chain will use, as far as can be told without asking
    /// anything over the network.
    pub fn credential_source(&self, env: &dyn Env, files: &AwsFiles) -> String {
        if self.anonymous {
            return "none, unsigned (anonymous in the ptex config)".to_string();
        }
        let profile = files.profile(&self.profile.name);
        if profile.is_none()
            && let Some(by) = self.profile.named_by
        {
            return format!(
                "none: AWS profile {:?} (named by {by}) is in neither {} nor {}",
                self.profile.name,
                files.config_path.display(),
                files.credentials_path.display()
            );
        }
        let steps = aws_credential_steps(env, profile);
        if let Some(step) = steps.iter().find(|s| s.is_set_up(env, profile)) {
            return step.name(&self.profile.name);
        }
        match steps.last() {
            Some(AwsStep::InstanceMetadata) => {
                "instance metadata (IMDS) if it answers, else none (unsigned)".to_string()
            }
            _ => "none found, unsigned".to_string(),
        }
    }
}

/// The profile to read: the bucket's own `profile`, `AWS_PROFILE`, `AWS_DEFAULT_PROFILE`,
/// the config's default `profile`, else `default` (which need not exist).
fn profile_choice(env: &dyn Env, own: Option<&str>, default: Option<&str>) -> ProfileChoice {
    let named = [
        (
            own.map(str::to_string),
            "the bucket's entry in the ptex config",
        ),
        (env.non_empty("AWS_PROFILE"), "AWS_PROFILE"),
        (env.non_empty("AWS_DEFAULT_PROFILE"), "AWS_DEFAULT_PROFILE"),
        (default.map(str::to_string), "s3.profile in the ptex config"),
    ];
    named
        .into_iter()
        .find_map(|(name, by)| {
            name.map(|name| ProfileChoice {
                name,
                named_by: Some(by),
            })
        })
        .unwrap_or(ProfileChoice {
            name: "default".to_string(),
            named_by: None,
        })
}

/// The region: the bucket's entry, `AWS_REGION`, `AWS_DEFAULT_REGION`, the profile's
/// `region`, the config's default.
fn region(
    env: &dyn Env,
    own: &Option<String>,
    profile: Option<AwsProfile<'_>>,
    default: &Option<String>,
    bucket: &str,
) -> Option<FromWhere<String>> {
    let from_env = |name: &str| Some((env.non_empty(name)?, name.to_string()));
    own.clone()
        .map(|r| (r, format!("s3.buckets.{bucket}.region in the ptex config")))
        .or_else(|| from_env("AWS_REGION"))
        .or_else(|| from_env("AWS_DEFAULT_REGION"))
        .or_else(|| {
            let profile = profile?;
            let region = profile.get("region")?.to_string();
            Some((region, format!("region of AWS profile {:?}", profile.name)))
        })
        .or_else(|| Some((default.clone()?, "s3.region in the ptex config".to_string())))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    use crate::env::from_pairs as env;

    fn config(json: &str) -> S3Config {
        serde_json::from_str(json).expect("an s3 section")
    }

    const FILES: &str = "\
[default]
region = eu-north-1
[profile corp]
region = eu-west-1
services = local
s3 =
  addressing_style = virtual
[services local]
s3 =
  endpoint_url = http://127.0.0.1:9000/
[profile keys]
aws_access_key_id = AKIA
aws_secret_access_key = s
";

    fn resolve(pairs: &[(&str, &str)], json: &str, bucket: &str) -> Result<S3Settings, String> {
        let files = AwsFiles::from_text(FILES, "");
        S3Settings::resolve(bucket, &config(json), &env(pairs), &files)
    }

    #[test]
    fn profile_precedence() {
        let choose = |pairs: &[(&str, &str)], own, default| {
            let choice = profile_choice(&env(pairs), own, default);
            (choice.name, choice.named_by.is_some())
        };
        let both = [("AWS_PROFILE", "p"), ("AWS_DEFAULT_PROFILE", "d")];
        assert_eq!(
            choose(&both, Some("own"), Some("cfg")),
            ("own".into(), true)
        );
        assert_eq!(choose(&both, None, Some("cfg")), ("p".into(), true));
        assert_eq!(choose(&both[1..], None, Some("cfg")), ("d".into(), true));
        assert_eq!(choose(&[], None, Some("cfg")), ("cfg".into(), true));
        assert_eq!(choose(&[], None, None), ("default".into(), false));
    }

    #[test]
    fn endpoint_bucket_entry_then_environment_then_profile_then_config_default() {
        let endpoint = |pairs: &[(&str, &str)], json: &str| {
            let s = resolve(pairs, json, "b").expect("valid settings");
            s.endpoint
        };
        let all = r#"{"endpoint": "http://default:1", "profile": "corp",
                      "buckets": {"b": {"endpoint": "http://own:1/"}}}"#;
        let vars = [
            ("AWS_ENDPOINT_URL_S3", "http://s3-var:1"),
            ("AWS_ENDPOINT_URL", "http://any-var:1"),
        ];
        assert_eq!(
            endpoint(&vars, all),
            Some((
                "http://own:1".into(),
                "s3.buckets.b.endpoint in the ptex config".into()
            ))
        );
        let no_own = r#"{"endpoint": "http://default:1", "profile": "corp"}"#;
        assert_eq!(endpoint(&vars, no_own).unwrap().1, "AWS_ENDPOINT_URL_S3");
        assert_eq!(endpoint(&vars[1..], no_own).unwrap().1, "AWS_ENDPOINT_URL");
        assert_eq!(
            endpoint(&[], no_own),
            Some((
                "http://127.0.0.1:9000".into(),
                "[services local] s3.endpoint_url".into()
            ))
        );
        let ignore = [("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true")];
        assert_eq!(
            endpoint(&ignore, no_own),
            Some((
                "http://default:1".into(),
                "s3.endpoint in the ptex config".into()
            ))
        );
        assert_eq!(endpoint(&[], "{}"), None);
    }

    #[test]
    fn region_falls_back_from_environment_to_profile_to_config_to_default() {
        let region = |pairs: &[(&str, &str)], json: &str| {
            resolve(pairs, json, "b")
                .expect("valid")
                .region
                .map(|r| r.0)
        };
        let vars = [("AWS_REGION", "r1"), ("AWS_DEFAULT_REGION", "r2")];
        let own = r#"{"buckets": {"b": {"region": "own"}}}"#;
        assert_eq!(region(&vars, own).as_deref(), Some("own"));
        assert_eq!(region(&vars, "{}").as_deref(), Some("r1"));
        assert_eq!(region(&vars[1..], "{}").as_deref(), Some("r2"));
        // The default profile's region, then the config's.
        assert_eq!(
            region(&[], r#"{"region": "cfg"}"#).as_deref(),
            Some("eu-north-1")
        );
        let keys = r#"{"region": "cfg", "profile": "keys"}"#;
        assert_eq!(region(&[], keys).as_deref(), Some("cfg"));
        // Nothing anywhere: AWS is asked, a custom endpoint gets us-east-1.
        assert_eq!(region(&[("AWS_PROFILE", "keys")], "{}"), None);
        let custom = [("AWS_PROFILE", "keys"), ("AWS_ENDPOINT_URL", "http://h:1")];
        assert_eq!(region(&custom, "{}").as_deref(), Some("us-east-1"));
    }

    #[test]
    fn endpoints_are_validated() {
        for bad in ["minio:9000", "http:///x", "ftp://h"] {
            let err = resolve(&[("AWS_ENDPOINT_URL", bad)], "{}", "b").unwrap_err();
            assert!(err.starts_with("S3 endpoint: "), "{err}");
        }
        assert!(resolve(&[("AWS_ENDPOINT_URL", "https://h:9/p")], "{}", "b").is_ok());
    }

    #[test]
    fn addressing_style_config_then_profile_then_by_endpoint_and_bucket_name() {
        let virtual_host = |pairs: &[(&str, &str)], json: &str, bucket: &str| {
            resolve(pairs, json, bucket).expect("valid").virtual_host
        };
        assert!(virtual_host(&[], "{}", "b"));
        assert!(!virtual_host(&[], "{}", "dotted.bucket"));
        assert!(!virtual_host(
            &[("AWS_ENDPOINT_URL", "http://h:1")],
            "{}",
            "b"
        ));
        // Profile corp says virtual (and brings an endpoint).
        assert!(virtual_host(&[("AWS_PROFILE", "corp")], "{}", "b"));
        let off = r#"{"virtual_host_style": false}"#;
        assert!(!virtual_host(&[("AWS_PROFILE", "corp")], off, "b"));
    }

    #[test]
    fn credential_steps_and_the_one_that_will_be_used() {
        let files = AwsFiles::from_text(FILES, "");
        let source = |pairs: &[(&str, &str)], json: &str| {
            let env = env(pairs);
            let s = S3Settings::resolve("b", &config(json), &env, &files).expect("valid");
            s.credential_source(&env, &files)
        };
        let keys = [
            ("AWS_ACCESS_KEY_ID", "AKIA"),
            ("AWS_SECRET_ACCESS_KEY", "hidden"),
            ("AWS_PROFILE", "keys"),
        ];
        assert_eq!(source(&keys, "{}"), "the environment (AWS_ACCESS_KEY_ID)");
        assert_eq!(source(&keys[2..], "{}"), "AWS profile \"keys\"");
        assert!(source(&keys, r#"{"anonymous": true}"#).starts_with("none, unsigned"));
        let web = [
            ("AWS_WEB_IDENTITY_TOKEN_FILE", "/t"),
            ("AWS_PROFILE", "corp"),
        ];
        assert_eq!(
            source(&web, "{}"),
            "web identity (AWS_WEB_IDENTITY_TOKEN_FILE)"
        );
        assert!(source(&[], "{}").starts_with("instance metadata (IMDS) if it answers"));
        let off = [("AWS_EC2_METADATA_DISABLED", "TRUE")];
        assert_eq!(source(&off, "{}"), "none found, unsigned");
        let missing = source(&[("AWS_PROFILE", "nope")], "{}");
        assert!(
            missing.contains("\"nope\" (named by AWS_PROFILE)"),
            "{missing}"
        );

        let env = env(&off);
        let steps = aws_credential_steps(&env, files.profile("corp"));
        assert_eq!(
            steps,
            [
                AwsStep::Environment,
                AwsStep::Profile,
                AwsStep::WebIdentity,
                AwsStep::Container
            ]
        );
        let all = aws_credential_steps(&HashMap::<String, String>::new(), None);
        assert_eq!(all.first(), Some(&AwsStep::Environment));
        assert_eq!(all.last(), Some(&AwsStep::InstanceMetadata));
        assert!(!all.contains(&AwsStep::Profile));
    }

    #[test]
    fn describe_names_every_setting_and_no_secret() {
        let files = AwsFiles::from_text(FILES, "");
        let env = env(&[
            ("AWS_ACCESS_KEY_ID", "AKIA"),
            ("AWS_SECRET_ACCESS_KEY", "hidden-secret"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:9000"),
            ("AWS_REGION", "us-east-1"),
        ]);
        let s = S3Settings::resolve("b", &S3Config::default(), &env, &files).expect("valid");
        assert_eq!(
            s.describe(&env, &files),
            "S3 endpoint http://127.0.0.1:9000 (AWS_ENDPOINT_URL), region us-east-1 \
             (AWS_REGION), profile default, path style; credentials: the environment \
             (AWS_ACCESS_KEY_ID)"
        );
    }
}
