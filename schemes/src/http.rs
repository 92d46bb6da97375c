//! `http://` and `https://` on reqwest, with a redirect loop of our own.
//!
//! Why reqwest directly and not opendal's http service: opendal's http service maps a URL to
//! an endpoint plus a path and hides each response, so it cannot give us what this backend
//! must guarantee: response headers of every hop for `-D`, credentials decided per hop
//! (`-H` and URL userinfo only for the first origin, netrc only for its own host), our
//! redirect policy (http(s) targets only, never https -> http, at most 10 hops, the chain in
//! the error), and the status codes we classify. opendal serves the other schemes; both use
//! the same reqwest and rustls, so the binary carries one HTTP stack.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use ptex_config::{Authorization, CredentialHelpers, Credentials, Settings, env_key, is_loopback};
use reqwest::Method;
use reqwest::header::{AUTHORIZATION, LOCATION};
use url::Url;

use crate::client::{
    MAX_REDIRECTS, builder_presenting, classify, client_builder, describe, plain_builder,
};
use crate::download::{Download, Head};
use crate::helper::Helpers;
use crate::source::percent_decode;
use crate::trust::For;
use crate::{FetchError, Part, RequestOptions, ResponseHead, Source, Upload, Written, redact_url};

/// An HTTP(S) client configured from the user's settings.
pub(crate) struct HttpBackend {
    /// The client for plain http URLs: it loads no TLS roots.
    plain: reqwest::Client,
    /// The client for https hosts without a client certificate of their own, built on the
    /// first https URL (or redirect to one): only then are the roots loaded.
    secure: OnceLock<reqwest::Client>,
    /// What the secure client is built from.
    settings: Settings,
    /// A client for each `client_cert` the config's `auth` names, by file.
    with_cert: BTreeMap<PathBuf, reqwest::Client>,
    credentials: Credentials,
    helpers: CredentialHelpers,
    helper_runs: Helpers,
    helper_timeout: Duration,
}

impl HttpBackend {
    pub(crate) fn new(settings: &Settings) -> Result<HttpBackend, FetchError> {
        let build = |builder: Result<reqwest::ClientBuilder, FetchError>| {
            builder?
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(|e| FetchError::Setup {
                    reason: describe(&e),
                })
        };
        crate::trust::check_files(settings)?;
        let plain = build(plain_builder(settings))?;
        let mut with_cert = BTreeMap::new();
        for (_, path) in settings.credentials.client_certs() {
            if !with_cert.contains_key(path) {
                let client = build(builder_presenting(settings, Some(path), For::Web))?;
                with_cert.insert(path.to_path_buf(), client);
            }
        }
        Ok(HttpBackend {
            plain,
            secure: OnceLock::new(),
            settings: settings.clone(),
            with_cert,
            credentials: settings.credentials.clone(),
            helpers: settings.file.credential_helpers.clone(),
            helper_runs: Helpers::default(),
            helper_timeout: settings.timeouts.credential_helper,
        })
    }

    /// The client for `url`: the plain one for http (unless the proxy for http is itself
    /// reached over TLS), else the secure one, built on first use.
    fn client_for(&self, url: &Url) -> Result<&reqwest::Client, FetchError> {
        if url.scheme() == "http" && !self.settings.tls.http_proxy_is_tls {
            return Ok(&self.plain);
        }
        if let Some(client) = self.secure.get() {
            return Ok(client);
        }
        let client = client_builder(&self.settings)?
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| FetchError::Setup {
                reason: describe(&e),
            })?;
        Ok(self.secure.get_or_init(|| client))
    }

    /// Sends GET requests for `source`, following redirects, until a response with a body.
    ///
    /// A server that answers the rest of a file (`part` without an end) badly (416, a 206
    /// at another offset, without `Content-Range`, shorter than the rest, or of another
    /// version) gets one plain GET instead, as curl or the original would send: its whole
    /// file is then started over ([`Download::starts_at`] is `None`). Bytes of a 206 are
    /// only ever continued when its validator matches the one asked for.
    pub(crate) async fn open(
        &self,
        source: &Source,
        options: &RequestOptions,
        part: Option<&Part>,
        observe: &mut dyn FnMut(&ResponseHead),
    ) -> Result<Download, FetchError> {
        let Some(part) = part else {
            return self.plain(source, options, observe).await;
        };
        let answer = self
            .follow(Method::GET, source, options, Some(part), None, observe)
            .await;
        let response = match answer {
            Err(e)
                if part.end.is_none()
                    && matches!(e.innermost(), FetchError::HttpStatus { status: 416, .. }) =>
            {
                return self.plain(source, options, observe).await;
            }
            answer => answer?,
        };
        if response.status().as_u16() != 206 {
            return Ok(download(response, None));
        }
        let range = content_range(&response);
        let download = download(response, Some(part.start));
        let same_version = download.validator() == Some(part.validator.as_str());
        if same_version && range.is_some_and(|r| answers(part, r)) {
            return Ok(download);
        }
        drop(download);
        match part.end {
            None => self.plain(source, options, observe).await,
            Some(_) => Err(FetchError::WrongPart),
        }
    }

    /// One GET for the whole file.
    async fn plain(
        &self,
        source: &Source,
        options: &RequestOptions,
        observe: &mut dyn FnMut(&ResponseHead),
    ) -> Result<Download, FetchError> {
        let response = self
            .follow(Method::GET, source, options, None, None, observe)
            .await?;
        match response.status().as_u16() {
            206 => Err(FetchError::WrongPart),
            _ => Ok(download(response, None)),
        }
    }

    /// The length `source` declares, from a HEAD request (a GET whose body is not read, for
    /// servers that refuse HEAD, and for URLs signed for GET only, which answer HEAD with a
    /// 403); `None` when it declares none.
    pub(crate) async fn stat(
        &self,
        source: &Source,
        options: &RequestOptions,
    ) -> Result<Option<u64>, FetchError> {
        let mut ignore = |_: &ResponseHead| {};
        let response = match self
            .follow(Method::HEAD, source, options, None, None, &mut ignore)
            .await
        {
            Err(e)
                if matches!(
                    e.innermost(),
                    FetchError::HttpStatus {
                        status: 405 | 501,
                        ..
                    } | FetchError::AccessDenied { .. }
                ) =>
            {
                self.follow(Method::GET, source, options, None, None, &mut ignore)
                    .await?
            }
            other => other?,
        };
        // Not `content_length()`: for a HEAD response that is the empty body's length.
        let length = response
            .headers()
            .get(reqwest::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        Ok(length)
    }

    /// PUTs `body` to `source` with `If-None-Match: *`, so that an object already there is
    /// not replaced (412: [`Written::AlreadyThere`]). Credentials and redirects as for a
    /// GET (a redirect sends the body again, from its start); `-H` headers are not sent.
    pub(crate) async fn put_new(
        &self,
        source: &Source,
        body: &mut dyn Upload,
    ) -> Result<Written, FetchError> {
        let options = RequestOptions::new(Vec::new(), source);
        let answer = self
            .follow(Method::PUT, source, &options, None, Some(body), &mut |_| {})
            .await;
        match answer {
            Ok(_) => Ok(Written::Written),
            Err(e) if matches!(e.innermost(), FetchError::HttpStatus { status: 412, .. }) => {
                Ok(Written::AlreadyThere)
            }
            Err(e) => Err(e),
        }
    }

    /// DELETEs `source`; one that is not there (404, 410) is not an error.
    pub(crate) async fn delete(&self, source: &Source) -> Result<(), FetchError> {
        let options = RequestOptions::new(Vec::new(), source);
        let answer = self
            .follow(Method::DELETE, source, &options, None, None, &mut |_| {})
            .await;
        match answer {
            Ok(_) => Ok(()),
            Err(e) if matches!(e.innermost(), FetchError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Sends `method` requests for `source`, following redirects, until a successful
    /// response; an unsuccessful one is sorted into our vocabulary.
    async fn follow(
        &self,
        method: Method,
        source: &Source,
        options: &RequestOptions,
        part: Option<&Part>,
        mut body: Option<&mut (dyn Upload + '_)>,
        observe: &mut dyn FnMut(&ResponseHead),
    ) -> Result<reqwest::Response, FetchError> {
        let first = source.url();
        let mut url = first.clone();
        let mut chain = vec![redact_url(url.as_str())];
        for hop in 0..=MAX_REDIRECTS {
            // A failure after a redirect names where it happened, not only where it began.
            let after_redirects = |error: FetchError| match hop {
                0 => error,
                _ => FetchError::Redirected {
                    chain: chain.join(" -> "),
                    error: Box::new(error),
                },
            };
            let (response, sent) = self
                .send(
                    method.clone(),
                    &url,
                    first,
                    options,
                    part,
                    body.as_deref_mut(),
                )
                .await
                .map_err(after_redirects)?;
            observe(&head(&url, &response));
            let status = response.status();
            if !status.is_redirection() {
                let outcome = match status.as_u16() {
                    200..=299 => Ok(response),
                    404 | 410 => Err(FetchError::NotFound {
                        detail: format!("HTTP {}", status.as_u16()),
                    }),
                    401 | 403 => Err(FetchError::AccessDenied {
                        detail: format!("HTTP {}", status.as_u16()),
                        hint: format!(
                            "sent {sent}; check the credentials for this host (-H \
                             Authorization, {}, the config's auth, netrc)",
                            variables_hint(&url)
                        ),
                    }),
                    status => Err(FetchError::HttpStatus {
                        status,
                        retry_after: retry_after(&response),
                    }),
                };
                return outcome.map_err(after_redirects);
            }
            let next = next_hop(&url, &response).map_err(after_redirects)?;
            chain.push(redact_url(next.as_str()));
            if hop == MAX_REDIRECTS {
                break;
            }
            url = next;
        }
        Err(FetchError::TooManyRedirects {
            max: MAX_REDIRECTS,
            chain: chain.join(" -> "),
        })
    }

    /// One request to `url`, with exactly the credentials that belong to its origin; also
    /// says which credentials were sent, by name.
    async fn send(
        &self,
        method: Method,
        url: &Url,
        first: &Url,
        options: &RequestOptions,
        part: Option<&Part>,
        body: Option<&mut (dyn Upload + '_)>,
    ) -> Result<(reqwest::Response, String), FetchError> {
        // reqwest would turn userinfo into an Authorization header on its own: we decide.
        let bare = bare_url(url);
        let host = url.host_str().unwrap_or_default();
        // A host's own client certificate, else the one for every host (SSL_CLIENT_CERT).
        let client = match self
            .credentials
            .client_cert(host, url.port())
            .and_then(|path| self.with_cert.get(path))
        {
            Some(client) => client,
            None => self.client_for(url)?,
        };
        let mut request = client.request(method, bare.clone());
        if let Some(part) = part {
            let last = part
                .end
                .map(|end| (end - 1).to_string())
                .unwrap_or_default();
            request = request
                .header(
                    reqwest::header::RANGE,
                    format!("bytes={}-{last}", part.start),
                )
                .header(reqwest::header::IF_RANGE, part.validator.as_str());
        }
        let (request, sent) = self.authorize(request, url, first, options).await?;
        let response = match body {
            None => request.send().await.map_err(|e| classify(&e))?,
            Some(body) => crate::put::send(request, body).await?,
        };
        Ok((response, sent))
    }

    /// Adds the credentials `url` gets to `request`, and says which (by name, for
    /// messages). Precedence: -H, then URL userinfo, then a credential helper, then
    /// PTEX_AUTH_*, SCIENCE_AUTH_*, the config's auth, netrc.
    async fn authorize(
        &self,
        mut request: reqwest::RequestBuilder,
        url: &Url,
        first: &Url,
        options: &RequestOptions,
    ) -> Result<(reqwest::RequestBuilder, String), FetchError> {
        let host = url.host_str().unwrap_or_default();
        let mut authorized = false;
        let mut sent = "no credentials".to_string();
        let mut given = Vec::new();
        for header in options.headers_for(url) {
            if header.name == AUTHORIZATION {
                authorized = true;
                sent = "the -H Authorization header".to_string();
            }
            given.push(header.name.clone());
            request = request.header(header.name.clone(), header.value.clone());
        }
        // URL userinfo belongs to the origin of the URL it was written in.
        if !authorized && !first.username().is_empty() && url.origin() == first.origin() {
            let user = percent_decode(first.username());
            let password = first.password().map(percent_decode);
            request = request.basic_auth(user, password);
            authorized = true;
            sent = "the URL's user and password".to_string();
        }
        // A credential helper is asked about this very URL, so its headers go to its
        // origin only; like every credential, never over plain http to another machine.
        if let Some((_, helper)) = self.helpers.for_host(host)
            && (url.scheme() == "https" || is_loopback(host))
        {
            let headers = self
                .helper_runs
                .headers(helper, &bare_url(url), self.helper_timeout)
                .await?;
            // A header the user gave with -H (or an Authorization already decided) wins.
            let (mut taken, was_authorized) = (given.clone(), authorized);
            for (name, value) in headers {
                if given.contains(&name) || (name == AUTHORIZATION && was_authorized) {
                    continue;
                }
                authorized |= name == AUTHORIZATION;
                sent = format!("headers from the credential helper {}", helper.display());
                taken.push(name.clone());
                request = request.header(name, value);
            }
            given = taken;
        }
        let redirected = url.origin() != first.origin();
        let found = self
            .credentials
            .for_host(host, url.port(), url.scheme() == "https", redirected)
            .map_err(|e| FetchError::Config {
                reason: e.to_string(),
            })?;
        if !authorized && let Some(authorization) = found.authorization {
            sent = format!("credentials from {}", found.source);
            request = match authorization {
                Authorization::Bearer(token) => request.bearer_auth(token),
                Authorization::Basic { user, password } => request.basic_auth(user, Some(password)),
            };
        }
        for (name, value) in found.headers {
            if !given.iter().any(|g| g.as_str().eq_ignore_ascii_case(&name)) {
                request = request.header(name, value);
            }
        }
        Ok((request, sent))
    }
}

/// Where the variables for `url`'s host go: `PTEX_AUTH_<NAME>_*`, or, for a host that needs
/// stating, a NAME of the user's choice with `_HOST`.
fn variables_hint(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match env_key(host, None) {
        Some(name) => format!("PTEX_AUTH_{name}_*"),
        None => format!("PTEX_AUTH_<NAME>_* with PTEX_AUTH_<NAME>_HOST={host}"),
    }
}

/// `url` without its user and password: what is requested, and what a credential helper is
/// asked about.
fn bare_url(url: &Url) -> Url {
    let mut bare = url.clone();
    let _ = bare.set_username("");
    let _ = bare.set_password(None);
    bare
}

/// Where a redirect response points, if ptex may follow it.
fn next_hop(url: &Url, response: &reqwest::Response) -> Result<Url, FetchError> {
    let refused = |to: String, reason: &str| FetchError::RedirectRefused {
        to,
        reason: reason.to_string(),
    };
    let location = response
        .headers()
        .get(LOCATION)
        .ok_or_else(|| refused("nowhere".into(), "the redirect has no Location header"))?;
    let location = location
        .to_str()
        .map_err(|_| refused("?".into(), "the Location header is not text"))?;
    let next = url
        .join(location)
        .map_err(|e| refused(redact_url(location), &format!("bad Location: {e}")))?;
    match crate::client::redirect_refusal(url, &next, false) {
        Some(reason) => Err(refused(redact_url(next.as_str()), &reason)),
        None => Ok(next),
    }
}

/// The first and last byte positions and the total length (`None` for `*`) of a
/// `Content-Range: bytes FIRST-LAST/TOTAL` header.
fn content_range(response: &reqwest::Response) -> Option<(u64, u64, Option<u64>)> {
    let value = response.headers().get(reqwest::header::CONTENT_RANGE)?;
    let range = value.to_str().ok()?.trim().strip_prefix("bytes ")?;
    let (first, rest) = range.split_once('-')?;
    let (last, total) = rest.split_once('/')?;
    let total = match total.trim() {
        "*" => None,
        total => Some(total.parse().ok()?),
    };
    Some((first.trim().parse().ok()?, last.trim().parse().ok()?, total))
}

/// Whether a 206 carrying bytes `first..=last` of `total` is exactly the part asked for (an
/// open-ended part runs to the end of the file: a shorter answer, legal as it is, would
/// leave the file short).
fn answers(part: &Part, (first, last, total): (u64, u64, Option<u64>)) -> bool {
    let end = part.end.or(total);
    first == part.start && end.is_none_or(|end| last + 1 == end)
}

/// `Retry-After` in seconds (the HTTP-date form is rare for downloads and is ignored).
fn retry_after(response: &reqwest::Response) -> Option<std::time::Duration> {
    let value = response.headers().get(reqwest::header::RETRY_AFTER)?;
    let seconds: u64 = value.to_str().ok()?.trim().parse().ok()?;
    Some(std::time::Duration::from_secs(seconds))
}

/// One response's head, safe to show: URLs in it redacted, control characters escaped (a
/// C1 character such as U+009B is a terminal escape sequence).
fn head(url: &Url, response: &reqwest::Response) -> ResponseHead {
    let shown = |name: &reqwest::header::HeaderName, value: &reqwest::header::HeaderValue| {
        let value = String::from_utf8_lossy(value.as_bytes());
        let value = match name.as_str() {
            "location" | "content-location" => redact_url(&value),
            _ => value.into_owned(),
        };
        value
            .chars()
            .map(|c| match c.is_control() {
                true => c.escape_unicode().to_string(),
                false => c.to_string(),
            })
            .collect::<String>()
    };
    ResponseHead {
        url: redact_url(url.as_str()),
        version: format!("{:?}", response.version()),
        status: response.status().as_u16(),
        headers: response
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), shown(k, v)))
            .collect(),
    }
}

/// `response`'s body as a [`Download`]; `starts_at` is the offset it starts at when it
/// answers a ranged request (206), `None` when it is the whole file.
fn download(response: reqwest::Response, starts_at: Option<u64>) -> Download {
    let header = |name| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    // If-Range takes a strong ETag or a date; a weak ETag cannot vouch for the bytes.
    let validator = header(reqwest::header::ETAG)
        .filter(|etag| !etag.starts_with("W/"))
        .or_else(|| header(reqwest::header::LAST_MODIFIED));
    let head = Head {
        content_length: response.content_length(),
        starts_at,
        validator,
        splittable: header(reqwest::header::ACCEPT_RANGES).as_deref() == Some("bytes"),
        declared_sha256: crate::checksum::declared_sha256(response.headers()),
        content_type: header(reqwest::header::CONTENT_TYPE),
    };
    let body = futures_util::stream::unfold(response, |mut response| async move {
        match response.chunk().await {
            Ok(None) => None,
            Ok(Some(bytes)) => Some((Ok(bytes), response)),
            Err(e) => Some((Err(classify(&e)), response)),
        }
    });
    Download::new(head, Box::pin(body))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// A plain http URL never builds the client whose TLS part loads the system's roots;
    /// the first https URL does, once.
    #[test]
    fn only_https_builds_the_tls_client() {
        let env: HashMap<String, String> = HashMap::new();
        let settings = Settings::load(&env, None).expect("default settings");
        let backend = HttpBackend::new(&settings).expect("a backend");
        let http: Url = "http://127.0.0.1:9/f".parse().expect("a URL");
        let https: Url = "https://127.0.0.1:9/f".parse().expect("a URL");
        let client = backend.client_for(&http).expect("the plain client");
        assert!(std::ptr::eq(client, &backend.plain));
        assert!(backend.secure.get().is_none(), "http built the TLS client");
        let first = backend.client_for(&https).expect("the TLS client") as *const _;
        assert!(backend.secure.get().is_some());
        let again = backend.client_for(&https).expect("the TLS client") as *const _;
        assert_eq!(first, again, "the TLS client is built once");
    }

    /// Plain http through a proxy reached over TLS needs the TLS client.
    #[test]
    fn http_through_a_tls_proxy_uses_the_tls_client() {
        let env: HashMap<String, String> =
            HashMap::from([("http_proxy".to_string(), " HTTPS://proxy:3128".to_string())]);
        let settings = Settings::load(&env, None).expect("settings");
        let backend = HttpBackend::new(&settings).expect("a backend");
        let http: Url = "http://127.0.0.1:9/f".parse().expect("a URL");
        let client = backend.client_for(&http).expect("the TLS client");
        assert!(!std::ptr::eq(client, &backend.plain));
        assert!(backend.secure.get().is_some());
    }
}
