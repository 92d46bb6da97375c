//! Getting one file: try its sources in order, stream each attempt into a spool file
//! through the verifier, and stop at the first whose bytes verify; retry transient failures
//! in bounded, backed-off rounds. A retry of the same source continues a broken-off transfer
//! with a ranged request guarded by the response's validator; sources never share a spool
//! file, so bytes of two sources (or two versions of a file) are never mixed.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow};
use ptex_config::{Parallel, RetryPolicy, Timeouts};
use ptex_schemes::{Dispatcher, Disposition, Download, FetchError, Part, RequestOptions, Source};

use crate::parts::{self, Plan};
use crate::progress::Progress;
use crate::report::Reporter;
use crate::share::{self, Claim};
use crate::sniff;
use crate::spool::{self, Spans, Spool};
use crate::verify::{Expected, Sha256Hex, Verified, Verifier, VerifyError};

/// One file to fetch.
pub struct Job {
    /// The file's name, for messages and spool file names.
    pub name: String,
    /// Where it may come from, in order.
    pub sources: Vec<Source>,
    /// What it must be.
    pub expected: Expected,
    /// How to ask for it.
    pub options: RequestOptions,
}

/// How hard to try, how long to wait, and how many connections to use.
pub struct Limits {
    pub retry: RetryPolicy,
    pub timeouts: Timeouts,
    pub parallel: Parallel,
}

/// Why one attempt failed.
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
        Failure::Source {
            reason: err.to_string(),
            disposition: Disposition::NextSource,
            retry_after: None,
        }
    }
}

/// Fetches `job` into a verified spool file in `spool_dir`.
///
/// Sources are tried in order, each at once after the one before fails. Sources that failed
/// in a way that may pass (5xx, 429, a reset, a timeout) are tried again in later rounds,
/// after a jittered, doubling backoff (or the server's `Retry-After`, capped); other
/// failures (404, a mismatch) drop the source.
pub async fn fetch(
    job: &Job,
    dispatcher: &mut Dispatcher,
    limits: &Limits,
    spool_dir: &Path,
    report: &Reporter,
) -> anyhow::Result<(Spool, Verified)> {
    let retry = &limits.retry;
    spool::remove_stale(spool_dir);
    let total = job.sources.len();
    let mut last_failure: Vec<Option<String>> = vec![None; total];
    let mut attempts = vec![0u32; total];
    let mut partials: Vec<Option<Transfer>> = (0..total).map(|_| None).collect();
    let timeouts = &limits.timeouts;
    let mut shared = match share::claim(job, spool_dir, &mut partials, timeouts, report).await {
        Claim::Held(spool) => spool,
        Claim::Done(spool, verified) => return Ok((spool, verified)),
    };
    let mut pending: Vec<usize> = (0..total).collect();
    let mut asked_wait = None;
    let waits = Waits::new(retry);
    for round in 0..=retry.retries {
        if round > 0 {
            let wait = backoff(retry, round, asked_wait);
            let Some(wait) = waits.take(wait, asked_wait.is_some()) else {
                break;
            };
            report.fallback(format_args!(
                "{}: trying again in {:.1} s (round {} of {})",
                job.name,
                wait.as_secs_f64(),
                round + 1,
                retry.retries + 1
            ));
            tokio::time::sleep(wait).await;
        }
        let mut again = Vec::new();
        asked_wait = None;
        for (position, &index) in pending.iter().enumerate() {
            let source = &job.sources[index];
            report.info(format_args!(
                "fetching {} from {source} (source {} of {total}, attempt {})",
                job.name,
                index + 1,
                attempts[index] + 1
            ));
            attempts[index] += 1;
            let mut state = match partials[index].take() {
                Some(partial) => partial,
                None => Transfer::new(job, source, spool_dir, shared.take())?,
            };
            let mut outcome =
                attempt(job, source, dispatcher, limits, &waits, &mut state, report).await;
            if let Err(Failure::Resumed(reason)) = &outcome {
                // Whatever the retry budget: what failed was the leftover, not the source.
                report.fallback(format_args!("{}: {reason}", job.name));
                outcome = match state.restart(job) {
                    Ok(()) => {
                        attempt(job, source, dispatcher, limits, &waits, &mut state, report).await
                    }
                    Err(failure) => Err(failure),
                };
            }
            let (reason, disposition, retry_after) = match outcome {
                Ok(verified) => return Ok((state.spool, verified)),
                Err(Failure::Local(err)) => {
                    return Err(err
                        .context(format!("Failed to fetch {source}"))
                        .context(format!("failed to fetch {}", job.name)));
                }
                Err(Failure::Resumed(reason)) => (reason, Disposition::NextSource, None),
                Err(Failure::Source {
                    reason,
                    disposition,
                    retry_after,
                }) => (reason, disposition, retry_after),
            };
            // What arrived may be continued by a retry of this same source only; otherwise a
            // shared spool is emptied for the next source.
            if disposition == Disposition::Retry && state.resumable() {
                partials[index] = Some(state);
            } else if state.spool.is_shared() && state.spool.reset().is_ok() {
                shared = Some(state.spool);
            }
            if disposition == Disposition::Retry {
                again.push(index);
                asked_wait = asked_wait.max(retry_after);
            }
            let last_of_round = position + 1 == pending.len();
            let nothing_left = disposition == Disposition::GiveUp
                || (last_of_round && (again.is_empty() || round == retry.retries));
            if !nothing_left {
                report.fallback(format_args!(
                    "{}: source {} of {total} ({source}) failed: {reason}",
                    job.name,
                    index + 1
                ));
            }
            last_failure[index] = Some(reason);
            if disposition == Disposition::GiveUp {
                return Err(all_failed(job, &last_failure, &attempts));
            }
        }
        if again.is_empty() {
            break;
        }
        pending = again;
    }
    Err(all_failed(job, &last_failure, &attempts))
}

/// The final error: every source tried, with its last reason, each as the original ptex
/// said it (`Failed to fetch <url>: <reason>`), so scripts written against it still match.
fn all_failed(job: &Job, last_failure: &[Option<String>], attempts: &[u32]) -> anyhow::Error {
    let tried: Vec<String> = job
        .sources
        .iter()
        .zip(last_failure)
        .zip(attempts)
        .filter_map(|((source, failure), &count)| {
            let failure = failure.as_ref()?;
            Some(match count {
                1 => failed_to_fetch(source, failure),
                n => failed_to_fetch(source, format_args!("{failure} (after {n} attempts)")),
            })
        })
        .collect();
    match tried.as_slice() {
        [one] => anyhow!("failed to fetch {}: {one}", job.name),
        _ => anyhow!(
            "failed to fetch {}: all {} sources failed: {}",
            job.name,
            tried.len(),
            tried.join("; ")
        ),
    }
}

/// One source's failure in the original ptex's words: `Failed to fetch <url>: <reason>`.
pub(crate) fn failed_to_fetch(source: &Source, reason: impl std::fmt::Display) -> String {
    format!("Failed to fetch {source}: {reason}")
}

/// The wait before retry round `round` (1-based): full jitter over a doubling window, but
/// at least what a server asked for; never more than the policy's maximum.
pub(crate) fn backoff(retry: &RetryPolicy, round: u32, asked: Option<Duration>) -> Duration {
    let window = retry
        .backoff
        .saturating_mul(1 << (round - 1).min(16))
        .min(retry.max_backoff);
    let jittered = window.mul_f64(random_fraction());
    jittered.max(asked.unwrap_or_default().min(retry.max_backoff))
}

/// A number in [0, 1), random enough for jitter.
fn random_fraction() -> f64 {
    (spool::random_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// What one fetch may still spend waiting because a server asked to (`Retry-After`), across
/// rounds and parts: as much as the longest single wait (`PTEX_RETRY_MAX_WAIT`), so a
/// server that asks every request to come back later cannot hold a download for minutes.
pub(crate) struct Waits {
    left: Cell<Duration>,
}

impl Waits {
    fn new(retry: &RetryPolicy) -> Waits {
        Waits {
            left: Cell::new(retry.max_backoff),
        }
    }

    /// `wait`, taken from what is left if the server `asked` for it; `None` when that is
    /// spent (then no more tries).
    pub(crate) fn take(&self, wait: Duration, asked: bool) -> Option<Duration> {
        if asked {
            self.left.set(self.left.get().checked_sub(wait)?);
        }
        Some(wait)
    }
}

/// How often a slow transfer's bytes go to the spool file (and, while concurrent parts fill
/// it, the note of how much of it is good is brought up to date).
pub(crate) const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// A transfer in progress: the spool file, the verifier that has seen every byte in it, and
/// the validator of the response they came from.
pub(crate) struct Transfer {
    pub(crate) spool: Spool,
    pub(crate) verifier: Verifier,
    pub(crate) validator: Option<String>,
    /// The `Content-Type` of the response the bytes came from, to say what came back.
    pub(crate) content_type: Option<String>,
    /// The source answered a part with something else (the whole file, another range):
    /// its ranges cannot be trusted, so the rest comes over one connection.
    pub(crate) one_connection: bool,
    /// Spans of the same version already in the spool file past the first gap (start ->
    /// end): concurrent parts wrote them, in this run or a killed one.
    pub(crate) arrived: BTreeMap<u64, u64>,
    /// The source's [`source_key`], for the note.
    pub(crate) key: String,
}

impl Transfer {
    /// A transfer from `source`'s first byte, in `shared` if given, else in a private spool.
    fn new(
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
        Ok(Transfer {
            spool,
            verifier: Verifier::new(job.expected.clone()),
            validator: None,
            content_type: None,
            one_connection: false,
            arrived: BTreeMap::new(),
            key: source_key(source),
        })
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
    fn resumable(&self) -> bool {
        self.validator.is_some() && self.verifier.accepted() > 0
    }

    /// The rest of the file, if this transfer can be continued.
    fn resume(&self) -> Option<Part> {
        let validator = self.validator.clone().filter(|_| self.resumable())?;
        Some(Part {
            start: self.verifier.accepted(),
            end: None,
            validator,
        })
    }

    /// Starts over from the first byte (the source sent the whole file again).
    fn restart(&mut self, job: &Job) -> Result<(), Failure> {
        self.spool.reset().map_err(|e| self.spool_error(e))?;
        self.verifier = Verifier::new(job.expected.clone());
        self.arrived.clear();
        Ok(())
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
    fn unexpected_page(&mut self, name: &str, length: u64) -> Option<String> {
        let head = self.head(length)?;
        sniff::unexpected(name, &head, length, self.content_type.as_deref())
    }

    /// The first bytes of the spool file (of `length` in all), for [`sniff`] to look at.
    fn head(&mut self, length: u64) -> Option<Vec<u8>> {
        let mut head = vec![0; sniff::HEAD.min(length as usize)];
        let file = self.spool.handle().ok()?;
        crate::os::read_exact_at(&file, &mut head, 0).ok()?;
        Some(head)
    }

    pub(crate) fn spool_error(&self, err: std::io::Error) -> Failure {
        Failure::Local(anyhow!(
            "cannot write spool file {}: {err}",
            self.spool.path().display()
        ))
    }
}

/// The spans `0..prefix` and `arrived` (those past `prefix`), merged.
pub(crate) fn spans(prefix: u64, arrived: &BTreeMap<u64, u64>) -> Spans {
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

/// Receives `plan`'s parts into `state`. A source that answers parts badly (the whole
/// file, another range, another version) is asked once more for what is left with one plain
/// request, as curl would make, instead of parts.
async fn receive_parts(
    shared: &parts::Shared<'_>,
    first: Option<Download>,
    state: &mut Transfer,
    plan: &Plan,
) -> Result<(), Failure> {
    let received = parts::receive(shared, first, state, plan).await;
    if !shared.ranges_broken.get() {
        return received;
    }
    state.one_connection = true;
    let reason = match received {
        Err(Failure::Source { reason, .. }) => reason,
        _ => "the source answered a part badly".to_string(),
    };
    Err(Failure::Source {
        reason: format!("{reason}; going on over one connection"),
        disposition: Disposition::Retry,
        retry_after: None,
    })
}

/// One try of one source, from where `state` left off (or the start) to the verdict.
async fn attempt(
    job: &Job,
    source: &Source,
    dispatcher: &mut Dispatcher,
    limits: &Limits,
    waits: &Waits,
    state: &mut Transfer,
    report: &Reporter,
) -> Result<Verified, Failure> {
    // Every byte is already here (a run killed after its last one): nothing to ask for.
    let have = state.verifier.accepted();
    if have > 0 && job.expected.size == Some(have) {
        return finish(job, source, state, have, report);
    }
    // Spans a killed run left past the first gap: only the holes around them are asked for,
    // each with a ranged request of its own guarded by the noted validator.
    if let Some(plan) = Plan::continuing(&limits.parallel, state, job.expected.size) {
        let first = state.arrived.keys().next().copied().unwrap_or(have);
        let progress = report.progress();
        progress.start(job.expected.size);
        progress.advance(have + state.arrived.iter().map(|(s, e)| e - s).sum::<u64>());
        report.info(format_args!(
            "{source}: fetching the {} bytes an earlier run did not write, in {} parts over \
             up to {} connections",
            plan.missing(state),
            plan.count(state),
            plan.connections(),
        ));
        dispatcher.prepare(source).await?;
        let shared = parts::Shared::new(dispatcher, source, &job.options, limits, waits, report);
        receive_parts(&shared, None, state, &plan).await?;
        return finish(job, source, state, have.max(first), report);
    }
    let mut observe = |head: &_| report.response(head);
    let resume = state.resume();
    let mut download = dispatcher
        .open(source, &job.options, resume.as_ref(), &mut observe)
        .await?;
    let offset = match download.starts_at() {
        // A part of another version than the one asked for (a server that ignores
        // `If-Range`): nothing of it joins the bytes already here.
        Some(_)
            if resume
                .as_ref()
                .is_some_and(|part| download.validator().is_some_and(|v| v != part.validator)) =>
        {
            state.restart(job)?;
            state.validator = None;
            return Err(Failure::Source {
                reason: "the source sent part of another version of the file than the one \
                         asked for (its validator changed)"
                    .to_string(),
                disposition: Disposition::Retry,
                retry_after: None,
            });
        }
        Some(offset) => {
            report.info(format_args!("{source}: resuming at byte {offset}"));
            offset
        }
        None => {
            if state.verifier.accepted() > 0 {
                state.restart(job)?;
            }
            0
        }
    };
    state.validator = download.validator().map(str::to_string);
    let declared = download.content_length().map(|rest| offset + rest);
    state.content_type = download.content_type().map(str::to_string);
    state
        .verifier
        .check_declared(declared)
        .map_err(|e| state.early_mismatch(e))?;
    state
        .verifier
        .check_declared_sha256(download.declared_sha256())
        .map_err(|e| state.early_mismatch(e))?;
    let total = job.expected.size.or(declared);
    // Lets a later run continue these bytes if this one is killed.
    state.note(total);
    let progress = report.progress();
    progress.start(total);
    progress.advance(offset);
    let timeouts = &limits.timeouts;
    // Sized for the link: one connection first; parts only if it turns out slow and enough
    // is left.
    let splittable = Plan::new(&limits.parallel, &download, state, total).is_some();
    let at_once = limits.parallel.probe.is_zero();
    let probe = splittable.then(|| tokio::time::Instant::now() + limits.parallel.probe);
    let from = state.verifier.accepted();
    let started = tokio::time::Instant::now();
    if receive(&mut download, state, timeouts, progress, probe, total).await? == Received::All {
        return finish(job, source, state, offset, report);
    }
    let seconds = started.elapsed().as_secs_f64().max(1e-6);
    let rate = (state.verifier.accepted() - from) as f64 / seconds;
    let plan = Plan::new(&limits.parallel, &download, state, total)
        .filter(|_| at_once || rate < FAST_CONNECTION);
    match plan {
        Some(plan) => {
            let why = match at_once {
                true => "PTEX_SPLIT_AFTER is 0".to_string(),
                false => format!("one connection gave {:.1} MB/s", rate / 1e6),
            };
            report.info(format_args!(
                "{source}: fetching the last {} bytes in {} parts over up to {} connections \
                 ({why})",
                plan.missing(state),
                plan.count(state),
                plan.connections(),
            ));
            let shared =
                parts::Shared::new(dispatcher, source, &job.options, limits, waits, report);
            receive_parts(&shared, Some(download), state, &plan).await?;
        }
        None => {
            receive(&mut download, state, timeouts, progress, None, total).await?;
        }
    }
    finish(job, source, state, offset, report)
}

/// The verdict on a transfer whose bytes all arrived (`offset` of them in an earlier
/// attempt or run).
fn finish(
    job: &Job,
    source: &Source,
    state: &mut Transfer,
    offset: u64,
    report: &Reporter,
) -> Result<Verified, Failure> {
    let length = state.verifier.accepted();
    let verifier = std::mem::replace(&mut state.verifier, Verifier::new(Expected::default()));
    let verified = match verifier.finish() {
        Ok(verified) => verified,
        // Bytes continued from an earlier attempt or run may be what is wrong (a corrupted
        // spool file): try this source once more from the first byte before judging it.
        Err(err) if offset > 0 => {
            state.validator = None;
            return Err(Failure::Resumed(format!(
                "{err} (after resuming at byte {offset}; starting over)"
            )));
        }
        Err(err) => return Err(state.late_mismatch(err, length)),
    };
    report.info(format_args!(
        "{source}: verified {} bytes, sha256 {}",
        verified.size, verified.sha256
    ));
    if !job.expected.is_complete()
        && let Some(words) = state.unexpected_page(&job.name, length)
    {
        // Nothing to check it against: pass it on, but say what it looks like.
        report.warn(format_args!("{}: not verified, and {words}", job.name));
    }
    Ok(verified)
}

/// A connection faster than this (bytes per second) is left alone: it is about what one
/// connection gives when the machine itself (receiving, spooling and hashing on two cores)
/// is the limit, where more connections only add work. Below it, the server or the path
/// limits each connection, and more connections add bandwidth.
const FAST_CONNECTION: f64 = 256.0 * 1024.0 * 1024.0;

/// How far [`receive`] got.
#[derive(PartialEq)]
enum Received {
    All,
    /// It stopped at the deadline, the body not yet over.
    Paused,
}

/// Bytes gathered before they are written to the spool file and handed to the verifier.
const SPOOL_BUFFER: usize = 256 * 1024;

/// Receives the rest of `download` in order (or what comes before `until`), into the spool
/// file and on to the verifier. Every network buffer is let go of at once (the hasher
/// reads the bytes back from the file), so the client reuses its buffers.
async fn receive(
    download: &mut Download,
    state: &mut Transfer,
    timeouts: &Timeouts,
    progress: &Progress,
    until: Option<tokio::time::Instant>,
    total: Option<u64>,
) -> Result<Received, Failure> {
    let file = state.spool.handle().map_err(|e| state.spool_error(e))?;
    // In order from here on: what arrived past this point is written again.
    let at = state.verifier.accepted();
    state.arrived.retain(|&start, _| start > at);
    state.spool.seek(at).map_err(|e| state.spool_error(e))?;
    let mut floor = SpeedFloor::new(timeouts);
    let mut buffer = Vec::with_capacity(SPOOL_BUFFER);
    let mut checkpoint = tokio::time::Instant::now();
    let outcome = loop {
        if until.is_some_and(|until| tokio::time::Instant::now() >= until) {
            break Ok(Received::Paused);
        }
        // The same read, woken about once a second: a transfer that waits (a stall, or a
        // response that never ends after its last byte) still notes what it has.
        let next = {
            let mut chunk = std::pin::pin!(download.chunk());
            loop {
                let wake = checkpoint + CHECKPOINT_EVERY;
                match tokio::time::timeout_at(wake, chunk.as_mut()).await {
                    Ok(next) => break next,
                    Err(_) => {
                        spool_buffer(state, &file, &mut buffer)?;
                        state.note(total);
                        checkpoint = tokio::time::Instant::now();
                    }
                }
            }
        };
        let chunk = match next {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break Ok(Received::All),
            Err(err) => break Err(err.into()),
        };
        if let Err(failure) = floor.check(chunk.len()) {
            break Err(failure);
        }
        progress.advance(chunk.len() as u64);
        gather(&mut buffer, SPOOL_BUFFER, &chunk, |full| {
            spool_buffer(state, &file, full)
        })?;
        // A slow transfer still reaches the file about once a second, for a later run to
        // continue if this one is killed.
        if checkpoint.elapsed() >= CHECKPOINT_EVERY {
            spool_buffer(state, &file, &mut buffer)?;
            state.note(total);
            checkpoint = tokio::time::Instant::now();
        }
    };
    // What arrived counts even when the transfer broke off: a retry continues after it.
    spool_buffer(state, &file, &mut buffer)?;
    outcome
}

/// Adds `bytes` to `buffer`, handing it to `flush` (which empties it) each time it holds
/// `size` bytes. The buffer never grows: fewer, larger allocations keep the heap small.
pub(crate) fn gather(
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

/// Appends `buffer` to the spool file and hands its bytes to the verifier.
fn spool_buffer(
    state: &mut Transfer,
    file: &Arc<File>,
    buffer: &mut Vec<u8>,
) -> Result<(), Failure> {
    if buffer.is_empty() {
        return Ok(());
    }
    if let Err(e) = state.spool.write(buffer) {
        return Err(state.spool_error(e));
    }
    let start = state.verifier.accepted();
    state
        .verifier
        .update_from_file(file, start, buffer.len() as u64)?;
    buffer.clear();
    Ok(())
}

/// A stable name for a source that holds no secret: the sha256 of its URL.
pub(crate) fn source_key(source: &Source) -> String {
    Sha256Hex::digest(source.url().as_str().as_bytes()).to_string()
}

/// The low-speed floor: a transfer that moves fewer than `limit` bytes per second over a
/// whole window of `window` is abandoned (and retried), as curl's `--speed-limit` does. A
/// complete stall is the read timeout's business; this catches the drip.
pub(crate) struct SpeedFloor {
    limit: u64,
    window: Duration,
    started: tokio::time::Instant,
    bytes: u64,
}

impl SpeedFloor {
    pub(crate) fn new(timeouts: &Timeouts) -> SpeedFloor {
        SpeedFloor {
            limit: timeouts.low_speed_limit,
            window: timeouts.low_speed_time,
            started: tokio::time::Instant::now(),
            bytes: 0,
        }
    }

    pub(crate) fn check(&mut self, received: usize) -> Result<(), Failure> {
        self.bytes += received as u64;
        let elapsed = self.started.elapsed();
        if self.limit == 0 || elapsed < self.window {
            return Ok(());
        }
        let rate = self.bytes as f64 / elapsed.as_secs_f64();
        if rate < self.limit as f64 {
            return Err(Failure::Source {
                reason: format!(
                    "too slow: {rate:.0} bytes/s over {:.1} s, below the floor of {} bytes/s \
                     (PTEX_LOW_SPEED_LIMIT)",
                    elapsed.as_secs_f64(),
                    self.limit
                ),
                disposition: Disposition::Retry,
                retry_after: None,
            });
        }
        // A new window starts: one slow stretch in a long, fast download does not count
        // against the next.
        self.started = tokio::time::Instant::now();
        self.bytes = 0;
        Ok(())
    }
}
