//! An opened source: its declared length and a stream of body chunks.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;

use crate::FetchError;

/// A response body being received. Dropping it abandons the transfer.
pub struct Download {
    content_length: Option<u64>,
    body: Body,
}

enum Body {
    Http(reqwest::Response),
    /// An opendal object read, with the credential hint for its errors.
    Store(opendal::FuturesBytesStream, Arc<str>),
}

impl Download {
    pub(crate) fn http(response: reqwest::Response) -> Download {
        Download {
            content_length: response.content_length(),
            body: Body::Http(response),
        }
    }

    pub(crate) fn stream(
        content_length: Option<u64>,
        stream: opendal::FuturesBytesStream,
        hint: Arc<str>,
    ) -> Download {
        Download {
            content_length,
            body: Body::Store(stream, hint),
        }
    }

    /// The length the source declares for the body (e.g. `Content-Length`), if any. This is
    /// the length of the bytes as stored: ptex never decodes a `Content-Encoding`.
    pub fn content_length(&self) -> Option<u64> {
        self.content_length
    }

    /// The next chunk of the body; `None` at its end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, FetchError> {
        let result = match &mut self.body {
            Body::Http(response) => response
                .chunk()
                .await
                .map_err(|e| crate::http::classify(&e)),
            Body::Store(stream, hint) => match stream.next().await {
                None => Ok(None),
                Some(Ok(bytes)) => Ok(Some(bytes)),
                Some(Err(e)) => Err(match e.get_ref().and_then(|i| i.downcast_ref()) {
                    Some(inner) => crate::store::classify(inner, hint),
                    None => FetchError::Interrupted {
                        reason: e.to_string(),
                    },
                }),
            },
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
