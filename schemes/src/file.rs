//! `file:///absolute/path` on opendal's fs service: a local file read with the same size cap
//! and verification as any download.

use std::sync::Arc;

use crate::{FetchError, Source, store};
use opendal::{Operator, services::Fs};

/// The local filesystem, rooted at `/`.
pub(crate) struct FileBackend {
    operator: Operator,
    hint: Arc<str>,
}

impl FileBackend {
    pub(crate) fn new() -> Result<FileBackend, FetchError> {
        let operator = Operator::new(Fs::default().root("/")).map_err(|e| FetchError::Setup {
            reason: e.to_string(),
        })?;
        Ok(FileBackend {
            operator,
            hint: Arc::from("check the file's permissions"),
        })
    }

    /// The local file `source` names, as an object of the filesystem store.
    pub(crate) fn object(&self, source: &Source) -> Result<store::Object<'_>, FetchError> {
        let path = source
            .url()
            .to_file_path()
            .map_err(|()| FetchError::InvalidUrl {
                url: source.to_string(),
                reason: "not a local file path".to_string(),
            })?;
        Ok(store::Object {
            operator: &self.operator,
            path: path.to_string_lossy().trim_start_matches('/').to_string(),
            hint: &self.hint,
            // A local file gains nothing from concurrent reads.
            splittable: false,
        })
    }
}
