//! A Google Cloud Storage emulator for the integration tests: `gcp-storage-emulator` (from the
//! `target/test-venv` that `scripts/test` sets up) on `127.0.0.1:<free port>`, in memory.
//!
//! Observed behaviour of gcp-storage-emulator 2026.7.19: no authentication (an
//! `Authorization` header is ignored); objects are read with
//! `GET /storage/v1/b/{bucket}/o/{percent-encoded name}?alt=media` (also under `/download`,
//! and as `/{bucket}/{name}`); a missing object or bucket is `404` with an empty body; `Range:
//! bytes=a-b` and `a-` give `206` with `Content-Range`, but a suffix range (`-n`) is ignored
//! (`200`, whole object) and an unsatisfiable one is `206` with an empty body; `HEAD` is
//! `501`. It answers HTTP/1.0, closing every connection, one request at a time.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use crate::support::daemon::{self, Daemon};

const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// A running GCS emulator, killed on drop.
pub struct GcsServer {
    port: u16,
    _daemon: Daemon,
}

impl GcsServer {
    /// Starts the emulator on a free loopback port; panics (naming the install step) if the
    /// venv is missing, or with its output if it does not come up.
    pub fn start() -> GcsServer {
        let port = daemon::free_port();
        let mut command = Command::new(daemon::venv_bin("gcp-storage-emulator"));
        command
            .args(["start", "--host", "127.0.0.1", "--port", &port.to_string()])
            .arg("--in-memory");
        let daemon = Daemon::spawn(
            "gcp-storage-emulator",
            "run scripts/test, which pip-installs it into target/test-venv",
            command,
            || daemon::accepts_connections(port),
        );
        GcsServer {
            port,
            _daemon: daemon,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The port the emulator listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The JSON-API download URL of an object:
    /// `{endpoint}/storage/v1/b/{bucket}/o/{percent-encoded key}?alt=media`.
    pub fn media_url(&self, bucket: &str, key: &str) -> String {
        format!(
            "{}/storage/v1/b/{bucket}/o/{}?alt=media",
            self.endpoint(),
            percent_encode(key)
        )
    }

    /// Stores `bytes` as object `key` in `bucket`, creating the bucket if needed.
    pub fn put_object(&self, bucket: &str, key: &str, bytes: &[u8]) {
        assert!(
            !bucket.is_empty()
                && bucket
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b)),
            "bad bucket name {bucket:?}"
        );
        let body = format!(r#"{{"name":"{bucket}"}}"#);
        let (status, response) = self.send("/storage/v1/b", "application/json", body.as_bytes());
        assert!(
            status == 200 || status == 409, // 409: the bucket exists already
            "creating bucket {bucket}: {response}"
        );
        let target = format!(
            "/upload/storage/v1/b/{bucket}/o?uploadType=media&name={}",
            percent_encode(key)
        );
        let (status, response) = self.send(&target, "application/octet-stream", bytes);
        assert_eq!(status, 200, "uploading {bucket}/{key}: {response}");
    }

    /// One `POST` over a fresh connection; the status and the whole response as text.
    fn send(&self, target: &str, content_type: &str, body: &[u8]) -> (u16, String) {
        let mut stream =
            TcpStream::connect(("127.0.0.1", self.port)).expect("connect to the GCS emulator");
        let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
        let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
        let head = format!(
            "POST {target} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: {content_type}\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            self.port,
            body.len()
        );
        let mut response = Vec::new();
        stream
            .write_all(head.as_bytes())
            .and_then(|()| stream.write_all(body))
            .and_then(|()| stream.read_to_end(&mut response))
            .expect("talk to the GCS emulator");
        let text = String::from_utf8_lossy(&response).into_owned();
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("bad response from the GCS emulator: {text:?}"));
        (status, text)
    }
}

/// Percent-encodes every byte except RFC 3986 unreserved characters (so `/` too).
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
