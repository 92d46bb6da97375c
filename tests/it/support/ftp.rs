//! A real FTP server for the integration tests: pyftpdlib (from the `target/test-venv` that
//! `scripts/test` sets up) on `127.0.0.1:<free port>`, serving a fresh temp dir read-only to
//! `anonymous` (any password) and to [`USER`]/[`PASSWORD`]. Passive data connections also
//! listen on 127.0.0.1 only.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::path::{Component, Path};
use std::process::Command;
use std::time::Duration;

use crate::support::daemon::{self, Daemon};

/// The named user with read access.
pub const USER: &str = "alice";
/// [`USER`]'s password.
pub const PASSWORD: &str = "ftp-secret";

/// argv: ROOT PORT RATE (bytes per second a download is sent at; 0: unlimited). Passive
/// ports default to ephemeral ones on the control socket's address.
const SERVER_SCRIPT: &str = r#"
import sys
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler, ThrottledDTPHandler
from pyftpdlib.servers import FTPServer

root, port, rate = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
authorizer = DummyAuthorizer()
authorizer.add_anonymous(root, perm="elr")
authorizer.add_user("alice", "ftp-secret", root, perm="elr")

class Handler(FTPHandler):
    auth_failed_timeout = 0  # answer a wrong password at once, not after 3 s

Handler.authorizer = authorizer
if rate:
    ThrottledDTPHandler.write_limit = rate
    Handler.dtp_handler = ThrottledDTPHandler
FTPServer(("127.0.0.1", port), Handler).serve_forever()
"#;

/// A running pyftpdlib server, killed on drop.
pub struct FtpServer {
    port: u16,
    root: tempfile::TempDir,
    _daemon: Daemon,
}

impl FtpServer {
    /// Starts the server on a free loopback port with an empty root and waits for its `220`
    /// greeting; panics (naming the install step) if the venv is missing, or with the
    /// server's output if it does not come up.
    pub fn start() -> FtpServer {
        FtpServer::start_sending_at(0)
    }

    /// As [`FtpServer::start`], sending every download at `rate` bytes per second (0:
    /// unlimited).
    pub fn start_sending_at(rate: u64) -> FtpServer {
        let root = tempfile::tempdir().expect("ftp root dir");
        let port = daemon::free_port();
        let mut command = Command::new(daemon::venv_bin("python"));
        command
            .args(["-c", SERVER_SCRIPT])
            .arg(root.path())
            .arg(port.to_string())
            .arg(rate.to_string());
        let daemon = Daemon::spawn(
            "pyftpdlib",
            "run scripts/test, which pip-installs it into target/test-venv",
            command,
            || greets(port),
        );
        FtpServer {
            port,
            root,
            _daemon: daemon,
        }
    }

    /// The port of the control connection.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `ftp://127.0.0.1:PORT/{path}` (anonymous); `path` is relative to the served root.
    pub fn url(&self, path: &str) -> String {
        format!(
            "ftp://127.0.0.1:{}/{}",
            self.port,
            path.trim_start_matches('/')
        )
    }

    /// `ftp://{user}:{password}@127.0.0.1:PORT/{path}`; `user` and `password` are used
    /// verbatim (no percent-encoding).
    pub fn url_with_login(&self, user: &str, password: &str, path: &str) -> String {
        format!(
            "ftp://{user}:{password}@127.0.0.1:{}/{}",
            self.port,
            path.trim_start_matches('/')
        )
    }

    /// Writes `bytes` to `path` (relative, `/`-separated) under the served root, creating
    /// parent directories.
    pub fn put_file(&self, path: &str, bytes: &[u8]) {
        let relative = Path::new(path.trim_start_matches('/'));
        assert!(
            relative.components().next().is_some()
                && relative
                    .components()
                    .all(|c| matches!(c, Component::Normal(_))),
            "bad file path {path:?}"
        );
        let full = self.root.path().join(relative);
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent).expect("create ftp dir");
        }
        std::fs::write(&full, bytes).expect("write ftp file");
    }
}

/// Whether an FTP server on 127.0.0.1:`port` sends its `220` greeting.
fn greets(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(250)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).is_ok() && line.starts_with("220")
}
