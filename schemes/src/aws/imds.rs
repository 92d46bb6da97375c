//! The EC2 instance metadata service (IMDS): a session token first (IMDSv2), plain requests
//! when the token PUT fails or hangs (IMDSv1, e.g. a container behind a hop limit of 1), all
//! within the probe budget. No answer at all means there is no metadata service.

use reqsign_aws_v4::Credential;
use serde::Deserialize;

use crate::client::PROBE_TIMEOUT;

const DEFAULT_ENDPOINT: &str = "http://169.254.169.254";

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Answer {
    #[serde(default)]
    code: Option<String>,
    access_key_id: String,
    secret_access_key: String,
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    expiration: Option<String>,
}

/// The instance role's credentials; `Ok(None)` when no metadata service answers or the
/// instance has no role; `Err` when one answers but its credentials cannot be used.
pub(crate) async fn credentials(
    client: &reqwest::Client,
    endpoint: Option<String>,
) -> Result<Option<Credential>, String> {
    let base = endpoint.unwrap_or_else(|| DEFAULT_ENDPOINT.to_string());
    let base = base.trim_end_matches('/');
    match tokio::time::timeout(PROBE_TIMEOUT, fetch(client, base)).await {
        Ok(result) => result,
        Err(_) => Ok(None),
    }
}

async fn fetch(client: &reqwest::Client, base: &str) -> Result<Option<Credential>, String> {
    // IMDSv2 token; half the budget at most, so the IMDSv1 requests still fit.
    let put = async {
        let response = client
            .put(format!("{base}/latest/api/token"))
            .header("x-aws-ec2-metadata-token-ttl-seconds", "21600")
            .send()
            .await?;
        let ok = response.status().is_success();
        Ok::<_, reqwest::Error>(ok.then_some(response.text().await?))
    };
    let token = match tokio::time::timeout(PROBE_TIMEOUT / 2, put).await {
        Ok(Ok(token)) => token.filter(|t| !t.trim().is_empty()),
        // Nothing listens: there is no metadata service.
        Ok(Err(e)) if e.is_connect() => return Ok(None),
        // A refusal (403/404/405), a broken answer or a hang: try IMDSv1.
        _ => None,
    };
    let get = |path: String| {
        let mut request = client.get(format!(
            "{base}/latest/meta-data/iam/security-credentials/{path}"
        ));
        if let Some(token) = &token {
            request = request.header("x-aws-ec2-metadata-token", token);
        }
        request.send()
    };
    let Ok(response) = get(String::new()).await else {
        return Ok(None);
    };
    if !response.status().is_success() {
        // No instance profile (404), or IMDSv1 refused (401): nothing to sign with.
        return Ok(None);
    }
    let roles = response.text().await.unwrap_or_default();
    let Some(role) = roles.lines().map(str::trim).find(|l| !l.is_empty()) else {
        return Ok(None);
    };
    let response = get(role.to_string())
        .await
        .map_err(|e| format!("role {role:?}: {}", short(&e)))?;
    if !response.status().is_success() {
        return Err(format!(
            "role {role:?}: HTTP {}",
            response.status().as_u16()
        ));
    }
    let body = response
        .bytes()
        .await
        .map_err(|e| format!("role {role:?}: {}", short(&e)))?;
    let answer: Answer = serde_json::from_slice(&body)
        .map_err(|_| format!("role {role:?}: the answer is not the expected JSON"))?;
    if let Some(code) = answer.code.filter(|c| c != "Success") {
        return Err(format!("role {role:?}: the service answered {code}"));
    }
    Ok(Some(Credential {
        access_key_id: answer.access_key_id,
        secret_access_key: answer.secret_access_key,
        session_token: answer.token.filter(|t| !t.is_empty()),
        expires_in: match answer.expiration {
            Some(text) => Some(
                text.parse()
                    .map_err(|_| format!("role {role:?}: unreadable Expiration"))?,
            ),
            None => None,
        },
    }))
}

fn short(err: &reqwest::Error) -> String {
    if err.is_timeout() {
        "no answer in time".to_string()
    } else {
        "the request failed".to_string()
    }
}
