//! One download for many runs: runs that want the same file (the same sha256) share one
//! spool file, `<sha256>.ptex-part`, locked by the run filling it. A run that finds it
//! locked waits for the holder while the holder writes new bytes, then copies what the
//! holder got into a file of its own, verifies the copy and uses it, instead of downloading
//! the file again. A holder that writes nothing (stopped, backing off, or only touching the
//! file) is waited for a bounded time only, and any holder for a bounded total; one that
//! dies leaves its bytes, and a note of which are there, for the next run to continue.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use ptex_config::Timeouts;

use crate::job::Job;
use crate::report::Reporter;
use crate::spool::{Claimed, Leftover, Spool, Watch};
use crate::transfer::{Transfer, source_key};
use crate::verify::Verified;

/// How often a waiting run looks at the holder's progress.
const WATCH_EVERY: Duration = Duration::from_millis(50);

/// Times a run claims the shared spool at most: after one holder lets go without the whole
/// file, it continues what that holder left.
const CLAIMS: usize = 2;

/// However much progress the holder makes, a run waits for it at most this many times
/// `PTEX_LOCK_WAIT` in all: a holder that only pretends to progress blocks no one forever.
const WAIT_LIMIT: u32 = 60;

/// What the shared spool gives this run.
pub(crate) enum Claim {
    /// This run holds the shared spool, to fill from the first byte.
    Fill(Spool),
    /// This run fills spools of its own: no sha256 is known, another run holds the shared
    /// one, or it cannot be used.
    Private,
    /// This run holds the shared spool, which holds the first bytes from source `.0` that
    /// an earlier, killed run left: the transfer to continue with that source.
    Continue(usize, Box<Transfer>),
    /// Another run fetched the file (or an earlier run left all of it), and its bytes
    /// verified here, in this run's own file.
    Done(Spool, Verified),
}

/// Claims the spool shared by runs that want the same sha256 (only when the sha256 is
/// known). Bytes an earlier, killed run left there from one of this job's sources become
/// that source's transfer to continue; anything else is discarded. While another run holds
/// the spool and makes progress, waits for it.
pub(crate) async fn claim(
    job: &Job,
    spool_dir: &Path,
    timeouts: &Timeouts,
    report: &Reporter,
) -> Claim {
    let Some(sha256) = &job.expected.sha256 else {
        return Claim::Private;
    };
    let sha256 = sha256.to_string();
    for _ in 0..CLAIMS {
        let mut notices = Vec::new();
        let claimed = Spool::claim(spool_dir, &sha256, job.expected.size, &mut notices);
        for notice in notices {
            report.info(format_args!("{}: {notice}", job.name));
        }
        match claimed {
            Ok(Some(Claimed { spool, leftover })) => {
                return adopt(job, spool, leftover, report).await;
            }
            Ok(None) => {}
            Err(_) => return Claim::Private,
        }
        // None: gone already, the holder just finished or failed, or not a file to trust.
        let Some(watch) = Watch::open(spool_dir, &sha256) else {
            return Claim::Private;
        };
        match wait(job, watch, spool_dir, timeouts, report).await {
            Waited::Done(spool, verified) => return Claim::Done(spool, verified),
            Waited::GaveUp => return Claim::Private,
            Waited::Released => {}
        }
    }
    Claim::Private
}

/// The shared spool just claimed, with what an earlier run left in it: the whole file,
/// verified (then done); or the transfer to continue with the source it came from; or
/// nothing, the spool emptied.
async fn adopt(job: &Job, spool: Spool, leftover: Option<Leftover>, report: &Reporter) -> Claim {
    let Some(leftover) = leftover else {
        return Claim::Fill(spool);
    };
    let emptied = |mut spool: Spool| match spool.reset() {
        Ok(()) => Claim::Fill(spool),
        Err(_) => Claim::Private,
    };
    let Some(index) = job
        .sources
        .iter()
        .position(|s| source_key(s) == leftover.source_key)
    else {
        return emptied(spool);
    };
    let prefix = leftover.prefix();
    let transfer = match Transfer::replay(spool, &job.expected, prefix, leftover.source_key) {
        Ok(transfer) => transfer,
        Err(spool) => return emptied(spool),
    };
    // A run killed after its last byte left the whole file: verified, it is done.
    if leftover.total == Some(prefix) {
        return match transfer.whole().await {
            Ok((spool, verified)) => {
                report.info(format_args!(
                    "{}: an earlier run left all {} bytes from {}; verified",
                    job.name, verified.size, job.sources[index]
                ));
                Claim::Done(spool, verified)
            }
            Err((spool, _)) => emptied(spool),
        };
    }
    let arrived: BTreeMap<u64, u64> = leftover.spans.iter().copied().skip(1).collect();
    let later: u64 = arrived.iter().map(|(start, end)| end - start).sum();
    report.info(format_args!(
        "{}: continuing {} bytes an earlier run left from {}{}",
        job.name,
        prefix + later,
        job.sources[index],
        match later {
            0 => String::new(),
            n => format!(" ({n} of them past byte {prefix})"),
        }
    ));
    Claim::Continue(
        index,
        Box::new(transfer.continuing(leftover.validator, arrived)),
    )
}

/// How waiting for another run ended.
enum Waited {
    /// It got the whole file, which verified here, copied into a spool of this run's own.
    Done(Spool, Verified),
    /// It let go without the whole file (it failed, or died and left bytes to continue).
    Released,
    /// It made no progress for too long, or took too long in all.
    GaveUp,
}

/// Waits for the run holding the shared spool to let go of it, as long as it makes
/// progress (the bytes its file holds on disk grow) and no longer than [`WAIT_LIMIT`] times
/// the lock wait; then copies what it left into `spool_dir` and checks whether that is the
/// verified file.
async fn wait(
    job: &Job,
    watch: Watch,
    spool_dir: &Path,
    timeouts: &Timeouts,
    report: &Reporter,
) -> Waited {
    report.info(format_args!(
        "{}: another ptex run is fetching it; waiting for that run",
        job.name
    ));
    let started = tokio::time::Instant::now();
    let mut most = watch.progress().map_or(0, |(_, stored)| stored);
    let mut since = started;
    while !watch.released() {
        tokio::time::sleep(WATCH_EVERY).await;
        let stored = watch.progress().map_or(0, |(_, stored)| stored);
        if stored > most {
            most = stored;
            since = tokio::time::Instant::now();
        }
        let stalled = since.elapsed() >= timeouts.lock_wait;
        if stalled || started.elapsed() >= timeouts.lock_wait * WAIT_LIMIT {
            let why = match stalled {
                true => format!(
                    "made no progress for {:.1} s",
                    timeouts.lock_wait.as_secs_f64()
                ),
                false => format!(
                    "is still not done after {:.0} s",
                    started.elapsed().as_secs_f64()
                ),
            };
            report.news(format_args!(
                "{}: the other run fetching it {why} (PTEX_LOCK_WAIT); fetching it separately",
                job.name,
            ));
            return Waited::GaveUp;
        }
    }
    let Some((length, _)) = watch.progress() else {
        return Waited::Released;
    };
    if job.expected.size.is_some_and(|size| size != length) {
        return Waited::Released;
    }
    let Ok(spool) = watch.copy(spool_dir, &job.name, length) else {
        return Waited::Released;
    };
    let Ok(copy) = Transfer::replay(spool, &job.expected, length, String::new()) else {
        return Waited::Released;
    };
    match copy.whole().await {
        Ok((spool, verified)) => {
            report.info(format_args!(
                "{}: another run fetched it; verified its {} bytes",
                job.name, verified.size
            ));
            Waited::Done(spool, verified)
        }
        _ => Waited::Released,
    }
}
