//! moto's S3 server (from the test venv), the second S3 implementation: unlike s3s-fs it
//! serves unsigned requests, so it stands in for a public bucket.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use crate::support::daemon::{self, Daemon};

/// A running `moto_server`, killed on drop.
pub struct MotoServer {
    port: u16,
    _daemon: Daemon,
}

impl MotoServer {
    /// Starts moto on a free loopback port; panics naming the install step if it is missing.
    pub fn start() -> MotoServer {
        let port = daemon::free_port();
        let mut command = Command::new(daemon::venv_bin("moto_server"));
        command.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
        let daemon = Daemon::spawn(
            "moto_server",
            "run scripts/test, which pip-installs moto[server] into target/test-venv",
            command,
            || daemon::accepts_connections(port),
        );
        MotoServer {
            port,
            _daemon: daemon,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Creates `bucket` (if needed) and stores a public-read object `key` in it.
    pub fn put_public_object(&self, bucket: &str, key: &str, bytes: &[u8]) {
        let status = self.put(&format!("/{bucket}"), &[]);
        assert!(
            status == 200 || status == 409,
            "creating bucket {bucket}: HTTP {status}"
        );
        let status = self.put(&format!("/{bucket}/{key}"), bytes);
        assert_eq!(status, 200, "uploading {bucket}/{key}");
    }

    /// One unsigned `PUT` over a fresh connection; the status code.
    fn put(&self, target: &str, body: &[u8]) -> u16 {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connect to moto");
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
        let head = format!(
            "PUT {target} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nx-amz-acl: public-read\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            self.port,
            body.len()
        );
        let mut response = Vec::new();
        stream
            .write_all(head.as_bytes())
            .and_then(|()| stream.write_all(body))
            .and_then(|()| stream.read_to_end(&mut response))
            .expect("talk to moto");
        let text = String::from_utf8_lossy(&response);
        text.split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or(0)
    }
}
