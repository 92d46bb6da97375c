//! Writing bytes to an object of a store (`s3://`, `gs://`, `file://`), streamed in
//! bounded chunks; on S3 and GCS a large object goes up in parts.

use std::io::Read;
use std::time::Duration;

use ptex_config::Timeouts;

use crate::FetchError;
use crate::store::{self, Object};

/// Bytes read from the body and written at a time (and the part size of a multipart upload:
/// S3 wants at least 5 MiB a part).
const CHUNK: usize = 8 << 20;

/// Writes everything `body` reads to `object`, replacing it. The object is complete only
/// once this returns `Ok`; an upload that fails is aborted where the service allows it.
pub(crate) async fn put(
    object: &Object<'_>,
    body: &mut dyn Read,
    timeouts: &Timeouts,
) -> Result<(), FetchError> {
    let limit = timeouts.connect + timeouts.read;
    let hint = object.hint.as_ref();
    let mut writer = object.operator.writer_with(&object.path).chunk(CHUNK);
    // The bytes are opaque; a store that records a type gets the type that says so.
    if object.operator.info().capability().write_with_content_type {
        writer = writer.content_type("application/octet-stream");
    }
    let mut writer = within(limit, hint, writer.into_future()).await?;
    let mut buffer = vec![0u8; CHUNK];
    loop {
        let read = read_full(body, &mut buffer).map_err(|e| FetchError::Storage {
            reason: format!("cannot read what is to be uploaded: {e}"),
        })?;
        if read == 0 {
            break;
        }
        let chunk = bytes::Bytes::copy_from_slice(&buffer[..read]);
        if let Err(err) = within(limit, hint, writer.write(chunk)).await {
            let _ = writer.abort().await;
            return Err(err);
        }
    }
    within(limit, hint, writer.close()).await.map(drop)
}

/// The outcome of one step of an upload, given `limit` to answer.
async fn within<T>(
    limit: Duration,
    hint: &str,
    step: impl Future<Output = opendal::Result<T>>,
) -> Result<T, FetchError> {
    match tokio::time::timeout(limit, step).await {
        Ok(result) => result.map_err(|e| store::classify(&e, hint)),
        Err(_) => Err(FetchError::Timeout {
            reason: format!("no answer within {:.1} s", limit.as_secs_f64()),
        }),
    }
}

/// Fills `buffer` from `body` as far as it goes; fewer bytes only at the end.
fn read_full(body: &mut dyn Read, buffer: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match body.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}
