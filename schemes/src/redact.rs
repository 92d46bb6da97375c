//! Display-safe URLs: userinfo, every query value but a few known harmless ones, and the
//! fragment are masked, so a URL can go into any message or log line.

use url::Url;

/// The mask that replaces a secret.
const MASK: &str = "REDACTED";

/// Query parameter names (lowercase) whose values are never secret and help a reader tell
/// URLs apart. Every other value is masked: signed URLs, SAS tokens and API keys use names
/// no list of secret names can keep up with.
const HARMLESS_PARAMS: &[&str] = &[
    "versionid",
    "version",
    "v",
    "generation",
    "alt",
    "ref",
    "arch",
    "os",
    "platform",
    "format",
    "response-content-type",
    "response-content-disposition",
    "x-amz-algorithm",
    "x-amz-date",
    "x-amz-expires",
    "x-amz-signedheaders",
    "x-goog-algorithm",
    "x-goog-date",
    "x-goog-expires",
    "x-goog-signedheaders",
];

/// `text` with userinfo, query values (but harmless ones) and the fragment masked. Text
/// that is not a URL (or is a relative one) is returned with anything that looks like
/// userinfo, and everything after a `?` or `#`, masked.
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
                let harmless = HARMLESS_PARAMS.contains(&k.to_ascii_lowercase().as_str());
                match (harmless, v.is_empty()) {
                    (true, _) => (k.into_owned(), v.into_owned()),
                    // A bare `?TOKEN` is all name.
                    (false, true) => (MASK.to_string(), String::new()),
                    (false, false) => (k.into_owned(), MASK.to_string()),
                }
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    // OAuth's implicit flow puts `#access_token=…` there.
    if url.fragment().is_some() {
        url.set_fragment(Some(MASK));
    }
    url.to_string()
}

fn redact_unparsed(text: &str) -> String {
    let (text, tail) = match text.find(['?', '#']) {
        Some(at) => (&text[..at], format!("{}{MASK}", &text[at..=at])),
        None => (text, String::new()),
    };
    let shown = match (text.find("://"), text.rfind('@')) {
        (Some(start), Some(at)) if at > start + 3 => {
            format!("{}{MASK}{}", &text[..start + 3], &text[at..])
        }
        _ => text.to_string(),
    };
    shown + &tail
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
    fn masks_query_values_but_harmless_ones() {
        let shown = redact_url(
            "https://b.s3.amazonaws.com/k?X-Amz-Credential=AKIA&X-Amz-Signature=abc&versionId=7\
             &jwt=eyJ&sv=2020&se=now&code=c0de",
        );
        for secret in ["AKIA", "abc", "eyJ", "c0de"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(shown.contains("versionId=7"), "{shown}");
    }

    #[test]
    fn masks_bare_query_tokens() {
        let shown = redact_url("https://h.example/f?ghp_s3cret&v=2");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("v=2"), "{shown}");
    }

    #[test]
    fn masks_fragments() {
        let shown = redact_url("https://h.example/cb#access_token=s3cret&x=1");
        assert_eq!(shown, "https://h.example/cb#REDACTED");
    }

    #[test]
    fn leaves_plain_urls_alone() {
        let url = "https://h.example/a/b.tar.gz";
        assert_eq!(redact_url(url), url);
    }

    #[test]
    fn masks_unparseable_text() {
        assert_eq!(redact_url("ht tp://u:p@h/x"), "ht tp://REDACTED@h/x");
        assert_eq!(
            redact_url("http://h:99999/x?token=s3cret"),
            "http://h:99999/x?REDACTED"
        );
        assert_eq!(
            redact_url("/relative?X-Amz-Signature=s"),
            "/relative?REDACTED"
        );
        assert_eq!(redact_url("/relative#access_token=s"), "/relative#REDACTED");
    }
}
