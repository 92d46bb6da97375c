//! What every HTTP client of ptex shares: the one client builder, the one redirect rule, and
//! the one reading of a reqwest error (its cause chain) into our vocabulary.

use ptex_config::Settings;
use url::Url;

use crate::trust::For;
use crate::{FetchError, redact_url};

/// The most redirects followed for one request, as libcurl and reqwest do by default.
pub(crate) const MAX_REDIRECTS: usize = 10;

/// How long a credential or region probe (instance metadata, region detection) may take in
/// all: when no metadata service exists, ptex must not hang on it.
#[cfg(any(feature = "s3", feature = "gcs"))]
pub(crate) const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

const USER_AGENT: &str = concat!("ptex/", env!("CARGO_PKG_VERSION"));

/// A reqwest client builder with what every ptex client shares: the user agent, the user's
/// timeouts, no retries of its own (ours are counted), no Referer, no content decoding, and
/// our TLS trust (see [`crate::trust`]) with `SSL_CLIENT_CERT` if set.
pub(crate) fn client_builder(settings: &Settings) -> Result<reqwest::ClientBuilder, FetchError> {
    builder_presenting(settings, settings.tls.client_cert.as_deref(), For::Web)
}

/// [`client_builder`] for the storage clients, which also trust `AWS_CA_BUNDLE`.
#[cfg(any(feature = "s3", feature = "gcs", feature = "ftp"))]
pub(crate) fn store_client_builder(
    settings: &Settings,
) -> Result<reqwest::ClientBuilder, FetchError> {
    builder_presenting(settings, settings.tls.client_cert.as_deref(), For::Stores)
}

/// A client builder for `purpose` presenting `client_cert` (a PEM file with its key), if any.
pub(crate) fn builder_presenting(
    settings: &Settings,
    client_cert: Option<&std::path::Path>,
    purpose: For,
) -> Result<reqwest::ClientBuilder, FetchError> {
    let tls = crate::trust::client_config(settings, client_cert, purpose)?;
    Ok(base(settings).tls_backend_preconfigured(tls))
}

/// A client builder for plain http only: its TLS part trusts nothing, so building it loads
/// no roots.
pub(crate) fn plain_builder(settings: &Settings) -> Result<reqwest::ClientBuilder, FetchError> {
    Ok(base(settings).tls_backend_preconfigured(crate::trust::trusting_nothing()?))
}

/// What every client shares, TLS aside.
fn base(settings: &Settings) -> reqwest::ClientBuilder {
    // The one crypto provider compiled in; a second install attempt is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .retry(reqwest::retry::never())
        .referer(false)
        .connect_timeout(settings.timeouts.connect)
        .read_timeout(settings.timeouts.read)
}

/// Why ptex does not follow a redirect from `from` to `to`, if it does not: http(s) only,
/// never https -> http, and, when the request carries credentials reqwest does not know to
/// drop (`same_origin`: a store's signed headers), never to another origin.
pub(crate) fn redirect_refusal(from: &Url, to: &Url, same_origin: bool) -> Option<String> {
    if !matches!(to.scheme(), "http" | "https") {
        Some("only http and https redirects are followed".into())
    } else if to.host_str().is_none_or(str::is_empty) {
        Some("no host".into())
    } else if from.scheme() == "https" && to.scheme() == "http" {
        Some("a redirect from https to plain http is not followed".into())
    } else if same_origin && from.origin() != to.origin() {
        let shown = redact_url(to.as_str());
        Some(format!(
            "a redirect to another origin ({shown}) is not followed: the request carries \
             credentials"
        ))
    } else {
        None
    }
}

/// The redirect rule as a reqwest policy, for opendal's services, which rely on the
/// transport following redirects: [`redirect_refusal`] with `same_origin`, at most
/// [`MAX_REDIRECTS`]. A signature made for one host is no good at another anyway.
#[cfg(any(feature = "s3", feature = "gcs", feature = "ftp"))]
pub(crate) fn same_origin_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let refusal = match attempt.previous().last() {
            _ if attempt.previous().len() > MAX_REDIRECTS => Some("too many redirects".into()),
            Some(from) => redirect_refusal(from, attempt.url(), true),
            None => None,
        };
        match refusal {
            Some(reason) => attempt.error(reason),
            None => attempt.follow(),
        }
    })
}

const REFUSED: &str = "connection refused";

/// Sorts a reqwest error into our vocabulary, without the URL reqwest puts in its message.
pub(crate) fn classify(err: &reqwest::Error) -> FetchError {
    let reason = describe(err);
    if err.is_timeout() {
        FetchError::Timeout { reason }
    } else if is_tls(err) {
        FetchError::Tls { reason }
    } else if err.is_connect() && reason == REFUSED {
        FetchError::Refused { reason }
    } else if err.is_connect() {
        FetchError::Connect { reason }
    } else {
        FetchError::Interrupted { reason }
    }
}

fn is_tls(err: &reqwest::Error) -> bool {
    causes(err).any(|cause| rustls_error(cause).is_some())
}

/// The rustls error in `cause`, if it is one: rustls errors arrive wrapped in one or more
/// layers of io::Error, whose `source()` skips the wrapped error, so they are unwrapped by
/// hand.
fn rustls_error<'a>(cause: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut current = Some(cause);
    while let Some(e) = current {
        if let Some(found) = e.downcast_ref::<rustls::Error>() {
            return Some(found);
        }
        current = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .map(|inner| inner as &(dyn std::error::Error + 'static));
    }
    None
}

/// The innermost cause of `err`, in plain words; reqwest's own message (which carries the
/// unredacted URL) is never used.
pub(crate) fn describe(err: &reqwest::Error) -> String {
    let innermost = causes(err).skip(1).last();
    if let Some(io) = innermost.and_then(|e| e.downcast_ref::<std::io::Error>()) {
        match io.kind() {
            std::io::ErrorKind::ConnectionRefused => return REFUSED.into(),
            std::io::ErrorKind::ConnectionReset => return "connection reset by peer".into(),
            std::io::ErrorKind::TimedOut => return "operation timed out".into(),
            _ => {}
        }
    }
    if let Some(words) =
        causes(err).find_map(|cause| rustls_error(cause).and_then(crate::trust::plain_words))
    {
        return words.to_string();
    }
    match innermost {
        Some(cause) => cause.to_string(),
        None if err.is_timeout() => "operation timed out".into(),
        None => kind_of(err),
    }
}

/// `err` and the errors under it, outermost first.
pub(crate) fn causes<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(err);
    std::iter::from_fn(move || {
        let current = next?;
        next = current.source();
        Some(current)
    })
}

/// A plain description of an error that has no underlying cause to show.
fn kind_of(err: &reqwest::Error) -> String {
    let kind = if err.is_body() {
        "error reading the response body"
    } else if err.is_decode() {
        "error decoding the response"
    } else if err.is_builder() {
        "the request could not be built"
    } else {
        "the request failed"
    };
    kind.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The one redirect rule, for plain requests and for a store's signed ones.
    #[test]
    fn redirect_rule() {
        let table: [(&str, &str, bool, Option<&str>); 9] = [
            ("http://a/x", "http://b/y", false, None),
            ("http://a/x", "https://b/y", false, None),
            ("https://a/x", "https://b/y", false, None),
            (
                "https://a/x",
                "http://a/y",
                false,
                Some("from https to plain http"),
            ),
            (
                "http://a/x",
                "ftp://a/y",
                false,
                Some("only http and https"),
            ),
            (
                "http://a/x",
                "file:///etc/passwd",
                false,
                Some("only http and https"),
            ),
            ("https://a/x", "https://a/y", true, None),
            (
                "https://a/x",
                "https://b/y",
                true,
                Some("another origin (https://b/y)"),
            ),
            (
                "https://a/x",
                "https://a:8443/y",
                true,
                Some("another origin"),
            ),
        ];
        for (from, to, same_origin, refused) in table {
            let got = redirect_refusal(&from.parse().unwrap(), &to.parse().unwrap(), same_origin);
            match (refused, &got) {
                (None, None) => {}
                (Some(words), Some(reason)) if reason.contains(words) => {}
                _ => panic!("{from} -> {to} (same origin {same_origin}): {got:?}"),
            }
        }
    }
}
