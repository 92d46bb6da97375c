//! The URL scheme dispatcher and storage backends of ptex. A [`Source`] is parsed once from
//! a URL; the [`Dispatcher`] opens it with the backend of its scheme and hands back a
//! [`Download`] that streams the body. Hashing, size caps, retries and fallback live in the
//! binary and are written once for every scheme. The dispatcher can also tell a source's
//! length without reading it ([`Dispatcher::stat`]) and write a file to a store
//! ([`Dispatcher::put`]), for the publisher's tools, or only where none is yet
//! ([`Dispatcher::put_new`], also by HTTP PUT, for filling caches and taking leases). This
//! crate never prints and never reads the command line. `http(s)://` and `file://` are always built in; `s3://`, `gs://` and
//! `ftp://` each come with the cargo feature `s3`, `gcs` or `ftp` (all on by default).

#[cfg(feature = "s3")]
mod aws;
mod checksum;
mod client;
mod dispatch;
mod download;
mod error;
mod file;
#[cfg(feature = "ftp")]
mod ftp;
#[cfg(feature = "gcs")]
mod gcs;
#[cfg(feature = "gcs")]
mod google;
mod helper;
mod http;
mod platform;
mod put;
mod redact;
#[cfg(any(feature = "s3", feature = "gcs"))]
mod reqsign_env;
#[cfg(any(feature = "s3", feature = "gcs"))]
mod reqsign_errors;
mod request;
#[cfg(feature = "s3")]
mod s3;
mod scheme;
mod source;
mod store;
mod trust;
mod upload;

pub use checksum::DeclaredSha256;
pub use dispatch::Dispatcher;
pub use download::Download;
pub use error::{Disposition, FetchError};
pub use redact::redact_url;
pub use request::{Header, Part, RequestOptions, ResponseHead};
pub use scheme::Scheme;
pub use source::Source;
pub use upload::{Upload, Written};
