//! Writing bytes to an object of a store (`s3://`, `gs://`, `file://`), streamed in
//! bounded chunks; on S3 and GCS a large object goes up in parts. A write may be made
//! conditional on the object not existing yet (S3 `If-None-Match: *`, GCS
//! `ifGenerationMatch=0`, a local file linked into place only where none is; an HTTP
//! cache's PUT is in `http.rs`).

use std::io::{Read, Seek};
use std::time::Duration;

use ptex_config::Timeouts;

use crate::FetchError;
use crate::store::{self, Object};

/// Bytes read from the body and written at a time (and the part size of a multipart upload:
/// S3 wants at least 5 MiB a part).
const CHUNK: usize = 8 << 20;

/// What a write did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Written {
    /// The object now holds the bytes written.
    Written,
    /// A write that must not replace anything found an object there, and left it as it was.
    AlreadyThere,
}

/// What a conditional write uploads: read from its start, as often as needed (an HTTP PUT
/// that is redirected sends its body again), and its length is where it ends.
pub trait Upload: Read + Seek {}

impl<T: Read + Seek> Upload for T {}

/// Writes everything `body` reads to `object`, replacing it unless `new_only`. The object
/// is complete only once this returns `Ok`; an upload that fails is aborted where the
/// service allows it.
pub(crate) async fn put(
    object: &Object<'_>,
    body: &mut dyn Read,
    timeouts: &Timeouts,
    new_only: bool,
) -> Result<Written, FetchError> {
    let limit = timeouts.connect + timeouts.read;
    let hint = object.hint.as_ref();
    let mut writer = object.operator.writer_with(&object.path).chunk(CHUNK);
    if new_only {
        writer = writer.if_not_exists(true);
    }
    // The bytes are opaque; a store that records a type gets the type that says so.
    if object.operator.info().capability().write_with_content_type {
        writer = writer.content_type("application/octet-stream");
    }
    let mut writer = match within(limit, hint, writer.into_future()).await {
        Err(FetchError::AlreadyThere) => return Ok(Written::AlreadyThere),
        other => other?,
    };
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
    match within(limit, hint, writer.close()).await {
        Ok(_) => Ok(Written::Written),
        Err(FetchError::AlreadyThere) => Ok(Written::AlreadyThere),
        Err(err) => Err(err),
    }
}

/// Writes everything `body` reads to the local file `target`, only if no file is there: the
/// bytes go to a new temporary file next to it, which is then hard-linked to `target` (which
/// fails, atomically, where something exists), so `target` never shows a partial file.
pub(crate) fn put_new_file(
    target: &std::path::Path,
    body: &mut dyn Read,
) -> Result<Written, FetchError> {
    let failed = |what: &str, e: std::io::Error| FetchError::Storage {
        reason: format!("cannot {what} {}: {e}", target.display()),
    };
    let dir = target.parent().unwrap_or(std::path::Path::new("/"));
    std::fs::create_dir_all(dir).map_err(|e| failed("create the directory of", e))?;
    if std::fs::symlink_metadata(target).is_ok() {
        return Ok(Written::AlreadyThere);
    }
    let name = target.file_name().unwrap_or_default().to_string_lossy();
    let temp = dir.join(format!(".{name}.{}.{}.tmp", std::process::id(), unique()));
    let result = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)?;
        std::io::copy(body, &mut file)?;
        file.sync_all()?;
        std::fs::hard_link(&temp, target)
    })();
    let _ = std::fs::remove_file(&temp);
    match result {
        Ok(()) => Ok(Written::Written),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(Written::AlreadyThere),
        Err(e) => Err(failed("write", e)),
    }
}

/// A number that differs between calls, for temporary names.
fn unique() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    hasher.finish()
}

/// The outcome of one step of an upload, given `limit` to answer.
async fn within<T>(
    limit: Duration,
    hint: &str,
    step: impl Future<Output = opendal::Result<T>>,
) -> Result<T, FetchError> {
    match tokio::time::timeout(limit, step).await {
        // Only a conditional write has a condition that can fail here: `if_not_exists`.
        Ok(Err(e)) if e.kind() == opendal::ErrorKind::ConditionNotMatch => {
            Err(FetchError::AlreadyThere)
        }
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
