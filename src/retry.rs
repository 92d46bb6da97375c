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

#[cfg(test)]
mod tests {
    use super::*;

    use ptex_schemes::FetchError;

    use crate::transfer::Failure;
    use crate::verify::{Sha256Hex, VerifyError};

    fn policy(retries: u32, backoff: u64, max: u64) -> RetryPolicy {
        RetryPolicy {
            retries,
            backoff: Duration::from_secs(backoff),
            max_backoff: Duration::from_secs(max),
        }
    }

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    /// What a failure means for its source, as the rounds see it.
    fn disposition(failure: Failure) -> (Disposition, Option<Duration>) {
        let (_, disposition, retry_after) = failure.of_source().expect("a source failure");
        (disposition, retry_after)
    }

    #[test]
    fn backoff_doubles_with_full_jitter_up_to_the_maximum() {
        let retry = policy(10, 1, 30);
        // The whole window (the jitter's top) doubles each round, then stops at the maximum.
        let tops: Vec<f64> = (1..=7)
            .map(|round| backoff_with(&retry, round, None, 1.0).as_secs_f64())
            .collect();
        assert_eq!(tops, [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]);
        // Full jitter: anywhere from nothing to the window.
        assert_eq!(backoff_with(&retry, 3, None, 0.0), Duration::ZERO);
        assert_eq!(backoff_with(&retry, 3, None, 0.5), secs(2.0));
        // A round far out does not overflow.
        assert_eq!(backoff_with(&retry, 400, None, 1.0), secs(30.0));
        for round in 1..=6 {
            let wait = backoff(&retry, round, None);
            assert!(wait <= backoff_with(&retry, round, None, 1.0), "{wait:?}");
        }
    }

    #[test]
    fn retry_after_is_a_floor_capped_at_the_maximum() {
        let retry = policy(3, 1, 30);
        // The server's wait, even when the jitter draws less.
        assert_eq!(backoff_with(&retry, 1, Some(secs(7.0)), 0.0), secs(7.0));
        // Never less than the jitter drew.
        assert_eq!(backoff_with(&retry, 4, Some(secs(2.0)), 0.5), secs(4.0));
        // A server asking for an hour gets the maximum.
        assert_eq!(backoff_with(&retry, 1, Some(secs(3600.0)), 0.0), secs(30.0));
        assert_eq!(backoff(&retry, 1, Some(secs(3600.0))), secs(30.0));
    }

    #[test]
    fn waits_servers_ask_for_share_one_budget() {
        let waits = Waits::new(&policy(3, 1, 10));
        assert_eq!(waits.take(secs(6.0), true), Some(secs(6.0)));
        // Our own backoff costs nothing from it.
        assert_eq!(waits.take(secs(9.0), false), Some(secs(9.0)));
        assert_eq!(waits.take(secs(4.0), true), Some(secs(4.0)));
        assert_eq!(waits.take(secs(0.5), true), None);
    }

    #[test]
    fn which_failures_drop_a_source() {
        let status = |status, retry_after| FetchError::HttpStatus {
            status,
            retry_after,
        };
        // Tried again: 5xx, 408, 429 (with the server's wait), resets, timeouts, a drip.
        for retried in [
            status(500, None),
            status(503, None),
            status(408, None),
            FetchError::Interrupted {
                reason: "reset".into(),
            },
            FetchError::Timeout {
                reason: "idle".into(),
            },
            FetchError::Connect {
                reason: "refused".into(),
            },
        ] {
            let what = retried.to_string();
            assert_eq!(disposition(retried.into()).0, Disposition::Retry, "{what}");
        }
        assert_eq!(
            disposition(status(429, Some(secs(2.0))).into()),
            (Disposition::Retry, Some(secs(2.0)))
        );
        assert_eq!(
            disposition(Failure::retry("too slow")).0,
            Disposition::Retry
        );
        // Dropped: other 4xx, TLS, not found, and bytes that are not the file.
        for dropped in [
            status(404, None),
            status(401, None),
            status(403, None),
            FetchError::Tls {
                reason: "unknown issuer".into(),
            },
            FetchError::NotFound {
                detail: "no such key".into(),
            },
        ] {
            let what = dropped.to_string();
            assert_eq!(
                disposition(dropped.into()).0,
                Disposition::NextSource,
                "{what}"
            );
        }
        let mismatch = VerifyError::Sha256 {
            expected: Sha256Hex::digest(b"a"),
            actual: Sha256Hex::digest(b"b"),
        };
        assert_eq!(disposition(mismatch.into()).0, Disposition::NextSource);
        let too_large = VerifyError::TooLarge { expected: 3 };
        assert_eq!(disposition(too_large.into()).0, Disposition::NextSource);
        // A leftover that did not verify, after its source started over once.
        assert_eq!(
            disposition(Failure::Resumed("bad leftover".into())).0,
            Disposition::NextSource
        );
        // The end of everything: a header no source would take.
        let header = FetchError::InvalidHeader {
            header: "X".into(),
            reason: "CR".into(),
        };
        assert_eq!(disposition(header.into()).0, Disposition::GiveUp);
        // A local failure is no source's: it ends the fetch with its own error.
        assert!(Failure::Local(anyhow!("disk full")).of_source().is_err());
    }

    #[test]
    fn rounds_try_again_only_what_may_pass() {
        let retry = policy(3, 0, 0);
        let mut rounds = Rounds::new(&retry, 3);
        let (pending, wait) = rounds.next().unwrap();
        assert_eq!((pending, wait), (vec![0, 1, 2], Duration::ZERO));
        assert_eq!(rounds.round(), (1, 4));
        for index in 0..3 {
            assert_eq!(rounds.attempt(index), 1);
        }
        // A 503 and a reset pass on to the next source (news); a 404 drops its source; the
        // last failure of the round is news too, as a round follows.
        let failed = |rounds: &mut Rounds, index, disposition| {
            rounds.failed(index, format!("reason {index}"), disposition, None)
        };
        assert_eq!(failed(&mut rounds, 0, Disposition::Retry), After::More);
        assert_eq!(failed(&mut rounds, 1, Disposition::NextSource), After::More);
        assert_eq!(failed(&mut rounds, 2, Disposition::Retry), After::More);
        let (pending, _) = rounds.next().unwrap();
        assert_eq!(pending, vec![0, 2]);
        assert_eq!(rounds.round(), (2, 4));
        assert_eq!(rounds.attempt(0), 2);
        assert_eq!(failed(&mut rounds, 0, Disposition::NextSource), After::More);
        rounds.attempt(2);
        // The last source of the round, and nothing left to try again: the end.
        assert_eq!(failed(&mut rounds, 2, Disposition::NextSource), After::Last);
        assert!(rounds.next().is_none());
        let err = rounds.all_failed("f.tgz", &sources(3));
        assert_eq!(
            err.to_string(),
            "failed to fetch f.tgz: all 3 sources failed: \
             Failed to fetch http://127.0.0.1/a: reason 0 (after 2 attempts); \
             Failed to fetch http://127.0.0.1/b: reason 1; \
             Failed to fetch http://127.0.0.1/c: reason 2 (after 2 attempts)"
        );
    }

    #[test]
    fn rounds_end_after_the_retries() {
        let retry = policy(2, 0, 0);
        let mut rounds = Rounds::new(&retry, 1);
        for round in 1..=3 {
            let (pending, _) = rounds.next().unwrap();
            assert_eq!(pending, vec![0]);
            rounds.attempt(0);
            let after = rounds.failed(0, "HTTP 500".into(), Disposition::Retry, None);
            // The last round's failure is the final error's, not news.
            let expected = if round == 3 { After::Last } else { After::More };
            assert_eq!(after, expected, "round {round}");
        }
        assert!(rounds.next().is_none());
        assert_eq!(
            rounds.all_failed("f.tgz", &sources(1)).to_string(),
            "failed to fetch f.tgz: Failed to fetch http://127.0.0.1/a: HTTP 500 (after 3 \
             attempts)"
        );
    }

    #[test]
    fn rounds_wait_as_asked_until_the_budget_is_spent() {
        let retry = policy(5, 0, 10);
        let mut rounds = Rounds::new(&retry, 2);
        rounds.next().unwrap();
        rounds.failed(0, "429".into(), Disposition::Retry, Some(secs(4.0)));
        rounds.failed(1, "429".into(), Disposition::Retry, Some(secs(6.0)));
        // The longest wait asked for in the round.
        let (_, wait) = rounds.next().unwrap();
        assert_eq!(wait, secs(6.0));
        rounds.failed(0, "429".into(), Disposition::Retry, Some(secs(5.0)));
        rounds.failed(1, "429".into(), Disposition::Retry, None);
        // 6 + 5 s would pass the 10 s a file may spend waiting as asked: no more rounds.
        assert!(rounds.next().is_none());
    }

    #[test]
    fn a_give_up_ends_the_rounds_at_once() {
        let retry = policy(3, 0, 0);
        let mut rounds = Rounds::new(&retry, 2);
        rounds.next().unwrap();
        rounds.attempt(0);
        let after = rounds.failed(0, "bad header".into(), Disposition::GiveUp, None);
        assert_eq!(after, After::GiveUp);
        // Only the sources tried are listed.
        assert_eq!(
            rounds.all_failed("f.tgz", &sources(2)).to_string(),
            "failed to fetch f.tgz: Failed to fetch http://127.0.0.1/a: bad header"
        );
    }

    fn sources(n: usize) -> Vec<Source> {
        ["a", "b", "c"][..n]
            .iter()
            .map(|name| Source::parse(&format!("http://127.0.0.1/{name}")).unwrap())
            .collect()
    }
}
