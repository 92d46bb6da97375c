//! One transfer from one source: the spool file and the verifier that has seen exactly the
//! bytes in it. [`Transfer`] alone moves bytes into both (appended in order by one
//! connection, or written at their offset by concurrent parts), so the spool file never
//! holds a byte before it the verifier has not seen; [`receive`] is the one loop that takes
//! a response's chunks into it, under the low-speed floor; [`Failure`] says why an attempt
//! failed and what that means for its source.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow};
use bytes::Bytes;
use ptex_config::Timeouts;
use ptex_schemes::{Disposition, Download, FetchError, Part, Source};

use crate::job::Job;
use crate::progress::Progress;
use crate::sniff;
use crate::spool::{Spans, Spool};
use crate::verify::{Expected, Sha256Hex, Verified, Verifier, VerifyError};

/// Why one attempt failed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// This source did not deliver the file.
    Source {
        reason: String,
        disposition: Disposition,
        retry_after: Option<Duration>,
    },
    /// A local problem (the spool file) that no other source can fix.
    Local(anyhow::Error),
    /// The bytes continued from an earlier attempt or run did not verify: the transfer was
    /// emptied, for the same source to start over at once.
    Resumed(String),
}

impl Failure {
    /// A failure that may pass: the same source is asked again.
    pub(crate) fn retry(reason: impl Into<String>) -> Failure {
        Failure::Source {
            reason: reason.into(),
            disposition: Disposition::Retry,
            retry_after: None,
        }
    }

    /// What the failure says of its source: why it failed, whether to ask it again, and
    /// after what wait; the error itself when the failure is local (no source can help).
    pub(crate) fn of_source(
        self,
    ) -> Result<(String, Disposition, Option<Duration>), anyhow::Error> {
        match self {
            Failure::Source {
                reason,
                disposition,
                retry_after,
            } => Ok((reason, disposition, retry_after)),
            // The leftover was bad, and this source already started over once.
            Failure::Resumed(reason) => Ok((reason, Disposition::NextSource, None)),
            Failure::Local(err) => Err(err),
        }
    }

    /// A failure this source will repeat: the next source is asked, this one no more.
    pub(crate) fn next_source(reason: impl Into<String>) -> Failure {
        Failure::Source {
            reason: reason.into(),
            disposition: Disposition::NextSource,
            retry_after: None,
        }
    }
}

impl From<FetchError> for Failure {
    fn from(err: FetchError) -> Failure {
        Failure::Source {
            disposition: err.disposition(),
            retry_after: err.retry_after(),
            reason: err.to_string(),
        }
    }
}

impl From<VerifyError> for Failure {
    fn from(err: VerifyError) -> Failure {
        // Other bytes from the same URL will not become right ones: never retried.
        Failure::next_source(err.to_string())
    }
}

/// One source's failure in the original ptex's words: `Failed to fetch <url>: <reason>`.
pub(crate) fn failed_to_fetch(source: &Source, reason: impl std::fmt::Display) -> String {
    format!("Failed to fetch {source}: {reason}")
}

/// A stable name for a source that holds no secret: the sha256 of its URL.
pub(crate) fn source_key(source: &Source) -> String {
    Sha256Hex::digest(source.url().as_str().as_bytes()).to_string()
}

/// How often a slow transfer's bytes go to the spool file (and, while concurrent parts fill
/// it, the note of how much of it is good is brought up to date).
pub(crate) const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// A transfer in progress: the spool file, the verifier that has seen every byte of it
/// before its first gap, and the validator of the response they came from.
pub(crate) struct Transfer {
    spool: Spool,
    verifier: Verifier,
    /// What the file must be, for a verifier that starts over.
    expected: Expected,
    /// A handle on the spool file, to write at offsets and for the verifier to read back.
    file: Option<Arc<File>>,
    validator: Option<String>,
    /// The `Content-Type` of the response the bytes came from, to say what came back.
    content_type: Option<String>,
    /// The source answered a part with something else (the whole file, another range):
    /// its ranges cannot be trusted, so the rest comes over one connection.
    one_connection: bool,
    /// Spans of the same version already in the spool file past the first gap (start ->
    /// end): concurrent parts wrote them, in this run or a killed one.
    arrived: BTreeMap<u64, u64>,
    /// The source's [`source_key`], for the note.
    key: String,
}

impl Transfer {
    /// A transfer from `source`'s first byte, in `shared` if given, else in a private spool.
    pub(crate) fn new(
        job: &Job,
        source: &Source,
        spool_dir: &Path,
        shared: Option<Spool>,
    ) -> anyhow::Result<Transfer> {
        let spool = match shared {
            Some(spool) => spool,
            None => Spool::create(spool_dir, &job.name).with_context(|| {
                let dir = std::path::absolute(spool_dir);
                format!(
                    "failed to fetch {}: {}",
                    job.name,
                    failed_to_fetch(
                        source,
                        format_args!(
                            "cannot create a spool file in {}",
                            dir.as_deref().unwrap_or(spool_dir).display()
                        )
                    )
                )
            })?,
        };
        Ok(Transfer::holding(spool, &job.expected, source_key(source)))
    }

    /// A transfer of nothing yet into `spool` (which must be empty).
    fn holding(spool: Spool, expected: &Expected, key: String) -> Transfer {
        Transfer {
            spool,
            verifier: Verifier::new(expected.clone()),
            expected: expected.clone(),
            file: None,
            validator: None,
            content_type: None,
            one_connection: false,
            arrived: BTreeMap::new(),
            key,
        }
    }

    /// A transfer holding the first `len` bytes already in `spool` (left by another run),
    /// handed to a new verifier; the spool back if they cannot be read or run past the
    /// expected size. Hashing them runs on the verifier's own thread.
    pub(crate) fn replay(
        spool: Spool,
        expected: &Expected,
        len: u64,
        key: String,
    ) -> Result<Transfer, Spool> {
        let mut transfer = Transfer::holding(spool, expected, key);
        let replayed = transfer
            .handle()
            .ok()
            .is_some_and(|file| transfer.verifier.update_from_file(&file, 0, len).is_ok());
        match replayed {
            true => Ok(transfer),
            false => Err(transfer.spool),
        }
    }

    /// This transfer, continued from a response with `validator` whose spans `arrived`
    /// (start -> end) past the verified first bytes are on disk too.
    pub(crate) fn continuing(mut self, validator: String, arrived: BTreeMap<u64, u64>) -> Self {
        self.validator = Some(validator);
        self.arrived = arrived;
        self
    }

    /// Bytes the verifier has seen: the file's first bytes, up to its first gap.
    pub(crate) fn accepted(&self) -> u64 {
        self.verifier.accepted()
    }

    /// Spans on disk past the first gap (start -> end).
    pub(crate) fn arrived(&self) -> &BTreeMap<u64, u64> {
        &self.arrived
    }

    /// The validator of the response the bytes came from, if it gave one.
    pub(crate) fn validator(&self) -> Option<&str> {
        self.validator.as_deref()
    }

    /// Whether the bytes are checked against an expected sha256.
    pub(crate) fn expects_sha256(&self) -> bool {
        self.verifier.expects_sha256()
    }

    /// How fast this machine hashed the bytes so far (see [`Verifier::hash_rate`]).
    pub(crate) fn hash_rate(&self) -> Option<f64> {
        self.verifier.hash_rate()
    }

    /// Whether the rest must come over one connection (the source answered a part badly).
    pub(crate) fn one_connection(&self) -> bool {
        self.one_connection
    }

    /// From now on, the rest comes over one connection.
    pub(crate) fn keep_to_one_connection(&mut self) {
        self.one_connection = true;
    }

    /// The spool, emptied, if it is the shared one (for the next source to fill).
    pub(crate) fn into_shared_spool(mut self) -> Option<Spool> {
        (self.spool.is_shared() && self.spool.reset().is_ok()).then_some(self.spool)
    }

    /// The spool file, once [`Transfer::verdict`] found its bytes good.
    pub(crate) fn into_spool(self) -> Spool {
        self.spool
    }

    /// The spans of the file on disk: the verified first bytes, and what arrived past them.
    pub(crate) fn spans(&self) -> Spans {
        spans(self.verifier.accepted(), &self.arrived)
    }

    /// Notes what is on disk, for a later run to continue if this one is killed; best
    /// effort (a run that cannot note only loses the chance to be continued).
    pub(crate) fn note(&self, total: Option<u64>) {
        if let Some(validator) = &self.validator {
            let _ = self.spool.note(&self.key, validator, total, &self.spans());
        }
    }

    /// Whether a ranged request could continue this transfer.
    pub(crate) fn resumable(&self) -> bool {
        self.validator.is_some() && self.verifier.accepted() > 0
    }

    /// The rest of the file, if this transfer can be continued.
    pub(crate) fn resume(&self) -> Option<Part> {
        let validator = self.validator.clone().filter(|_| self.resumable())?;
        Some(Part {
            start: self.verifier.accepted(),
            end: None,
            validator,
        })
    }

    /// Starts over from the first byte (the source sent the whole file again).
    pub(crate) fn restart(&mut self) -> Result<(), Failure> {
        self.spool.reset().map_err(|e| self.spool_error(e))?;
        self.verifier = Verifier::new(self.expected.clone());
        self.arrived.clear();
        Ok(())
    }

    /// Starts over from the first byte and forgets the version the bytes came from.
    pub(crate) fn forget(&mut self) -> Result<(), Failure> {
        self.restart()?;
        self.validator = None;
        Ok(())
    }

    /// Takes what `download` (answering from byte `offset`) says about itself: its
    /// validator and type, and the length and sha256 it declares, which must fit what is
    /// expected before a byte of the body is read.
    pub(crate) fn answered(&mut self, download: &Download, offset: u64) -> Result<(), Failure> {
        self.validator = download.validator().map(str::to_string);
        self.content_type = download.content_type().map(str::to_string);
        let declared = download.content_length().map(|rest| offset + rest);
        self.verifier
            .check_declared(declared)
            .map_err(|e| self.early_mismatch(e))?;
        self.verifier
            .check_declared_sha256(download.declared_sha256())
            .map_err(|e| self.early_mismatch(e))
    }

    /// A mismatch found before the body is read, with what the source says it sends when
    /// that is a page rather than a file.
    fn early_mismatch(&self, err: VerifyError) -> Failure {
        let words = match err {
            VerifyError::DeclaredSize { declared: 0, .. } => sniff::describe(&[], 0, None),
            _ => sniff::describe_type(self.content_type.as_deref()),
        };
        let mut failure = Failure::from(err);
        if let (Failure::Source { reason, .. }, Some(words)) = (&mut failure, words) {
            reason.push_str(&format!("; {words}"));
        }
        failure
    }

    /// The verdict on a transfer whose bytes all arrived (`offset` of them in an earlier
    /// attempt or run). The hashing thread is joined off the runtime's thread. Good bytes
    /// are then the spool's ([`Transfer::into_spool`]); bad ones are emptied out of it.
    pub(crate) async fn verdict(&mut self, offset: u64) -> Result<Verified, Failure> {
        let length = self.verifier.accepted();
        let verifier = std::mem::replace(&mut self.verifier, Verifier::new(self.expected.clone()));
        let err = match finish(verifier).await {
            Ok(verified) => return Ok(verified),
            Err(err) => err,
        };
        // Bytes continued from an earlier attempt or run may be what is wrong (a corrupted
        // spool file): try this source once more from the first byte before judging it.
        let failure = match offset {
            0 => self.late_mismatch(err, length),
            _ => {
                self.validator = None;
                Failure::Resumed(format!(
                    "{err} (after resuming at byte {offset}; starting over)"
                ))
            }
        };
        self.restart()?;
        Err(failure)
    }

    /// The verdict on a transfer replayed whole (another run's bytes): the spool with the
    /// verified bytes, or the spool back with why they are not the file.
    pub(crate) async fn whole(self) -> Result<(Spool, Verified), (Spool, VerifyError)> {
        match finish(self.verifier).await {
            Ok(verified) => Ok((self.spool, verified)),
            Err(err) => Err((self.spool, err)),
        }
    }

    /// A mismatch found once the body is in, with what came back in plain words when it
    /// was not a file at all (an HTML page, an empty body, a JSON error).
    fn late_mismatch(&mut self, err: VerifyError, length: u64) -> Failure {
        let words = self
            .head(length)
            .and_then(|head| sniff::describe(&head, length, self.content_type.as_deref()));
        let mut failure = Failure::from(err);
        if let (Failure::Source { reason, .. }, Some(words)) = (&mut failure, words) {
            reason.push_str(&format!("; {words}"));
        }
        failure
    }

    /// Words for an unverifiable body that looks like a page or nothing rather than the
    /// file `name` (see [`sniff::unexpected`]).
    pub(crate) fn unexpected_page(&mut self, name: &str, length: u64) -> Option<String> {
        let head = self.head(length)?;
        sniff::unexpected(name, &head, length, self.content_type.as_deref())
    }

    /// The first bytes of the spool file (of `length` in all), for [`sniff`] to look at.
    fn head(&mut self, length: u64) -> Option<Vec<u8>> {
        let mut head = vec![0; sniff::HEAD.min(length as usize)];
        let file = self.handle().ok()?;
        crate::os::read_exact_at(&file, &mut head, 0).ok()?;
        Some(head)
    }

    fn spool_error(&self, err: std::io::Error) -> Failure {
        Failure::Local(anyhow!(
            "cannot write spool file {}: {err}",
            self.spool.path().display()
        ))
    }

    /// The handle on the spool file, opened once.
    fn handle(&mut self) -> Result<Arc<File>, Failure> {
        if let Some(file) = &self.file {
            return Ok(file.clone());
        }
        let file = self.spool.handle().map_err(|e| self.spool_error(e))?;
        self.file = Some(file.clone());
        Ok(file)
    }

    /// From here on bytes come in order, after the verified ones: spans that arrived past
    /// them are written again.
    fn in_order(&mut self) -> Result<(), Failure> {
        let at = self.verifier.accepted();
        self.arrived.retain(|&start, _| start > at);
        self.spool.seek(at).map_err(|e| self.spool_error(e))
    }

    /// Appends `buffer` (the bytes after the verified ones) to the spool file and hands
    /// them to the verifier; empties it.
    fn append(&mut self, buffer: &mut Vec<u8>) -> Result<(), Failure> {
        if buffer.is_empty() {
            return Ok(());
        }
        let file = self.handle()?;
        self.spool.write(buffer).map_err(|e| self.spool_error(e))?;
        let start = self.verifier.accepted();
        self.verifier
            .update_from_file(&file, start, buffer.len() as u64)?;
        buffer.clear();
        Ok(())
    }

    /// Writes `buffer` into the spool file at byte `at` (a part's bytes), then hands the
    /// verifier every byte that is now contiguous with what it has seen; empties it.
    pub(crate) fn write_at(&mut self, at: u64, buffer: &mut Vec<u8>) -> Result<(), Failure> {
        if buffer.is_empty() {
            return Ok(());
        }
        let file = self.handle()?;
        crate::os::write_all_at(&file, buffer, at).map_err(|e| self.spool_error(e))?;
        self.arrived.insert(at, at + buffer.len() as u64);
        buffer.clear();
        let mut good = self.verifier.accepted();
        while let Some(end) = self.arrived.remove(&good) {
            self.verifier.update_from_file(&file, good, end - good)?;
            good = end;
        }
        Ok(())
    }
}

/// The verifier's verdict, waited for off the runtime's thread: the hashing thread may
/// still have much to read (a leftover file handed over at once), and other transfers on
/// the same runtime go on meanwhile.
async fn finish(verifier: Verifier) -> Result<Verified, VerifyError> {
    tokio::task::spawn_blocking(move || verifier.finish())
        .await
        .unwrap_or_else(|e| {
            Err(VerifyError::HashingFailed {
                reason: e.to_string(),
            })
        })
}

/// The spans `0..prefix` and `arrived` (those past `prefix`), merged.
fn spans(prefix: u64, arrived: &BTreeMap<u64, u64>) -> Spans {
    let mut spans: Spans = Vec::new();
    if prefix > 0 {
        spans.push((0, prefix));
    }
    for (&start, &end) in arrived.range(prefix..) {
        match spans.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => spans.push((start, end)),
        }
    }
    spans
}

/// A response body, a chunk at a time ([`Download`], or bytes in memory in tests).
pub(crate) trait Body {
    /// The next chunk; `None` at the end.
    fn chunk(&mut self) -> impl Future<Output = Result<Option<Bytes>, FetchError>>;
}

impl Body for Download {
    fn chunk(&mut self) -> impl Future<Output = Result<Option<Bytes>, FetchError>> {
        Download::chunk(self)
    }
}

/// Where [`receive`] puts a response's bytes, a buffer at a time.
pub(crate) trait Sink {
    /// Takes the next bytes of the response and empties `buffer`.
    fn take(&mut self, buffer: &mut Vec<u8>) -> Result<(), Failure>;
    /// About once a second, right after a `take`: a chance to note what is on disk.
    fn checkpoint(&mut self) {}
}

/// How [`receive`] takes a response.
pub(crate) struct Receiving<'a> {
    pub(crate) timeouts: &'a Timeouts,
    pub(crate) progress: &'a Progress,
    /// Bytes gathered before they go to the sink.
    pub(crate) buffer: usize,
    /// Stop at this moment, the body not yet over.
    pub(crate) until: Option<tokio::time::Instant>,
    /// Take this many bytes at most (a response that runs on past a part).
    pub(crate) want: Option<u64>,
}

/// How far [`receive`] got.
#[derive(Debug, PartialEq)]
pub(crate) enum Received {
    /// The body ended.
    Ended,
    /// It stopped at the deadline, the body not yet over, after `waited` in all for the
    /// source to send more (the rest of the time went into taking what it sent).
    Paused { waited: Duration },
    /// It took the bytes it wanted.
    Full,
}

/// Takes `body`'s chunks into `sink`: gathered into buffers (every network buffer is let
/// go of at once, so the client reuses its buffers), under the low-speed floor, woken about
/// once a second so that a transfer that waits (a stall, or a response that never ends
/// after its last byte) still hands on and notes what it has. What arrived reaches the sink
/// even when the body breaks off: a retry continues after it.
pub(crate) async fn receive(
    body: &mut impl Body,
    sink: &mut impl Sink,
    how: &Receiving<'_>,
) -> Result<Received, Failure> {
    let mut floor = SpeedFloor::new(how.timeouts);
    let mut buffer = Vec::with_capacity(how.buffer);
    let mut taken = 0u64;
    let mut waited = Duration::ZERO;
    let mut checkpoint = tokio::time::Instant::now();
    let outcome = loop {
        if how.want.is_some_and(|want| taken >= want) {
            break Ok(Received::Full);
        }
        if how
            .until
            .is_some_and(|until| tokio::time::Instant::now() >= until)
        {
            break Ok(Received::Paused { waited });
        }
        let next = {
            let mut chunk = std::pin::pin!(waiting(body.chunk(), &mut waited));
            loop {
                let wake = checkpoint + CHECKPOINT_EVERY;
                match tokio::time::timeout_at(wake, chunk.as_mut()).await {
                    Ok(next) => break next,
                    Err(_) => {
                        sink.take(&mut buffer)?;
                        sink.checkpoint();
                        checkpoint = tokio::time::Instant::now();
                    }
                }
            }
        };
        let chunk = match next {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break Ok(Received::Ended),
            Err(err) => break Err(err.into()),
        };
        if let Err(failure) = floor.check(chunk.len()) {
            break Err(failure);
        }
        // A response that runs on past what is wanted (a part's share): only that.
        let take = how
            .want
            .map_or(chunk.len(), |want| chunk.len().min((want - taken) as usize));
        taken += take as u64;
        how.progress.advance(take as u64);
        gather(&mut buffer, how.buffer, &chunk[..take], |full| {
            sink.take(full)
        })?;
        // A slow transfer still reaches the file about once a second, for a later run to
        // continue if this one is killed.
        if checkpoint.elapsed() >= CHECKPOINT_EVERY {
            sink.take(&mut buffer)?;
            sink.checkpoint();
            checkpoint = tokio::time::Instant::now();
        }
    };
    sink.take(&mut buffer)?;
    outcome
}

/// `chunk`, adding to `waited` the time from its first `Pending` (nothing had arrived yet)
/// to its result: how long the source kept this transfer waiting.
async fn waiting<T>(chunk: impl Future<Output = T>, waited: &mut Duration) -> T {
    let mut chunk = std::pin::pin!(chunk);
    let mut since = None;
    std::future::poll_fn(|cx| match chunk.as_mut().poll(cx) {
        std::task::Poll::Ready(next) => {
            if let Some(since) = since {
                *waited += tokio::time::Instant::elapsed(&since);
            }
            std::task::Poll::Ready(next)
        }
        std::task::Poll::Pending => {
            since.get_or_insert_with(tokio::time::Instant::now);
            std::task::Poll::Pending
        }
    })
    .await
}

/// Bytes one connection gathers before they are written to the spool file and handed to
/// the verifier.
const SPOOL_BUFFER: usize = 256 * 1024;

/// One connection's bytes, in order after the verified ones, noted with the file's `total`.
struct InOrder<'t> {
    transfer: &'t mut Transfer,
    total: Option<u64>,
}

impl Sink for InOrder<'_> {
    fn take(&mut self, buffer: &mut Vec<u8>) -> Result<(), Failure> {
        self.transfer.append(buffer)
    }

    fn checkpoint(&mut self) {
        self.transfer.note(self.total);
    }
}

/// Receives the rest of `body` (or what comes before `until`) into `transfer`, in order
/// after its verified bytes.
pub(crate) async fn receive_in_order(
    body: &mut impl Body,
    transfer: &mut Transfer,
    timeouts: &Timeouts,
    progress: &Progress,
    until: Option<tokio::time::Instant>,
    total: Option<u64>,
) -> Result<Received, Failure> {
    transfer.in_order()?;
    let how = Receiving {
        timeouts,
        progress,
        buffer: SPOOL_BUFFER,
        until,
        want: None,
    };
    receive(body, &mut InOrder { transfer, total }, &how).await
}

/// Adds `bytes` to `buffer`, handing it to `flush` (which empties it) each time it holds
/// `size` bytes. The buffer never grows: fewer, larger allocations keep the heap small.
fn gather(
    buffer: &mut Vec<u8>,
    size: usize,
    bytes: &[u8],
    mut flush: impl FnMut(&mut Vec<u8>) -> Result<(), Failure>,
) -> Result<(), Failure> {
    let mut rest = bytes;
    while !rest.is_empty() {
        let (now, later) = rest.split_at((size - buffer.len()).min(rest.len()));
        buffer.extend_from_slice(now);
        rest = later;
        if buffer.len() == size {
            flush(buffer)?;
        }
    }
    Ok(())
}

/// The low-speed floor: a transfer that moves fewer than `limit` bytes per second over a
/// whole window of `window` is abandoned (and retried), as curl's `--speed-limit` does. A
/// complete stall is the read timeout's business; this catches the drip.
struct SpeedFloor {
    limit: u64,
    window: Duration,
    started: tokio::time::Instant,
    bytes: u64,
}

impl SpeedFloor {
    fn new(timeouts: &Timeouts) -> SpeedFloor {
        SpeedFloor {
            limit: timeouts.low_speed_limit,
            window: timeouts.low_speed_time,
            started: tokio::time::Instant::now(),
            bytes: 0,
        }
    }

    fn check(&mut self, received: usize) -> Result<(), Failure> {
        self.bytes += received as u64;
        let elapsed = self.started.elapsed();
        if self.limit == 0 || elapsed < self.window {
            return Ok(());
        }
        let rate = self.bytes as f64 / elapsed.as_secs_f64();
        if rate < self.limit as f64 {
            return Err(Failure::retry(format!(
                "too slow: {rate:.0} bytes/s over {:.1} s, below the floor of {} bytes/s \
                 (PTEX_LOW_SPEED_LIMIT)",
                elapsed.as_secs_f64(),
                self.limit
            )));
        }
        // A new window starts: one slow stretch in a long, fast download does not count
        // against the next.
        self.started = tokio::time::Instant::now();
        self.bytes = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::io::Read;

    use ptex_schemes::RequestOptions;

    use super::*;

    /// A body in memory: chunks, or a failure, in order.
    struct Chunks(VecDeque<Result<Bytes, FetchError>>);

    impl Chunks {
        fn of(data: &[u8], sizes: &[usize]) -> Chunks {
            let mut at = 0;
            let mut chunks = VecDeque::new();
            for &size in sizes {
                chunks.push_back(Ok(Bytes::copy_from_slice(&data[at..at + size])));
                at += size;
            }
            Chunks(chunks)
        }

        fn then_fail(mut self) -> Chunks {
            self.0.push_back(Err(FetchError::Interrupted {
                reason: "connection reset".into(),
            }));
            self
        }
    }

    impl Body for Chunks {
        fn chunk(&mut self) -> impl Future<Output = Result<Option<Bytes>, FetchError>> {
            std::future::ready(self.0.pop_front().transpose())
        }
    }

    fn run<T>(future: impl Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a runtime")
            .block_on(future)
    }

    /// Bytes that differ at every position, so a byte out of place shows.
    fn file(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    fn job(data: &[u8]) -> Job {
        let source = Source::parse("http://127.0.0.1/f.bin").unwrap();
        Job {
            name: "f.bin".to_string(),
            options: RequestOptions::new(Vec::new(), &source),
            sources: vec![source],
            expected: Expected {
                size: Some(data.len() as u64),
                sha256: Some(Sha256Hex::digest(data)),
            },
        }
    }

    fn transfer(dir: &Path, job: &Job) -> Transfer {
        Transfer::new(job, &job.sources[0], dir, None).unwrap()
    }

    /// Everything in the spool file.
    fn on_disk(transfer: &mut Transfer) -> Vec<u8> {
        let mut all = Vec::new();
        transfer
            .spool
            .verified(u64::MAX)
            .unwrap()
            .read_to_end(&mut all)
            .unwrap();
        all
    }

    async fn in_order(body: &mut Chunks, transfer: &mut Transfer) -> Result<Received, Failure> {
        let progress = Progress::new(false, "f.bin");
        let timeouts = Timeouts::default();
        receive_in_order(body, transfer, &timeouts, &progress, None, None).await
    }

    #[test]
    fn spool_and_verifier_agree_after_uneven_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let data = file(4 * SPOOL_BUFFER + 1000);
        let job = job(&data);
        let mut state = transfer(dir.path(), &job);
        // Chunks smaller than, equal to and larger than the buffer, and empty ones.
        let sizes = [
            1,
            0,
            SPOOL_BUFFER - 1,
            SPOOL_BUFFER,
            2 * SPOOL_BUFFER - 10,
            0,
            1010,
        ];
        let mut body = Chunks::of(&data, &sizes);
        assert_eq!(
            run(in_order(&mut body, &mut state)).unwrap(),
            Received::Ended
        );
        assert_eq!(state.accepted(), data.len() as u64);
        assert_eq!(on_disk(&mut state), data);
        let verified = run(state.verdict(0)).unwrap();
        assert_eq!(verified.sha256, Sha256Hex::digest(&data));
    }

    #[test]
    fn a_failure_mid_body_keeps_exactly_what_arrived_and_a_retry_continues() {
        let dir = tempfile::tempdir().unwrap();
        let data = file(SPOOL_BUFFER + 5000);
        let job = job(&data);
        let mut state = transfer(dir.path(), &job);
        // The body breaks off with part of a buffer gathered: those bytes count too.
        let first = SPOOL_BUFFER + 1234;
        let mut body = Chunks::of(&data, &[1000, first - 1000]).then_fail();
        let failure = run(in_order(&mut body, &mut state)).unwrap_err();
        assert!(
            matches!(
                &failure,
                Failure::Source {
                    disposition: Disposition::Retry,
                    ..
                }
            ),
            "{failure:?}"
        );
        assert_eq!(state.accepted(), first as u64);
        assert_eq!(on_disk(&mut state), data[..first]);
        // A retry continues after them (a ranged request), in odd pieces.
        let rest = data.len() - first;
        let mut body = Chunks::of(&data[first..], &[3, rest - 3]);
        assert_eq!(
            run(in_order(&mut body, &mut state)).unwrap(),
            Received::Ended
        );
        assert_eq!(on_disk(&mut state), data);
        let verified = run(state.verdict(first as u64)).unwrap();
        assert_eq!(verified.size, data.len() as u64);
    }

    #[test]
    fn parts_written_out_of_order_reach_the_verifier_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let data = file(30_000);
        let job = job(&data);
        let mut state = transfer(dir.path(), &job);
        let write = |state: &mut Transfer, from: usize, to: usize| {
            state
                .write_at(from as u64, &mut data[from..to].to_vec())
                .unwrap();
        };
        write(&mut state, 20_000, 30_000);
        write(&mut state, 10_000, 15_000);
        // Nothing before them yet: the verifier has seen nothing, the spans say what is on
        // disk.
        assert_eq!(state.accepted(), 0);
        assert_eq!(state.spans(), vec![(10_000, 15_000), (20_000, 30_000)]);
        write(&mut state, 0, 10_000);
        assert_eq!(state.accepted(), 15_000);
        assert_eq!(state.spans(), vec![(0, 15_000), (20_000, 30_000)]);
        write(&mut state, 15_000, 20_000);
        assert_eq!(state.accepted(), 30_000);
        assert!(state.arrived().is_empty());
        assert_eq!(on_disk(&mut state), data);
        assert!(run(state.verdict(0)).is_ok());
    }

    #[test]
    fn a_part_takes_only_its_share_of_a_longer_response() {
        struct Collect(Vec<u8>);
        impl Sink for Collect {
            fn take(&mut self, buffer: &mut Vec<u8>) -> Result<(), Failure> {
                self.0.append(buffer);
                Ok(())
            }
        }
        let data = file(10_000);
        let mut body = Chunks::of(&data, &[4000, 4000, 2000]);
        let (timeouts, progress) = (Timeouts::default(), Progress::new(false, "f.bin"));
        let how = Receiving {
            timeouts: &timeouts,
            progress: &progress,
            buffer: 1024,
            until: None,
            want: Some(5000),
        };
        let mut sink = Collect(Vec::new());
        assert_eq!(
            run(receive(&mut body, &mut sink, &how)).unwrap(),
            Received::Full
        );
        assert_eq!(sink.0, data[..5000]);
    }

    /// A body that has each chunk only after `delay`, endlessly.
    struct Slow(Duration);

    impl Body for Slow {
        async fn chunk(&mut self) -> Result<Option<Bytes>, FetchError> {
            tokio::time::sleep(self.0).await;
            Ok(Some(Bytes::from_static(b"x")))
        }
    }

    /// Receives `body` into nothing until `after` from now.
    fn pause(body: &mut impl Body, after: Duration) -> Result<Received, Failure> {
        struct Nowhere;
        impl Sink for Nowhere {
            fn take(&mut self, buffer: &mut Vec<u8>) -> Result<(), Failure> {
                buffer.clear();
                Ok(())
            }
        }
        let (timeouts, progress) = (Timeouts::default(), Progress::new(false, "f.bin"));
        run(async {
            let how = Receiving {
                timeouts: &timeouts,
                progress: &progress,
                buffer: 1024,
                until: Some(tokio::time::Instant::now() + after),
                want: None,
            };
            receive(body, &mut Nowhere, &how).await
        })
    }

    #[test]
    fn a_pause_says_how_long_the_source_kept_it_waiting() {
        let outcome = pause(
            &mut Slow(Duration::from_millis(20)),
            Duration::from_millis(100),
        );
        let Ok(Received::Paused { waited }) = outcome else {
            panic!("{outcome:?}");
        };
        assert!(waited >= Duration::from_millis(60), "{waited:?}");
        // Bytes that are always there keep it waiting for nothing.
        struct Ready;
        impl Body for Ready {
            async fn chunk(&mut self) -> Result<Option<Bytes>, FetchError> {
                Ok(Some(Bytes::from_static(b"x")))
            }
        }
        let outcome = pause(&mut Ready, Duration::from_millis(20));
        assert_eq!(
            outcome.unwrap(),
            Received::Paused {
                waited: Duration::ZERO
            }
        );
    }

    #[test]
    fn bytes_that_do_not_verify_are_emptied_out() {
        let dir = tempfile::tempdir().unwrap();
        let data = file(5000);
        let job = job(&data);
        let mut state = transfer(dir.path(), &job);
        let mut wrong = data.clone();
        wrong[4000] ^= 1;
        let mut body = Chunks::of(&wrong, &[2500, 2500]);
        run(in_order(&mut body, &mut state)).unwrap();
        let failure = run(state.verdict(0)).unwrap_err();
        let (reason, disposition, _) = failure.of_source().unwrap();
        assert!(reason.starts_with("sha256 mismatch"), "{reason}");
        assert_eq!(disposition, Disposition::NextSource);
        assert_eq!(state.accepted(), 0);
        assert!(on_disk(&mut state).is_empty());
        // Continued bytes that do not verify: the source starts over, once.
        let mut body = Chunks::of(&wrong, &[5000]);
        run(in_order(&mut body, &mut state)).unwrap();
        assert!(matches!(run(state.verdict(100)), Err(Failure::Resumed(_))));
        assert!(!state.resumable() && on_disk(&mut state).is_empty());
    }

    #[test]
    fn a_replayed_leftover_continues_where_it_ends() {
        let dir = tempfile::tempdir().unwrap();
        let data = file(8000);
        let job = job(&data);
        let mut spool = Spool::create(dir.path(), "left").unwrap();
        spool.write(&data[..3000]).unwrap();
        let key = source_key(&job.sources[0]);
        let state = Transfer::replay(spool, &job.expected, 3000, key).map_err(|_| ());
        let mut state = state.unwrap().continuing("\"v1\"".into(), BTreeMap::new());
        assert_eq!(state.accepted(), 3000);
        assert_eq!(state.resume().map(|part| part.start), Some(3000));
        let mut body = Chunks::of(&data[3000..], &[5000]);
        run(in_order(&mut body, &mut state)).unwrap();
        assert!(run(state.verdict(3000)).is_ok());
        assert_eq!(on_disk(&mut state), data);
    }
}
