//! `s3://bucket/key` on opendal's S3 service, set up the way AWS users expect. Where the
//! bucket is and which credential sources are tried, in which order, is resolved by
//! [`ptex_config::S3Settings`] (endpoint, region, profile, addressing style); this module
//! turns that into an operator:
//! - Credentials: the AWS chain of [`crate::aws`] for the profile, resolved once per run;
//!   when it finds none the object is read unsigned, so public buckets need no AWS setup.
//! - Region: when no setting names one, asked of the bucket itself (AWS).

use std::sync::Arc;

use opendal::{Operator, services::S3};
use ptex_config::{AwsFiles, S3Settings, Settings};

use crate::aws::{self, Resolved};
use crate::store::Transports;
use crate::{FetchError, store};

const AWS_ENDPOINT: &str = "https://s3.amazonaws.com";

/// The operator for one bucket and the hint its access-denied errors carry.
pub(crate) async fn setup(
    bucket: &str,
    settings: &Settings,
    transports: &mut Transports,
) -> Result<(Operator, Arc<str>), FetchError> {
    let env = &settings.cloud;
    let files = AwsFiles::load(env);
    let resolved = S3Settings::resolve(bucket, &settings.file.s3, env, &files)
        .map_err(|reason| FetchError::Config { reason })?;
    let region = match &resolved.region {
        Some((region, _)) => region.clone(),
        None => detect_region(bucket, transports).await?,
    };
    let builder = builder(&resolved, &region);
    let (builder, hint) = sign(builder, &resolved, settings, &files, transports).await?;
    let operator = Operator::new(builder).map_err(|e| store::classify(&e, &hint))?;
    Ok((transports.attach(operator), Arc::from(hint)))
}

/// The S3 service for `settings`, unsigned so far.
fn builder(settings: &S3Settings, region: &str) -> S3 {
    let mut builder = S3::default()
        .bucket(&settings.bucket)
        .region(region)
        .root("/")
        // ptex resolves endpoint, region and credentials itself (ptex-config, crate::aws).
        .disable_config_load()
        .disable_ec2_metadata();
    if let Some((endpoint, _)) = &settings.endpoint {
        builder = builder.endpoint(endpoint);
    }
    if settings.virtual_host {
        builder = builder.enable_virtual_host_style();
    }
    if settings.requester_pays {
        builder = builder.enable_request_payer();
    }
    builder
}

/// Signs `builder` with the credentials the chain finds for the profile (once per run and
/// profile), or leaves it unsigned; with the hint access-denied errors carry.
async fn sign(
    builder: S3,
    resolved: &S3Settings,
    settings: &Settings,
    files: &AwsFiles,
    transports: &mut Transports,
) -> Result<(S3, String), FetchError> {
    let bucket = &resolved.bucket;
    if resolved.anonymous {
        let hint = "the config reads this bucket anonymously (unsigned); remove `anonymous` to \
                    sign requests";
        return Ok((builder.skip_signature(), hint.to_string()));
    }
    let choice = &resolved.profile;
    let found = match transports.aws.get(&choice.name) {
        Some(found) => found.clone(),
        None => {
            let clients = (&transports.main, &transports.probe_client);
            let found = aws::resolve(
                choice,
                &settings.cloud,
                files,
                clients,
                transports.step_limit,
            )
            .await;
            transports.aws.insert(choice.name.clone(), found.clone());
            found
        }
    };
    match found {
        Ok(Resolved::Found { credential, from }) => {
            let mut builder = builder
                .access_key_id(&credential.access_key_id)
                .secret_access_key(&credential.secret_access_key);
            if let Some(token) = &credential.session_token {
                builder = builder.session_token(token);
            }
            let hint = format!(
                "signed with AWS credentials from {from}; check that they may read s3://{bucket}"
            );
            Ok((builder, hint))
        }
        Ok(Resolved::NotFound { tried }) => {
            let hint = format!(
                "no AWS credentials found (tried {}), so the request was unsigned; set \
                 AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE",
                tried.join(", ")
            );
            Ok((builder.skip_signature(), hint))
        }
        Err(failed) => Err(FetchError::Credentials {
            step: failed.step,
            reason: failed.reason,
        }),
    }
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
