//! The AWS credential chain in the AWS CLI's order (as [`ptex_config::aws_credential_steps`]
//! lists it), resolved once per run and per profile: the environment, the profile
//! (assume-role, web identity, SSO, keys, `credential_process`), web identity from the
//! environment, container credentials, instance metadata. A step that
//! finds nothing passes to the next; a step that *fails* stops the chain with its own name
//! and reason, so the user fixes the source they meant to use instead of reading "no
//! credentials found". Every step is bounded in time; no message carries a secret.

mod imds;
mod process;
mod route;

use std::path::PathBuf;
use std::time::Duration;

use ptex_config::{
    AwsFiles, AwsProfile, AwsStep, CloudEnv, Env, ProfileChoice, aws_configured_endpoint,
    aws_credential_steps,
};
use reqsign_aws_v4::{
    AssumeRoleCredentialProvider, AssumeRoleWithWebIdentityCredentialProvider, Credential,
    ECSCredentialProvider, RequestSigner, SSOCredentialProvider, StaticCredentialProvider,
};
use reqsign_core::time::Timestamp;
use reqsign_core::{Context, ProvideCredential, Signer};
use reqsign_file_read_tokio::TokioFileRead;

use crate::reqsign_env::static_env;
use crate::reqsign_errors::describe;

/// What the chain found for one profile.
#[derive(Clone)]
pub(crate) enum Resolved {
    /// Credentials, and the step that gave them (for messages).
    Found {
        credential: Credential,
        from: String,
    },
    /// Nothing anywhere: the steps tried, in order.
    NotFound { tried: Vec<String> },
}

/// A step that had something configured but could not produce credentials.
#[derive(Clone, Debug)]
pub(crate) struct Failed {
    /// The step, as the user knows it (e.g. `profile "corp" (role_arn via source_profile)`).
    pub(crate) step: String,
    /// Why, in plain words, without secrets.
    pub(crate) reason: String,
}

/// Runs the chain for `choice`, over the steps [`aws_credential_steps`] lists, in its
/// order. `limit` bounds each step the user configured (STS, SSO, a process, the container
/// endpoint); the metadata-service probe gets [`crate::client::PROBE_TIMEOUT`].
pub(crate) async fn resolve(
    choice: &ProfileChoice,
    env: &CloudEnv,
    files: &AwsFiles,
    (main, probe_client): (&opendal::HttpTransporter, &reqwest::Client),
    limit: Duration,
) -> Result<Resolved, Failed> {
    let profile = files.profile(&choice.name);
    if profile.is_none()
        && let Some(named_by) = choice.named_by
    {
        return Err(Failed {
            step: format!("AWS profile {:?} (named by {named_by})", choice.name),
            reason: format!(
                "no such profile in {} or {}",
                files.config_path.display(),
                files.credentials_path.display()
            ),
        });
    }
    let sts = aws_configured_endpoint(env, profile, files, "STS").map(|(e, _)| e);
    let ctx = Context::new()
        .with_file_read(TokioFileRead)
        .with_http_send(route::Routed {
            inner: main.clone(),
            sts,
        })
        .with_env(static_env(env));
    let chain = Chain {
        env,
        files,
        ctx,
        probe_client,
        limit,
    };
    let mut tried = Vec::new();
    for step in aws_credential_steps(env, profile) {
        let name = step.name(&choice.name);
        let found = match (step, profile) {
            (AwsStep::Profile, Some(profile)) => match chain.profile(profile, 0).await {
                Ok(Some((credential, detail))) => {
                    let from = format!("{name} ({detail})");
                    check_expiry(&from, &credential)?;
                    return Ok(Resolved::Found { credential, from });
                }
                Ok(None) => None,
                Err(reason) => return Err(Failed { step: name, reason }),
            },
            (AwsStep::Profile, None) => None,
            (AwsStep::Environment, _) => chain.fail_as(&name, chain.env_keys()).await?,
            (AwsStep::WebIdentity, _) => chain.fail_as(&name, chain.env_web_identity()).await?,
            (AwsStep::Container, _) => chain.fail_as(&name, chain.container()).await?,
            (AwsStep::InstanceMetadata, _) => chain.fail_as(&name, chain.imds()).await?,
        };
        match found {
            Some(found) => return Ok(found.into_resolved(name)),
            None => tried.push(name),
        }
    }
    Ok(Resolved::NotFound { tried })
}

/// Credentials a step found.
struct Found(Credential);

impl Found {
    fn into_resolved(self, from: String) -> Resolved {
        Resolved::Found {
            credential: self.0,
            from,
        }
    }
}

/// An expired credential is refused by every service: say so here, naming the step.
fn check_expiry(step: &str, credential: &Credential) -> Result<(), Failed> {
    match credential.expires_in {
        Some(at) if at <= Timestamp::now() => Err(Failed {
            step: step.to_string(),
            reason: format!("the credentials it gave expired at {at}"),
        }),
        _ => Ok(()),
    }
}

/// What a `role_arn` profile asks STS for.
struct RoleRequest {
    session_name: String,
    /// The region STS is called in; none means the global endpoint.
    region: Option<String>,
    duration: Option<u32>,
}

struct Chain<'a> {
    env: &'a dyn Env,
    files: &'a AwsFiles,
    /// For steps the user configured: the main client.
    ctx: Context,
    /// For the metadata service, which may not exist: short timeouts.
    probe_client: &'a reqwest::Client,
    limit: Duration,
}

type StepResult = Result<Option<Credential>, String>;

impl Chain<'_> {
    /// Runs `step` within the limit; a failure is named `name`, and expired credentials fail.
    async fn fail_as(
        &self,
        name: &str,
        step: impl Future<Output = StepResult>,
    ) -> Result<Option<Found>, Failed> {
        let failed = |reason| Failed {
            step: name.to_string(),
            reason,
        };
        match step.await {
            Ok(Some(credential)) => {
                check_expiry(name, &credential)?;
                Ok(Some(Found(credential)))
            }
            Ok(None) => Ok(None),
            Err(reason) => Err(failed(reason)),
        }
    }

    /// Runs a reqsign provider within `limit`.
    async fn provide(
        &self,
        provider: impl ProvideCredential<Credential = Credential>,
        ctx: &Context,
        limit: Duration,
    ) -> StepResult {
        match tokio::time::timeout(limit, provider.provide_credential(ctx)).await {
            Ok(Ok(credential)) => Ok(credential),
            Ok(Err(err)) => Err(describe(&err)),
            Err(_) => Err(format!("no answer within {:.0} s", limit.as_secs_f64())),
        }
    }

    /// `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY` (+ `AWS_SESSION_TOKEN`, or the legacy
    /// `AWS_SECURITY_TOKEN`).
    async fn env_keys(&self) -> StepResult {
        let env = self.env;
        let token = env
            .non_empty("AWS_SESSION_TOKEN")
            .or_else(|| env.non_empty("AWS_SECURITY_TOKEN"));
        keys(
            env.non_empty("AWS_ACCESS_KEY_ID").as_deref(),
            env.non_empty("AWS_SECRET_ACCESS_KEY").as_deref(),
            token.as_deref(),
            ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"),
        )
    }

    /// One profile, in the AWS CLI's order: `role_arn`, SSO, keys in the credentials file,
    /// `credential_process`, keys in the config file. The `String` says which.
    async fn profile(
        &self,
        profile: AwsProfile<'_>,
        depth: usize,
    ) -> Result<Option<(Credential, String)>, String> {
        if let Some(role_arn) = profile.get("role_arn") {
            return self.assume_role(profile, role_arn, depth).await.map(Some);
        }
        if profile.get("sso_session").is_some() || profile.get("sso_start_url").is_some() {
            return self.sso(profile).await.map(Some);
        }
        let static_keys = |section: Option<&ptex_config::AwsSection>| {
            let get = |key: &str| section.and_then(|s| s.get(key)).map(String::as_str);
            keys(
                get("aws_access_key_id"),
                get("aws_secret_access_key"),
                get("aws_session_token").or_else(|| get("aws_security_token")),
                ("aws_access_key_id", "aws_secret_access_key"),
            )
        };
        let credentials_file = self.files.credentials_path.display();
        if let Some(credential) =
            static_keys(profile.credentials).map_err(|e| format!("{e} in {credentials_file}"))?
        {
            return Ok(Some((credential, credentials_file.to_string())));
        }
        if let Some(command) = profile.get("credential_process") {
            let credential = process::run(command, self.limit)
                .await
                .map_err(|e| format!("credential_process: {e}"))?;
            return Ok(Some((credential, "credential_process".to_string())));
        }
        let config_file = self.files.config_path.display();
        Ok(static_keys(profile.config)
            .map_err(|e| format!("{e} in {config_file}"))?
            .map(|credential| (credential, config_file.to_string())))
    }

    /// A `role_arn` profile: the source credentials, then STS AssumeRole (or
    /// AssumeRoleWithWebIdentity for `web_identity_token_file`).
    async fn assume_role(
        &self,
        profile: AwsProfile<'_>,
        role_arn: &str,
        depth: usize,
    ) -> Result<(Credential, String), String> {
        let role = self.role_request(profile)?;
        if let Some(token_file) = profile.get("web_identity_token_file") {
            return self.web_identity_role(role_arn, token_file, role).await;
        }
        let (source, via) = self.role_source(profile, depth).await?;
        let mut loader =
            StaticCredentialProvider::new(&source.access_key_id, &source.secret_access_key);
        if let Some(token) = &source.session_token {
            loader = loader.with_session_token(token);
        }
        let signer = Signer::new(
            self.ctx.clone(),
            loader,
            RequestSigner::new("sts", role.region.as_deref().unwrap_or("us-east-1")),
        );
        let mut provider = AssumeRoleCredentialProvider::new(role_arn.to_string(), signer)
            .with_role_session_name(role.session_name);
        if let Some(id) = profile.get("external_id") {
            provider = provider.with_external_id(id.to_string());
        }
        if let Some(seconds) = role.duration {
            provider = provider.with_duration_seconds(seconds);
        }
        if let Some(region) = role.region {
            provider = provider.with_region(region).with_regional_sts_endpoint();
        }
        let credential = self
            .provide(provider, &self.ctx, self.limit)
            .await
            .map_err(|e| format!("STS AssumeRole of {role_arn} with {via}: {e}"))?
            .ok_or_else(|| format!("STS AssumeRole of {role_arn} returned nothing"))?;
        Ok((credential, format!("role_arn with {via}")))
    }

    /// What a `role_arn` profile asks STS for: session name, region, duration. A profile
    /// that needs an MFA code is refused, since ptex cannot prompt.
    fn role_request(&self, profile: AwsProfile<'_>) -> Result<RoleRequest, String> {
        if profile.get("mfa_serial").is_some() {
            return Err(
                "role_arn needs an MFA code (mfa_serial), which ptex cannot prompt for; \
                 run `aws sts assume-role` yourself and export the keys, or use a profile \
                 without mfa_serial"
                    .to_string(),
            );
        }
        let duration = match profile.get("duration_seconds") {
            None => None,
            Some(text) => Some(
                text.parse::<u32>()
                    .map_err(|_| format!("duration_seconds {text:?} is not a whole number"))?,
            ),
        };
        Ok(RoleRequest {
            session_name: profile.get("role_session_name").map_or_else(
                || format!("ptex-{}", Timestamp::now().as_second()),
                str::to_string,
            ),
            region: self.sts_region(profile),
            duration,
        })
    }

    /// A `role_arn` profile with `web_identity_token_file`: AssumeRoleWithWebIdentity.
    async fn web_identity_role(
        &self,
        role_arn: &str,
        token_file: &str,
        role: RoleRequest,
    ) -> Result<(Credential, String), String> {
        let mut provider = AssumeRoleWithWebIdentityCredentialProvider::with_config(
            role_arn.to_string(),
            PathBuf::from(token_file),
        )
        .with_role_session_name(role.session_name);
        if let Some(seconds) = role.duration {
            provider = provider.with_duration_seconds(seconds);
        }
        if let Some(region) = role.region {
            provider = provider.with_region(region).with_regional_sts_endpoint();
        }
        let credential = self.provide(provider, &self.ctx, self.limit).await?;
        let credential =
            credential.ok_or_else(|| format!("web_identity_token_file {token_file:?} is empty"))?;
        Ok((
            credential,
            "role_arn with web_identity_token_file".to_string(),
        ))
    }

    /// The credentials a `role_arn` profile assumes its role with (`source_profile` or
    /// `credential_source`), and which it was.
    async fn role_source(
        &self,
        profile: AwsProfile<'_>,
        depth: usize,
    ) -> Result<(Credential, String), String> {
        if let Some(source_name) = profile.get("source_profile") {
            let source = self.files.profile(source_name).ok_or_else(|| {
                format!(
                    "its source_profile {source_name:?} is in neither {} nor {}",
                    self.files.config_path.display(),
                    self.files.credentials_path.display()
                )
            })?;
            let credential = if source_name == profile.name {
                // A profile that is its own source holds the keys to assume the role with.
                let get = |key| profile.get(key);
                keys(
                    get("aws_access_key_id"),
                    get("aws_secret_access_key"),
                    get("aws_session_token"),
                    ("aws_access_key_id", "aws_secret_access_key"),
                )?
            } else if depth >= 4 {
                return Err("source_profile chains more than 4 roles (a loop?)".to_string());
            } else {
                Box::pin(self.profile(source, depth + 1))
                    .await
                    .map_err(|e| format!("its source_profile {source_name:?}: {e}"))?
                    .map(|(credential, _)| credential)
            };
            let credential = credential
                .ok_or_else(|| format!("its source_profile {source_name:?} has no credentials"))?;
            return Ok((credential, format!("source_profile {source_name:?}")));
        }
        let Some(source) = profile.get("credential_source") else {
            return Err(
                "role_arn needs source_profile, credential_source or web_identity_token_file"
                    .to_string(),
            );
        };
        let credential = match source {
            "Environment" => self.env_keys().await?,
            "EcsContainer" => self.container().await?,
            "Ec2InstanceMetadata" => self.imds().await?,
            other => {
                return Err(format!(
                    "credential_source {other:?} is not one of Environment, EcsContainer, \
                     Ec2InstanceMetadata"
                ));
            }
        };
        let credential = credential
            .ok_or_else(|| format!("its credential_source {source} has no credentials"))?;
        Ok((credential, format!("credential_source {source}")))
    }

    /// The region STS is called in: the profile's, else the environment's; none means the
    /// global endpoint.
    fn sts_region(&self, profile: AwsProfile<'_>) -> Option<String> {
        self.env
            .non_empty("AWS_REGION")
            .or_else(|| profile.get("region").map(str::to_string))
            .or_else(|| self.env.non_empty("AWS_DEFAULT_REGION"))
    }

    /// An SSO profile (`sso_session` or the legacy `sso_start_url`): the token `aws sso
    /// login` cached, exchanged for role credentials at the SSO portal.
    async fn sso(&self, profile: AwsProfile<'_>) -> Result<(Credential, String), String> {
        let login = format!("run `aws sso login --profile {}`", profile.name);
        let (start_url, region, cache_key) = match profile.get("sso_session") {
            Some(session) => {
                let section = self.files.sso_session(session).ok_or_else(|| {
                    format!(
                        "its sso_session {session:?} has no [sso-session {session}] section in {}",
                        self.files.config_path.display()
                    )
                })?;
                let get = |key: &str| section.get(key).cloned();
                // The CLI names the cached token after the session, not the start URL.
                (get("sso_start_url"), get("sso_region"), session.to_string())
            }
            None => {
                let url = profile.get("sso_start_url").map(str::to_string);
                let key = url.clone().unwrap_or_default();
                (url, profile.get("sso_region").map(str::to_string), key)
            }
        };
        let missing = |key: &str| format!("the SSO profile has no {key}");
        let start_url = start_url.ok_or_else(|| missing("sso_start_url"))?;
        let region = region.ok_or_else(|| missing("sso_region"))?;
        let account = profile
            .get("sso_account_id")
            .ok_or_else(|| missing("sso_account_id"))?;
        let role = profile
            .get("sso_role_name")
            .ok_or_else(|| missing("sso_role_name"))?;
        let mut provider = SSOCredentialProvider::new()
            .with_account_id(account)
            .with_region(&region)
            .with_role_name(role)
            .with_start_url(cache_key);
        if let Some((portal, _)) =
            aws_configured_endpoint(self.env, Some(profile), self.files, "SSO")
        {
            provider = provider.with_endpoint(format!(
                "{}/federation/credentials",
                portal.trim_end_matches('/')
            ));
        }
        let credential =
            match tokio::time::timeout(self.limit, provider.provide_credential(&self.ctx)).await {
                Ok(Ok(Some(credential))) => credential,
                Ok(Ok(None)) => return Err(format!("no SSO credentials; {login}")),
                Ok(Err(err)) if err.kind() == reqsign_core::ErrorKind::ConfigInvalid => {
                    return Err(format!(
                        "no valid SSO token for {start_url} in ~/.aws/sso/cache (missing or \
                     expired); {login}"
                    ));
                }
                Ok(Err(err)) => {
                    return Err(format!(
                        "the SSO portal refused the cached token ({}); {login}",
                        describe(&err)
                    ));
                }
                Err(_) => {
                    return Err(format!(
                        "the SSO portal gave no answer within {:.0} s",
                        self.limit.as_secs_f64()
                    ));
                }
            };
        Ok((credential, format!("SSO, account {account}, role {role}")))
    }

    /// `AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN` (IRSA on EKS).
    async fn env_web_identity(&self) -> StepResult {
        let Some(token_file) = self.env.non_empty("AWS_WEB_IDENTITY_TOKEN_FILE") else {
            return Ok(None);
        };
        let role_arn = self
            .env
            .non_empty("AWS_ROLE_ARN")
            .ok_or("AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not")?;
        let mut provider =
            AssumeRoleWithWebIdentityCredentialProvider::with_config(role_arn, token_file.into());
        if let Some(name) = self.env.non_empty("AWS_ROLE_SESSION_NAME") {
            provider = provider.with_role_session_name(name);
        }
        if let Some(region) = self
            .env
            .non_empty("AWS_REGION")
            .or_else(|| self.env.non_empty("AWS_DEFAULT_REGION"))
        {
            provider = provider.with_region(region).with_regional_sts_endpoint();
        }
        self.provide(provider, &self.ctx, self.limit).await
    }

    /// ECS task roles and EKS Pod Identity: `AWS_CONTAINER_CREDENTIALS_FULL_URI` or
    /// `_RELATIVE_URI`, with the token file winning over the token variable.
    async fn container(&self) -> StepResult {
        let env = self.env;
        if env
            .non_empty("AWS_CONTAINER_CREDENTIALS_FULL_URI")
            .or_else(|| env.non_empty("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"))
            .is_none()
        {
            return Ok(None);
        }
        let mut provider = ECSCredentialProvider::new();
        if let Some(file) = env.non_empty("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE") {
            provider = provider.with_auth_token_file(file);
        }
        self.provide(provider, &self.ctx, self.limit).await
    }

    /// The EC2 instance metadata service (`AWS_EC2_METADATA_SERVICE_ENDPOINT`), if one
    /// answers within [`crate::client::PROBE_TIMEOUT`].
    async fn imds(&self) -> StepResult {
        let endpoint = self.env.non_empty("AWS_EC2_METADATA_SERVICE_ENDPOINT");
        imds::credentials(self.probe_client, endpoint).await
    }
}

/// Static keys; one without the other is a mistake worth naming.
fn keys(
    id: Option<&str>,
    secret: Option<&str>,
    token: Option<&str>,
    names: (&str, &str),
) -> StepResult {
    match (id, secret) {
        (Some(id), Some(secret)) => {
            let mut credential = Credential {
                access_key_id: id.to_string(),
                secret_access_key: secret.to_string(),
                ..Credential::default()
            };
            credential.session_token = token.map(str::to_string);
            Ok(Some(credential))
        }
        (None, None) => Ok(None),
        (Some(_), None) => Err(format!("{} is set but {} is not", names.0, names.1)),
        (None, Some(_)) => Err(format!("{} is set but {} is not", names.1, names.0)),
    }
}
