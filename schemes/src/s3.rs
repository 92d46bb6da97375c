//! `s3://bucket/key` on opendal's S3 service, set up the way AWS users expect.
//!
//! - Credentials: `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN`, then the
//!   profile (`AWS_PROFILE` or the config's `profile`, in `~/.aws/credentials` and
//!   `~/.aws/config`), web identity, container credentials, and instance metadata (IMDS,
//!   bounded to about 2 s, off with `AWS_EC2_METADATA_DISABLED=true`). The chain runs here,
//!   step by step, so an access-denied error can say where the credentials came from; when
//!   none are found the object is read unsigned, so public buckets need no AWS setup.
//! - Region: the bucket's config entry, `AWS_REGION`/`AWS_DEFAULT_REGION`, the profile's
//!   `region` in `~/.aws/config`, the config's default, else asked of the bucket itself (AWS) or `us-east-1` (custom endpoints).
//! - Endpoint: the bucket's config entry, `AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL`, the
//!   config's default, else AWS. Custom endpoints are addressed path-style unless the config
//!   says `virtual_host_style`.

use std::sync::Arc;

use opendal::{Operator, services::S3};
use ptex_config::{Env, ProcessEnv, S3Config, check_endpoint};
use reqsign_aws_v4::{
    AssumeRoleWithWebIdentityCredentialProvider, Credential, ECSCredentialProvider,
    EnvCredentialProvider, IMDSv2CredentialProvider, ProfileCredentialProvider,
};
use reqsign_core::{Context, OsEnv, ProvideCredential};
use reqsign_file_read_tokio::TokioFileRead;

use crate::store::{PROBE_TIMEOUT, Transports};
use crate::{FetchError, store};

const AWS_ENDPOINT: &str = "https://s3.amazonaws.com";

/// The operator for one bucket and the hint its access-denied errors carry.
pub(crate) async fn setup(
    bucket: &str,
    config: &S3Config,
    transports: &Transports,
) -> Result<(Operator, Arc<str>), FetchError> {
    let env = ProcessEnv;
    let own = config.buckets.get(bucket).cloned().unwrap_or_default();
    let defaults = &config.defaults;
    let endpoint = own
        .endpoint
        .clone()
        .or_else(|| env.non_empty("AWS_ENDPOINT_URL_S3"))
        .or_else(|| env.non_empty("AWS_ENDPOINT_URL"))
        .or_else(|| defaults.endpoint.clone())
        .map(|e| e.trim_end_matches('/').to_string());
    if let Some(endpoint) = &endpoint {
        check_endpoint(endpoint).map_err(|reason| FetchError::Config {
            reason: format!("S3 endpoint: {reason}"),
        })?;
    }
    let settings = config.bucket(bucket);
    let profile = settings
        .profile
        .clone()
        .or_else(|| env.non_empty("AWS_PROFILE"));
    let region = match own
        .region
        .clone()
        .or_else(|| env.non_empty("AWS_REGION"))
        .or_else(|| env.non_empty("AWS_DEFAULT_REGION"))
        .or_else(|| profile_region(&env, profile.as_deref()))
        .or_else(|| defaults.region.clone())
    {
        Some(region) => region,
        None if endpoint.is_some() => "us-east-1".to_string(),
        None => detect_region(bucket, transports).await?,
    };

    let mut builder = S3::default()
        .bucket(bucket)
        .region(&region)
        .root("/")
        // ptex resolves endpoint, region and credentials itself (above and below).
        .disable_config_load()
        .disable_ec2_metadata();
    if let Some(endpoint) = &endpoint {
        builder = builder.endpoint(endpoint);
    }
    let virtual_host = settings
        .virtual_host_style
        .unwrap_or(endpoint.is_none() && !bucket.contains('.'));
    if virtual_host {
        builder = builder.enable_virtual_host_style();
    }
    if settings.requester_pays == Some(true) {
        builder = builder.enable_request_payer();
    }
    let hint = if settings.anonymous == Some(true) {
        builder = builder.skip_signature();
        "the config reads this bucket anonymously (unsigned); remove `anonymous` to sign requests"
            .to_string()
    } else {
        match credentials(profile.as_deref(), transports).await {
            Found { credential, from } => {
                builder = builder
                    .access_key_id(&credential.access_key_id)
                    .secret_access_key(&credential.secret_access_key);
                if let Some(token) = &credential.session_token {
                    builder = builder.session_token(token);
                }
                format!(
                    "signed with AWS credentials from {from}; check that they may read s3://{bucket}"
                )
            }
            NotFound { tried } => {
                builder = builder.skip_signature();
                format!(
                    "no AWS credentials found (tried {}), so the request was unsigned; \
                     set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE",
                    tried.join(", ")
                )
            }
        }
    };
    let operator = Operator::new(builder).map_err(|e| store::classify(&e, &hint))?;
    Ok((transports.attach(operator), Arc::from(hint)))
}

/// The `region` of `profile` (else `default`) in `AWS_CONFIG_FILE` or `~/.aws/config`.
fn profile_region(env: &ProcessEnv, profile: Option<&str>) -> Option<String> {
    let path = match env.non_empty("AWS_CONFIG_FILE") {
        Some(path) => std::path::PathBuf::from(path),
        None => std::path::PathBuf::from(env.non_empty("HOME")?).join(".aws/config"),
    };
    ini_region(
        &std::fs::read_to_string(path).ok()?,
        profile.unwrap_or("default"),
    )
}

/// `region = …` in the section of `profile` of an AWS config file (`[default]` or
/// `[profile NAME]`).
fn ini_region(text: &str, profile: &str) -> Option<String> {
    let wanted = match profile {
        "default" => "default".to_string(),
        name => format!("profile {name}"),
    };
    let mut in_section = false;
    for line in text.lines().map(str::trim) {
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            in_section = section.trim() == wanted;
        } else if in_section
            && let Some((key, value)) = line.split_once('=')
            && key.trim() == "region"
        {
            return Some(value.trim().to_string()).filter(|v| !v.is_empty());
        }
    }
    None
}

/// Asks AWS where `bucket` lives: any S3 endpoint answers a HEAD of the bucket with its
/// region in `x-amz-bucket-region`, whatever the status.
async fn detect_region(bucket: &str, transports: &Transports) -> Result<String, FetchError> {
    let response = transports
        .probe_client
        .head(format!("{AWS_ENDPOINT}/{bucket}"))
        .send()
        .await
        .ok();
    let detected = response.and_then(|r| {
        r.headers()
            .get("x-amz-bucket-region")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    });
    detected.ok_or_else(|| FetchError::Config {
        reason: format!(
            "cannot tell the region of bucket {bucket:?}: set AWS_REGION, or \
             s3.buckets.{bucket}.region in the ptex config file"
        ),
    })
}

use Credentials::{Found, NotFound};

enum Credentials {
    Found {
        credential: Credential,
        from: String,
    },
    NotFound {
        tried: Vec<String>,
    },
}

/// Runs the AWS credential chain in order, stopping at the first source that has some.
async fn credentials(profile: Option<&str>, transports: &Transports) -> Credentials {
    let ctx = Context::new()
        .with_file_read(TokioFileRead)
        .with_http_send(transports.probe.clone())
        .with_env(OsEnv);
    let mut tried = Vec::new();
    let profile_name = profile.unwrap_or("default").to_string();
    let mut profile_provider = ProfileCredentialProvider::new();
    if let Some(profile) = profile {
        profile_provider = profile_provider.with_profile(profile);
    }
    let steps: [(String, BoxedProvider); 4] = [
        (
            "the environment (AWS_ACCESS_KEY_ID)".to_string(),
            Box::new(EnvCredentialProvider::new()),
        ),
        (
            format!("profile {profile_name:?} (~/.aws/credentials, ~/.aws/config)"),
            Box::new(profile_provider),
        ),
        (
            "web identity (AWS_WEB_IDENTITY_TOKEN_FILE)".to_string(),
            Box::new(AssumeRoleWithWebIdentityCredentialProvider::new()),
        ),
        (
            "container credentials".to_string(),
            Box::new(ECSCredentialProvider::new()),
        ),
    ];
    for (from, provider) in steps {
        if let Some(credential) = provider.provide(&ctx).await {
            return Found { credential, from };
        }
        tried.push(from);
    }
    let imds_disabled = ProcessEnv
        .non_empty("AWS_EC2_METADATA_DISABLED")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    if !imds_disabled {
        let imds = IMDSv2CredentialProvider::new();
        let from = "instance metadata (IMDS)".to_string();
        if let Ok(Ok(Some(credential))) =
            tokio::time::timeout(PROBE_TIMEOUT, imds.provide_credential(&ctx)).await
        {
            return Found { credential, from };
        }
        tried.push(from);
    }
    NotFound { tried }
}

type BoxedProvider = Box<dyn DynProvider>;

/// One step of the chain, object-safe.
trait DynProvider {
    fn provide<'a>(
        &'a self,
        ctx: &'a Context,
    ) -> std::pin::Pin<Box<dyn Future<Output = Option<Credential>> + 'a>>;
}

impl<P: ProvideCredential<Credential = Credential>> DynProvider for P {
    fn provide<'a>(
        &'a self,
        ctx: &'a Context,
    ) -> std::pin::Pin<Box<dyn Future<Output = Option<Credential>> + 'a>> {
        Box::pin(async move {
            // A broken step (an unreadable profile, a failing STS call) is skipped like an
            // empty one: the next source may still have credentials.
            tokio::time::timeout(PROBE_TIMEOUT, self.provide_credential(ctx))
                .await
                .ok()
                .and_then(Result::ok)
                .flatten()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_of_a_profile() {
        let config =
            "[default]\nregion = us-west-2\n\n[profile corp]\noutput = json\nregion=eu-west-1\n";
        assert_eq!(ini_region(config, "default").as_deref(), Some("us-west-2"));
        assert_eq!(ini_region(config, "corp").as_deref(), Some("eu-west-1"));
        assert_eq!(ini_region(config, "other"), None);
    }
}
