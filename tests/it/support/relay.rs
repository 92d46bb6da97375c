//! A fault-injecting relay in front of a real server on loopback (s3s-fs, the GCS
//! emulator, ...): each request, in arrival order, meets the next [`Fault`] of a script,
//! and requests past the script are relayed unchanged. Relaying re-sends the request head
//! as received (method, target, every header in order with its value, `Host` included,
//! since S3 signatures cover it; only names are lowercased, which HTTP and SigV4 treat
//! alike, and `Connection` becomes `close`), then returns the upstream's response bytes
//! verbatim. Request bodies are not relayed: ptex only sends GET and HEAD.
//!
//! Every request is recorded (method, target, headers), so a test can check what a retry
//! carried, e.g. a `Range` header.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::support::server::{Reply, Request, TestServer};

const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// What the relay does with one request.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Relay the request and return the upstream's response unchanged.
    Pass,
    /// Answer `status` (with `Retry-After` when given) and an empty body, without relaying.
    Status {
        status: u16,
        retry_after: Option<String>,
    },
    /// Relay, but return only the response head and the first `after` bytes that follow
    /// it (the body as sent on the wire), then close the connection: a body cut short.
    /// A response whose body is not longer than `after` is returned whole and not counted
    /// by [`Relay::cuts`].
    CutBody { after: usize },
}

impl Fault {
    /// Answer `status` without relaying.
    pub fn status(status: u16) -> Fault {
        Fault::Status {
            status,
            retry_after: None,
        }
    }

    /// Adds `Retry-After: value` to a [`Fault::Status`]; other faults are unchanged.
    pub fn retry_after(mut self, value: &str) -> Fault {
        if let Fault::Status { retry_after, .. } = &mut self {
            *retry_after = Some(value.to_string());
        }
        self
    }
}

/// A relay on `127.0.0.1:<free port>` in front of `127.0.0.1:<upstream>`.
pub struct Relay {
    server: TestServer,
    cuts: Arc<AtomicUsize>,
}

impl Relay {
    /// Starts a relay whose `i`-th request (0-based, in arrival order) meets `script[i]`;
    /// later requests are relayed unchanged.
    pub fn start(upstream: u16, script: Vec<Fault>) -> Relay {
        let next = AtomicUsize::new(0);
        let cuts = Arc::new(AtomicUsize::new(0));
        let counted = cuts.clone();
        let server = TestServer::start(move |request| {
            let index = next.fetch_add(1, Ordering::SeqCst);
            match script.get(index).cloned().unwrap_or(Fault::Pass) {
                Fault::Pass => relay(upstream, request),
                Fault::Status {
                    status,
                    retry_after,
                } => match retry_after {
                    Some(value) => Reply::status(status).with_header("Retry-After", &value),
                    None => Reply::status(status),
                },
                Fault::CutBody { after } => match relay(upstream, request) {
                    Reply::Raw(response) => {
                        let (cut, was_cut) = cut_body(response, after);
                        if was_cut {
                            counted.fetch_add(1, Ordering::SeqCst);
                        }
                        Reply::Raw(cut)
                    }
                    failed => failed,
                },
            }
        });
        Relay { server, cuts }
    }

    /// `http://127.0.0.1:PORT`, to use as the endpoint in place of the upstream's.
    pub fn endpoint(&self) -> String {
        self.server.url("")
    }

    /// The port the relay listens on.
    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// Every request received so far, in arrival order, whatever its fault.
    pub fn requests(&self) -> Vec<Request> {
        self.server.requests()
    }

    /// How many responses were actually cut short by a [`Fault::CutBody`].
    pub fn cuts(&self) -> usize {
        self.cuts.load(Ordering::SeqCst)
    }
}

/// Sends `request`'s head to 127.0.0.1:`port` and returns the raw response, or a `502`
/// naming the problem if the upstream cannot be reached.
fn relay(port: u16, request: &Request) -> Reply {
    let mut head = format!("{} {} HTTP/1.1\r\n", request.method, request.path);
    for (name, value) in &request.headers {
        if name != "connection" {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    head.push_str("Connection: close\r\n\r\n");
    let exchange = || -> std::io::Result<Vec<u8>> {
        let upstream = SocketAddr::from(([127, 0, 0, 1], port));
        let mut stream = TcpStream::connect_timeout(&upstream, IO_TIMEOUT)?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        stream.write_all(head.as_bytes())?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response)?;
        Ok(response)
    };
    match exchange() {
        Ok(response) => Reply::Raw(response),
        Err(err) => Reply::Full {
            status: 502,
            headers: Vec::new(),
            body: format!("relay to 127.0.0.1:{port} failed: {err}").into_bytes(),
        },
    }
}

/// `response` with at most `after` bytes after its head, and whether that cut anything.
fn cut_body(mut response: Vec<u8>, after: usize) -> (Vec<u8>, bool) {
    let Some(head_end) = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|at| at + 4)
    else {
        return (response, false);
    };
    let keep = head_end.saturating_add(after);
    if response.len() <= keep {
        return (response, false);
    }
    response.truncate(keep);
    (response, true)
}
