//! The scheme dispatcher: one entry point that opens any [`Source`] with its scheme's
//! backend, creating each backend on first use.

use ptex_config::Settings;

use crate::file::FileBackend;
use crate::ftp::FtpBackend;
use crate::gcs::GcsBackend;
use crate::http::HttpBackend;
use crate::s3::S3Backend;
use crate::store::Transports;
use crate::{Download, FetchError, RequestOptions, ResponseHead, Scheme, Source};

/// Opens sources of every supported scheme.
pub struct Dispatcher {
    settings: Settings,
    http: Option<HttpBackend>,
    transports: Option<Transports>,
    s3: S3Backend,
    gcs: GcsBackend,
    ftp: FtpBackend,
    file: Option<FileBackend>,
}

impl Dispatcher {
    /// A dispatcher for the given settings; no backend is set up until it is needed.
    pub fn new(settings: Settings) -> Dispatcher {
        Dispatcher {
            settings,
            http: None,
            transports: None,
            s3: S3Backend::default(),
            gcs: GcsBackend::default(),
            ftp: FtpBackend::default(),
            file: None,
        }
    }

    /// Opens `source` and returns its body stream. `observe` sees every HTTP response head
    /// (each hop of a redirect chain) as it arrives.
    pub async fn open(
        &mut self,
        source: &Source,
        options: &RequestOptions,
        observe: &mut dyn FnMut(&ResponseHead),
    ) -> Result<Download, FetchError> {
        let settings = &self.settings;
        match source.scheme() {
            Scheme::Http | Scheme::Https => {
                let http = match &mut self.http {
                    Some(http) => http,
                    slot => slot.insert(HttpBackend::new(settings)?),
                };
                http.open(source, options, observe).await
            }
            Scheme::File => {
                let file = match &mut self.file {
                    Some(file) => file,
                    slot => slot.insert(FileBackend::new()?),
                };
                file.open(source).await
            }
            Scheme::S3 | Scheme::Gs | Scheme::Ftp => {
                let transports = match &mut self.transports {
                    Some(transports) => transports,
                    slot => slot.insert(Transports::new(settings)?),
                };
                match source.scheme() {
                    Scheme::S3 => self.s3.open(source, &settings.file.s3, transports).await,
                    Scheme::Gs => self.gcs.open(source, &settings.file.gs, transports).await,
                    _ => {
                        let netrc = settings.netrc.as_ref();
                        self.ftp.open(source, netrc, transports).await
                    }
                }
            }
        }
    }
}
