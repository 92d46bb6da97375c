//! In-process HTTP/1.1 fault-injection server on `127.0.0.1:0`, plain or TLS (std threads
//! only). Every request is recorded before the handler picks its [`Reply`]; `Full` replies
//! keep the connection alive, every other kind closes it after writing. Connection IO errors
//! (including failed TLS handshakes) are swallowed silently.

#![allow(dead_code)]

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rustls::{ServerConfig, ServerConnection, StreamOwned};

use crate::support::tls::TlsIdentity;

/// Read/write timeout on accepted sockets, so idle connection threads end on their own.
const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// Upper bound on a request head (request line + headers).
const MAX_HEAD_BYTES: u64 = 64 * 1024;
/// Upper bound on a request body kept in memory; a longer one is read and dropped.
pub const MAX_BODY_BYTES: u64 = 64 << 20;
/// How long a closing connection keeps draining client bytes so that the close is a FIN, not
/// a RST that could discard data the client has not read yet.
const LINGER: Duration = Duration::from_secs(1);
/// Poll interval of [`SilentServer`] connections checking whether the server was dropped.
const SILENT_POLL: Duration = Duration::from_millis(200);

type Handler = dyn Fn(&Request) -> Reply + Send + Sync + 'static;
type RequestLog = Arc<Mutex<Vec<Request>>>;

/// One request as received by a [`TestServer`].
#[derive(Clone, Debug)]
pub struct Request {
    /// The request method, e.g. `GET`.
    pub method: String,
    /// The raw request target, e.g. `/a/b?x=1`.
    pub path: String,
    /// Header fields in arrival order; names are lowercased, values trimmed.
    pub headers: Vec<(String, String)>,
    /// The body a `Content-Length` announced (a PUT's), up to [`MAX_BODY_BYTES`].
    pub body: Vec<u8>,
}

impl Request {
    /// The value of the first header called `name` (case-insensitive), if any.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What a [`TestServer`] sends back for one request.
#[derive(Clone, Debug)]
pub enum Reply {
    /// Normal response; `Content-Length` is added from `body.len()` unless `headers` already
    /// has one. If a given `Content-Length` disagrees with the body, the connection is closed
    /// after writing (rather than left in an undefined keep-alive state).
    Full {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// `200` declaring `Content-Length: declared_len`, sends only `body`, then closes the
    /// connection.
    Truncated { declared_len: u64, body: Vec<u8> },
    /// `200` with `Transfer-Encoding: chunked`, repeating `chunk` until the client goes away,
    /// the server is dropped, or `max_bytes` payload bytes were sent (safety stop), then
    /// closes WITHOUT the terminating 0-chunk. An empty `chunk` sends no chunks at all.
    EndlessChunked { chunk: Vec<u8>, max_bytes: u64 },
    /// Writes these bytes verbatim, then closes.
    Raw(Vec<u8>),
    /// `200` declaring `Content-Length: declared_len`, sends `body`, then aborts the
    /// connection with a TCP reset (plain HTTP only).
    Reset { declared_len: u64, body: Vec<u8> },
    /// `200` declaring `Content-Length: declared_len` (and `headers`); sends `body` at once,
    /// then `drip`
    /// one byte every `every` (until the client goes away or the server is dropped), then
    /// closes. With an empty `drip` it just holds the connection open: a stall.
    Drip {
        declared_len: u64,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
        drip: Vec<u8>,
        every: Duration,
    },
}

impl Reply {
    /// `200 OK` with `body`.
    pub fn ok(body: impl Into<Vec<u8>>) -> Reply {
        Reply::Full {
            status: 200,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// A response with status `code` and an empty body.
    pub fn status(code: u16) -> Reply {
        Reply::Full {
            status: code,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A redirect with status `code` (301/302/307/308...) to `location`, empty body.
    pub fn redirect(code: u16, location: &str) -> Reply {
        Reply::status(code).with_header("Location", location)
    }

    /// Adds a header to a `Full` reply; other reply kinds are returned unchanged.
    pub fn with_header(mut self, name: &str, value: &str) -> Reply {
        if let Reply::Full { headers, .. } = &mut self {
            headers.push((name.to_string(), value.to_string()));
        }
        self
    }
}

/// An HTTP/1.1 server on `127.0.0.1:<free port>` answering every request via a handler.
///
/// Dropping it stops accepting connections; threads of already-open connections are
/// detached and end on their own (client hang-up, IO timeout, or noticing the drop).
pub struct TestServer {
    acceptor: Acceptor,
    scheme: &'static str,
    requests: RequestLog,
}

impl TestServer {
    /// Starts a plain-HTTP server.
    pub fn start(handler: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> TestServer {
        TestServer::spawn(None, Arc::new(handler))
    }

    /// Starts an HTTPS server presenting `identity`.
    pub fn start_tls(
        identity: &TlsIdentity,
        handler: impl Fn(&Request) -> Reply + Send + Sync + 'static,
    ) -> TestServer {
        TestServer::spawn(Some(identity.server_config()), Arc::new(handler))
    }

    /// Starts an HTTPS server with a TLS configuration of the test's own (for example one
    /// that requires a client certificate).
    pub fn start_tls_config(
        config: Arc<ServerConfig>,
        handler: impl Fn(&Request) -> Reply + Send + Sync + 'static,
    ) -> TestServer {
        TestServer::spawn(Some(config), Arc::new(handler))
    }

    fn spawn(tls: Option<Arc<ServerConfig>>, handler: Arc<Handler>) -> TestServer {
        let requests = RequestLog::default();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let log = requests.clone();
        let acceptor = Acceptor::spawn("test-server", move |stream, stop| {
            let conn = Connection {
                handler: handler.clone(),
                log: log.clone(),
                stop: stop.clone(),
                reset: AtomicBool::new(false),
            };
            let tls = tls.clone();
            // If the thread cannot be spawned the connection is simply dropped.
            let _ = thread::Builder::new()
                .name("test-server-conn".to_string())
                .spawn(move || match tls {
                    None => conn.serve_plain(stream),
                    Some(config) => conn.serve_tls(stream, config),
                });
        });
        TestServer {
            acceptor,
            scheme,
            requests,
        }
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.acceptor.port
    }

    /// `http://127.0.0.1:PORT` (or `https://...` for TLS) followed by `path` (`/...`).
    pub fn url(&self, path: &str) -> String {
        format!("{}://127.0.0.1:{}{}", self.scheme, self.port(), path)
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        lock(&self.requests).clone()
    }

    /// How many requests were received so far.
    pub fn request_count(&self) -> usize {
        lock(&self.requests).len()
    }
}

/// A TCP listener on `127.0.0.1:<free port>` that accepts connections and never answers
/// (it reads and discards whatever arrives), e.g. for "TLS handshake never completes" tests.
///
/// Accepted connections stay open until the client closes them or the server is dropped.
pub struct SilentServer {
    acceptor: Acceptor,
    connections: Arc<AtomicUsize>,
}

impl SilentServer {
    /// Starts the listener.
    pub fn start() -> SilentServer {
        let connections = Arc::new(AtomicUsize::new(0));
        let count = connections.clone();
        let acceptor = Acceptor::spawn("silent-server", move |stream, stop| {
            count.fetch_add(1, Ordering::SeqCst);
            let stop = stop.clone();
            let _ = thread::Builder::new()
                .name("silent-server-conn".to_string())
                .spawn(move || swallow(stream, &stop));
        });
        SilentServer {
            acceptor,
            connections,
        }
    }

    /// The port the listener is bound to.
    pub fn port(&self) -> u16 {
        self.acceptor.port
    }

    /// `{scheme}://127.0.0.1:PORT{path}`, e.g. `url("https", "/file")`.
    pub fn url(&self, scheme: &str, path: &str) -> String {
        format!("{scheme}://127.0.0.1:{}{path}", self.port())
    }

    /// How many connections were accepted so far.
    pub fn connection_count(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// Reads and discards until EOF, an error, or the owning server is dropped.
fn swallow(mut stream: TcpStream, stop: &AtomicBool) {
    let _ = stream.set_read_timeout(Some(SILENT_POLL));
    let mut buf = [0u8; 4096];
    while !stop.load(Ordering::SeqCst) {
        match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
    }
}

/// The listening socket plus its accept thread; dropping it stops accepting and joins the
/// thread (woken up by a connection to itself).
struct Acceptor {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Acceptor {
    fn spawn(
        name: &str,
        on_conn: impl Fn(TcpStream, &Arc<AtomicBool>) + Send + 'static,
    ) -> Acceptor {
        let listener = TcpListener::bind(("127.0.0.1", 0)).expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("listener address").port();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = thread::Builder::new()
            .name(format!("{name}-accept"))
            .spawn(move || {
                for conn in listener.incoming() {
                    if flag.load(Ordering::SeqCst) {
                        break;
                    }
                    match conn {
                        Ok(stream) => on_conn(stream, &flag),
                        // E.g. out of file descriptors: back off instead of spinning.
                        Err(_) => thread::sleep(Duration::from_millis(10)),
                    }
                }
            })
            .expect("spawn accept thread");
        Acceptor {
            port,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Acceptor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        // Wake the blocking accept(); if that fails there is nothing to join safely.
        if TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok()
            && let Some(thread) = self.thread.take()
        {
            let _ = thread.join();
        }
    }
}

/// Per-connection state of a [`TestServer`].
struct Connection {
    handler: Arc<Handler>,
    log: RequestLog,
    stop: Arc<AtomicBool>,
    /// Set by a [`Reply::Reset`]: close with a RST instead of gracefully.
    reset: AtomicBool,
}

impl Connection {
    fn serve_plain(&self, stream: TcpStream) {
        set_timeouts(&stream);
        let mut reader = BufReader::new(stream);
        self.serve(&mut reader);
        let stream = reader.into_inner();
        if self.reset.load(Ordering::SeqCst) {
            // SO_LINGER 0: the close sends a RST, discarding anything unsent.
            let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
            drop(stream);
        } else {
            close_gracefully(stream);
        }
    }

    fn serve_tls(&self, stream: TcpStream, config: Arc<ServerConfig>) {
        set_timeouts(&stream);
        let Ok(session) = ServerConnection::new(config) else {
            return;
        };
        // The handshake runs on the first read; if it fails (e.g. the client rejects our
        // certificate) that read errors and `serve` returns before recording anything.
        let mut reader = BufReader::new(StreamOwned::new(session, stream));
        self.serve(&mut reader);
        let mut tls = reader.into_inner();
        if !tls.conn.is_handshaking() {
            tls.conn.send_close_notify();
            let _ = tls.flush();
        }
        close_gracefully(tls.sock);
    }

    /// Request/response loop; returns when the connection should be closed.
    fn serve<S: Read + Write>(&self, reader: &mut BufReader<S>) {
        loop {
            let Some((request, client_close)) = read_request(reader) else {
                return;
            };
            if self.stop.load(Ordering::SeqCst) {
                return;
            }
            lock(&self.log).push(request.clone());
            let reply = (self.handler)(&request);
            let keep_alive = match self.write_reply(reader.get_mut(), &request, reply, client_close)
            {
                Ok(keep_alive) => keep_alive,
                Err(_) => return,
            };
            if !keep_alive {
                return;
            }
        }
    }

    /// Writes `reply`; `Ok(true)` if the connection may carry another request.
    fn write_reply(
        &self,
        out: &mut impl Write,
        request: &Request,
        reply: Reply,
        client_close: bool,
    ) -> io::Result<bool> {
        match reply {
            Reply::Full {
                status,
                headers,
                body,
            } => {
                let head_only = request.method.eq_ignore_ascii_case("HEAD");
                let find = |name: &str| {
                    headers
                        .iter()
                        .find(|(n, _)| n.eq_ignore_ascii_case(name))
                        .map(|(_, v)| v.trim())
                };
                let declared = find("content-length");
                let consistent = declared.is_none_or(|v| v.parse::<usize>() == Ok(body.len()));
                let server_close =
                    find("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));
                let mut head = status_line(status);
                for (name, value) in &headers {
                    head.push_str(&format!("{name}: {value}\r\n"));
                }
                if declared.is_none() {
                    head.push_str(&format!("Content-Length: {}\r\n", body.len()));
                }
                if client_close && find("connection").is_none() {
                    head.push_str("Connection: close\r\n");
                }
                head.push_str("\r\n");
                let mut bytes = head.into_bytes();
                if !head_only {
                    bytes.extend_from_slice(&body);
                }
                out.write_all(&bytes)?;
                out.flush()?;
                Ok(!client_close && !server_close && (consistent || head_only))
            }
            Reply::Truncated { declared_len, body } => {
                write_short(out, declared_len, &[], &body)?;
                Ok(false)
            }
            Reply::EndlessChunked { chunk, max_bytes } => {
                let head = format!("{}Transfer-Encoding: chunked\r\n\r\n", status_line(200));
                out.write_all(head.as_bytes())?;
                let framed = frame_chunk(&chunk);
                let mut sent = 0u64;
                while !chunk.is_empty() && sent < max_bytes && !self.stop.load(Ordering::SeqCst) {
                    let remaining = max_bytes - sent;
                    if remaining < chunk.len() as u64 {
                        out.write_all(&frame_chunk(&chunk[..remaining as usize]))?;
                        sent = max_bytes;
                    } else {
                        out.write_all(&framed)?;
                        sent += chunk.len() as u64;
                    }
                }
                out.flush()?;
                Ok(false)
            }
            Reply::Raw(bytes) => {
                out.write_all(&bytes)?;
                out.flush()?;
                Ok(false)
            }
            Reply::Reset { declared_len, body } => {
                write_short(out, declared_len, &[], &body)?;
                // Give the client a moment to read the bytes before the reset discards them.
                thread::sleep(Duration::from_millis(100));
                self.reset.store(true, Ordering::SeqCst);
                Ok(false)
            }
            Reply::Drip {
                declared_len,
                headers,
                body,
                drip,
                every,
            } => {
                write_short(out, declared_len, &headers, &body)?;
                let mut pending = drip.iter();
                while !self.stop.load(Ordering::SeqCst) {
                    thread::sleep(every);
                    if let Some(byte) = pending.next() {
                        out.write_all(&[*byte])?;
                        out.flush()?;
                    }
                }
                Ok(false)
            }
        }
    }
}

/// A `200` declaring `Content-Length: declared_len` (plus `headers`) followed by `body`,
/// which may be shorter: the start of every truncating reply.
fn write_short(
    out: &mut impl Write,
    declared_len: u64,
    headers: &[(String, String)],
    body: &[u8],
) -> io::Result<()> {
    let mut head = format!("{}Content-Length: {declared_len}\r\n", status_line(200));
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    out.write_all(&bytes)?;
    out.flush()
}

/// Reads one request head (and its `Content-Length` body). Returns the request and
/// whether the client asked for the connection to be closed afterwards; `None` on EOF, IO
/// error, or a malformed/oversized head.
fn read_request(reader: &mut impl BufRead) -> Option<(Request, bool)> {
    let mut budget = MAX_HEAD_BYTES;
    let mut read_line = |reader: &mut dyn BufRead| -> Option<String> {
        let mut line = Vec::new();
        let n = reader.take(budget).read_until(b'\n', &mut line).ok()?;
        if n == 0 || !line.ends_with(b"\n") {
            return None; // EOF, or the head is too large
        }
        budget -= n as u64;
        Some(
            String::from_utf8_lossy(&line)
                .trim_end_matches(['\r', '\n'])
                .to_string(),
        )
    };
    // RFC 9112 2.2: ignore empty lines before the request line.
    let request_line = loop {
        let line = read_line(reader)?;
        if !line.is_empty() {
            break line;
        }
    };
    let mut parts = request_line.split_whitespace();
    let (method, path, version) = (parts.next()?, parts.next()?, parts.next()?);
    let mut headers = Vec::new();
    loop {
        let line = read_line(reader)?;
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':')?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    let mut request = Request {
        method: method.to_string(),
        path: path.to_string(),
        headers,
        body: Vec::new(),
    };
    let connection = request
        .header("connection")
        .unwrap_or("")
        .to_ascii_lowercase();
    let has_token = |token: &str| connection.split(',').any(|t| t.trim() == token);
    let mut close = if version.eq_ignore_ascii_case("HTTP/1.0") {
        !has_token("keep-alive")
    } else {
        has_token("close")
    };
    if request.header("transfer-encoding").is_some() {
        close = true; // a chunked request body cannot be skipped reliably; just hang up after
    } else if let Some(len) = request.header("content-length") {
        let len = len.parse::<u64>().ok()?;
        let read = match len <= MAX_BODY_BYTES {
            true => reader.take(len).read_to_end(&mut request.body).ok()? as u64,
            false => io::copy(&mut reader.take(len), &mut io::sink()).ok()?,
        };
        if read != len {
            return None;
        }
    }
    Some((request, close))
}

fn status_line(status: u16) -> String {
    let reason = match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        412 => "Precondition Failed",
        408 => "Request Timeout",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    };
    format!("HTTP/1.1 {status} {reason}\r\n")
}

fn frame_chunk(chunk: &[u8]) -> Vec<u8> {
    let mut framed = format!("{:x}\r\n", chunk.len()).into_bytes();
    framed.extend_from_slice(chunk);
    framed.extend_from_slice(b"\r\n");
    framed
}

fn set_timeouts(stream: &TcpStream) {
    let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
    let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
    let _ = stream.set_nodelay(true);
}

/// Sends FIN, then drains briefly so unread client bytes do not turn the close into a RST.
fn close_gracefully(mut stream: TcpStream) {
    let _ = stream.shutdown(Shutdown::Write);
    let deadline = Instant::now() + LINGER;
    let _ = stream.set_read_timeout(Some(LINGER));
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        match stream.read(&mut buf) {
            Ok(n) if n > 0 => {}
            _ => return,
        }
    }
}

fn lock(log: &Mutex<Vec<Request>>) -> MutexGuard<'_, Vec<Request>> {
    log.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
