//! Typed user configuration for ptex: where the spool lives, how long to wait, which netrc
//! credentials exist, the config file's per-scheme settings, mirror rules and per-host
//! credentials, and how S3 and GCS buckets are reached (endpoint, region, profile, which
//! credential source). Everything is read and validated here, before any network I/O;
//! nothing in this crate touches the network.

mod aws_files;
mod caches;
mod cloud_env;
mod credentials;
mod env;
mod error;
mod file;
mod gcs_settings;
mod helpers;
mod local_file;
pub mod netrc;
mod normalize;
mod routing;
mod s3_settings;
mod settings;

pub use aws_files::{AwsFiles, AwsProfile, AwsSection};
pub use caches::{CacheEntry, CacheSpec, Caches};
pub use cloud_env::CloudEnv;
pub use credentials::{
    AuthSpec, Authorization, BasicSpec, Credentials, HostCredentials, SCIENCE_PREFIX,
    env_authorization, env_key, is_loopback,
};
pub use env::{Env, ProcessEnv};
pub use error::ConfigError;
pub use file::{ConfigFile, GcsConfig, Network, S3Bucket, S3Config, check_endpoint};
pub use gcs_settings::{GcsCredentials, GcsSettings};
pub use helpers::CredentialHelpers;
pub use netrc::{Netrc, NetrcEntry};
pub use normalize::{normalize_host, normalize_url};
pub use routing::{Candidate, MirrorSpec, OriginPlacement, Routing, UV_PYTHON_MIRRORED};
pub use s3_settings::{
    AwsStep, FromWhere, ProfileChoice, S3Settings, aws_configured_endpoint, aws_credential_steps,
};
pub use settings::{Parallel, RetryPolicy, Settings, Timeouts, TlsFiles};
