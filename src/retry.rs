//! How often and when to try again: the jittered, doubling backoff (at least what a server
//! asks for with `Retry-After`, capped), the budget of such waits for one file, and the
//! [`Rounds`] over a job's sources, which know which sources are tried again, how often each
//! was tried and why it last failed, and build the final "all sources failed" error.

use std::cell::Cell;
use std::time::Duration;

use anyhow::anyhow;
use ptex_config::RetryPolicy;
use ptex_schemes::{Disposition, Source};

use crate::spool;
use crate::transfer::failed_to_fetch;

/// The wait before retry round `round` (1-based): full jitter over a doubling window, but
/// at least what a server asked for; never more than the policy's maximum.
pub(crate) fn backoff(retry: &RetryPolicy, round: u32, asked: Option<Duration>) -> Duration {
    backoff_with(retry, round, asked, random_fraction())
}

/// [`backoff`] with the jitter given: `fraction` of the window, in [0, 1).
fn backoff_with(
    retry: &RetryPolicy,
    round: u32,
    asked: Option<Duration>,
    fraction: f64,
) -> Duration {
    let window = retry
        .backoff
        .saturating_mul(1 << (round - 1).min(16))
        .min(retry.max_backoff);
    let jittered = window.mul_f64(fraction);
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
    pub(crate) fn new(retry: &RetryPolicy) -> Waits {
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

/// The rounds over a job's sources: each round tries, in order, the sources whose last
/// failure may pass; a source that failed otherwise is dropped. Rounds end when no source is
/// left, after the policy's retries, or when the waits servers asked for are spent.
pub(crate) struct Rounds<'a> {
    policy: &'a RetryPolicy,
    waits: Waits,
    /// The current round (0 is the first try), `None` before it.
    round: Option<u32>,
    /// The sources (by index) this round tries, in order.
    pending: Vec<usize>,
    /// How many of them failed so far this round.
    done: usize,
    /// The sources to try again next round.
    retry_next: Vec<usize>,
    /// The longest wait a server asked for this round.
    asked: Option<Duration>,
    /// Per source: how often it was tried, and why it last failed.
    attempts: Vec<u32>,
    last_failure: Vec<Option<String>>,
}

/// Where the rounds are after one failure.
#[derive(Debug, PartialEq)]
pub(crate) enum After {
    /// Another try follows (this source or another): the failure is news to tell.
    More,
    /// No try follows in any case: the failure goes into the final error only.
    Last,
    /// The failure ends the whole fetch (no source can help).
    GiveUp,
}

impl<'a> Rounds<'a> {
    /// Rounds over `sources` sources, all pending.
    pub(crate) fn new(policy: &'a RetryPolicy, sources: usize) -> Rounds<'a> {
        Rounds {
            policy,
            waits: Waits::new(policy),
            round: None,
            pending: (0..sources).collect(),
            done: 0,
            retry_next: Vec::new(),
            asked: None,
            attempts: vec![0; sources],
            last_failure: vec![None; sources],
        }
    }

    /// The waits servers asked for, shared with the parts of a transfer.
    pub(crate) fn waits(&self) -> &Waits {
        &self.waits
    }

    /// Starts the next round: the sources it tries, in order, and the wait before it (none
    /// for the first); `None` when no round is left.
    pub(crate) fn next(&mut self) -> Option<(Vec<usize>, Duration)> {
        let round = match self.round {
            None => 0,
            Some(round) => {
                if self.retry_next.is_empty() || round >= self.policy.retries {
                    return None;
                }
                self.pending = std::mem::take(&mut self.retry_next);
                round + 1
            }
        };
        let wait = match round {
            0 => Duration::ZERO,
            _ => {
                let wait = backoff(self.policy, round, self.asked);
                self.waits.take(wait, self.asked.is_some())?
            }
        };
        self.round = Some(round);
        self.done = 0;
        self.asked = None;
        Some((self.pending.clone(), wait))
    }

    /// The current round, counted from 1, and how many there are at most.
    pub(crate) fn round(&self) -> (u32, u32) {
        (self.round.unwrap_or(0) + 1, self.policy.retries + 1)
    }

    /// Counts a try of source `index`; returns its number, from 1.
    pub(crate) fn attempt(&mut self, index: usize) -> u32 {
        self.attempts[index] += 1;
        self.attempts[index]
    }

    /// Records that source `index` failed for `reason`, and what the failure means for it:
    /// tried again next round (`Retry`, not before the server's `retry_after`), dropped
    /// (`NextSource`), or the end of the fetch (`GiveUp`).
    pub(crate) fn failed(
        &mut self,
        index: usize,
        reason: String,
        disposition: Disposition,
        retry_after: Option<Duration>,
    ) -> After {
        self.done += 1;
        if disposition == Disposition::Retry {
            self.retry_next.push(index);
            self.asked = self.asked.max(retry_after);
        }
        self.last_failure[index] = Some(reason);
        let last_of_round = self.done == self.pending.len();
        let last_round = self.round.unwrap_or(0) >= self.policy.retries;
        match disposition {
            Disposition::GiveUp => After::GiveUp,
            _ if last_of_round && (self.retry_next.is_empty() || last_round) => After::Last,
            _ => After::More,
        }
    }

    /// The final error: every source tried, with its last reason, each as the original
    /// ptex said it (`Failed to fetch <url>: <reason>`), so scripts written against it still
    /// match.
    pub(crate) fn all_failed(&self, name: &str, sources: &[Source]) -> anyhow::Error {
        let tried: Vec<String> = sources
            .iter()
            .zip(&self.last_failure)
            .zip(&self.attempts)
            .filter_map(|((source, failure), &count)| {
                let failure = failure.as_ref()?;
                Some(match count {
                    1 => failed_to_fetch(source, failure),
                    n => failed_to_fetch(source, format_args!("{failure} (after {n} attempts)")),
                })
            })
            .collect();
        match tried.as_slice() {
            [one] => anyhow!("failed to fetch {name}: {one}"),
            _ => anyhow!(
                "failed to fetch {name}: all {} sources failed: {}",
                tried.len(),
                tried.join("; ")
            ),
        }
    }
}
