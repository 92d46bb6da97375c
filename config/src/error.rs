//! The one error type of `ptex-config`.

use std::path::PathBuf;

/// A configuration value that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// An environment variable holds a value of the wrong form.
    #[error("environment variable {name}={value:?} is invalid: {reason}")]
    InvalidEnv {
        name: &'static str,
        value: String,
        reason: String,
    },
    /// No cache directory could be determined.
    #[error("cannot determine a cache directory: set PTEX_CACHE_DIR or HOME")]
    NoCacheDir,
    /// The config file named by `PTEX_CONFIG` (or the default one) cannot be read.
    #[error("cannot read config file {path}: {source}")]
    ConfigUnreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The config file is not valid.
    #[error("config file {path} is invalid: {reason}")]
    ConfigInvalid { path: PathBuf, reason: String },
    /// An `auth` entry names an environment variable that is not set.
    #[error("{entry} names the environment variable {variable}, which is not set")]
    MissingSecret { entry: String, variable: String },
    /// The netrc file exists but could not be read.
    #[error("cannot read netrc file {path}: {source}")]
    NetrcUnreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The netrc file could not be parsed.
    #[error("netrc file {path} is malformed: {reason}")]
    NetrcMalformed { path: PathBuf, reason: String },
}
