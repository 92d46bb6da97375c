//! An opened source: its declared length and a stream of body chunks.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;

use crate::{DeclaredSha256, FetchError};

/// A response body being received. Dropping it abandons the transfer.
pub struct Download {
    content_length: Option<u64>,
    starts_at: Option<u64>,
    validator: Option<String>,
    splittable: bool,
    /// The sha256 the response's headers declare for the whole file, if any.
    declared_sha256: Option<DeclaredSha256>,
    /// The response's `Content-Type`, if any.
    content_type: Option<String>,
    body: Body,
}

enum Body {
    Http(reqwest::Response),
    /// An opendal object read, with the credential hint for its errors and the longest
    /// wait for a chunk.
    Store(opendal::FuturesBytesStream, Arc<str>, Duration),
}

impl Download {
    /// An HTTP response body; `starts_at` is the offset it starts at when it answers a
    /// ranged request (206), `None` when it is the whole file.
    pub(crate) fn http(response: reqwest::Response, starts_at: Option<u64>) -> Download {
        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        // If-Range takes a strong ETag or a date; a weak ETag cannot vouch for the bytes.
        let validator = header(reqwest::header::ETAG)
            .filter(|etag| !etag.starts_with("W/"))
            .or_else(|| header(reqwest::header::LAST_MODIFIED));
        let splittable = header(reqwest::header::ACCEPT_RANGES).as_deref() == Some("bytes");
        Download {
            content_length: response.content_length(),
            starts_at,
            validator,
            splittable,
            declared_sha256: crate::checksum::declared_sha256(response.headers()),
            content_type: header(reqwest::header::CONTENT_TYPE),
            body: Body::Http(response),
        }
    }

    /// An object read from a store: `length` bytes from `starts_at` (`None`: the whole
    /// object) of the version `validator` names.
    pub(crate) fn stream(
        (length, starts_at): (u64, Option<u64>),
        (validator, splittable): (Option<String>, bool),
        stream: opendal::FuturesBytesStream,
        hint: Arc<str>,
        idle: Duration,
    ) -> Download {
        Download {
            content_length: Some(length),
            starts_at,
            validator,
            splittable,
            declared_sha256: None,
            content_type: None,
            body: Body::Store(stream, hint, idle),
        }
    }

    /// The length the source declares for the body (e.g. `Content-Length`), if any. This is
    /// the length of the bytes as stored: ptex never decodes a `Content-Encoding`.
    pub fn content_length(&self) -> Option<u64> {
        self.content_length
    }

    /// Where this body starts in the file: `Some(offset)` when the source sent the part
    /// asked for, `None` when it sends the whole file from its first byte.
    pub fn starts_at(&self) -> Option<u64> {
        self.starts_at
    }

    /// Whether the source serves parts of this file (so they can be fetched concurrently).
    pub fn splittable(&self) -> bool {
        self.splittable
    }

    /// What identifies this version of the file for a later ranged request, if the source
    /// gave one.
    pub fn validator(&self) -> Option<&str> {
        self.validator.as_deref()
    }

    /// The sha256 the source declares for the whole file (a mirror's checksum header), so a
    /// wrong file can be refused before its body is read.
    pub fn declared_sha256(&self) -> Option<&DeclaredSha256> {
        self.declared_sha256.as_ref()
    }

    /// The media type the source gives the body (`Content-Type`), if any.
    pub fn content_type(&self) -> Option<&str> {
        self.content_type.as_deref()
    }

    /// The next chunk of the body; `None` at its end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, FetchError> {
        let result = match &mut self.body {
            Body::Http(response) => response
                .chunk()
                .await
                .map_err(|e| crate::http::classify(&e)),
            Body::Store(stream, hint, idle) => {
                match tokio::time::timeout(*idle, stream.next()).await {
                    Err(_) => Err(FetchError::Timeout {
                        reason: format!("no data for {:.1} s", idle.as_secs_f64()),
                    }),
                    Ok(None) => Ok(None),
                    Ok(Some(Ok(bytes))) => Ok(Some(bytes)),
                    Ok(Some(Err(e))) => Err(match e.get_ref().and_then(|i| i.downcast_ref()) {
                        Some(inner) => crate::store::classify(inner, hint),
                        None => FetchError::Interrupted {
                            reason: e.to_string(),
                        },
                    }),
                }
            }
        };
        result.map_err(|err| match err {
            // Any failure once the body has started is an interrupted transfer.
            FetchError::Connect { reason }
            | FetchError::Refused { reason }
            | FetchError::Tls { reason } => FetchError::Interrupted { reason },
            other => other,
        })
    }
}
