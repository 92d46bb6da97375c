//! The scheme dispatcher: one entry point that opens any [`Source`] with its scheme's
//! backend, creating each backend on first use.

use ptex_config::Settings;

use crate::file::FileBackend;
use crate::http::HttpBackend;
use crate::store::{Operators, Transports};
use crate::{
    Download, FetchError, RequestOptions, ResponseHead, Resume, Scheme, Source, ftp, gcs, s3,
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
            s3: Operators::default(),
            gcs: Operators::default(),
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
            Scheme::S3 | Scheme::Gs | Scheme::Ftp => {
                let transports = match &mut self.transports {
                    Some(transports) => transports,
                    slot => slot.insert(Transports::new(settings)?),
                };
                let (bucket, key) = (source.host(), source.object_key());
                match source.scheme() {
                    Scheme::S3 => {
                        let setup = s3::setup(bucket, &settings.file.s3, transports);
                        self.s3.open(bucket, &key, &settings.timeouts, setup).await
                    }
                    Scheme::Gs => {
                        let setup = gcs::setup(bucket, &settings.file.gs, transports);
                        self.gcs.open(bucket, &key, &settings.timeouts, setup).await
                    }
                    _ => {
                        let (server, operator, hint) =
                            ftp::setup(source, settings.credentials.netrc(), transports)?;
                        let setup = async { Ok((operator, hint)) };
                        self.ftp
                            .open(&server, &key, &settings.timeouts, setup)
                            .await
                    }
                }
            }
        }
    }
}
