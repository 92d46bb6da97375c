//! What to fetch and how hard to try: the [`Job`] (one file, its sources, what it must be)
//! and the [`Limits`] of every attempt, built once from the settings for both binaries.

use ptex_config::{Parallel, RetryPolicy, Settings, Timeouts};
use ptex_schemes::{RequestOptions, Source};

use crate::verify::Expected;

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

impl Limits {
    /// The limits `settings` ask for (flags, environment, config file, defaults).
    pub fn new(settings: &Settings) -> Limits {
        Limits {
            retry: settings.retry,
            timeouts: settings.timeouts,
            parallel: settings.parallel,
        }
    }
}
