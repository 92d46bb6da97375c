//! `gs://bucket/object` on opendal's GCS service. Credentials, first found wins: an access
//! token (the config's `token_env` variable, or `GOOGLE_OAUTH_ACCESS_TOKEN`), a key file (the
//! config's `credentials_file`, `GOOGLE_APPLICATION_CREDENTIALS`, or gcloud's
//! application-default file), the metadata server when one answers within about 2 s; else
//! the object is read unsigned (public objects). `STORAGE_EMULATOR_HOST` points it at an
//! emulator, as the gcloud tools do.

use std::path::PathBuf;
use std::sync::Arc;

use opendal::{Operator, services::Gcs};
use ptex_config::{Env, GcsConfig, ProcessEnv, check_endpoint};

use crate::store::{PROBE_TIMEOUT, Transports};
use crate::{FetchError, store};

/// Where the GCE metadata server listens when there is one.
const METADATA_ADDR: &str = "169.254.169.254:80";

/// The operator for one bucket and the hint its access-denied errors carry.
pub(crate) async fn setup(
    bucket: &str,
    config: &GcsConfig,
    transports: &Transports,
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
    } else if let Some((path, from)) = key_file {
        builder = builder
            .credential_path(&path.to_string_lossy())
            .disable_vm_metadata();
        format!(
            "signed with the key file {} (from {from}); check that it may read gs://{bucket}",
            path.display()
        )
    } else if emulator.is_none() && metadata_server_answers().await {
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

/// Whether a metadata server accepts connections, within the probe budget.
async fn metadata_server_answers() -> bool {
    matches!(
        tokio::time::timeout(PROBE_TIMEOUT, tokio::net::TcpStream::connect(METADATA_ADDR)).await,
        Ok(Ok(_))
    )
}
