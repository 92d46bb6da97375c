//! The scheme dispatcher: one entry point that opens any [`Source`] with its scheme's
//! backend, creating each backend on first use.

use std::io::Read;

use ptex_config::Settings;

use crate::file::FileBackend;
#[cfg(feature = "ftp")]
use crate::ftp;
#[cfg(feature = "gcs")]
use crate::gcs;
use crate::http::HttpBackend;
#[cfg(feature = "s3")]
use crate::s3;
#[cfg(any(feature = "s3", feature = "gcs", feature = "ftp"))]
use crate::store::{Operators, Transports};
use crate::{
    Download, FetchError, Part, RequestOptions, ResponseHead, Scheme, Source, Upload, Written,
    store, upload,
};

/// Opens sources of every supported scheme.
pub struct Dispatcher {
    settings: Settings,
    http: Option<HttpBackend>,
    #[cfg(any(feature = "s3", feature = "gcs", feature = "ftp"))]
    transports: Option<Transports>,
    #[cfg(feature = "s3")]
    s3: Operators,
    #[cfg(feature = "gcs")]
    gcs: Operators,
    #[cfg(feature = "ftp")]
    ftp: Operators,
    file: Option<FileBackend>,
}

impl Dispatcher {
    /// A dispatcher for the given settings; no backend is set up until it is needed.
    pub fn new(settings: Settings) -> Dispatcher {
        Dispatcher {
            settings,
            http: None,
            #[cfg(any(feature = "s3", feature = "gcs", feature = "ftp"))]
            transports: None,
            #[cfg(feature = "s3")]
            s3: Operators::splittable(),
            #[cfg(feature = "gcs")]
            gcs: Operators::splittable(),
            #[cfg(feature = "ftp")]
            ftp: Operators::default(),
            file: None,
        }
    }

    /// Opens `source` (or `part` of it) and returns its body stream, setting up its scheme's
    /// backend first if needed. A part of a file that changed comes back as the whole file
    /// (see [`Download::starts_at`]). `observe` sees every HTTP response head (each hop of
    /// a redirect chain) as it arrives.
    pub async fn open(
        &mut self,
        source: &Source,
        options: &RequestOptions,
        part: Option<&Part>,
        observe: &mut dyn FnMut(&ResponseHead),
    ) -> Result<Download, FetchError> {
        self.prepare(source).await?;
        self.open_prepared(source, options, part, observe).await
    }

    /// Opens `part` of a source that [`Dispatcher::open`] opened before; `&self`, so many
    /// parts may be open at once.
    pub async fn open_part(
        &self,
        source: &Source,
        options: &RequestOptions,
        part: &Part,
    ) -> Result<Download, FetchError> {
        self.open_prepared(source, options, Some(part), &mut |_| {})
            .await
    }

    /// Sets up what opening `source` needs: its scheme's backend and, for a store, the
    /// operator for its bucket or server (credentials, region). [`Dispatcher::open`] does it
    /// first; parts opened without it need it done.
    pub async fn prepare(&mut self, source: &Source) -> Result<(), FetchError> {
        let settings = &self.settings;
        match source.scheme() {
            Scheme::Http | Scheme::Https => {
                if self.http.is_none() {
                    self.http = Some(HttpBackend::new(settings)?);
                }
            }
            Scheme::File => {
                self.file
                    .get_or_insert_with(FileBackend::new)
                    .prepare(source)?;
            }
            #[cfg(any(feature = "s3", feature = "gcs", feature = "ftp"))]
            Scheme::S3 | Scheme::Gs | Scheme::Ftp => {
                let transports = match &mut self.transports {
                    Some(transports) => transports,
                    slot => slot.insert(Transports::new(settings)?),
                };
                #[cfg(any(feature = "s3", feature = "gcs"))]
                let bucket = source.host();
                match source.scheme() {
                    #[cfg(feature = "s3")]
                    Scheme::S3 => {
                        let setup = s3::setup(bucket, settings, &mut *transports);
                        self.s3.prepare(bucket, setup).await?;
                    }
                    #[cfg(feature = "gcs")]
                    Scheme::Gs => {
                        let setup = gcs::setup(bucket, settings, &mut *transports);
                        self.gcs.prepare(bucket, setup).await?;
                    }
                    #[cfg(feature = "ftp")]
                    Scheme::Ftp => {
                        let (server, operator, hint) =
                            ftp::setup(source, settings.credentials.netrc(), transports)?;
                        let setup = async { Ok((operator, hint)) };
                        self.ftp.prepare(&server, setup).await?;
                    }
                    // `Source::parse` refuses the schemes this build lacks.
                    scheme => return Err(scheme.not_built()),
                }
            }
            #[cfg(not(any(feature = "s3", feature = "gcs", feature = "ftp")))]
            scheme @ (Scheme::S3 | Scheme::Gs | Scheme::Ftp) => return Err(scheme.not_built()),
        }
        Ok(())
    }

    async fn open_prepared(
        &self,
        source: &Source,
        options: &RequestOptions,
        part: Option<&Part>,
        observe: &mut dyn FnMut(&ResponseHead),
    ) -> Result<Download, FetchError> {
        let timeouts = &self.settings.timeouts;
        match source.scheme() {
            Scheme::Http | Scheme::Https => {
                let http = self.http.as_ref().ok_or_else(|| not_ready(source))?;
                http.open(source, options, part, observe).await
            }
            _ => store::open(&self.object(source)?, part, timeouts).await,
        }
    }

    /// The length `source` declares, without reading it: from a HEAD request for http(s),
    /// from the object's metadata on a store. `None` when the source declares none.
    pub async fn stat(
        &mut self,
        source: &Source,
        options: &RequestOptions,
    ) -> Result<Option<u64>, FetchError> {
        self.prepare(source).await?;
        let timeouts = &self.settings.timeouts;
        match source.scheme() {
            Scheme::Http | Scheme::Https => {
                let http = self.http.as_ref().ok_or_else(|| not_ready(source))?;
                http.stat(source, options).await
            }
            _ => store::stat(&self.object(source)?, timeouts).await.map(Some),
        }
    }

    /// Writes everything `body` reads to `target`, an `s3://`, `gs://` or `file://` URL,
    /// replacing what is there; the object appears complete or not at all on S3 and GCS.
    pub async fn put(&mut self, target: &Source, body: &mut dyn Read) -> Result<(), FetchError> {
        if !matches!(target.scheme(), Scheme::S3 | Scheme::Gs | Scheme::File) {
            return Err(FetchError::CannotUpload {
                scheme: target.url().scheme().to_string(),
            });
        }
        self.prepare(target).await?;
        upload::put(&self.object(target)?, body, &self.settings.timeouts, false)
            .await
            .map(drop)
    }

    /// Writes everything `body` reads to `target` (as [`Dispatcher::put`], and also to an
    /// `http(s)://` URL, by PUT) only if no object is there yet; one that is is left
    /// untouched. Conditional on the store's side: S3's `If-None-Match: *`, GCS's
    /// `ifGenerationMatch=0`, a hard link for a local file, `If-None-Match: *` on a PUT
    /// (412: there already); so of many writers at once, one writes and the others learn
    /// [`Written::AlreadyThere`]. (An HTTP server may ignore the condition and replace the
    /// object: a caller that relies on it asks twice and expects the second to be refused.)
    pub async fn put_new(
        &mut self,
        target: &Source,
        body: &mut dyn Upload,
    ) -> Result<Written, FetchError> {
        match target.scheme() {
            Scheme::Http | Scheme::Https => {
                self.prepare(target).await?;
                let http = self.http.as_ref().ok_or_else(|| not_ready(target))?;
                http.put_new(target, body).await
            }
            Scheme::File => {
                let path = target
                    .url()
                    .to_file_path()
                    .map_err(|()| FetchError::InvalidUrl {
                        url: target.to_string(),
                        reason: "not a local file path".to_string(),
                    })?;
                upload::put_new_file(&path, body)
            }
            Scheme::S3 | Scheme::Gs => {
                self.prepare(target).await?;
                upload::put(&self.object(target)?, body, &self.settings.timeouts, true).await
            }
            _ => Err(FetchError::CannotUpload {
                scheme: target.url().scheme().to_string(),
            }),
        }
    }

    /// Removes the object `target` (an `s3://`, `gs://`, `file://` or `http(s)://` URL, the
    /// last by DELETE); one that is not there is not an error.
    pub async fn delete(&mut self, target: &Source) -> Result<(), FetchError> {
        if matches!(target.scheme(), Scheme::Http | Scheme::Https) {
            self.prepare(target).await?;
            let http = self.http.as_ref().ok_or_else(|| not_ready(target))?;
            return http.delete(target).await;
        }
        if !matches!(target.scheme(), Scheme::S3 | Scheme::Gs | Scheme::File) {
            return Err(FetchError::CannotUpload {
                scheme: target.url().scheme().to_string(),
            });
        }
        self.prepare(target).await?;
        let object = self.object(target)?;
        let limit = self.settings.timeouts.connect + self.settings.timeouts.read;
        match tokio::time::timeout(limit, object.operator.delete(&object.path)).await {
            Ok(result) => result.map_err(|e| store::classify(&e, object.hint)),
            Err(_) => Err(FetchError::Timeout {
                reason: format!("no answer within {:.1} s", limit.as_secs_f64()),
            }),
        }
    }

    /// The object `source` names on its store (every scheme but http(s)), once prepared.
    fn object(&self, source: &Source) -> Result<store::Object<'_>, FetchError> {
        match source.scheme() {
            Scheme::Http | Scheme::Https => Err(not_ready(source)),
            Scheme::File => {
                let file = self.file.as_ref().ok_or_else(|| not_ready(source))?;
                file.object(source)
            }
            #[cfg(feature = "s3")]
            Scheme::S3 => self.s3.object(source.host(), source.object_key()),
            #[cfg(feature = "gcs")]
            Scheme::Gs => self.gcs.object(source.host(), source.object_key()),
            #[cfg(feature = "ftp")]
            Scheme::Ftp => {
                let server = ftp::key(source, self.settings.credentials.netrc());
                self.ftp.object(&server, source.object_key())
            }
            #[cfg(not(all(feature = "s3", feature = "gcs", feature = "ftp")))]
            scheme => Err(scheme.not_built()),
        }
    }
}

fn not_ready(source: &Source) -> FetchError {
    FetchError::Setup {
        reason: format!("no backend was set up for {source}"),
    }
}
