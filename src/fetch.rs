//! Getting one file: try its sources in order, stream each attempt into a spool file
//! through the verifier, and stop at the first whose bytes verify; retry transient failures
//! in bounded, backed-off rounds. A retry of the same source continues a broken-off transfer
//! with a ranged request guarded by the response's validator; sources never share a spool
//! file, so bytes of two sources (or two versions of a file) are never mixed. This module
//! only decides what happens next: [`crate::transfer`] moves the bytes, [`crate::parts`]
//! splits a transfer, [`crate::retry`] keeps the rounds, [`crate::share`] the shared spool.

use std::path::Path;

use ptex_schemes::{Dispatcher, Disposition, Download, Source};

use crate::job::{Job, Limits};
use crate::parts::{self, Plan, Split};
use crate::report::Reporter;
use crate::retry::{After, Rounds, Waits};
use crate::share::{self, Claim};
use crate::spool::{self, Spool};
use crate::transfer::{Failure, Received, Transfer, receive_in_order};
use crate::verify::Verified;

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
    spool::remove_stale(spool_dir);
    let total = job.sources.len();
    // Per source: a transfer that a retry of it (and only it) may continue.
    let mut partials: Vec<Option<Transfer>> = (0..total).map(|_| None).collect();
    let mut shared = match share::claim(job, spool_dir, &limits.timeouts, report).await {
        Claim::Fill(spool) => Some(spool),
        Claim::Private => None,
        Claim::Continue(index, transfer) => {
            partials[index] = Some(*transfer);
            None
        }
        Claim::Done(spool, verified) => return Ok((spool, verified)),
    };
    let mut rounds = Rounds::new(&limits.retry, total);
    while let Some((pending, wait)) = rounds.next() {
        let (round, most) = rounds.round();
        if round > 1 {
            report.news(format_args!(
                "{}: trying again in {:.1} s (round {round} of {most})",
                job.name,
                wait.as_secs_f64(),
            ));
            tokio::time::sleep(wait).await;
        }
        for index in pending {
            let source = &job.sources[index];
            let attempt = rounds.attempt(index);
            report.info(format_args!(
                "fetching {} from {source} (source {} of {total}, attempt {attempt})",
                job.name,
                index + 1,
            ));
            let mut state = match partials[index].take() {
                Some(partial) => partial,
                None => Transfer::new(job, source, spool_dir, shared.take())?,
            };
            let at = Attempt {
                job,
                source,
                limits,
                waits: rounds.waits(),
                report,
            };
            let failure = match try_source(&at, dispatcher, &mut state).await {
                Ok(verified) => return Ok((state.into_spool(), verified)),
                Err(failure) => failure,
            };
            let (reason, disposition, retry_after) = failure.of_source().map_err(|err| {
                err.context(format!("Failed to fetch {source}"))
                    .context(format!("failed to fetch {}", job.name))
            })?;
            // What arrived may be continued by a retry of this same source only; otherwise a
            // shared spool is emptied for the next source.
            if disposition == Disposition::Retry && state.resumable() {
                partials[index] = Some(state);
            } else if let Some(spool) = state.into_shared_spool() {
                shared = Some(spool);
            }
            match rounds.failed(index, reason.clone(), disposition, retry_after) {
                After::More => report.news(format_args!(
                    "{}: source {} of {total} ({source}) failed: {reason}",
                    job.name,
                    index + 1
                )),
                After::Last => {}
                After::GiveUp => return Err(rounds.all_failed(&job.name, &job.sources)),
            }
        }
    }
    Err(rounds.all_failed(&job.name, &job.sources))
}

/// What every try of one source shares.
struct Attempt<'a> {
    job: &'a Job,
    source: &'a Source,
    limits: &'a Limits,
    waits: &'a Waits,
    report: &'a Reporter,
}

impl<'a> Attempt<'a> {
    /// What the parts of this attempt share, each asking `dispatcher` for its own range.
    fn split(&self, dispatcher: &'a Dispatcher) -> Split<'a> {
        Split::new(
            dispatcher,
            self.source,
            &self.job.options,
            self.limits,
            self.waits,
            self.report,
        )
    }
}

/// One try of one source; once more from the first byte when what failed was the bytes
/// continued from an earlier attempt or run, whatever the retry budget: what failed was the
/// leftover, not the source.
async fn try_source(
    at: &Attempt<'_>,
    dispatcher: &mut Dispatcher,
    state: &mut Transfer,
) -> Result<Verified, Failure> {
    let Attempt { job, report, .. } = *at;
    match attempt(at, dispatcher, state).await {
        Err(Failure::Resumed(reason)) => {
            report.news(format_args!("{}: {reason}", job.name));
            attempt(at, dispatcher, state).await
        }
        outcome => outcome,
    }
}

/// One try of one source, from where `state` left off (or the start) to the verdict.
async fn attempt(
    at: &Attempt<'_>,
    dispatcher: &mut Dispatcher,
    state: &mut Transfer,
) -> Result<Verified, Failure> {
    let Attempt {
        job,
        source,
        limits,
        report,
        ..
    } = *at;
    // Every byte is already here (a run killed after its last one): nothing to ask for.
    let have = state.accepted();
    if have > 0 && job.expected.size == Some(have) {
        return finish(at, state, have).await;
    }
    // Spans a killed run left past the first gap: only the holes around them are asked for.
    if let Some(plan) = Plan::continuing(&limits.parallel, state, job.expected.size) {
        let first = state.arrived().keys().next().copied().unwrap_or(have);
        fill_holes(at, dispatcher, state, &plan).await?;
        return finish(at, state, have.max(first)).await;
    }
    let (mut download, offset) = open(at, dispatcher, state).await?;
    let total = job
        .expected
        .size
        .or(download.content_length().map(|rest| offset + rest));
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
    let from = state.accepted();
    let started = tokio::time::Instant::now();
    let received = receive_in_order(&mut download, state, timeouts, progress, probe, total);
    let waited = match received.await? {
        Received::Paused { waited } => waited,
        _ => return finish(at, state, offset).await,
    };
    let seconds = started.elapsed().as_secs_f64().max(1e-6);
    let probe = Probe {
        rate: (state.accepted() - from) as f64 / seconds,
        waiting: waited.as_secs_f64() / seconds,
        hash_rate: state.hash_rate(),
    };
    let plan = Plan::new(&limits.parallel, &download, state, total)
        .filter(|_| at_once || probe.split_pays());
    let speeds = probe.to_string();
    match plan {
        Some(plan) => {
            let why = match at_once {
                true => "PTEX_SPLIT_AFTER is 0".to_string(),
                false => speeds,
            };
            report.info(format_args!(
                "{source}: fetching the last {} bytes in {} parts over up to {} connections \
                 ({why})",
                plan.missing(state),
                plan.count(state),
                plan.connections(),
            ));
            receive_parts(&at.split(dispatcher), Some(download), state, &plan).await?;
        }
        None => {
            report.info(format_args!(
                "{source}: staying on one connection ({speeds})"
            ));
            receive_in_order(&mut download, state, timeouts, progress, None, total).await?;
        }
    }
    finish(at, state, offset).await
}

/// Fetches the holes `plan` finds in a file a killed run left spans of, each with a ranged
/// request of its own guarded by the noted validator.
async fn fill_holes(
    at: &Attempt<'_>,
    dispatcher: &mut Dispatcher,
    state: &mut Transfer,
    plan: &Plan,
) -> Result<(), Failure> {
    let Attempt {
        job,
        source,
        report,
        ..
    } = *at;
    let progress = report.progress();
    progress.start(job.expected.size);
    let arrived: u64 = state.arrived().iter().map(|(s, e)| e - s).sum();
    progress.advance(state.accepted() + arrived);
    report.info(format_args!(
        "{source}: fetching the {} bytes an earlier run did not write, in {} parts over up \
         to {} connections",
        plan.missing(state),
        plan.count(state),
        plan.connections(),
    ));
    dispatcher.prepare(source).await?;
    receive_parts(&at.split(dispatcher), None, state, plan).await
}

/// Asks `source` for the file, or for the rest of it when `state` can be continued; takes
/// what the response says about itself. Returns the response and the byte it starts at.
async fn open(
    at: &Attempt<'_>,
    dispatcher: &mut Dispatcher,
    state: &mut Transfer,
) -> Result<(Download, u64), Failure> {
    let Attempt {
        job,
        source,
        report,
        ..
    } = *at;
    let mut observe = |head: &_| report.response(head);
    let resume = state.resume();
    let download = dispatcher
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
            state.forget()?;
            return Err(Failure::retry(
                "the source sent part of another version of the file than the one asked for \
                 (its validator changed)",
            ));
        }
        Some(offset) => {
            report.info(format_args!("{source}: resuming at byte {offset}"));
            offset
        }
        None => {
            if state.accepted() > 0 {
                state.restart()?;
            }
            0
        }
    };
    state.answered(&download, offset)?;
    Ok((download, offset))
}

/// Receives `plan`'s parts into `state`. A source that answers parts badly (the whole
/// file, another range, another version) is asked once more for what is left with one plain
/// request, as curl would make, instead of parts.
async fn receive_parts(
    split: &Split<'_>,
    first: Option<Download>,
    state: &mut Transfer,
    plan: &Plan,
) -> Result<(), Failure> {
    let received = parts::receive(split, first, state, plan).await;
    if !split.ranges_broken.get() {
        return received;
    }
    state.keep_to_one_connection();
    let reason = match received {
        Err(Failure::Source { reason, .. }) => reason,
        _ => "the source answered a part badly".to_string(),
    };
    Err(Failure::retry(format!(
        "{reason}; going on over one connection"
    )))
}

/// The verdict on a transfer whose bytes all arrived (`offset` of them in an earlier
/// attempt or run).
async fn finish(at: &Attempt<'_>, state: &mut Transfer, offset: u64) -> Result<Verified, Failure> {
    let Attempt {
        job,
        source,
        report,
        ..
    } = *at;
    let length = state.accepted();
    let verified = state.verdict(offset).await?;
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

/// A connection faster than this (bytes per second) is left alone, whatever else the probe
/// says: it is about what one connection gives when the machine itself (receiving,
/// spooling and hashing on two cores) is the limit, where more connections only add work.
/// On a loaded two-core machine one loopback connection measured 200 to 575 MB/s against a
/// hash rate of about 1.1 GB/s, and parts were no faster there: the hash alone would start
/// them more often than this ceiling does.
const FAST_CONNECTION: f64 = 256.0 * 1024.0 * 1024.0;

/// The share of this machine's hash rate a connection must fall below to be split: one
/// that keeps up with the hash is left alone.
const HASH_SHARE: f64 = 0.8;

/// The share of the time one connection must keep ptex waiting for its next bytes for the
/// connection to be the limit; below it, ptex was busy taking what arrived.
const WAITING_SHARE: f64 = 0.25;

/// What one connection showed over its first `PTEX_SPLIT_AFTER`.
struct Probe {
    /// Bytes per second it gave.
    rate: f64,
    /// The share of the time ptex waited for it to send more.
    waiting: f64,
    /// How fast this machine hashed its bytes, when enough were hashed to tell.
    hash_rate: Option<f64>,
}

impl Probe {
    /// Whether splitting the rest into parts pays. Parts add bandwidth only where the
    /// server or the path limits each connection. They cannot when this machine is the
    /// limit: when the bytes were there before ptex asked for them (it was busy receiving,
    /// spooling, or waiting for the hash to catch up), or when the connection keeps up with
    /// the hash (the verifier cannot go faster); more connections then only add work on
    /// the same cores.
    fn split_pays(&self) -> bool {
        let limit = self.hash_rate.map_or(FAST_CONNECTION, |hash| {
            FAST_CONNECTION.min(HASH_SHARE * hash)
        });
        self.waiting >= WAITING_SHARE && self.rate < limit
    }
}

impl std::fmt::Display for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "one connection gave {:.1} MB/s, waited for {:.0} % of the time",
            self.rate / 1e6,
            self.waiting * 100.0
        )?;
        if let Some(hash) = self.hash_rate {
            write!(f, ", hashing goes at {:.1} MB/s", hash / 1e6)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: f64 = 1e6;

    fn probe(rate: f64, waiting: f64, hash_rate: Option<f64>) -> Probe {
        Probe {
            rate: rate * MB,
            waiting,
            hash_rate: hash_rate.map(|hash| hash * MB),
        }
    }

    #[test]
    fn one_connection_that_keeps_up_with_the_hash_is_not_split() {
        // A slow hash (a small or busy machine): a connection at 200 MB/s keeps up with it,
        // though it waited for every byte and is below the fixed ceiling.
        assert!(!probe(200.0, 0.9, Some(220.0)).split_pays());
        assert!(!probe(180.0, 0.9, Some(220.0)).split_pays());
        // Loopback on two cores: as fast as sha256 goes, or faster (the hash queue fills).
        assert!(!probe(1100.0, 0.5, Some(1100.0)).split_pays());
        assert!(!probe(1700.0, 0.5, Some(1100.0)).split_pays());
    }

    #[test]
    fn one_connection_whose_bytes_were_always_there_is_not_split() {
        // ptex, not the source, was the limit: busy receiving and spooling, or held up by
        // the hash catching up. Parts would only add work on the same cores.
        assert!(!probe(100.0, 0.0, Some(1100.0)).split_pays());
        assert!(!probe(100.0, 0.2, Some(1100.0)).split_pays());
        assert!(!probe(10.0, 0.1, None).split_pays());
    }

    #[test]
    fn one_connection_the_source_holds_back_is_split() {
        // A server limiting each connection (20 MB/s), or a slow one (s3s-fs).
        assert!(probe(22.0, 0.99, Some(1400.0)).split_pays());
        assert!(probe(22.0, 0.8, None).split_pays());
        assert!(probe(165.0, 0.5, Some(1100.0)).split_pays());
        assert!(probe(0.0, 1.0, Some(1.0)).split_pays());
    }

    #[test]
    fn a_fast_connection_is_left_alone_whatever_the_hash() {
        let fast = FAST_CONNECTION / MB;
        assert!(!probe(fast, 0.9, None).split_pays());
        assert!(!probe(fast, 0.9, Some(4000.0)).split_pays());
        assert!(!probe(2.0 * fast, 0.9, Some(4000.0)).split_pays());
        assert!(probe(0.9 * fast, 0.9, Some(4000.0)).split_pays());
    }

    #[test]
    fn the_probe_says_what_it_measured() {
        assert_eq!(
            probe(22.25, 0.79, Some(1354.2)).to_string(),
            "one connection gave 22.2 MB/s, waited for 79 % of the time, hashing goes at \
             1354.2 MB/s"
        );
    }
}
