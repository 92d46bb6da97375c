//! One download for many runs: runs that want the same file (the same sha256) share one
//! spool file, `<sha256>.ptex-part`, locked by the run filling it. A run that finds it
//! locked waits for the holder while the holder makes progress, then verifies what the
//! holder got and uses it, instead of downloading the file again. A holder that makes no
//! progress (stopped, or backing off) is waited for a bounded time only; one that dies
//! leaves its bytes for the next run to continue.

use std::path::Path;
use std::time::Duration;

use ptex_config::Timeouts;

use crate::fetch::{Job, Transfer, source_key};
use crate::report::Reporter;
use crate::spool::{Leftover, Spool, Watch};
use crate::verify::{Verified, Verifier};

/// How often a waiting run looks at the holder's progress.
const WATCH_EVERY: Duration = Duration::from_millis(50);

/// Times a run claims the shared spool at most: after one holder lets go without the whole
/// file, it continues what that holder left.
const CLAIMS: usize = 2;

/// What the shared spool gives this run.
pub enum Claim {
    /// This run holds the shared spool, to fill from the first byte; `None` when it holds
    /// none (no sha256 is known, another run holds it, or the bytes an earlier run left went
    /// into that source's partial transfer).
    Held(Option<Spool>),
    /// Another run fetched the file, and its bytes verified here.
    Done(Spool, Verified),
}

/// Claims the spool shared by runs that want the same sha256 (only when the sha256 is
/// known). Bytes an earlier, killed run left there from one of this job's sources become
/// that source's partial transfer in `partials`, once they re-verify as a prefix; anything
/// else is discarded. While another run holds the spool and makes progress, waits for it.
pub async fn claim(
    job: &Job,
    spool_dir: &Path,
    partials: &mut [Option<Transfer>],
    timeouts: &Timeouts,
    report: &Reporter,
) -> Claim {
    let Some(sha256) = &job.expected.sha256 else {
        return Claim::Held(None);
    };
    let sha256 = sha256.to_string();
    for _ in 0..CLAIMS {
        match Spool::claim(spool_dir, &sha256) {
            Ok(Some((spool, leftover))) => {
                return Claim::Held(adopt(job, spool, leftover, partials, report));
            }
            Ok(None) => {}
            Err(_) => return Claim::Held(None),
        }
        // None: gone already, the holder just finished or failed.
        if let Some(watch) = Watch::open(spool_dir, &sha256) {
            match wait(job, watch, timeouts, report).await {
                Waited::Done(spool, verified) => return Claim::Done(spool, verified),
                Waited::GaveUp => return Claim::Held(None),
                Waited::Released => {}
            }
        }
    }
    Claim::Held(None)
}

/// The shared spool just claimed, with what an earlier run left in it made into the
/// partial transfer of the source it came from (then `None` is returned: the spool went
/// there), or emptied.
fn adopt(
    job: &Job,
    mut spool: Spool,
    leftover: Option<Leftover>,
    partials: &mut [Option<Transfer>],
    report: &Reporter,
) -> Option<Spool> {
    let Some(leftover) = leftover else {
        return Some(spool);
    };
    let Some(index) = job
        .sources
        .iter()
        .position(|s| source_key(s) == leftover.source_key)
    else {
        return spool.reset().is_ok().then_some(spool);
    };
    let Some(verifier) = replay(job, &mut spool).filter(|v| v.accepted() == leftover.len) else {
        return spool.reset().is_ok().then_some(spool);
    };
    report.info(format_args!(
        "{}: continuing {} bytes an earlier run left from {}",
        job.name, leftover.len, job.sources[index]
    ));
    partials[index] = Some(Transfer {
        spool,
        verifier,
        validator: Some(leftover.validator),
        content_type: None,
        one_connection: false,
    });
    None
}

/// A verifier that has been handed every byte in `spool`, if they fit what `job` expects.
fn replay(job: &Job, spool: &mut Spool) -> Option<Verifier> {
    let file = spool.handle().ok()?;
    let len = file.metadata().ok()?.len();
    let mut verifier = Verifier::new(job.expected.clone());
    verifier.update_from_file(&file, 0, len).ok()?;
    Some(verifier)
}

/// How waiting for another run ended.
enum Waited {
    /// It got the whole file, which verified here.
    Done(Spool, Verified),
    /// It let go without the whole file (it failed, or died and left bytes to continue).
    Released,
    /// It made no progress for too long.
    GaveUp,
}

/// Waits for the run holding the shared spool to let go of it, as long as it makes
/// progress; then checks whether what it left is the verified file.
async fn wait(job: &Job, watch: Watch, timeouts: &Timeouts, report: &Reporter) -> Waited {
    report.info(format_args!(
        "{}: another ptex run is fetching it; waiting for that run",
        job.name
    ));
    let mut last = watch.progress();
    let mut since = tokio::time::Instant::now();
    while !watch.released() {
        tokio::time::sleep(WATCH_EVERY).await;
        let now = watch.progress();
        if now != last {
            last = now;
            since = tokio::time::Instant::now();
        } else if since.elapsed() >= timeouts.lock_wait {
            report.fallback(format_args!(
                "{}: the other run fetching it made no progress for {:.1} s (PTEX_LOCK_WAIT); \
                 fetching it separately",
                job.name,
                timeouts.lock_wait.as_secs_f64()
            ));
            return Waited::GaveUp;
        }
    }
    let length = watch.progress().map(|(length, _)| length);
    if job.expected.size.is_some_and(|size| Some(size) != length) {
        return Waited::Released;
    }
    let mut spool = watch.into_spool();
    match replay(job, &mut spool).map(Verifier::finish) {
        Some(Ok(verified)) => {
            report.info(format_args!(
                "{}: another run fetched it; verified its {} bytes",
                job.name, verified.size
            ));
            Waited::Done(spool, verified)
        }
        _ => Waited::Released,
    }
}
