//! The config's `credential_helpers`: which executable (Bazel's credential-helper protocol)
//! gives the headers for a host, by host glob. Only the rules live here; running a helper
//! is the HTTP backend's business.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::routing::Pattern;

/// Host globs (`*.corp.example`, `mirror.corp.example`) and the helper each names; where
/// several match a host, the longest glob (the most specific) wins.
#[derive(Clone, Debug, Default)]
pub struct CredentialHelpers {
    rules: Vec<(String, Pattern, PathBuf)>,
}

impl CredentialHelpers {
    /// Compiles the `credential_helpers` object; an error names the entry at fault.
    pub(crate) fn new(entries: &[(String, PathBuf)]) -> Result<CredentialHelpers, String> {
        let mut rules = Vec::new();
        for (glob, helper) in entries {
            let at = |reason: &str| format!("credential_helpers.{glob:?}: {reason}");
            if glob.contains("://") {
                return Err(at("expected a host glob (`*.corp.example`), not a URL"));
            }
            let pattern = Pattern::parse(glob).map_err(|e| at(&e))?;
            if helper.as_os_str().is_empty() {
                return Err(at("the helper path is empty"));
            }
            rules.push((glob.clone(), pattern, helper.clone()));
        }
        rules.sort_by_key(|(glob, _, _)| std::cmp::Reverse(glob.len()));
        Ok(CredentialHelpers { rules })
    }

    /// Reads the entries as the config file writes them.
    pub(crate) fn from_map(map: BTreeMap<String, PathBuf>) -> Result<CredentialHelpers, String> {
        CredentialHelpers::new(&map.into_iter().collect::<Vec<_>>())
    }

    /// The helper for requests to `host`, and the glob that chose it.
    pub fn for_host(&self, host: &str) -> Option<(&str, &Path)> {
        self.rules
            .iter()
            .find(|(_, pattern, _)| pattern.matches("", host))
            .map(|(glob, _, helper)| (glob.as_str(), helper.as_path()))
    }

    /// Whether any helper is configured.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_pick_helpers_and_bad_entries_are_named() {
        let helpers = CredentialHelpers::new(&[
            ("*.corp.example".into(), "/bin/corp".into()),
            ("mirror.test".into(), "/bin/mirror".into()),
            ("*.b.corp.example".into(), "/bin/b".into()),
        ])
        .unwrap();
        let helper = |h: &str| helpers.for_host(h).map(|(_, p)| p.to_owned());
        assert_eq!(helper("a.corp.example"), Some("/bin/corp".into()));
        assert_eq!(helper("A.B.Corp.Example"), Some("/bin/b".into()));
        assert_eq!(helper("mirror.test"), Some("/bin/mirror".into()));
        assert_eq!(helper("corp.example"), None);
        assert_eq!(helper("a.corp.example.evil"), None);
        assert_eq!(helper("mirror.test.evil"), None);
        for bad in ["https://a.corp", "a b", ""] {
            let err = CredentialHelpers::new(&[(bad.into(), "/h".into())]).unwrap_err();
            assert!(err.contains("credential_helpers"), "{err}");
        }
        assert!(CredentialHelpers::new(&[("a".into(), "".into())]).is_err());
    }
}
