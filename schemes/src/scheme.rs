//! The closed set of URL schemes ptex speaks, and which of them this build has.

/// The schemes ptex can fetch from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// `http://`
    Http,
    /// `https://`
    Https,
    /// `s3://bucket/key`
    S3,
    /// `gs://bucket/object`
    Gs,
    /// `file:///absolute/path`
    File,
    /// `ftp://[user[:password]@]host[:port]/path`
    Ftp,
}

impl Scheme {
    /// Every scheme ptex knows, as written in URLs.
    const NAMES: [(&'static str, Scheme); 6] = [
        ("http", Scheme::Http),
        ("https", Scheme::Https),
        ("s3", Scheme::S3),
        ("gs", Scheme::Gs),
        ("file", Scheme::File),
        ("ftp", Scheme::Ftp),
    ];

    /// The schemes this build of ptex can fetch from, as written in URLs.
    pub fn supported() -> impl Iterator<Item = &'static str> {
        Scheme::NAMES
            .into_iter()
            .filter(|(_, scheme)| scheme.missing_feature().is_none())
            .map(|(name, _)| name)
    }

    /// The cargo feature this scheme needs, when this build was made without it.
    pub fn missing_feature(self) -> Option<&'static str> {
        match self {
            Scheme::S3 if !cfg!(feature = "s3") => Some("s3"),
            Scheme::Gs if !cfg!(feature = "gcs") => Some("gcs"),
            Scheme::Ftp if !cfg!(feature = "ftp") => Some("ftp"),
            _ => None,
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<Scheme> {
        Scheme::NAMES
            .into_iter()
            .find_map(|(known, scheme)| (known == name).then_some(scheme))
    }

    pub(crate) fn name(self) -> &'static str {
        Scheme::NAMES
            .into_iter()
            .find_map(|(name, scheme)| (scheme == self).then_some(name))
            .unwrap_or_default()
    }
}
