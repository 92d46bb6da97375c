//! Typed user configuration for ptex: where the spool lives, how long to wait, which netrc
//! credentials exist, the config file's per-scheme settings, mirror rules and per-host
//! credentials. Everything is read and validated here, before any network I/O;
//! nothing in this crate touches the network.

mod aws_files;
mod caches;
mod credentials;
mod env;
mod error;
mod file;
mod helpers;
mod local_file;
pub mod netrc;
mod normalize;
mod routing;
mod settings;

pub use aws_files::{AwsFiles, AwsProfile, AwsSection};
pub use caches::{CacheEntry, CacheSpec, Caches};
pub use credentials::{
    AuthSpec, Authorization, BasicSpec, Credentials, HostCredentials, SCIENCE_PREFIX,
    env_authorization, env_key, is_loopback,
};
pub use env::{Env, ProcessEnv};
pub use error::ConfigError;
pub use file::{ConfigFile, GcsConfig, Network, S3Bucket, S3Config, check_endpoint};
pub use helpers::CredentialHelpers;
pub use netrc::{Netrc, NetrcEntry};
pub use normalize::{normalize_host, normalize_url};
pub use routing::{Candidate, MirrorSpec, OriginPlacement, Routing, UV_PYTHON_MIRRORED};
pub use settings::{Parallel, RetryPolicy, Settings, Timeouts, TlsFiles};
