//! `gs://bucket/object` on opendal's GCS service. Credentials, first found wins: an access
//! token (the config's `token_env` variable, or `GOOGLE_OAUTH_ACCESS_TOKEN`), a key file (the
//! config's `credentials_file`, `GOOGLE_APPLICATION_CREDENTIALS`, or gcloud's
//! application-default file), the GCE metadata server when a Google one answers within
//! about 2 s; else the object is read unsigned (public objects). Tokens are fetched once per
//! run ([`crate::google`]). `STORAGE_EMULATOR_HOST` points it at an emulator, as the gcloud
//! tools do, and then no token is fetched (an emulator checks none).

use std::path::PathBuf;
use std::sync::Arc;

use opendal::{Operator, services::Gcs};
use ptex_config::{Env, GcsConfig, ProcessEnv, check_endpoint};

use crate::store::Transports;
use crate::{FetchError, google, store};

/// The operator for one bucket and the hint its access-denied errors carry.
pub(crate) async fn setup(
    bucket: &str,
    config: &GcsConfig,
    transports: &mut Transports,
) -> Result<(Operator, Arc<str>), FetchError> {
    let env = ProcessEnv;
    let emulator = env.non_empty("STORAGE_EMULATOR_HOST").map(|host| {
        if host.contains("://") {
            host
        } else {
            format!("http://{host}")
        }
    });
    let endpoint = emulator.clone().or_else(|| config.endpoint.clone());
    let mut builder = Gcs::default()
        .bucket(bucket)
        .root("/")
        .disable_config_load();
    if let Some(endpoint) = &endpoint {
        check_endpoint(endpoint).map_err(|reason| FetchError::Config {
            reason: format!("GCS endpoint: {reason}"),
        })?;
        builder = builder.endpoint(endpoint.trim_end_matches('/'));
    }
    let token_var = config
        .token_env
        .clone()
        .unwrap_or_else(|| "GOOGLE_OAUTH_ACCESS_TOKEN".to_string());
    let key_file = config
        .credentials_file
        .clone()
        .map(|p| (p, "the config's credentials_file"))
        .or_else(|| {
            env.non_empty("GOOGLE_APPLICATION_CREDENTIALS")
                .map(|p| (PathBuf::from(p), "GOOGLE_APPLICATION_CREDENTIALS"))
        })
        .or_else(|| gcloud_adc_file().map(|p| (p, "gcloud application-default credentials")));
    let hint = if config.anonymous == Some(true) {
        builder = builder.skip_signature().disable_vm_metadata();
        "the config reads GCS anonymously (unsigned)".to_string()
    } else if let Some(token) = env.non_empty(&token_var) {
        builder = builder.token(token).disable_vm_metadata();
        format!("signed with the access token in {token_var}; check that it may read gs://{bucket}")
    } else if emulator.is_some() {
        builder = builder.skip_signature().disable_vm_metadata();
        "the emulator (STORAGE_EMULATOR_HOST) is read unsigned".to_string()
    } else if let Some((path, from)) = key_file {
        let cache_key = format!("key file {}", path.display());
        let token = match transports.google.get(&cache_key) {
            Some(token) => token.clone(),
            None => {
                let token = google::key_file_token(&path, &transports.main, transports.step_limit)
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
        builder = builder
            .token(token.unwrap_or_default())
            .disable_vm_metadata();
        format!(
            "signed with a token from the key file {} (from {from}); check that it may read \
             gs://{bucket}",
            path.display()
        )
    } else if let Some(token) = metadata_token(&env, transports).await? {
        builder = builder.token(token).disable_vm_metadata();
        "signed with the metadata server's service account".to_string()
    } else {
        builder = builder.skip_signature().disable_vm_metadata();
        format!(
            "no Google credentials found (tried {token_var}, GOOGLE_APPLICATION_CREDENTIALS, \
             gcloud application-default credentials, the metadata server), so the request \
             was unsigned"
        )
    };
    let operator = Operator::new(builder).map_err(|e| store::classify(&e, &hint))?;
    Ok((transports.attach(operator), Arc::from(hint)))
}

/// gcloud's application-default credentials file, if it exists.
fn gcloud_adc_file() -> Option<PathBuf> {
    let dir = match ProcessEnv.non_empty("CLOUDSDK_CONFIG") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(ProcessEnv.non_empty("HOME")?).join(".config/gcloud"),
    };
    let path = dir.join("application_default_credentials.json");
    path.is_file().then_some(path)
}

/// A token from the GCE metadata server, if a Google one answers; asked once per run.
async fn metadata_token(
    env: &ProcessEnv,
    transports: &mut Transports,
) -> Result<Option<String>, FetchError> {
    const KEY: &str = "metadata server";
    let token = match transports.google.get(KEY) {
        Some(token) => token.clone(),
        None => {
            let token = match google::metadata_server(env, &transports.probe_client).await {
                Some(host) => google::metadata_token(&host, &transports.probe_client)
                    .await
                    .map(Some),
                None => Ok(None),
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
