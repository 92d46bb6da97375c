//! A source URL, parsed once into the closed set of schemes ptex speaks.

use std::fmt;

use ptex_config::normalize_url;
use url::Url;

use crate::{FetchError, Scheme, redact_url};

impl Scheme {
    /// The error for a scheme this build lacks: it names the scheme and the missing feature.
    pub(crate) fn not_built(self) -> FetchError {
        FetchError::SchemeNotBuilt {
            scheme: self.name(),
            feature: self.missing_feature().unwrap_or("default"),
        }
    }
}

/// A URL ptex can fetch, with its scheme resolved.
#[derive(Clone, PartialEq, Eq)]
pub struct Source {
    url: Url,
    scheme: Scheme,
}

impl Source {
    /// Parses `text`, in the spelling rules judge ([`normalize_url`]), as a URL of a
    /// supported scheme.
    pub fn parse(text: &str) -> Result<Source, FetchError> {
        let url = Url::parse(&normalize_url(text)).map_err(|e| FetchError::InvalidUrl {
            url: redact_url(text),
            reason: e.to_string(),
        })?;
        let scheme =
            Scheme::from_name(url.scheme()).ok_or_else(|| FetchError::UnsupportedScheme {
                scheme: url.scheme().to_string(),
            })?;
        if scheme.missing_feature().is_some() {
            return Err(scheme.not_built());
        }
        let invalid = |reason: &str| FetchError::InvalidUrl {
            url: redact_url(text),
            reason: reason.to_string(),
        };
        let host = url.host_str().unwrap_or("").to_string();
        let source = Source { url, scheme };
        match scheme {
            Scheme::File => {
                if !host.is_empty() && host != "localhost" {
                    return Err(invalid("a file URL names no host: file:///absolute/path"));
                }
                if source.url.to_file_path().is_err() || source.url.path().ends_with('/') {
                    return Err(invalid("expected file:///absolute/path/to/file"));
                }
            }
            Scheme::S3 | Scheme::Gs => {
                if host.is_empty() {
                    return Err(invalid("the URL names no bucket"));
                }
                let valid_chars = host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
                if !(3..=222).contains(&host.len()) || !valid_chars {
                    return Err(invalid(
                        "a bucket name has 3 to 63 letters, digits, dots, hyphens or underscores",
                    ));
                }
                if source.object_key().is_empty() || source.object_key().ends_with('/') {
                    return Err(invalid("the URL names no object in the bucket"));
                }
            }
            Scheme::Http | Scheme::Https | Scheme::Ftp => {
                if host.is_empty() {
                    return Err(invalid("the URL has no host"));
                }
            }
        }
        Ok(source)
    }

    /// The host, which is the bucket for `s3://` and `gs://`.
    pub fn host(&self) -> &str {
        self.url.host_str().unwrap_or("")
    }

    /// The path without its leading `/`, percent-decoded: the object key of `s3://` and
    /// `gs://`, the file path of `ftp://`.
    pub fn object_key(&self) -> String {
        percent_decode(self.url.path().trim_start_matches('/'))
    }

    /// The scheme of this source.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The full URL, secrets included: for making requests, never for messages.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The last segment of the URL path, percent-decoded; empty when the path ends in `/`.
    pub fn file_name(&self) -> String {
        let last = self
            .url
            .path_segments()
            .and_then(|mut segments| segments.next_back())
            .unwrap_or("");
        percent_decode(last)
    }
}

/// Shows the URL with its secrets redacted.
impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_url(self.url.as_str()))
    }
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Source({self})")
    }
}

/// `text` with `%XX` escapes decoded (a `%` not followed by two hex digits stays as it is);
/// invalid UTF-8 is replaced.
pub(crate) fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_http_and_https() {
        assert_eq!(
            Source::parse("https://h/x").unwrap().scheme(),
            Scheme::Https
        );
        assert_eq!(Source::parse("http://h/x").unwrap().scheme(), Scheme::Http);
    }

    #[test]
    fn unsupported_scheme_lists_the_supported_ones() {
        let err = Source::parse("gopher://h/x").unwrap_err().to_string();
        assert!(err.contains("gopher"), "{err}");
        let all = cfg!(all(feature = "s3", feature = "gcs", feature = "ftp"));
        let listed = if all {
            "http, https, s3, gs, file, ftp"
        } else {
            "http, https"
        };
        assert!(err.contains(listed), "{err}");
    }

    #[test]
    fn schemes_left_out_of_the_build_say_so() {
        for (url, name, built) in [
            ("s3://bkt/k", "s3", cfg!(feature = "s3")),
            ("gs://bkt/o", "gs", cfg!(feature = "gcs")),
            ("ftp://h/f", "ftp", cfg!(feature = "ftp")),
        ] {
            match Source::parse(url) {
                Ok(_) => assert!(built, "{url}"),
                Err(e @ FetchError::SchemeNotBuilt { .. }) => {
                    let message = e.to_string();
                    assert!(!built, "{url}");
                    assert!(message.contains(&format!("`{name}://`")), "{message}");
                    assert!(message.contains("built without"), "{message}");
                }
                Err(e) => panic!("{url}: {e}"),
            }
        }
    }

    #[test]
    fn garbage_and_hostless_urls_are_invalid() {
        assert!(matches!(
            Source::parse("not a url"),
            Err(FetchError::InvalidUrl { .. })
        ));
        assert!(matches!(
            Source::parse("http://"),
            Err(FetchError::InvalidUrl { .. })
        ));
    }

    #[test]
    #[cfg(all(feature = "s3", feature = "gcs"))]
    fn object_stores_need_a_bucket_and_a_key() {
        let s = Source::parse("s3://corp-artifacts/pbs/a%2Bb.tar.gz").unwrap();
        assert_eq!((s.scheme(), s.host()), (Scheme::S3, "corp-artifacts"));
        assert_eq!(s.object_key(), "pbs/a+b.tar.gz");
        assert_eq!(Source::parse("gs://bkt/o").unwrap().scheme(), Scheme::Gs);
        for bad in [
            "s3://bucket",
            "s3://bucket/",
            "gs://bkt/dir/",
            "s3:///key",
            "s3://b/key",
        ] {
            assert!(Source::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn file_urls_are_absolute_local_paths() {
        let s = Source::parse("file:///tmp/a%20b.bin").unwrap();
        assert_eq!(s.scheme(), Scheme::File);
        assert_eq!(
            s.url().to_file_path().unwrap(),
            std::path::Path::new("/tmp/a b.bin")
        );
        assert!(Source::parse("file://localhost/tmp/x").is_ok());
        for bad in ["file://server/share/x", "file:///tmp/dir/"] {
            assert!(Source::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn file_name_is_the_decoded_last_segment() {
        let name = |u: &str| Source::parse(u).unwrap().file_name();
        assert_eq!(name("https://h/a/b.tar.gz?x=1"), "b.tar.gz");
        assert_eq!(name("https://h/a/"), "");
        assert_eq!(name("https://h/"), "");
        assert_eq!(name("https://h/a%2Fb"), "a/b");
        assert_eq!(name("https://h/%2e%2e%2f"), "../");
        assert_eq!(name("https://h/x/.."), "");
    }

    #[test]
    fn display_redacts() {
        let s = Source::parse("https://u:pw@h/x?X-Amz-Signature=abc").unwrap();
        let shown = s.to_string();
        assert!(!shown.contains("pw") && !shown.contains("abc"), "{shown}");
    }
}
