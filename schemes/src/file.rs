//! `file:///absolute/path` on opendal's fs service: a local file read with the same size cap
//! and verification as any download.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::path::{Component, PathBuf};
use std::sync::Arc;

use crate::{FetchError, Source, store};
use opendal::{Operator, services::Fs};

/// The local filesystem: one operator per root a URL names (`/` on Unix; a drive such as
/// `C:\` or a share on Windows), since opendal's fs service keeps every path inside its root.
pub(crate) struct FileBackend {
    roots: HashMap<PathBuf, Operator>,
    hint: Arc<str>,
}

impl FileBackend {
    pub(crate) fn new() -> FileBackend {
        FileBackend {
            roots: HashMap::new(),
            hint: Arc::from("check the file's permissions"),
        }
    }

    /// Sets up the operator for the root of the file `source` names.
    pub(crate) fn prepare(&mut self, source: &Source) -> Result<(), FetchError> {
        let (root, _) = split(source)?;
        if let Entry::Vacant(slot) = self.roots.entry(root) {
            let operator = Operator::new(Fs::default().root(&slot.key().to_string_lossy()))
                .map_err(|e| FetchError::Setup {
                    reason: e.to_string(),
                })?;
            slot.insert(operator);
        }
        Ok(())
    }

    /// The local file `source` names, as an object of the filesystem store.
    pub(crate) fn object(&self, source: &Source) -> Result<store::Object<'_>, FetchError> {
        let (root, path) = split(source)?;
        let operator = self.roots.get(&root).ok_or_else(|| FetchError::Setup {
            reason: format!("no file system was set up for {}", root.display()),
        })?;
        Ok(store::Object {
            operator,
            path,
            hint: &self.hint,
            // A local file gains nothing from concurrent reads.
            splittable: false,
        })
    }
}

/// The root of the file `source` names (`/`, `C:\`, `\\server\share\`) and its path below
/// that root, `/`-separated as opendal wants it (a trailing `/` kept: a directory).
fn split(source: &Source) -> Result<(PathBuf, String), FetchError> {
    let path = source
        .url()
        .to_file_path()
        .map_err(|()| FetchError::InvalidUrl {
            url: source.to_string(),
            reason: "not a local file path".to_string(),
        })?;
    let mut root = PathBuf::new();
    let mut below = Vec::new();
    for component in path.components() {
        match component {
            Component::Prefix(_) | Component::RootDir => root.push(component),
            Component::CurDir => {}
            other => below.push(other.as_os_str().to_string_lossy().into_owned()),
        }
    }
    let mut below = below.join("/");
    if source.url().path().ends_with('/') {
        below.push('/');
    }
    Ok((root, below))
}
