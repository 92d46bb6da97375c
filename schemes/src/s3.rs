//! `s3://bucket/key` on opendal's S3 service, set up the way AWS users expect.
//!
//! - Credentials: the AWS chain of [`crate::aws`] for the profile (the bucket's config entry,
//!   `AWS_PROFILE`, `AWS_DEFAULT_PROFILE`, the config's default `profile`, else `default`),
//!   resolved once per run; when it finds none the object is read unsigned, so public
//!   buckets need no AWS setup.
//! - Region: the bucket's config entry, `AWS_REGION`/`AWS_DEFAULT_REGION`, the profile's
//!   `region`, the config's default, else asked of the bucket itself (AWS) or `us-east-1`
//!   (custom endpoints).
//! - Endpoint: the bucket's config entry, `AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL`, the
//!   profile's `services` section or `endpoint_url`, the config's default, else AWS. Custom
//!   endpoints are addressed path-style unless the config (or the profile's
//!   `s3.addressing_style`) says virtual-host style.

use std::sync::Arc;

use opendal::{Operator, services::S3};
use ptex_config::{AwsFiles, Env, ProcessEnv, S3Config, check_endpoint};

use crate::aws::{self, ProfileChoice, Resolved};
use crate::store::Transports;
use crate::{FetchError, store};

const AWS_ENDPOINT: &str = "https://s3.amazonaws.com";

/// The operator for one bucket and the hint its access-denied errors carry.
pub(crate) async fn setup(
    bucket: &str,
    config: &S3Config,
    transports: &mut Transports,
) -> Result<(Operator, Arc<str>), FetchError> {
    let env = ProcessEnv;
    let files = AwsFiles::load(&env);
    let own = config.buckets.get(bucket).cloned().unwrap_or_default();
    let defaults = &config.defaults;
    let choice = profile_choice(&env, own.profile.as_deref(), defaults.profile.as_deref());
    let profile = files.profile(&choice.name);
    let endpoint = own
        .endpoint
        .clone()
        .or_else(|| aws::configured_endpoint(&env, profile, &files, "S3"))
        .or_else(|| defaults.endpoint.clone())
        .map(|e| e.trim_end_matches('/').to_string());
    if let Some(endpoint) = &endpoint {
        check_endpoint(endpoint).map_err(|reason| FetchError::Config {
            reason: format!("S3 endpoint: {reason}"),
        })?;
    }
    let settings = config.bucket(bucket);
    let region = match own
        .region
        .clone()
        .or_else(|| env.non_empty("AWS_REGION"))
        .or_else(|| env.non_empty("AWS_DEFAULT_REGION"))
        .or_else(|| profile.and_then(|p| p.get("region")).map(str::to_string))
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
    let addressing = profile.and_then(|p| p.get("s3.addressing_style"));
    let virtual_host = settings.virtual_host_style.unwrap_or(match addressing {
        Some("path") => false,
        Some("virtual") => true,
        _ => endpoint.is_none() && !bucket.contains('.'),
    });
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
        let limit = transports.step_limit;
        let resolved = match transports.aws.get(&choice.name) {
            Some(resolved) => resolved.clone(),
            None => {
                let resolved = aws::resolve(
                    &choice,
                    &env,
                    &files,
                    (&transports.main, &transports.probe_client),
                    limit,
                )
                .await;
                transports.aws.insert(choice.name.clone(), resolved.clone());
                resolved
            }
        };
        match resolved {
            Ok(Resolved::Found { credential, from }) => {
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
            Ok(Resolved::NotFound { tried }) => {
                builder = builder.skip_signature();
                format!(
                    "no AWS credentials found (tried {}), so the request was unsigned; \
                     set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE",
                    tried.join(", ")
                )
            }
            Err(failed) => {
                return Err(FetchError::Credentials {
                    step: failed.step,
                    reason: failed.reason,
                });
            }
        }
    };
    let operator = Operator::new(builder).map_err(|e| store::classify(&e, &hint))?;
    Ok((transports.attach(operator), Arc::from(hint)))
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
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
}
