//! Display-safe URLs: userinfo and secret-looking query parameters are masked, so a URL can
//! go into any message or log line.

use url::Url;

/// The mask that replaces a secret.
const MASK: &str = "REDACTED";

/// Query parameter names (lowercase substrings) whose values are secrets: presigned S3 and
/// GCS URLs, SAS tokens, API keys.
const SECRET_PARAMS: &[&str] = &[
    "signature",
    "sig",
    "token",
    "key",
    "credential",
    "secret",
    "password",
    "auth",
];

/// `text` with userinfo and secret query values masked. Text that is not a URL is returned
/// with anything that looks like userinfo masked.
pub fn redact_url(text: &str) -> String {
    let Ok(mut url) = Url::parse(text) else {
        return redact_unparsed(text);
    };
    if !url.username().is_empty() || url.password().is_some() {
        // Both parts can be secrets (a token is often passed as the user name).
        let _ = url.set_username(MASK);
        let _ = url.set_password(None);
    }
    if url.query().is_some() {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let lower = k.to_ascii_lowercase();
                let secret = SECRET_PARAMS.iter().any(|s| lower.contains(s));
                let v = if secret {
                    MASK.to_string()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    url.to_string()
}

fn redact_unparsed(text: &str) -> String {
    match (text.find("://"), text.rfind('@')) {
        (Some(start), Some(at)) if at > start + 3 => {
            format!("{}{MASK}{}", &text[..start + 3], &text[at..])
        }
        _ => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_userinfo() {
        assert_eq!(
            redact_url("https://alice:hunter2@h.example/f"),
            "https://REDACTED@h.example/f"
        );
        assert_eq!(
            redact_url("https://ghp_token@h.example/f"),
            "https://REDACTED@h.example/f"
        );
    }

    #[test]
    fn masks_signed_query_values_only() {
        let shown = redact_url(
            "https://b.s3.amazonaws.com/k?X-Amz-Credential=AKIA&X-Amz-Signature=abc&versionId=7",
        );
        assert!(!shown.contains("AKIA") && !shown.contains("abc"), "{shown}");
        assert!(shown.contains("versionId=7"), "{shown}");
    }

    #[test]
    fn leaves_plain_urls_alone() {
        let url = "https://h.example/a/b.tar.gz";
        assert_eq!(redact_url(url), url);
    }

    #[test]
    fn masks_userinfo_in_unparseable_text() {
        assert_eq!(redact_url("ht tp://u:p@h/x"), "ht tp://REDACTED@h/x");
    }
}
