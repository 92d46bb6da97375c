//! Getting one file: try its sources in order, stream each into a fresh spool file through
//! the verifier, and stop at the first source whose bytes verify. Retries and backoff plug in
//! here; the sources never share a spool file, so bytes of two sources are never mixed.

use std::path::Path;

use anyhow::{Context, anyhow};
use ptex_schemes::{Dispatcher, Disposition, FetchError, RequestOptions, Source};

use crate::report::Reporter;
use crate::spool::Spool;
use crate::verify::{Expected, Verified, Verifier, VerifyError};

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

/// Why one attempt failed.
enum Failure {
    /// This source did not deliver the file.
    Source { reason: String, give_up: bool },
    /// A local problem (the spool file) that no other source can fix.
    Local(anyhow::Error),
}

impl From<FetchError> for Failure {
    fn from(err: FetchError) -> Failure {
        Failure::Source {
            give_up: err.disposition() == Disposition::GiveUp,
            reason: err.to_string(),
        }
    }
}

impl From<VerifyError> for Failure {
    fn from(err: VerifyError) -> Failure {
        Failure::Source {
            reason: err.to_string(),
            give_up: false,
        }
    }
}

/// Fetches `job` into a verified spool file in `spool_dir`.
pub async fn fetch(
    job: &Job,
    dispatcher: &mut Dispatcher,
    spool_dir: &Path,
    report: &Reporter,
) -> anyhow::Result<(Spool, Verified)> {
    let total = job.sources.len();
    let mut failures = Vec::new();
    for (index, source) in job.sources.iter().enumerate() {
        report.info(format_args!(
            "fetching {} from {source} (source {} of {total})",
            job.name,
            index + 1
        ));
        let mut spool = Spool::create(spool_dir, &job.name).with_context(|| {
            format!(
                "failed to fetch {}: cannot create a spool file in {}",
                job.name,
                spool_dir.display()
            )
        })?;
        match attempt(job, source, dispatcher, &mut spool, report).await {
            Ok(verified) => return Ok((spool, verified)),
            Err(Failure::Local(err)) => {
                return Err(err.context(format!("failed to fetch {} from {source}", job.name)));
            }
            Err(Failure::Source { reason, give_up }) => {
                if index + 1 < total && !give_up {
                    report.warn(format_args!(
                        "{}: source {} of {total} ({source}) failed: {reason}; trying the next",
                        job.name,
                        index + 1
                    ));
                }
                failures.push((source, reason));
                if give_up {
                    break;
                }
            }
        }
    }
    Err(match failures.as_slice() {
        [(source, reason)] => anyhow!("failed to fetch {} from {source}: {reason}", job.name),
        _ => {
            let attempts: Vec<String> = failures
                .iter()
                .map(|(source, reason)| format!("{source}: {reason}"))
                .collect();
            anyhow!(
                "failed to fetch {}: all {} sources failed: {}",
                job.name,
                failures.len(),
                attempts.join("; ")
            )
        }
    })
}

/// One try of one source, start to verdict.
async fn attempt(
    job: &Job,
    source: &Source,
    dispatcher: &mut Dispatcher,
    spool: &mut Spool,
    report: &Reporter,
) -> Result<Verified, Failure> {
    let mut observe = |head: &_| report.response(head);
    let mut download = dispatcher.open(source, &job.options, &mut observe).await?;
    let mut verifier = Verifier::new(job.expected.clone());
    verifier.check_declared(download.content_length())?;
    let progress = report.progress();
    progress.start(job.expected.size.or(download.content_length()));
    while let Some(chunk) = download.chunk().await? {
        verifier.update(&chunk)?;
        spool.write(&chunk).map_err(|e| {
            Failure::Local(anyhow!(
                "cannot write spool file {}: {e}",
                spool.path().display()
            ))
        })?;
        progress.advance(chunk.len() as u64);
    }
    let verified = verifier.finish()?;
    report.info(format_args!(
        "{source}: verified {} bytes, sha256 {}",
        verified.size, verified.sha256
    ));
    Ok(verified)
}
