//! An opened source: its declared length and a stream of body chunks.

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;

use crate::{DeclaredSha256, FetchError};

/// A body as its backend delivers it: chunks, or the backend's own failure already sorted
/// into our vocabulary (so this module knows no backend).
pub(crate) type Body = BoxStream<'static, Result<Bytes, FetchError>>;

/// What a source says about a body before it is read.
#[derive(Default)]
pub(crate) struct Head {
    /// The declared length of the body (`Content-Length`, an object's length).
    pub(crate) content_length: Option<u64>,
    /// The offset the body starts at when it answers a ranged request, `None` when it is
    /// the whole file.
    pub(crate) starts_at: Option<u64>,
    /// What names this version of the file for a later ranged request.
    pub(crate) validator: Option<String>,
    /// Whether the source serves parts of this file.
    pub(crate) splittable: bool,
    /// The sha256 the source declares for the whole file, if any.
    pub(crate) declared_sha256: Option<DeclaredSha256>,
    /// The body's media type, if any.
    pub(crate) content_type: Option<String>,
}

/// A response body being received. Dropping it abandons the transfer.
pub struct Download {
    head: Head,
    body: Body,
}

impl Download {
    /// A body described by `head`, whose chunks `body` yields.
    pub(crate) fn new(head: Head, body: Body) -> Download {
        Download { head, body }
    }

    /// The length the source declares for the body (e.g. `Content-Length`), if any. This is
    /// the length of the bytes as stored: ptex never decodes a `Content-Encoding`.
    pub fn content_length(&self) -> Option<u64> {
        self.head.content_length
    }

    /// Where this body starts in the file: `Some(offset)` when the source sent the part
    /// asked for, `None` when it sends the whole file from its first byte.
    pub fn starts_at(&self) -> Option<u64> {
        self.head.starts_at
    }

    /// Whether the source serves parts of this file (so they can be fetched concurrently).
    pub fn splittable(&self) -> bool {
        self.head.splittable
    }

    /// What identifies this version of the file for a later ranged request, if the source
    /// gave one.
    pub fn validator(&self) -> Option<&str> {
        self.head.validator.as_deref()
    }

    /// The sha256 the source declares for the whole file (a mirror's checksum header), so a
    /// wrong file can be refused before its body is read.
    pub fn declared_sha256(&self) -> Option<&DeclaredSha256> {
        self.head.declared_sha256.as_ref()
    }

    /// The media type the source gives the body (`Content-Type`), if any.
    pub fn content_type(&self) -> Option<&str> {
        self.head.content_type.as_deref()
    }

    /// The next chunk of the body; `None` at its end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, FetchError> {
        let result = self.body.next().await.transpose();
        result.map_err(|err| match err {
            // Any failure once the body has started is an interrupted transfer.
            FetchError::Connect { reason }
            | FetchError::Refused { reason }
            | FetchError::Tls { reason } => FetchError::Interrupted { reason },
            other => other,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether an error is the one a case expects.
    type Expect = fn(&FetchError) -> bool;

    fn run<T>(future: impl Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a runtime")
            .block_on(future)
    }

    fn download(chunks: Vec<Result<Bytes, FetchError>>) -> Download {
        Download::new(
            Head::default(),
            Box::pin(futures_util::stream::iter(chunks)),
        )
    }

    #[test]
    fn chunks_arrive_in_order_then_the_end() {
        let mut body = download(vec![Ok(Bytes::from("ab")), Ok(Bytes::from("c"))]);
        run(async {
            assert_eq!(body.chunk().await.unwrap(), Some(Bytes::from("ab")));
            assert_eq!(body.chunk().await.unwrap(), Some(Bytes::from("c")));
            assert_eq!(body.chunk().await.unwrap(), None);
        });
    }

    /// A connection failure once the body has begun is an interrupted transfer (retried),
    /// whatever the backend called it; other errors pass as the backend sorted them.
    #[test]
    fn failures_after_the_start_are_interruptions() {
        let reason = || "boom".to_string();
        let cases: Vec<(FetchError, Expect)> = vec![
            (FetchError::Connect { reason: reason() }, |e| {
                matches!(e, FetchError::Interrupted { .. })
            }),
            (FetchError::Refused { reason: reason() }, |e| {
                matches!(e, FetchError::Interrupted { .. })
            }),
            (FetchError::Tls { reason: reason() }, |e| {
                matches!(e, FetchError::Interrupted { .. })
            }),
            (FetchError::Timeout { reason: reason() }, |e| {
                matches!(e, FetchError::Timeout { .. })
            }),
            (FetchError::Storage { reason: reason() }, |e| {
                matches!(e, FetchError::Storage { .. })
            }),
        ];
        for (error, expected) in cases {
            let shown = error.to_string();
            let mut body = download(vec![Ok(Bytes::from("a")), Err(error)]);
            run(async {
                assert!(body.chunk().await.is_ok());
                let got = body.chunk().await.unwrap_err();
                assert!(expected(&got), "{shown} became {got}");
            });
        }
    }
}
