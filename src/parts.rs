//! Fetching the rest of a large file over several connections at once. What is left is cut
//! into parts; each is asked for with a ranged request guarded by the first response's
//! validator (so every part comes from the same version of the file), written into the
//! spool file at its offset as it arrives, and handed to the verifier, in order, as soon as
//! every byte before it is there. A part that breaks off is asked for again from where it
//! stopped. About once a second the note of the spool file records every span written, so a
//! later attempt (or run) fetches only the holes. A file is split only when its expected
//! sha256 and a validator tie every part to one version of it.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use ptex_config::Parallel;
use ptex_schemes::{Dispatcher, Disposition, Download, FetchError, Part, RequestOptions, Source};

use crate::job::Limits;
use crate::report::Reporter;
use crate::retry::{Waits, backoff};
use crate::transfer::{self, CHECKPOINT_EVERY, Failure, Received, Receiving, Sink, Transfer};

/// The smallest and largest part: small enough that every connection gets several (so a
/// slow one holds up little at the end), large enough that requests cost little.
const MIN_PART: u64 = 4 << 20;
const MAX_PART: u64 = 64 << 20;

/// Parts each connection should get, ideally.
const PARTS_PER_CONNECTION: u64 = 4;

/// How the rest of a file is cut.
pub(crate) struct Plan {
    total: u64,
    part_size: u64,
    connections: usize,
}

impl Plan {
    /// A plan for the rest of the transfer in `state`, if splitting it is possible and worth
    /// it: the source serves parts and named the file's version, the size and the sha256 are
    /// known (without them, parts of two versions could pass as one file), and at least the
    /// configured minimum is left.
    pub(crate) fn new(
        parallel: &Parallel,
        download: &Download,
        state: &Transfer,
        total: Option<u64>,
    ) -> Option<Plan> {
        let total = total?;
        let rest = total.checked_sub(state.accepted())?;
        let worth_it = parallel.connections > 1 && rest >= parallel.min_size;
        if !worth_it || !download.splittable() || state.one_connection() {
            return None;
        }
        Plan::tied(parallel, state, total)
    }

    /// A plan for the holes a killed run left in `state`'s file around the spans it wrote
    /// past its first gap (a source it split once serves parts), if there are such spans.
    pub(crate) fn continuing(
        parallel: &Parallel,
        state: &Transfer,
        total: Option<u64>,
    ) -> Option<Plan> {
        if state.arrived().is_empty() {
            return None;
        }
        Plan::tied(parallel, state, total?)
    }

    /// A plan for what `state` misses of `total` bytes, if a validator and the expected
    /// sha256 tie its parts to one version of the file.
    fn tied(parallel: &Parallel, state: &Transfer, total: u64) -> Option<Plan> {
        if state.validator().is_none() || !state.expects_sha256() {
            return None;
        }
        let rest = total.checked_sub(state.accepted())?;
        let ideal = rest / (parallel.connections as u64 * PARTS_PER_CONNECTION);
        Some(Plan {
            total,
            part_size: ideal.clamp(MIN_PART, MAX_PART),
            connections: parallel.connections,
        })
    }

    /// Connections used at most.
    pub(crate) fn connections(&self) -> usize {
        self.connections
    }

    /// How many bytes `state` still misses.
    pub(crate) fn missing(&self, state: &Transfer) -> u64 {
        self.spans(state).iter().map(|s| s.end - s.start).sum()
    }

    /// How many parts the bytes `state` misses are cut into.
    pub(crate) fn count(&self, state: &Transfer) -> usize {
        self.spans(state).len()
    }

    /// The holes in `state`'s file (from its first gap on, around what arrived past it), cut
    /// into parts.
    fn spans(&self, state: &Transfer) -> VecDeque<Span> {
        let mut holes = Vec::new();
        let mut at = state.accepted();
        for (&start, &end) in state.arrived().range(at..) {
            if start > at {
                holes.push((at, start.min(self.total)));
            }
            at = at.max(end);
        }
        if at < self.total {
            holes.push((at, self.total));
        }
        holes
            .into_iter()
            .flat_map(|(from, to)| {
                (from..to)
                    .step_by(self.part_size as usize)
                    .map(move |start| Span {
                        start,
                        end: (start + self.part_size).min(to),
                        failures: 0,
                        wait: None,
                    })
            })
            .collect()
    }
}

/// One source's transfer split into parts: what every part shares.
pub(crate) struct Split<'a> {
    pub(crate) dispatcher: &'a Dispatcher,
    pub(crate) source: &'a Source,
    pub(crate) options: &'a RequestOptions,
    pub(crate) limits: &'a Limits,
    pub(crate) waits: &'a Waits,
    pub(crate) report: &'a Reporter,
    /// Set when the source answered a part with something else: no part is asked again.
    pub(crate) ranges_broken: Cell<bool>,
}

impl<'a> Split<'a> {
    /// What every part of one source's transfer shares; no part has been answered badly yet.
    pub(crate) fn new(
        dispatcher: &'a Dispatcher,
        source: &'a Source,
        options: &'a RequestOptions,
        limits: &'a Limits,
        waits: &'a Waits,
        report: &'a Reporter,
    ) -> Split<'a> {
        Split {
            dispatcher,
            source,
            options,
            limits,
            waits,
            report,
            ranges_broken: Cell::new(false),
        }
    }
}

/// Bytes `start..end` of the file still to fetch, and how often fetching them failed.
struct Span {
    start: u64,
    end: u64,
    failures: u32,
    /// What the source asked to wait before the next try (`Retry-After`).
    wait: Option<Duration>,
}

/// Receives the rest of the file in concurrent parts, `first` (the response that opened
/// the transfer, if any) serving the first. On return, the verifier has seen every byte
/// before the first gap, the transfer lists the spans written past it, and the note says so.
pub(crate) async fn receive(
    split: &Split<'_>,
    first: Option<Download>,
    state: &mut Transfer,
    plan: &Plan,
) -> Result<(), Failure> {
    let mut waiting = plan.spans(state);
    let transfer = RefCell::new(&mut *state);
    let mut running = FuturesUnordered::new();
    if let Some(span) = waiting.pop_front() {
        running.push(receive_span(split, &transfer, span, first));
    }
    let mut checkpoint = tokio::time::Instant::now();
    let outcome = loop {
        while running.len() < plan.connections
            && let Some(span) = waiting.pop_front()
        {
            running.push(receive_span(split, &transfer, span, None));
        }
        // About once a second, whether or not a part ends, a later run learns every span
        // it could keep: the note never vouches for a byte not yet written.
        let next = tokio::time::timeout_at(checkpoint + CHECKPOINT_EVERY, running.next()).await;
        if checkpoint.elapsed() >= CHECKPOINT_EVERY {
            transfer.borrow().note(Some(plan.total));
            checkpoint = tokio::time::Instant::now();
        }
        let Ok(next) = next else {
            continue;
        };
        let Some((span, received, result)) = next else {
            break Ok(());
        };
        if let Err(failure) = result
            && let Err(failure) = retry_part(split, failure, &span, received).map(|span| {
                waiting.push_front(span);
            })
        {
            break Err(failure);
        }
    };
    drop(running);
    state.note(Some(plan.total));
    outcome?;
    match state.accepted() {
        got if got == plan.total => Ok(()),
        got => Err(Failure::Local(anyhow::anyhow!(
            "the parts of the file left a gap at byte {got}"
        ))),
    }
}

/// What is left of `span` (of which `received` bytes arrived) to try again after `failure`,
/// if the failure may pass and the span has tries left; else the failure, which ends this
/// attempt at the source.
fn retry_part(
    split: &Split<'_>,
    failure: Failure,
    span: &Span,
    received: u64,
) -> Result<Span, Failure> {
    let Failure::Source {
        reason,
        disposition: Disposition::Retry,
        retry_after,
    } = failure
    else {
        return Err(failure);
    };
    let failures = span.failures + 1;
    if failures > split.limits.retry.retries {
        return Err(Failure::Source {
            reason,
            disposition: Disposition::Retry,
            retry_after,
        });
    }
    let start = span.start + received;
    let what = match received {
        0 => "failed".to_string(),
        _ => format!("broke off at byte {start}"),
    };
    split.report.news(format_args!(
        "{}: the part from byte {} {what}: {reason}; asking for it again",
        split.source, span.start
    ));
    Ok(Span {
        start,
        end: span.end,
        failures,
        wait: retry_after,
    })
}

/// Bytes a part gathers before writing them to the spool file (and handing them on to be
/// hashed, if they are at the front).
const PART_BUFFER: usize = 128 * 1024;

/// One part's bytes, written at their offset in the transfer's file.
struct AtOffset<'t, 'r> {
    transfer: &'t RefCell<&'r mut Transfer>,
    start: u64,
    /// Bytes of the part in the file so far.
    received: u64,
}

impl Sink for AtOffset<'_, '_> {
    fn take(&mut self, buffer: &mut Vec<u8>) -> Result<(), Failure> {
        let len = buffer.len() as u64;
        let at = self.start + self.received;
        self.transfer.borrow_mut().write_at(at, buffer)?;
        self.received += len;
        Ok(())
    }
}

/// Fetches one span into the file at its offset: with `opened` (a response already under
/// way at the span's start), or with a ranged request of its own. Returns the span, how many
/// of its bytes are in the file, and how it ended.
async fn receive_span(
    split: &Split<'_>,
    transfer: &RefCell<&mut Transfer>,
    span: Span,
    opened: Option<Download>,
) -> (Span, u64, Result<(), Failure>) {
    let mut sink = AtOffset {
        transfer,
        start: span.start,
        received: 0,
    };
    let result = fill_span(split, &mut sink, &span, opened).await;
    (span, sink.received, result)
}

async fn fill_span(
    split: &Split<'_>,
    sink: &mut AtOffset<'_, '_>,
    span: &Span,
    opened: Option<Download>,
) -> Result<(), Failure> {
    let mut download = match opened {
        Some(download) => download,
        None => {
            let validator = sink
                .transfer
                .borrow()
                .validator()
                .unwrap_or_default()
                .to_string();
            open_span(split, &validator, span).await?
        }
    };
    let want = span.end - span.start;
    let how = Receiving {
        timeouts: &split.limits.timeouts,
        progress: split.report.progress(),
        buffer: PART_BUFFER,
        until: None,
        want: Some(want),
    };
    match transfer::receive(&mut download, sink, &how).await? {
        Received::Full => Ok(()),
        _ => Err(Failure::retry(format!(
            "the part ended {} bytes early",
            want - sink.received
        ))),
    }
}

/// A ranged request for `span`, after the backoff its failures call for.
async fn open_span(split: &Split<'_>, validator: &str, span: &Span) -> Result<Download, Failure> {
    if span.failures > 0 {
        let wait = backoff(&split.limits.retry, span.failures, span.wait);
        let Some(wait) = split.waits.take(wait, span.wait.is_some()) else {
            return Err(Failure::next_source(format!(
                "it kept asking to wait; gave up after waiting {:.0} s in all \
                 (PTEX_RETRY_MAX_WAIT)",
                split.limits.retry.max_backoff.as_secs_f64()
            )));
        };
        tokio::time::sleep(wait).await;
    }
    let part = Part {
        start: span.start,
        end: Some(span.end),
        validator: validator.to_string(),
    };
    let opened = split
        .dispatcher
        .open_part(split.source, split.options, &part)
        .await;
    let broken = match &opened {
        Ok(download) => {
            download.starts_at() != Some(span.start)
                || download
                    .content_length()
                    .is_some_and(|n| n != span.end - span.start)
                || download.validator().is_some_and(|v| v != validator)
        }
        Err(e) => matches!(e.innermost(), FetchError::WrongPart),
    };
    if broken {
        // Not asked again: a load balancer whose nodes name the file differently answers
        // every part with the whole file, as If-Range tells it to; a file that changed is
        // read again over one connection too.
        split.ranges_broken.set(true);
        return Err(Failure::next_source(
            "the source no longer serves parts of the same file (it changed, or stopped \
             honouring ranges)",
        ));
    }
    Ok(opened?)
}
