//! An opened source: its declared length and a stream of body chunks.

use bytes::Bytes;

use crate::FetchError;

/// A response body being received. Dropping it abandons the transfer.
pub struct Download {
    content_length: Option<u64>,
    body: Body,
}

enum Body {
    Http(reqwest::Response),
}

impl Download {
    pub(crate) fn http(response: reqwest::Response) -> Download {
        Download {
            content_length: response.content_length(),
            body: Body::Http(response),
        }
    }

    /// The length the source declares for the body (e.g. `Content-Length`), if any. This is
    /// the length of the bytes as stored: ptex never decodes a `Content-Encoding`.
    pub fn content_length(&self) -> Option<u64> {
        self.content_length
    }

    /// The next chunk of the body; `None` at its end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, FetchError> {
        match &mut self.body {
            Body::Http(response) => {
                response
                    .chunk()
                    .await
                    .map_err(|e| match crate::http::classify(&e) {
                        // Any failure once the body has started is an interrupted transfer.
                        FetchError::Connect { reason } | FetchError::Tls { reason } => {
                            FetchError::Interrupted { reason }
                        }
                        other => other,
                    })
            }
        }
    }
}
