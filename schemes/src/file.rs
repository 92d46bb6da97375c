//! `file:///absolute/path` on opendal's fs service: a local file read with the same size cap
//! and verification as any download.

use std::sync::Arc;

use opendal::{Operator, services::Fs};
use ptex_config::Timeouts;

use crate::{Download, FetchError, Part, Source, store};

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

    pub(crate) async fn open(
        &self,
        source: &Source,
        part: Option<&Part>,
        timeouts: &Timeouts,
    ) -> Result<Download, FetchError> {
        let path = source
            .url()
            .to_file_path()
            .map_err(|()| FetchError::InvalidUrl {
                url: source.to_string(),
                reason: "not a local file path".to_string(),
            })?;
        let path = path.to_string_lossy();
        let object = store::Object {
            operator: &self.operator,
            path: path.trim_start_matches('/'),
            hint: &self.hint,
            // A local file gains nothing from concurrent reads.
            splittable: false,
        };
        store::open(&object, part, timeouts).await
    }
}
