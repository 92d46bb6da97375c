//! Typed user configuration for ptex: where the spool lives, how long to wait, which netrc
//! credentials exist, and the config file's per-scheme settings. Everything is read and validated here, before any network I/O;
//! nothing in this crate touches the network.

mod env;
mod error;
mod file;
pub mod netrc;
mod settings;

pub use env::{Env, ProcessEnv};
pub use error::ConfigError;
pub use file::{ConfigFile, GcsConfig, S3Bucket, S3Config, check_endpoint};
pub use netrc::{Netrc, NetrcEntry};
pub use settings::{RetryPolicy, Settings, Timeouts};
