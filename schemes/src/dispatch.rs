//! The scheme dispatcher: one entry point that opens any [`Source`] with its scheme's
//! backend, creating each backend on first use.

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
use crate::{Download, FetchError, Part, RequestOptions, ResponseHead, Scheme, Source};

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
                        let setup = s3::setup(bucket, &settings.file.s3, transports);
                        self.s3.prepare(bucket, setup).await?;
                    }
                    #[cfg(feature = "gcs")]
                    Scheme::Gs => {
                        let setup = gcs::setup(bucket, &settings.file.gs, transports);
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
        let not_ready = || FetchError::Setup {
            reason: format!("no backend was set up for {source}"),
        };
        match source.scheme() {
            Scheme::Http | Scheme::Https => {
                let http = self.http.as_ref().ok_or_else(not_ready)?;
                http.open(source, options, part, observe).await
            }
            Scheme::File => {
                let file = self.file.as_ref().ok_or_else(not_ready)?;
                file.open(source, part, timeouts).await
            }
            #[cfg(feature = "s3")]
            Scheme::S3 => {
                let key = source.object_key();
                self.s3.open(source.host(), &key, part, timeouts).await
            }
            #[cfg(feature = "gcs")]
            Scheme::Gs => {
                let key = source.object_key();
                self.gcs.open(source.host(), &key, part, timeouts).await
            }
            #[cfg(feature = "ftp")]
            Scheme::Ftp => {
                let server = ftp::key(source, self.settings.credentials.netrc());
                self.ftp
                    .open(&server, &source.object_key(), part, timeouts)
                    .await
            }
            #[cfg(not(all(feature = "s3", feature = "gcs", feature = "ftp")))]
            scheme => Err(scheme.not_built()),
        }
    }
}
