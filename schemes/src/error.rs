//! The one error vocabulary of every scheme, and what the caller should do about each error.

/// What a caller should do after a failed attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// A transient failure: the same source may succeed if tried again.
    Retry,
    /// This source will not serve the file: try the next one.
    NextSource,
    /// No source can succeed (bad input from the user): stop.
    GiveUp,
}

/// Why a source could not be opened or read. Messages never contain secrets.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The URL does not parse.
    #[error("invalid URL {url}: {reason}")]
    InvalidUrl { url: String, reason: String },
    /// The URL's scheme is not one ptex speaks.
    #[error("unsupported URL scheme `{scheme}` (supported: {})", crate::scheme::Scheme::supported().collect::<Vec<_>>().join(", "))]
    UnsupportedScheme { scheme: String },
    /// ptex speaks the URL's scheme, but this build was made without it.
    #[error(
        "this ptex was built without support for `{scheme}://` URLs (cargo feature `{feature}`); \
         use a build with default features"
    )]
    SchemeNotBuilt {
        scheme: &'static str,
        feature: &'static str,
    },
    /// Uploads go to object stores, local directories and (only where no object is yet)
    /// HTTP caches.
    #[error(
        "cannot upload to `{scheme}` URLs this way (uploads go to s3, gs or file URLs; http(s) caches take new objects only)"
    )]
    CannotUpload { scheme: String },
    /// A request header given by the user cannot be sent.
    #[error("invalid header {header:?}: {reason}")]
    InvalidHeader { header: String, reason: String },
    /// The HTTP client could not be set up (for example unreadable TLS roots).
    #[error("cannot set up the HTTP client: {reason}")]
    Setup { reason: String },
    /// The source does not have the file (`detail` says how we know, e.g. `HTTP 404`).
    #[error("not found ({detail})")]
    NotFound { detail: String },
    /// The source refused our credentials, or we sent none; `hint` says which credentials
    /// were tried (never their values) and where to set them.
    #[error("access denied ({detail}): {hint}")]
    AccessDenied { detail: String, hint: String },
    /// A credential source the user configured could not give credentials (as opposed to
    /// having none): `step` names it (e.g. `profile "corp"`), `reason` says why.
    #[error("cannot get credentials from {step}: {reason}")]
    Credentials { step: String, reason: String },
    /// A credential helper gave no headers (`reason` never quotes its output).
    #[error("credential helper {helper} gave no credentials: {reason}")]
    CredentialHelper { helper: String, reason: String },
    /// The settings for this source cannot work (e.g. an unknown region or a bad endpoint).
    #[error("bad configuration: {reason}")]
    Config { reason: String },
    /// Any other unsuccessful HTTP status, with the wait the server asked for (`Retry-After`).
    #[error("HTTP {status}{}", reason_suffix(*status))]
    HttpStatus {
        status: u16,
        retry_after: Option<std::time::Duration>,
    },
    /// No connection could be made (the network may be down, or slow to answer).
    #[error("could not connect: {reason}")]
    Connect { reason: String },
    /// The host answered that nothing listens there: a definite answer, not retried.
    #[error("could not connect: {reason}")]
    Refused { reason: String },
    /// The peer's TLS certificate is not trusted, or the handshake failed.
    #[error("TLS failure: {reason}{}", tls_hint(reason))]
    Tls { reason: String },
    /// The server did not answer, or stopped sending, in time.
    #[error("timed out: {reason}")]
    Timeout { reason: String },
    /// The storage service failed in a way that may pass (throttling, 5xx, a dropped
    /// connection).
    #[error("temporary failure: {reason}")]
    Transient { reason: String },
    /// The storage service failed in a way that will not pass by retrying.
    #[error("storage error: {reason}")]
    Storage { reason: String },
    /// A write that must not replace an object found one there.
    #[error("the object already exists")]
    AlreadyThere,
    /// The transfer broke off after it began.
    #[error("transfer interrupted: {reason}")]
    Interrupted { reason: String },
    /// A ranged request was answered with other bytes than the ones asked for.
    #[error("the server sent a part of the file that was not asked for")]
    WrongPart,
    /// Redirects went on for too long.
    #[error("too many redirects (more than {max}): {chain}")]
    TooManyRedirects { max: usize, chain: String },
    /// A redirect went somewhere ptex will not follow.
    #[error("refused redirect to {to}: {reason}")]
    RedirectRefused { to: String, reason: String },
    /// `error` happened at the end of the redirect `chain` (redacted URLs).
    #[error("{error} (redirected: {chain})")]
    Redirected {
        chain: String,
        error: Box<FetchError>,
    },
}

impl FetchError {
    /// What the caller should do next.
    pub fn disposition(&self) -> Disposition {
        match self {
            FetchError::Redirected { error, .. } => error.disposition(),
            FetchError::InvalidHeader { .. } | FetchError::Setup { .. } => Disposition::GiveUp,
            FetchError::HttpStatus { status, .. }
                if *status >= 500 || matches!(status, 408 | 429) =>
            {
                Disposition::Retry
            }
            FetchError::Connect { .. }
            | FetchError::Transient { .. }
            | FetchError::Timeout { .. }
            | FetchError::WrongPart
            | FetchError::Interrupted { .. } => Disposition::Retry,
            _ => Disposition::NextSource,
        }
    }
}

impl FetchError {
    /// How long the source asked us to wait before trying again, if it did.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            FetchError::Redirected { error, .. } => error.retry_after(),
            FetchError::HttpStatus { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

impl FetchError {
    /// The error itself, without the redirects that led to it.
    pub fn innermost(&self) -> &FetchError {
        match self {
            FetchError::Redirected { error, .. } => error.innermost(),
            other => other,
        }
    }
}

fn reason_suffix(status: u16) -> &'static str {
    match status {
        400 => " Bad Request",
        405 => " Method Not Allowed",
        408 => " Request Timeout",
        410 => " Gone",
        416 => " Range Not Satisfiable",
        429 => " Too Many Requests",
        500 => " Internal Server Error",
        502 => " Bad Gateway",
        503 => " Service Unavailable",
        504 => " Gateway Timeout",
        _ => "",
    }
}

/// What a certificate refused as `CaUsedAsEndEntity` means, and what to do about it.
pub(crate) const CA_AS_LEAF: &str = "the server presents a CA certificate (CA:TRUE, as `openssl \
     req -x509` makes) as its own certificate, which is refused unless trusted exactly: put \
     that very certificate in SSL_CERT_FILE, or give the server a certificate made with \
     `-addext basicConstraints=critical,CA:FALSE`";

/// What a server's `CertificateRequired` alert means, and what to do about it.
pub(crate) const CLIENT_CERT_REQUIRED: &str = "the server requires a client certificate \
     (mutual TLS): set SSL_CLIENT_CERT, or the host's client_cert in the config's auth, to a \
     PEM file with the certificate and its private key";

/// The advice that follows a TLS failure's reason: where trusted roots come from, unless
/// the reason already says what to do.
fn tls_hint(reason: &str) -> &'static str {
    match reason {
        CA_AS_LEAF | CLIENT_CERT_REQUIRED => "",
        _ => {
            " (add trusted roots with SSL_CERT_FILE, SSL_CERT_DIR, CURL_CA_BUNDLE or \
              REQUESTS_CA_BUNDLE)"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason() -> String {
        "r".to_string()
    }

    /// Every HTTP status a server can send, and what ptex does about it.
    #[test]
    fn every_http_status_has_its_disposition() {
        for status in 100..=599u16 {
            let error = FetchError::HttpStatus {
                status,
                retry_after: None,
            };
            let expected = match status {
                408 | 429 | 500..=599 => Disposition::Retry,
                _ => Disposition::NextSource,
            };
            assert_eq!(error.disposition(), expected, "HTTP {status}");
            let redirected = FetchError::Redirected {
                chain: "a -> b".into(),
                error: Box::new(error),
            };
            assert_eq!(
                redirected.disposition(),
                expected,
                "redirected HTTP {status}"
            );
        }
    }

    /// Every error kind, and what ptex does about it.
    #[test]
    fn every_error_kind_has_its_disposition() {
        use Disposition::{GiveUp, NextSource, Retry};
        let table = [
            (
                FetchError::InvalidUrl {
                    url: "u".into(),
                    reason: reason(),
                },
                NextSource,
            ),
            (
                FetchError::UnsupportedScheme { scheme: "x".into() },
                NextSource,
            ),
            (
                FetchError::SchemeNotBuilt {
                    scheme: "s3",
                    feature: "s3",
                },
                NextSource,
            ),
            (FetchError::CannotUpload { scheme: "x".into() }, NextSource),
            (
                FetchError::InvalidHeader {
                    header: "h".into(),
                    reason: reason(),
                },
                GiveUp,
            ),
            (FetchError::Setup { reason: reason() }, GiveUp),
            (FetchError::NotFound { detail: reason() }, NextSource),
            (
                FetchError::AccessDenied {
                    detail: reason(),
                    hint: reason(),
                },
                NextSource,
            ),
            (
                FetchError::Credentials {
                    step: "s".into(),
                    reason: reason(),
                },
                NextSource,
            ),
            (
                FetchError::CredentialHelper {
                    helper: "h".into(),
                    reason: reason(),
                },
                NextSource,
            ),
            (FetchError::Config { reason: reason() }, NextSource),
            (FetchError::Connect { reason: reason() }, Retry),
            (FetchError::Refused { reason: reason() }, NextSource),
            (FetchError::Tls { reason: reason() }, NextSource),
            (FetchError::Timeout { reason: reason() }, Retry),
            (FetchError::Transient { reason: reason() }, Retry),
            (FetchError::Storage { reason: reason() }, NextSource),
            (FetchError::AlreadyThere, NextSource),
            (FetchError::Interrupted { reason: reason() }, Retry),
            (FetchError::WrongPart, Retry),
            (
                FetchError::TooManyRedirects {
                    max: 10,
                    chain: "c".into(),
                },
                NextSource,
            ),
            (
                FetchError::RedirectRefused {
                    to: "t".into(),
                    reason: reason(),
                },
                NextSource,
            ),
        ];
        for (error, expected) in table {
            assert_eq!(error.disposition(), expected, "{error}");
        }
    }

    #[test]
    fn retry_after_is_read_through_redirects() {
        let wait = Some(std::time::Duration::from_secs(3));
        let error = FetchError::Redirected {
            chain: "c".into(),
            error: Box::new(FetchError::HttpStatus {
                status: 503,
                retry_after: wait,
            }),
        };
        assert_eq!(error.retry_after(), wait);
        assert!(matches!(error.innermost(), FetchError::HttpStatus { .. }));
    }
}
