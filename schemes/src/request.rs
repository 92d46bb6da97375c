//! What the caller asks of a request (extra headers) and what it may observe of responses.

use reqwest::header::{HeaderName, HeaderValue};

use url::{Origin, Url};

use crate::{FetchError, Source};

/// Spaces and tabs around a header name or value; CR and LF are never trimmed, but refused.
const BLANK: [char; 2] = [' ', '\t'];

/// A request header given by the user, validated (no CR, LF or other control characters).
#[derive(Clone)]
pub struct Header {
    pub(crate) name: HeaderName,
    pub(crate) value: HeaderValue,
}

impl Header {
    /// Parses `Name: value` as given to `-H`.
    pub fn parse(text: &str) -> Result<Header, FetchError> {
        let invalid = |reason: &str| FetchError::InvalidHeader {
            header: redact_header(text),
            reason: reason.to_string(),
        };
        let (name, value) = text
            .split_once(':')
            .ok_or_else(|| invalid("expected `Name: value`"))?;
        let name = HeaderName::from_bytes(name.trim_matches(BLANK).as_bytes())
            .map_err(|_| invalid("the name is not a valid header name"))?;
        let mut value = HeaderValue::from_str(value.trim_matches(BLANK))
            .map_err(|_| invalid("the value contains CR, LF or other control characters"))?;
        value.set_sensitive(true);
        Ok(Header { name, value })
    }

    /// The header name, lowercase.
    pub fn name(&self) -> &str {
        self.name.as_str()
    }
}

impl std::fmt::Debug for Header {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: <redacted>", self.name)
    }
}

/// A header's name with its value hidden, for error messages. Text without a `:` may be
/// a bare token (`-H "$TOKEN"`): none of it is shown.
fn redact_header(text: &str) -> String {
    match text.split_once(':') {
        Some((name, _)) => format!("{}: …", name.escape_debug()),
        None => format!("({} characters, no `:`)", text.chars().count()),
    }
}

/// How to make requests for one file.
#[derive(Clone, Debug)]
pub struct RequestOptions {
    /// Extra headers (`-H`), sent to `header_origin` only.
    headers: Vec<Header>,
    header_origin: Origin,
}

impl RequestOptions {
    /// Options whose `headers` go only to the origin (scheme, host, port) of `owner`, the
    /// URL they were given for: never to another mirror, nor across a redirect.
    pub fn new(headers: Vec<Header>, owner: &Source) -> RequestOptions {
        RequestOptions {
            headers,
            header_origin: owner.url().origin(),
        }
    }

    /// The extra headers for a request to `url`: all of them on their own origin, else none.
    pub(crate) fn headers_for(&self, url: &Url) -> &[Header] {
        if url.origin() == self.header_origin {
            &self.headers
        } else {
            &[]
        }
    }
}

/// A part of a file to ask for: bytes `start..end` (to the end of the file when `end` is
/// `None`) of the version that `validator` names (a strong ETag or Last-Modified for HTTP,
/// an object's ETag or length and date for a store), so bytes of two versions of a file are
/// never stitched together. A source whose file changed sends the whole file instead (see
/// [`crate::Download::starts_at`]).
#[derive(Clone, Debug)]
pub struct Part {
    /// The first byte wanted.
    pub start: u64,
    /// One past the last byte wanted; `None` for the rest of the file.
    pub end: Option<u64>,
    /// What names the version the bytes must come from.
    pub validator: String,
}

/// The status line and headers of one response (one hop of a redirect chain), for `-D`.
#[derive(Clone, Debug)]
pub struct ResponseHead {
    /// The redacted URL that answered.
    pub url: String,
    /// HTTP version as written on the status line, e.g. `HTTP/1.1`.
    pub version: String,
    /// The status code.
    pub status: u16,
    /// Response headers in the order received; non-UTF-8 values are shown lossily.
    pub headers: Vec<(String, String)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_name_and_value() {
        let h = Header::parse("X-Api-Key:  abc ").unwrap();
        assert_eq!(h.name(), "x-api-key");
        assert_eq!(h.value.to_str().unwrap(), "abc");
    }

    #[test]
    fn refuses_crlf_and_garbage() {
        for bad in [
            "X-A: a\r\nInjected: 1",
            "X-A: a\nb",
            "no colon",
            "Bad Name: x",
            ": x",
        ] {
            let err = Header::parse(bad).unwrap_err().to_string();
            assert!(err.contains("invalid header"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn errors_do_not_show_the_value() {
        let err = Header::parse("Authorization: Bearer s3cret\r\n").unwrap_err();
        assert!(!err.to_string().contains("s3cret"), "{err}");
        let err = Header::parse("ghp_s3cretToken").unwrap_err();
        assert!(!err.to_string().contains("s3cret"), "{err}");
    }
}
