//! Typed user configuration for ptex: where the spool lives, how long to wait, and which
//! netrc credentials exist. Everything is read and validated here, before any network I/O;
//! nothing in this crate touches the network.

mod env;
mod error;
pub mod netrc;
mod settings;

pub use env::{Env, ProcessEnv};
pub use error::ConfigError;
pub use netrc::{Netrc, NetrcEntry};
pub use settings::{Settings, Timeouts};
