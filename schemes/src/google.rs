//! Google access tokens for `gs://`, fetched once per run and handed to every bucket as a
//! plain bearer token (so a file read in parts costs one token exchange, not one per
//! request): from a key file (service account or authorized user, at the key file's
//! `token_uri`), or from the GCE metadata server at the address `ptex-config` resolved,
//! which is recognised by its `Metadata-Flavor: Google` answer, so another cloud's
//! metadata service is never mistaken for it.

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use opendal::HttpTransporter;
use ptex_config::CloudEnv;
use reqsign_core::{Context, ProvideCredential};
use reqsign_file_read_tokio::TokioFileRead;
use reqsign_google::{FileCredentialProvider, ServiceAccountTokenCredentialProvider};
use serde::Deserialize;

use crate::client::PROBE_TIMEOUT;
use crate::reqsign_errors::describe;

/// Where reqsign sends every OAuth2 token exchange.
const GOOGLE_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";

/// The parts of a key file ptex looks at before reqsign reads it.
#[derive(Deserialize)]
struct KeyFile {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    token_uri: Option<String>,
}

/// An access token from the key file at `path`.
pub(crate) async fn key_file_token(
    path: &Path,
    env: &CloudEnv,
    transport: &HttpTransporter,
    limit: Duration,
) -> Result<String, String> {
    let text = std::fs::read(path).map_err(|e| format!("cannot read it: {e}"))?;
    let key: KeyFile =
        serde_json::from_slice(&text).map_err(|_| "it is not a JSON key file".to_string())?;
    let ctx = Context::new()
        .with_file_read(KeyFileRead {
            key_file: path.to_string_lossy().into_owned(),
        })
        .with_http_send(TokenRoute {
            inner: transport.clone(),
            token_uri: key.token_uri.filter(|uri| uri != GOOGLE_TOKEN_URI),
        })
        .with_env(crate::reqsign_env::static_env(env));
    let exchange = async {
        let file = FileCredentialProvider::new(path.to_string_lossy());
        let credential = file
            .provide_credential(&ctx)
            .await?
            .ok_or_else(|| reqsign_core::Error::config_invalid("the key file gave nothing"))?;
        if let Some(token) = credential.token {
            return Ok(token.access_token);
        }
        let account = credential.service_account.ok_or_else(|| {
            reqsign_core::Error::config_invalid("the key file has neither a token nor a key")
        })?;
        ServiceAccountTokenCredentialProvider::new(account)
            .provide_credential(&ctx)
            .await?
            .and_then(|c| c.token)
            .map(|t| t.access_token)
            .ok_or_else(|| reqsign_core::Error::unexpected("the token exchange gave no token"))
    };
    match tokio::time::timeout(limit, exchange).await {
        Ok(Ok(token)) => Ok(token),
        Ok(Err(err)) => Err(format!("{} key file: {}", key.kind, describe(&err))),
        Err(_) => Err(format!(
            "the token exchange gave no answer within {:.0} s",
            limit.as_secs_f64()
        )),
    }
}

/// Whether a Google metadata server answers at `host[:port]` within the probe budget.
pub(crate) async fn metadata_server(host: &str, client: &reqwest::Client) -> bool {
    let probe = client
        .get(format!("http://{host}/computeMetadata/v1/"))
        .header("Metadata-Flavor", "Google")
        .send();
    let Ok(Ok(response)) = tokio::time::timeout(PROBE_TIMEOUT, probe).await else {
        return false;
    };
    response
        .headers()
        .get("metadata-flavor")
        .is_some_and(|flavor| flavor.as_bytes() == b"Google")
}

/// An access token for the instance's default service account.
pub(crate) async fn metadata_token(host: &str, client: &reqwest::Client) -> Result<String, String> {
    #[derive(Deserialize)]
    struct Answer {
        access_token: String,
    }
    let request = async {
        let response = client
            .get(format!(
                "http://{host}/computeMetadata/v1/instance/service-accounts/default/token"
            ))
            .header("Metadata-Flavor", "Google")
            .send()
            .await
            .map_err(|_| "the token request failed".to_string())?;
        if !response.status().is_success() {
            return Err(format!("HTTP {}", response.status().as_u16()));
        }
        let body = response
            .bytes()
            .await
            .map_err(|_| "the token answer broke off".to_string())?;
        serde_json::from_slice::<Answer>(&body)
            .map(|a| a.access_token)
            .map_err(|_| "the token answer is not the expected JSON".to_string())
    };
    tokio::time::timeout(PROBE_TIMEOUT, request)
        .await
        .unwrap_or_else(|_| Err("no token within the probe budget".to_string()))
}

/// Reads files for reqsign; the key file itself with an `external_account`'s optional
/// `credential_source.format` filled in (`text`, its documented default), which reqsign
/// requires.
#[derive(Debug)]
struct KeyFileRead {
    key_file: String,
}

impl reqsign_core::FileRead for KeyFileRead {
    async fn file_read(&self, path: &str) -> reqsign_core::Result<Vec<u8>> {
        let bytes = reqsign_core::FileRead::file_read(&TokioFileRead, path).await?;
        if path != self.key_file {
            return Ok(bytes);
        }
        Ok(with_default_format(&bytes).unwrap_or(bytes))
    }
}

/// `text` with `credential_source.format` set to `{"type": "text"}` where an
/// `external_account` key leaves it out; `None` when nothing needs filling in.
fn with_default_format(text: &[u8]) -> Option<Vec<u8>> {
    let mut key: serde_json::Value = serde_json::from_slice(text).ok()?;
    if key.get("type")?.as_str()? != "external_account" {
        return None;
    }
    let source = key.get_mut("credential_source")?.as_object_mut()?;
    let takes_format = source.contains_key("file") || source.contains_key("url");
    if !takes_format || source.contains_key("format") {
        return None;
    }
    source.insert("format".to_string(), serde_json::json!({"type": "text"}));
    serde_json::to_vec(&key).ok()
}

/// Sends reqsign's token exchanges to the key file's `token_uri`.
#[derive(Clone, Debug)]
struct TokenRoute {
    inner: HttpTransporter,
    token_uri: Option<String>,
}

impl reqsign_core::HttpSend for TokenRoute {
    async fn http_send(
        &self,
        mut req: http::Request<Bytes>,
    ) -> reqsign_core::Result<http::Response<Bytes>> {
        if let Some(uri) = &self.token_uri
            && req.uri() == GOOGLE_TOKEN_URI
        {
            *req.uri_mut() = uri.parse().map_err(|_| {
                reqsign_core::Error::config_invalid(format!("bad token_uri {uri:?}"))
            })?;
            req.headers_mut().remove(http::header::HOST);
        }
        reqsign_core::HttpSend::http_send(&self.inner, req).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn external_account_format_defaults_to_text() {
        let key = br#"{"type": "external_account", "credential_source": {"file": "/t"}}"#;
        let filled: serde_json::Value =
            serde_json::from_slice(&with_default_format(key).unwrap()).unwrap();
        assert_eq!(filled["credential_source"]["format"]["type"], "text");
        let given = br#"{"type": "external_account",
            "credential_source": {"file": "/t", "format": {"type": "json",
            "subject_token_field_name": "t"}}}"#;
        assert!(with_default_format(given).is_none());
        assert!(with_default_format(br#"{"type": "service_account"}"#).is_none());
    }
}
