//! What every opendal-backed scheme shares: one HTTP transport on our reqwest client, opening
//! an object (stat, then a streaming read of exactly its length), and sorting opendal's
//! errors into our vocabulary.

#[cfg(any(feature = "s3", feature = "gcs", feature = "ftp"))]
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;

use opendal::{ErrorKind, Operator};
#[cfg(any(feature = "s3", feature = "gcs", feature = "ftp"))]
use opendal::{HttpTransporter, OperationContext};
#[cfg(any(feature = "s3", feature = "gcs", feature = "ftp"))]
use opendal_http_transport_reqwest::ReqwestTransport;
#[cfg(any(feature = "s3", feature = "gcs", feature = "ftp"))]
use ptex_config::Settings;
use ptex_config::Timeouts;

use crate::client::causes;
use crate::download::{Body, Head};
use crate::{Download, FetchError, Part};

/// The reqwest clients opendal's services use.
#[cfg(any(feature = "s3", feature = "gcs", feature = "ftp"))]
#[derive(Clone)]
pub(crate) struct Transports {
    /// For object reads: the user's timeouts.
    pub(crate) main: HttpTransporter,
    /// For probes that may have nobody listening (the metadata service, region
    /// detection): short timeouts, no redirects.
    #[cfg(any(feature = "s3", feature = "gcs"))]
    pub(crate) probe_client: reqwest::Client,
    /// How long one credential step the user configured (STS, SSO, a process) may take:
    /// connect + read timeouts.
    #[cfg(any(feature = "s3", feature = "gcs"))]
    pub(crate) step_limit: std::time::Duration,
    /// The AWS chain's answer per profile name: resolved once per run, shared by every
    /// bucket (so an absent metadata service is probed once, not once per bucket).
    #[cfg(feature = "s3")]
    pub(crate) aws: HashMap<String, Result<crate::aws::Resolved, crate::aws::Failed>>,
    /// Google access tokens (or the reason there is none) by where they came from: one
    /// token exchange per run, shared by every bucket and every part.
    #[cfg(feature = "gcs")]
    pub(crate) google: HashMap<String, Result<Option<String>, String>>,
}

#[cfg(any(feature = "s3", feature = "gcs", feature = "ftp"))]
impl Transports {
    pub(crate) fn new(settings: &Settings) -> Result<Transports, FetchError> {
        let build = |builder: reqwest::ClientBuilder| {
            builder.build().map_err(|e| FetchError::Setup {
                reason: e.to_string(),
            })
        };
        let main = build(
            crate::client::store_client_builder(settings)?
                .redirect(crate::client::same_origin_redirects()),
        )?;
        // Each client loads the trusted roots: build the probe client once, share it.
        #[cfg(any(feature = "s3", feature = "gcs"))]
        let probe_client = build(
            crate::client::store_client_builder(settings)?
                .connect_timeout(crate::client::PROBE_TIMEOUT / 2)
                .timeout(crate::client::PROBE_TIMEOUT)
                .redirect(reqwest::redirect::Policy::none()),
        )?;
        let transport = |client| HttpTransporter::new(ReqwestTransport::new(client));
        Ok(Transports {
            main: transport(main),
            #[cfg(any(feature = "s3", feature = "gcs"))]
            probe_client,
            #[cfg(any(feature = "s3", feature = "gcs"))]
            step_limit: settings.timeouts.connect + settings.timeouts.read,
            #[cfg(feature = "s3")]
            aws: HashMap::new(),
            #[cfg(feature = "gcs")]
            google: HashMap::new(),
        })
    }

    /// `operator` sending its requests through our client.
    pub(crate) fn attach(&self, operator: Operator) -> Operator {
        operator.with_context(OperationContext::new().with_http_transport(self.main.clone()))
    }
}

/// Operators set up once per run (one per bucket, or per FTP server and user), each with
/// the hint its access-denied errors carry.
#[cfg(any(feature = "s3", feature = "gcs", feature = "ftp"))]
#[derive(Default)]
pub(crate) struct Operators {
    set_up: HashMap<String, (Operator, Arc<str>)>,
    /// Whether the service serves parts of an object well enough to fetch them concurrently.
    splittable: bool,
}

#[cfg(any(feature = "s3", feature = "gcs", feature = "ftp"))]
impl Operators {
    /// Operators of a service whose objects may be fetched in concurrent parts.
    #[cfg(any(feature = "s3", feature = "gcs"))]
    pub(crate) fn splittable() -> Operators {
        Operators {
            splittable: true,
            ..Operators::default()
        }
    }

    /// Sets up the operator for `key` unless it is already there.
    pub(crate) async fn prepare(
        &mut self,
        key: &str,
        setup: impl Future<Output = Result<(Operator, Arc<str>), FetchError>>,
    ) -> Result<(), FetchError> {
        if !self.set_up.contains_key(key) {
            let entry = setup.await?;
            self.set_up.insert(key.to_string(), entry);
        }
        Ok(())
    }

    /// Object `path` on the operator prepared under `key`.
    pub(crate) fn object(&self, key: &str, path: String) -> Result<Object<'_>, FetchError> {
        let (operator, hint) = self.set_up.get(key).ok_or_else(|| FetchError::Setup {
            reason: format!("no storage client was set up for {key}"),
        })?;
        Ok(Object {
            operator,
            path,
            hint,
            splittable: self.splittable,
        })
    }
}

/// One object of a store, and how to read it.
pub(crate) struct Object<'a> {
    pub(crate) operator: &'a Operator,
    pub(crate) path: String,
    /// What access-denied errors tell the user about the credentials used.
    pub(crate) hint: &'a Arc<str>,
    pub(crate) splittable: bool,
}

/// Opens `object` (or `part` of it): its length and version first, so a wrong size fails
/// before the body, and a part of a changed object is never read (the whole object is,
/// instead, as an HTTP server does for a stale `If-Range`).
///
/// Not every service runs on our HTTP client (FTP has its own connections), so the
/// timeouts are enforced here too: connect + read for getting the object's length and a
/// reader, read for every chunk after that.
pub(crate) async fn open(
    object: &Object<'_>,
    part: Option<&Part>,
    timeouts: &Timeouts,
) -> Result<Download, FetchError> {
    let (operator, path, hint) = (object.operator, object.path.as_str(), object.hint);
    let limit = timeouts.connect + timeouts.read;
    let timed_out = || FetchError::Timeout {
        reason: format!("no answer within {:.1} s", limit.as_secs_f64()),
    };
    let meta = metadata(object, timeouts).await?;
    let length = meta.content_length();
    let validator = validator(&meta);
    let part = part.filter(|p| Some(&p.validator) == validator.as_ref() && p.start <= length);
    let range = match part {
        Some(part) => part.start..part.end.unwrap_or(length).min(length),
        None => 0..length,
    };
    let mut read = operator.reader_with(path);
    // Closes the gap between the stat and the read where the service can.
    if let Some(etag) = meta.etag()
        && operator.info().capability().read_with_if_match
    {
        read = read.if_match(etag);
    }
    let stream = tokio::time::timeout(limit, async {
        read.await?.into_bytes_stream(range.clone()).await
    })
    .await
    .map_err(|_| timed_out())?
    .map_err(|e| classify(&e, hint))?;
    let head = Head {
        content_length: Some(range.end - range.start),
        starts_at: part.map(|p| p.start),
        validator,
        splittable: object.splittable,
        ..Head::default()
    };
    Ok(Download::new(
        head,
        body(stream, hint.clone(), timeouts.read),
    ))
}

/// An object's bytes, each wait for a chunk at most `idle`, opendal's failures sorted with
/// `hint`.
fn body(stream: opendal::FuturesBytesStream, hint: Arc<str>, idle: Duration) -> Body {
    let chunks = futures_util::stream::unfold(Some(stream), move |stream| {
        let hint = hint.clone();
        async move {
            let mut stream = stream?;
            let chunk = match tokio::time::timeout(idle, stream.next()).await {
                Err(_) => Err(FetchError::Timeout {
                    reason: format!("no data for {:.1} s", idle.as_secs_f64()),
                }),
                Ok(None) => return None,
                Ok(Some(Ok(bytes))) => return Some((Ok(bytes), Some(stream))),
                Ok(Some(Err(e))) => Err(match e.get_ref().and_then(|i| i.downcast_ref()) {
                    Some(inner) => classify(inner, &hint),
                    None => FetchError::Interrupted {
                        reason: e.to_string(),
                    },
                }),
            };
            // A failed stream yields its error, then ends.
            Some((chunk, None))
        }
    });
    Box::pin(chunks)
}

/// The length of `object`, without reading it.
pub(crate) async fn stat(object: &Object<'_>, timeouts: &Timeouts) -> Result<u64, FetchError> {
    Ok(metadata(object, timeouts).await?.content_length())
}

/// The metadata of `object`, which must be a file; within connect + read timeouts.
async fn metadata(
    object: &Object<'_>,
    timeouts: &Timeouts,
) -> Result<opendal::Metadata, FetchError> {
    let limit = timeouts.connect + timeouts.read;
    let meta = tokio::time::timeout(limit, object.operator.stat(&object.path))
        .await
        .map_err(|_| FetchError::Timeout {
            reason: format!("no answer within {:.1} s", limit.as_secs_f64()),
        })?
        .map_err(|e| classify(&e, object.hint))?;
    if meta.is_dir() {
        return Err(FetchError::NotFound {
            detail: "it is a directory, not a file".to_string(),
        });
    }
    Ok(meta)
}

/// What names this version of an object: its ETag, else its length and modification time.
fn validator(meta: &opendal::Metadata) -> Option<String> {
    match (meta.etag(), meta.last_modified()) {
        (Some(etag), _) => Some(etag.to_string()),
        (None, Some(modified)) => Some(format!("{} bytes, {modified}", meta.content_length())),
        (None, None) => None,
    }
}

/// Sorts an opendal error into our vocabulary. `hint` tells the user which credentials were
/// used, for access-denied errors.
pub(crate) fn classify(err: &opendal::Error, hint: &str) -> FetchError {
    if let Some(tls) = tls_failure(err) {
        return tls;
    }
    let reason = describe(err);
    if let Some(plain) = in_plain_words(err, &reason, hint) {
        return plain;
    }
    match err.kind() {
        ErrorKind::NotFound => FetchError::NotFound {
            detail: "no such object".to_string(),
        },
        ErrorKind::IsADirectory => FetchError::NotFound {
            detail: "it is a directory, not a file".to_string(),
        },
        ErrorKind::PermissionDenied => FetchError::AccessDenied {
            detail: reason,
            hint: hint.to_string(),
        },
        ErrorKind::ConfigInvalid => FetchError::Config { reason },
        ErrorKind::RateLimited => FetchError::Transient { reason },
        _ if err.is_temporary() => FetchError::Transient { reason },
        _ => FetchError::Storage { reason },
    }
}

/// A certificate or handshake failure under opendal's error, classified as the https scheme
/// does: not retried, with the `SSL_CERT_FILE` hint.
fn tls_failure(err: &opendal::Error) -> Option<FetchError> {
    let reqwest = causes(err).find_map(|c| c.downcast_ref::<reqwest::Error>())?;
    let classified = crate::client::classify(reqwest);
    matches!(classified, FetchError::Tls { .. }).then_some(classified)
}

/// The answers S3 and GCS give as bare status codes, said plainly: a bucket in another
/// region (301, with the region S3 names in `x-amz-bucket-region`), an expired session
/// token (400 `ExpiredToken`), a missing or refused credential (401).
fn in_plain_words(err: &opendal::Error, reason: &str, hint: &str) -> Option<FetchError> {
    let full = err.to_string();
    let header = |name: &str| {
        let (_, rest) = full.split_once(&format!("\"{name}\": \""))?;
        rest.split_once('"').map(|(value, _)| value.to_string())
    };
    if reason.starts_with("HTTP 301") || reason.starts_with("PermanentRedirect") {
        let reason = match header("x-amz-bucket-region") {
            Some(region) => format!(
                "the bucket is in region {region} (x-amz-bucket-region), not the one ptex \
                 used: set AWS_REGION={region}, or the bucket's `region` in the ptex config"
            ),
            None => "the bucket answers from another endpoint or region (HTTP 301): set its \
                     region (AWS_REGION, or the bucket's `region` in the ptex config)"
                .to_string(),
        };
        return Some(FetchError::Config { reason });
    }
    let expired = [
        "ExpiredToken",
        "TokenRefreshRequired",
        "ExpiredTokenException",
    ]
    .iter()
    .any(|code| reason.starts_with(code));
    if expired {
        return Some(FetchError::AccessDenied {
            detail: reason.to_string(),
            hint: format!("the session token has expired; get fresh credentials ({hint})"),
        });
    }
    // S3 answers a HEAD with an expired session token with a bare 400 (no body, no code).
    if reason == "HTTP 400" && hint.starts_with("signed with") {
        return Some(FetchError::AccessDenied {
            detail: reason.to_string(),
            hint: format!(
                "S3 answers this when the session token has expired; get fresh credentials \
                 ({hint})"
            ),
        });
    }
    if reason.starts_with("HTTP 401") {
        return Some(FetchError::AccessDenied {
            detail: reason.to_string(),
            hint: hint.to_string(),
        });
    }
    None
}

/// opendal's message and its innermost cause, without the request context it carries.
fn describe(err: &opendal::Error) -> String {
    let innermost = causes(err).skip(1).last();
    // S3 and GCS put the reason in an XML `<Code>` (e.g. `SignatureDoesNotMatch`).
    let full = err.to_string();
    let code = full
        .split_once("<Code>")
        .and_then(|(_, rest)| rest.split_once("</Code>"))
        .map(|(code, _)| code.to_string());
    // Otherwise the HTTP status opendal keeps in its context says most (a HEAD has no body).
    let status = full
        .split_once("response: Parts { status: ")
        .and_then(|(_, rest)| rest.split(|c: char| !c.is_ascii_digit()).next())
        .filter(|digits| digits.len() == 3)
        .map(|digits| format!("HTTP {digits}"));
    let message = match (code.or(status), err.message()) {
        (Some(code), _) => code,
        (None, "") => err.kind().to_string(),
        (None, message) => message.to_string(),
    };
    match innermost {
        Some(inner) => format!("{message}: {inner}"),
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether an error is the one a case expects.
    type Expect = fn(&FetchError) -> bool;

    const HINT: &str = "signed with AWS_ACCESS_KEY_ID";

    /// Every opendal error kind ptex tells apart, and the error it becomes.
    #[test]
    fn opendal_kinds_are_sorted_by_kind() {
        let table: [(opendal::Error, Expect); 7] = [
            (opendal::Error::new(ErrorKind::NotFound, "x"), |e| {
                matches!(e, FetchError::NotFound { .. })
            }),
            (opendal::Error::new(ErrorKind::IsADirectory, "x"), |e| {
                matches!(e, FetchError::NotFound { .. })
            }),
            (
                opendal::Error::new(ErrorKind::PermissionDenied, "x"),
                |e| matches!(e, FetchError::AccessDenied { hint, .. } if hint == HINT),
            ),
            (opendal::Error::new(ErrorKind::ConfigInvalid, "x"), |e| {
                matches!(e, FetchError::Config { .. })
            }),
            (opendal::Error::new(ErrorKind::RateLimited, "x"), |e| {
                matches!(e, FetchError::Transient { .. })
            }),
            (
                opendal::Error::new(ErrorKind::Unexpected, "x").set_temporary(),
                |e| matches!(e, FetchError::Transient { .. }),
            ),
            (opendal::Error::new(ErrorKind::Unexpected, "x"), |e| {
                matches!(e, FetchError::Storage { .. })
            }),
        ];
        for (error, expected) in table {
            let shown = error.to_string();
            let got = classify(&error, HINT);
            assert!(expected(&got), "{shown} became {got}");
        }
    }

    /// opendal keeps a response's status and headers only in its error's text, so they are
    /// read from there: these fixtures are made by opendal's own helper, and fail when its
    /// text changes.
    #[cfg(any(feature = "s3", feature = "gcs"))]
    fn from_response(status: u16, headers: &[(&str, &str)], message: &str) -> opendal::Error {
        let mut response = http::Response::builder().status(status);
        for (name, value) in headers {
            response = response.header(*name, *value);
        }
        let (parts, ()) = response.body(()).expect("a response").into_parts();
        let error = opendal::Error::new(ErrorKind::Unexpected, message);
        opendal::raw::with_error_response_context(error, parts)
    }

    #[cfg(any(feature = "s3", feature = "gcs"))]
    #[test]
    fn opendal_response_text_is_read() {
        let cases: [(opendal::Error, Expect); 5] = [
            (
                from_response(301, &[("x-amz-bucket-region", "eu-west-3")], ""),
                |e| matches!(e, FetchError::Config { reason } if reason.contains("AWS_REGION=eu-west-3")),
            ),
            (
                from_response(301, &[], ""),
                |e| matches!(e, FetchError::Config { reason } if reason.contains("(HTTP 301)")),
            ),
            (
                from_response(400, &[], ""),
                |e| matches!(e, FetchError::AccessDenied { hint, .. } if hint.contains("expired")),
            ),
            (
                from_response(400, &[], "<Error><Code>ExpiredToken</Code></Error>"),
                |e| matches!(e, FetchError::AccessDenied { detail, hint } if detail == "ExpiredToken" && hint.contains("expired")),
            ),
            (
                from_response(401, &[], ""),
                |e| matches!(e, FetchError::AccessDenied { detail, .. } if detail == "HTTP 401"),
            ),
        ];
        for (error, expected) in cases {
            let shown = error.to_string();
            let got = classify(&error, HINT);
            assert!(expected(&got), "{shown} became {got}");
        }
    }
}
