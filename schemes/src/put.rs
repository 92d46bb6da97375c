//! The body of an HTTP PUT, streamed from an [`Upload`] in bounded chunks (never the whole
//! file in memory) with its exact `Content-Length`, and `If-None-Match: *` so that an object
//! already there is kept.

use std::io::SeekFrom;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::future::{Either, select};
use http_body::{Frame, SizeHint};
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, IF_NONE_MATCH};
use tokio::sync::mpsc;

use crate::client::classify;
use crate::{FetchError, Upload};

/// Bytes read from the upload at a time.
const CHUNK: usize = 256 << 10;

/// Sends `request` with everything `body` holds, from its start (a redirected PUT comes
/// here again for each hop), and returns the response as soon as it arrives: a server that
/// answers before it has read the body (a 412) ends the upload.
pub(crate) async fn send(
    request: reqwest::RequestBuilder,
    body: &mut dyn Upload,
) -> Result<reqwest::Response, FetchError> {
    let unreadable = |e: std::io::Error| FetchError::Storage {
        reason: format!("cannot read what is to be uploaded: {e}"),
    };
    let length = body.seek(SeekFrom::End(0)).map_err(unreadable)?;
    body.seek(SeekFrom::Start(0)).map_err(unreadable)?;
    // The request body must own what it streams, and `body` is borrowed: the bytes cross
    // over a small channel, which also bounds what is in memory to a few chunks.
    let (sender, receiver) = mpsc::channel(2);
    let request = request
        .header(IF_NONE_MATCH, "*")
        .header(CONTENT_LENGTH, length)
        .header(CONTENT_TYPE, "application/octet-stream")
        .body(reqwest::Body::wrap(Chunks { receiver, length }));
    let feed = async move {
        let mut buffer = vec![0u8; CHUNK];
        loop {
            // A read of the local, just verified file: quick enough to run on the task, as
            // the stores' uploads do.
            let read = match body.read(&mut buffer) {
                Ok(0) => return Ok(()),
                Ok(read) => read,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(unreadable(e)),
            };
            if sender
                .send(Bytes::copy_from_slice(&buffer[..read]))
                .await
                .is_err()
            {
                // The request is over (answered, or failed): it needs no more.
                return Ok(());
            }
        }
    };
    let sending = std::pin::pin!(request.send());
    let feeding = std::pin::pin!(feed);
    match select(sending, feeding).await {
        Either::Left((answer, _)) => answer.map_err(|e| classify(&e)),
        Either::Right((Ok(()), sending)) => sending.await.map_err(|e| classify(&e)),
        Either::Right((Err(e), _)) => Err(e),
    }
}

/// A request body of `length` bytes that arrive over a channel.
struct Chunks {
    receiver: mpsc::Receiver<Bytes>,
    length: u64,
}

impl http_body::Body for Chunks {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        self.receiver
            .poll_recv(context)
            .map(|chunk| chunk.map(|bytes| Ok(Frame::data(bytes))))
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.length)
    }
}
