//! External server processes for the integration tests. [`free_port`] picks a loopback port;
//! [`Daemon`] runs a server with stdin null and stdout/stderr in a temp log file, waits
//! (bounded) until it is ready, panics with that log if it dies or never gets ready, and
//! kills and reaps it when dropped, so no server outlives its test.

#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// How long [`Daemon::spawn`] waits for a server to become ready.
pub const READY_TIMEOUT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(20);

/// A port on 127.0.0.1 that was free a moment ago (bound to port 0, then released).
pub fn free_port() -> u16 {
    TcpListener::bind(("127.0.0.1", 0))
        .and_then(|listener| listener.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// The absolute path of `target/test-venv/bin/{name}`, the Python venv `scripts/test` sets
/// up (with `gcp-storage-emulator`, `pyftpdlib` and `moto`); panics naming that step if it is missing.
pub fn venv_bin(name: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target/test-venv/bin")
        .join(name);
    assert!(
        path.exists(),
        "{} is missing: run scripts/test, which creates the venv target/test-venv with \
         gcp-storage-emulator, pyftpdlib and moto",
        path.display()
    );
    path
}

/// Whether something accepts TCP connections on 127.0.0.1:`port`.
pub fn accepts_connections(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(250)).is_ok()
}

/// A running server process, killed and reaped on drop.
pub struct Daemon {
    name: String,
    child: Child,
    log: tempfile::NamedTempFile,
}

impl Daemon {
    /// Spawns `command` and polls `ready` until it returns true. Panics (after killing the
    /// process) if it cannot be spawned (`hint` says how to install it), exits early, or is
    /// not ready within [`READY_TIMEOUT`]; the panic message includes the server's output.
    pub fn spawn(name: &str, hint: &str, mut command: Command, ready: impl Fn() -> bool) -> Daemon {
        let log = tempfile::NamedTempFile::new().expect("server log file");
        let out = log.as_file().try_clone().expect("clone log file");
        let err = log.as_file().try_clone().expect("clone log file");
        let child = command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({e}); {hint}"));
        let mut daemon = Daemon {
            name: name.to_string(),
            child,
            log,
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(Some(status)) = daemon.child.try_wait() {
                panic!(
                    "{name} exited ({status}) before it was ready; output:\n{}",
                    daemon.log()
                );
            }
            if ready() {
                return daemon;
            }
            if Instant::now() >= deadline {
                panic!(
                    "{name} not ready after {READY_TIMEOUT:?}; output:\n{}",
                    daemon.log()
                );
            }
            thread::sleep(POLL);
        }
    }

    /// Everything the server wrote to stdout and stderr so far.
    pub fn log(&self) -> String {
        match std::fs::read(self.log.path()) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) => format!("(cannot read the log of {}: {e})", self.name),
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
