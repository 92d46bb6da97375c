//! The scheme dispatcher: one entry point that opens any [`Source`] with its scheme's
//! backend, creating each backend on first use.

use ptex_config::Settings;

use crate::http::HttpBackend;
use crate::{Download, FetchError, RequestOptions, ResponseHead, Scheme, Source};

/// Opens sources of every supported scheme.
pub struct Dispatcher {
    settings: Settings,
    http: Option<HttpBackend>,
}

impl Dispatcher {
    /// A dispatcher for the given settings; no backend is set up until it is needed.
    pub fn new(settings: Settings) -> Dispatcher {
        Dispatcher {
            settings,
            http: None,
        }
    }

    /// Opens `source` and returns its body stream. `observe` sees every response head
    /// (each hop of a redirect chain) as it arrives.
    pub async fn open(
        &mut self,
        source: &Source,
        options: &RequestOptions,
        observe: &mut dyn FnMut(&ResponseHead),
    ) -> Result<Download, FetchError> {
        match source.scheme() {
            Scheme::Http | Scheme::Https => {
                let http = match &mut self.http {
                    Some(http) => http,
                    slot => slot.insert(HttpBackend::new(&self.settings)?),
                };
                http.open(source, options, observe).await
            }
        }
    }
}
