//! The scheme dispatcher: one entry point that opens any [`Source`] with its scheme's
//! backend, creating each backend on first use.

use ptex_config::Settings;

use crate::file::FileBackend;
use crate::http::HttpBackend;
use crate::store::{Operators, Transports};
use crate::{
    Download, FetchError, Part, RequestOptions, ResponseHead, Scheme, Source, ftp, gcs, s3,
};

/// Opens sources of every supported scheme.
pub struct Dispatcher {
    settings: Settings,
    http: Option<HttpBackend>,
    transports: Option<Transports>,
    s3: Operators,
    gcs: Operators,
    ftp: Operators,
    file: Option<FileBackend>,
}

impl Dispatcher {
    /// A dispatcher for the given settings; no backend is set up until it is needed.
    pub fn new(settings: Settings) -> Dispatcher {
        Dispatcher {
            settings,
            http: None,
            transports: None,
            s3: Operators::splittable(),
            gcs: Operators::splittable(),
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
    /// operator for its bucket or server (credentials, region).
    async fn prepare(&mut self, source: &Source) -> Result<(), FetchError> {
        let settings = &self.settings;
        match source.scheme() {
            Scheme::Http | Scheme::Https => {
                if self.http.is_none() {
                    self.http = Some(HttpBackend::new(settings)?);
                }
            }
            Scheme::File => {
                if self.file.is_none() {
                    self.file = Some(FileBackend::new()?);
                }
            }
            Scheme::S3 | Scheme::Gs | Scheme::Ftp => {
                let transports = match &mut self.transports {
                    Some(transports) => transports,
                    slot => slot.insert(Transports::new(settings)?),
                };
                let bucket = source.host();
                match source.scheme() {
                    Scheme::S3 => {
                        let setup = s3::setup(bucket, &settings.file.s3, transports);
                        self.s3.prepare(bucket, setup).await?;
                    }
                    Scheme::Gs => {
                        let setup = gcs::setup(bucket, &settings.file.gs, transports);
                        self.gcs.prepare(bucket, setup).await?;
                    }
                    _ => {
                        let (server, operator, hint) =
                            ftp::setup(source, settings.credentials.netrc(), transports)?;
                        let setup = async { Ok((operator, hint)) };
                        self.ftp.prepare(&server, setup).await?;
                    }
                }
            }
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
        let not_ready = || FetchError::Setup {
            reason: format!("no backend was set up for {source}"),
        };
        let key = source.object_key();
        match source.scheme() {
            Scheme::Http | Scheme::Https => {
                let http = self.http.as_ref().ok_or_else(not_ready)?;
                http.open(source, options, part, observe).await
            }
            Scheme::File => {
                let file = self.file.as_ref().ok_or_else(not_ready)?;
                file.open(source, part, timeouts).await
            }
            Scheme::S3 => self.s3.open(source.host(), &key, part, timeouts).await,
            Scheme::Gs => self.gcs.open(source.host(), &key, part, timeouts).await,
            Scheme::Ftp => {
                let server = ftp::key(source, self.settings.credentials.netrc());
                self.ftp.open(&server, &key, part, timeouts).await
            }
        }
    }
}
