//! Self-tests of the test server, using curl (and a rustls client for webpki trust).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::server::{Reply, SilentServer, TestServer};
use super::tls;

fn curl(args: &[&str]) -> Output {
    Command::new("/usr/bin/curl")
        .args(["-sS", "--noproxy", "*"])
        .args(args)
        .output()
        .expect("run curl")
}

fn code(output: &Output) -> i32 {
    output.status.code().expect("curl exit code")
}

#[test]
fn plain_get_returns_body_and_records_request() {
    let server = TestServer::start(|req| Reply::ok(format!("hello {}", req.path)));
    let out = curl(&["-H", "X-Custom: Yes", &server.url("/a/b?x=1")]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.stdout, b"hello /a/b?x=1");
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].method, "GET");
    assert_eq!(requests[0].path, "/a/b?x=1");
    assert_eq!(requests[0].header("x-custom"), Some("Yes"));
    assert_eq!(requests[0].header("X-CUSTOM"), Some("Yes"));
    assert!(requests[0].headers.iter().any(|(n, _)| n == "x-custom"));
}

#[test]
fn keep_alive_reuses_the_connection() {
    let server = TestServer::start(|req| Reply::ok(req.path.clone()));
    let out = curl(&["-v", &server.url("/one"), &server.url("/two")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(code(&out), 0, "{stderr}");
    assert_eq!(out.stdout, b"/one/two");
    assert!(stderr.contains("Re-using existing connection"), "{stderr}");
    assert_eq!(server.request_count(), 2);
}

#[test]
fn truncated_makes_curl_fail_with_partial_file() {
    let server = TestServer::start(|_| Reply::Truncated {
        declared_len: 100,
        body: b"only ten b".to_vec(),
    });
    let out = curl(&[&server.url("/t")]);
    assert_eq!(code(&out), 18, "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.stdout, b"only ten b");
}

#[test]
fn endless_chunked_stops_at_max_bytes_without_terminator() {
    let server = TestServer::start(|_| Reply::EndlessChunked {
        chunk: vec![b'z'; 1000],
        max_bytes: 250_500,
    });
    let out = curl(&[&server.url("/e")]);
    assert_eq!(code(&out), 18, "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.stdout.len(), 250_500);
}

#[test]
fn redirect_status_and_raw() {
    let server = TestServer::start(|req| match req.path.as_str() {
        "/old" => Reply::redirect(302, "/new"),
        "/new" => Reply::ok("moved here").with_header("X-Extra", "1"),
        "/raw" => Reply::Raw(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nraw".to_vec()),
        _ => Reply::status(404),
    });
    let out = curl(&["-L", "-i", &server.url("/old")]);
    assert_eq!(code(&out), 0);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("HTTP/1.1 302 Found\r\n"), "{text}");
    assert!(text.contains("\r\nLocation: /new\r\n"), "{text}");
    assert!(text.contains("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.contains("\r\nX-Extra: 1\r\n"), "{text}");
    assert!(text.ends_with("\r\n\r\nmoved here"), "{text}");

    assert_eq!(code(&curl(&["-f", &server.url("/missing")])), 22);
    assert_eq!(curl(&[&server.url("/raw")]).stdout, b"raw");
    let paths: Vec<_> = server.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/old", "/new", "/missing", "/raw"]);
}

#[test]
fn tls_works_only_with_the_written_cert() {
    let identity = tls::self_signed();
    let dir = tempfile::tempdir().unwrap();
    let cert = identity.write_cert(dir.path());
    assert_eq!(cert, dir.path().join("cert.pem"));
    let server = TestServer::start_tls(&identity, |_| Reply::ok("secret"));
    assert!(server.url("/").starts_with("https://127.0.0.1:"));

    let out = curl(&[&server.url("/")]);
    assert_eq!(code(&out), 60, "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(server.request_count(), 0);

    let cacert = cert.to_str().unwrap();
    let out = curl(&["--cacert", cacert, &server.url("/")]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.stdout, b"secret");

    let resolve = format!("localhost:{}:127.0.0.1", server.port());
    let url = format!("https://localhost:{}/dns", server.port());
    let out = curl(&["--cacert", cacert, "--resolve", &resolve, &url]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(server.request_count(), 2);
}

#[test]
fn tls_truncated_and_endless_fail_like_plain() {
    let identity = tls::self_signed();
    let dir = tempfile::tempdir().unwrap();
    let cert = identity.write_cert(dir.path());
    let server = TestServer::start_tls(&identity, |req| match req.path.as_str() {
        "/t" => Reply::Truncated {
            declared_len: 10,
            body: b"abc".to_vec(),
        },
        _ => Reply::EndlessChunked {
            chunk: b"0123456789".to_vec(),
            max_bytes: 25,
        },
    });
    let cacert = cert.to_str().unwrap();
    let out = curl(&["--cacert", cacert, &server.url("/t")]);
    assert_eq!(code(&out), 18, "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.stdout, b"abc");
    let out = curl(&["--cacert", cacert, &server.url("/e")]);
    assert_eq!(code(&out), 18, "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.stdout, b"0123456789012345678901234");
}

#[test]
fn tls_cert_is_a_valid_webpki_trust_anchor() {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};

    let identity = tls::self_signed();
    let server = TestServer::start_tls(&identity, |req| Reply::ok(req.path.clone()));
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(identity.cert_pem.as_bytes()).unwrap())
        .unwrap();
    let config = Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth(),
    );
    for name in ["127.0.0.1", "localhost"] {
        let server_name = ServerName::try_from(name.to_string()).unwrap();
        let session = rustls::ClientConnection::new(config.clone(), server_name).unwrap();
        let sock = TcpStream::connect(("127.0.0.1", server.port())).unwrap();
        let mut tls = rustls::StreamOwned::new(session, sock);
        write!(
            tls,
            "GET /{name} HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = Vec::new();
        // Ends cleanly only if the server sends close_notify.
        tls.read_to_end(&mut response).unwrap();
        let text = String::from_utf8(response).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(text.contains("\r\nConnection: close\r\n"), "{text}");
        assert!(text.ends_with(&format!("\r\n\r\n/{name}")), "{text}");
    }
}

#[test]
fn silent_server_never_answers() {
    let server = SilentServer::start();
    let out = curl(&["--max-time", "1", &server.url("https", "/")]);
    assert_eq!(code(&out), 28, "{}", String::from_utf8_lossy(&out.stderr));
    let out = curl(&["--max-time", "1", &server.url("http", "/")]);
    assert_eq!(code(&out), 28, "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(server.connection_count(), 2);
}

#[test]
fn drop_stops_streaming_and_listening() {
    let server = TestServer::start(|_| Reply::EndlessChunked {
        chunk: vec![b'x'; 16 * 1024],
        max_bytes: u64::MAX,
    });
    let url = server.url("/forever");
    let mut child = Command::new("/usr/bin/curl")
        .args(["-sS", "--noproxy", "*", "-o", "/dev/null", &url])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while server.request_count() == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "curl never connected"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    let dropping = Instant::now();
    drop(server);
    assert!(dropping.elapsed() < Duration::from_secs(2));

    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > Duration::from_secs(10) {
            child.kill().unwrap();
            panic!("streaming did not stop after drop");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(18));
    assert_eq!(code(&curl(&[&url])), 7, "still listening after drop");
}
