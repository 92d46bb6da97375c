//! https against a self-signed server: refused unless trusted via SSL_CERT_FILE, and an
//! https -> http redirect is never followed (RELIABILITY cases 16 and 20).

use serde_json::json;

use crate::support::scie::{Sandbox, payload, sha256_hex};
use crate::support::server::{Reply, TestServer};
use crate::support::tls::self_signed;

#[test]
fn self_signed_server_is_trusted_through_ssl_cert_file() {
    let identity = self_signed();
    let body = payload(50_000);
    let served = body.clone();
    let server = TestServer::start_tls(&identity, move |_| Reply::ok(served.clone()));
    let mut sandbox = Sandbox::new();
    let cert = identity.write_cert(&sandbox.home());
    sandbox.env("SSL_CERT_FILE", &cert);
    let url = server.url("/f.tar.gz");
    assert!(url.starts_with("https://"));
    let lift = sandbox.manifest(
        "f.tar.gz",
        json!(url),
        Some(body.len() as u64),
        Some(&sha256_hex(&body)),
    );
    sandbox.bind(&lift, "f.tar.gz").assert_delivered(&body);
    // By name too, not only by IP address.
    let by_name = url.replace("127.0.0.1", "localhost");
    sandbox.run(&[&by_name]).assert_delivered(&body);
}

#[test]
fn untrusted_certificate_fails_once_without_a_request() {
    let identity = self_signed();
    let server = TestServer::start_tls(&identity, |_| Reply::ok("x"));
    let sandbox = Sandbox::new();
    let url = server.url("/f.tar.gz");
    let lift = sandbox.manifest("f.tar.gz", json!(url), Some(1), Some(&sha256_hex(b"x")));
    let out = sandbox.bind(&lift, "f.tar.gz");
    out.assert_failed(&["f.tar.gz", &url, "TLS", "SSL_CERT_FILE"]);
    assert_eq!(server.request_count(), 0);
}

#[test]
fn https_to_http_redirect_is_refused() {
    let plain = TestServer::start(|_| Reply::ok("x"));
    let target = plain.url("/f");
    let identity = self_signed();
    let secure = TestServer::start_tls(&identity, move |_| Reply::redirect(302, &target));
    let mut sandbox = Sandbox::new();
    let cert = identity.write_cert(&sandbox.home());
    sandbox.env("SSL_CERT_FILE", &cert);
    let out = sandbox.run(&[&secure.url("/f")]);
    out.assert_failed(&["refused redirect", "https to plain http"]);
    assert_eq!(plain.request_count(), 0);
}
