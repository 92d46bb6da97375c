//! `gs://bucket/object` on opendal's GCS service. The endpoint and the one credential
//! source to use are resolved by [`ptex_config::GcsSettings`] (an access token, the
//! emulator, a key file, the GCE metadata server, else unsigned); this module fetches the
//! token, once per run ([`crate::google`]), and builds the operator.

use std::path::Path;
use std::sync::Arc;

use opendal::{Operator, services::Gcs};
use ptex_config::{CloudEnv, GcsCredentials, GcsSettings, Settings};

use crate::store::Transports;
use crate::{FetchError, google, store};

/// The operator for one bucket and the hint its access-denied errors carry.
pub(crate) async fn setup(
    bucket: &str,
    settings: &Settings,
    transports: &mut Transports,
) -> Result<(Operator, Arc<str>), FetchError> {
    let resolved = GcsSettings::resolve(&settings.file.gs, &settings.cloud)
        .map_err(|reason| FetchError::Config { reason })?;
    let mut builder = Gcs::default()
        .bucket(bucket)
        .root("/")
        .disable_config_load()
        .disable_vm_metadata();
    if let Some(endpoint) = &resolved.endpoint {
        builder = builder.endpoint(endpoint);
    }
    let (token, hint) = match &resolved.credentials {
        GcsCredentials::Anonymous => (None, "the config reads GCS anonymously (unsigned)".into()),
        GcsCredentials::Token { var, token } => (
            Some(token.clone()),
            format!("signed with the access token in {var}; check that it may read gs://{bucket}"),
        ),
        GcsCredentials::Emulator => (
            None,
            "the emulator (STORAGE_EMULATOR_HOST) is read unsigned".into(),
        ),
        GcsCredentials::KeyFile { path, from } => (
            Some(key_file_token(path, from, &settings.cloud, transports).await?),
            format!(
                "signed with a token from the key file {} (from {from}); check that it may \
                 read gs://{bucket}",
                path.display()
            ),
        ),
        GcsCredentials::MetadataServer { host, token_var } => {
            match metadata_token(host, transports).await? {
                Some(token) => (
                    Some(token),
                    "signed with the metadata server's service account".into(),
                ),
                None => (
                    None,
                    format!(
                        "no Google credentials found (tried {token_var}, \
                         GOOGLE_APPLICATION_CREDENTIALS, gcloud application-default \
                         credentials, the metadata server), so the request was unsigned"
                    ),
                ),
            }
        }
    };
    builder = match token {
        Some(token) => builder.token(token),
        None => builder.skip_signature(),
    };
    let operator = Operator::new(builder).map_err(|e| store::classify(&e, &hint))?;
    Ok((transports.attach(operator), Arc::from(hint)))
}

/// A token from the key file at `path`, exchanged once per run.
async fn key_file_token(
    path: &Path,
    from: &str,
    env: &CloudEnv,
    transports: &mut Transports,
) -> Result<String, FetchError> {
    let cache_key = format!("key file {}", path.display());
    let token = match transports.google.get(&cache_key) {
        Some(token) => token.clone(),
        None => {
            let limit = transports.step_limit;
            let token = google::key_file_token(path, env, &transports.main, limit)
                .await
                .map(Some);
            transports.google.insert(cache_key, token.clone());
            token
        }
    };
    let token = token.map_err(|reason| FetchError::Credentials {
        step: format!("the Google key file {} (from {from})", path.display()),
        reason,
    })?;
    // The cache holds `Option`s for the metadata server; a key file always gives a token.
    Ok(token.unwrap_or_default())
}

/// A token from the GCE metadata server at `host`, if a Google one answers; asked once per
/// run.
async fn metadata_token(
    host: &str,
    transports: &mut Transports,
) -> Result<Option<String>, FetchError> {
    const KEY: &str = "metadata server";
    let token = match transports.google.get(KEY) {
        Some(token) => token.clone(),
        None => {
            let token = match google::metadata_server(host, &transports.probe_client).await {
                true => google::metadata_token(host, &transports.probe_client)
                    .await
                    .map(Some),
                false => Ok(None),
            };
            transports.google.insert(KEY.to_string(), token.clone());
            token
        }
    };
    token.map_err(|reason| FetchError::Credentials {
        step: "the GCE metadata server".to_string(),
        reason,
    })
}
