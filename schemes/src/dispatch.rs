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
use crate::{Download, FetchError, RequestOptions, ResponseHead, Resume, Scheme, Source};

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
            s3: Operators::default(),
            #[cfg(feature = "gcs")]
            gcs: Operators::default(),
            #[cfg(feature = "ftp")]
            ftp: Operators::default(),
            file: None,
        }
    }

    /// Opens `source` and returns its body stream. With `resume`, asks for the rest of a
    /// broken-off transfer where the scheme can (see [`Download::resumed_at`]). `observe`
    /// sees every HTTP response head (each hop of a redirect chain) as it arrives.
    pub async fn open(
        &mut self,
        source: &Source,
        options: &RequestOptions,
        resume: Option<&Resume>,
        observe: &mut dyn FnMut(&ResponseHead),
    ) -> Result<Download, FetchError> {
        let settings = &self.settings;
        match source.scheme() {
            Scheme::Http | Scheme::Https => {
                let http = match &mut self.http {
                    Some(http) => http,
                    slot => slot.insert(HttpBackend::new(settings)?),
                };
                http.open(source, options, resume, observe).await
            }
            Scheme::File => {
                let file = match &mut self.file {
                    Some(file) => file,
                    slot => slot.insert(FileBackend::new()?),
                };
                file.open(source, &settings.timeouts).await
            }
            #[cfg(any(feature = "s3", feature = "gcs", feature = "ftp"))]
            Scheme::S3 | Scheme::Gs | Scheme::Ftp => {
                let transports = match &mut self.transports {
                    Some(transports) => transports,
                    slot => slot.insert(Transports::new(settings)?),
                };
                #[cfg(any(feature = "s3", feature = "gcs"))]
                let bucket = source.host();
                let key = source.object_key();
                match source.scheme() {
                    #[cfg(feature = "s3")]
                    Scheme::S3 => {
                        let setup = s3::setup(bucket, &settings.file.s3, transports);
                        self.s3.open(bucket, &key, &settings.timeouts, setup).await
                    }
                    #[cfg(feature = "gcs")]
                    Scheme::Gs => {
                        let setup = gcs::setup(bucket, &settings.file.gs, transports);
                        self.gcs.open(bucket, &key, &settings.timeouts, setup).await
                    }
                    #[cfg(feature = "ftp")]
                    Scheme::Ftp => {
                        let (server, operator, hint) =
                            ftp::setup(source, settings.credentials.netrc(), transports)?;
                        let setup = async { Ok((operator, hint)) };
                        self.ftp
                            .open(&server, &key, &settings.timeouts, setup)
                            .await
                    }
                    // `Source::parse` refuses the schemes this build lacks.
                    scheme => Err(scheme.not_built()),
                }
            }
            #[cfg(not(any(feature = "s3", feature = "gcs", feature = "ftp")))]
            scheme @ (Scheme::S3 | Scheme::Gs | Scheme::Ftp) => Err(scheme.not_built()),
        }
    }
}
