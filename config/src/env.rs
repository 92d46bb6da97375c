//! The environment as a value, so configuration can be loaded from a map in tests without
//! touching the test process's own environment.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;

/// A source of environment variables.
pub trait Env {
    /// The value of `name`, if set (empty values are returned as set).
    fn var_os(&self, name: &str) -> Option<OsString>;

    /// Every variable whose name starts with `prefix`, with a non-empty UTF-8 value.
    fn vars_with_prefix(&self, prefix: &str) -> BTreeMap<String, String>;

    /// The value of `name` as UTF-8, if set and not empty.
    fn non_empty(&self, name: &str) -> Option<String> {
        self.var_os(name)
            .and_then(|v| v.into_string().ok())
            .filter(|v| !v.is_empty())
    }
}

/// The real process environment.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var_os(&self, name: &str) -> Option<OsString> {
        std::env::var_os(name)
    }

    fn vars_with_prefix(&self, prefix: &str) -> BTreeMap<String, String> {
        std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .filter(|(k, v)| k.starts_with(prefix) && !v.is_empty())
            .collect()
    }
}

impl Env for HashMap<String, String> {
    fn var_os(&self, name: &str) -> Option<OsString> {
        self.get(name).map(OsString::from)
    }

    fn vars_with_prefix(&self, prefix: &str) -> BTreeMap<String, String> {
        self.iter()
            .filter(|(k, v)| k.starts_with(prefix) && !v.is_empty())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

/// An environment built from `(name, value)` pairs, for the unit tests of every settings module.
#[cfg(test)]
pub(crate) fn from_pairs(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}
