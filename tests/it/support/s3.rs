//! A real S3-compatible server for the integration tests: `s3s-fs` (installed by
//! `scripts/test`) on `127.0.0.1:<free port>`, serving a fresh temp dir and checking SigV4
//! signatures against [`ACCESS_KEY`]/[`SECRET_KEY`].
//!
//! Observed behaviour of s3s-fs 0.14.1: every request must be signed (an anonymous GET is
//! `403 AccessDenied`) and must carry `x-amz-content-sha256`; any region is accepted in the
//! credential scope; path-style URLs (`{endpoint}/{bucket}/{key}`) work (virtual-hosted style
//! would need `--domain`); a wrong secret is `403 SignatureDoesNotMatch`, an unknown access
//! key `403 NotSignedUp`; a missing key (or bucket) is `404 NoSuchKey`; `HEAD` and `Range`
//! (`a-b`, `a-`, `-n`; unsatisfiable is `416 InvalidRange`) work.

#![allow(dead_code)]

use std::path::{Component, Path};
use std::process::Command;

use crate::support::daemon::{self, Daemon};

/// The access key id the server accepts.
pub const ACCESS_KEY: &str = "ptex-test-access-key";
/// The secret access key the server accepts.
pub const SECRET_KEY: &str = "ptex-test-secret-key";
/// A region for signing requests (the server accepts any).
pub const REGION: &str = "us-east-1";

/// A running `s3s-fs`, killed on drop.
pub struct S3Server {
    port: u16,
    root: tempfile::TempDir,
    _daemon: Daemon,
}

impl S3Server {
    /// Starts `s3s-fs` on a free loopback port with an empty root; panics (naming the install
    /// step) if `s3s-fs` is not on PATH, or with its output if it does not come up.
    pub fn start() -> S3Server {
        S3Server::start_with(ACCESS_KEY, SECRET_KEY)
    }

    /// [`S3Server::start`], accepting only `access_key`/`secret_key`: a test of a credential
    /// source whose key must look like AWS's (STS checks its answer's key) proves with it
    /// which credentials signed.
    pub fn start_with(access_key: &str, secret_key: &str) -> S3Server {
        let root = tempfile::tempdir().expect("s3 root dir");
        let port = daemon::free_port();
        let mut command = Command::new("s3s-fs");
        command
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", access_key, "--secret-key", secret_key])
            .arg(root.path());
        let daemon = Daemon::spawn(
            "s3s-fs",
            "run scripts/test, which runs `cargo install s3s-fs@0.14.1 --features binary`",
            command,
            || daemon::accepts_connections(port),
        );
        S3Server {
            port,
            root,
            _daemon: daemon,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stores `bytes` as object `key` (`/`-separated, e.g. `dir/file.bin`) in `bucket`,
    /// creating the bucket if needed. s3s-fs maps `<root>/<bucket>/<key>` to objects, so
    /// this writes the file directly.
    pub fn put_object(&self, bucket: &str, key: &str, bytes: &[u8]) {
        assert!(
            !bucket.is_empty() && !bucket.contains('/') && !bucket.starts_with('.'),
            "bad bucket name {bucket:?}"
        );
        let key_path = Path::new(key);
        assert!(
            !key.ends_with('/')
                && key_path.components().next().is_some()
                && key_path
                    .components()
                    .all(|c| matches!(c, Component::Normal(_))),
            "bad object key {key:?}"
        );
        let path = self.root.path().join(bucket).join(key_path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create object dir");
        }
        std::fs::write(&path, bytes).expect("write object");
    }

    /// Creates an empty bucket (s3s-fs: a directory in its root).
    pub fn create_bucket(&self, bucket: &str) {
        std::fs::create_dir_all(self.root.path().join(bucket)).expect("create bucket dir");
    }

    /// The file that holds object `key` of `bucket`, as s3s-fs stores it.
    pub fn object_path(&self, bucket: &str, key: &str) -> std::path::PathBuf {
        self.root.path().join(bucket).join(key)
    }
}
