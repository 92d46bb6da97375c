//! What came back instead of the file, said in plain words (an HTML page, an empty body, a
//! JSON error), and mirrors' checksum headers judged before the body is read.

use std::time::Duration;

use serde_json::json;

use crate::support::scie::{Sandbox, payload, sha256_hex};
use crate::support::server::{Reply, TestServer};

const NAME: &str = "f.tar.gz";

fn login_page(len: usize) -> Vec<u8> {
    let mut page = b"<!DOCTYPE html>\n<html><head><title>Sign in to continue</title>".to_vec();
    page.resize(len, b' ');
    page
}

#[test]
fn an_html_page_of_the_right_length_is_named_as_one() {
    let body = payload(4_096);
    let page = login_page(body.len());
    let server = TestServer::start(move |_| {
        Reply::ok(page.clone()).with_header("Content-Type", "text/html; charset=utf-8")
    });
    let sandbox = Sandbox::new();
    let url = server.url("/f.tar.gz");
    let lift = sandbox.manifest(NAME, json!(url), Some(4_096), Some(&sha256_hex(&body)));
    sandbox.bind(&lift, NAME).assert_failed(&[
        NAME,
        &url,
        "sha256 mismatch",
        "the source sent an HTML page",
        "starting `<!DOCTYPE html>`",
    ]);
}

#[test]
fn a_page_of_another_length_is_named_before_its_body_is_read() {
    let body = payload(4_096);
    let server =
        TestServer::start(|_| Reply::ok(login_page(700)).with_header("Content-Type", "text/html"));
    let sandbox = Sandbox::new();
    let url = server.url("/f.tar.gz");
    let lift = sandbox.manifest(NAME, json!(url), Some(4_096), Some(&sha256_hex(&body)));
    sandbox.bind(&lift, NAME).assert_failed(&[
        &url,
        "size mismatch",
        "declares 700",
        "an HTML page",
        "Content-Type text/html",
    ]);

    // A JSON error sent with 200.
    let server = TestServer::start(|_| {
        Reply::ok(r#"{"message": "API rate limit exceeded"}"#)
            .with_header("Content-Type", "application/json")
    });
    let url = server.url("/f.tar.gz");
    let lift = sandbox.manifest(NAME, json!(url), Some(4_096), Some(&sha256_hex(&body)));
    sandbox
        .bind(&lift, NAME)
        .assert_failed(&[&url, "size mismatch", "a JSON document"]);
}

#[test]
fn an_empty_body_is_named_as_one() {
    let body = payload(100);
    let server = TestServer::start(|_| Reply::ok(Vec::new()));
    let sandbox = Sandbox::new();
    let url = server.url("/f.tar.gz");
    let lift = sandbox.manifest(NAME, json!(url), Some(100), Some(&sha256_hex(&body)));
    sandbox
        .bind(&lift, NAME)
        .assert_failed(&[&url, "the source sent an empty body"]);

    // No Content-Length at all (a chunked reply with no chunks): judged once it ended.
    let server = TestServer::start(|_| {
        Reply::Raw(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n"
                .to_vec(),
        )
    });
    let url = server.url("/f.tar.gz");
    let lift = sandbox.manifest(NAME, json!(url), Some(100), Some(&sha256_hex(&body)));
    let out = sandbox.bind(&lift, NAME);
    out.assert_failed(&[&url, "got 0", "the source sent an empty body"]);
}

/// A reply that declares `len` bytes with `header`, then sends nothing and holds the
/// connection open: reading its body could only time out.
fn stalled_with(len: usize, header: (&str, String)) -> Reply {
    Reply::Drip {
        declared_len: len as u64,
        headers: vec![(header.0.to_string(), header.1)],
        body: Vec::new(),
        drip: Vec::new(),
        every: Duration::from_secs(60),
    }
}

#[test]
fn a_checksum_header_that_names_other_bytes_fails_the_source_before_its_body() {
    let body = payload(10_000);
    let other = sha256_hex(b"another version");
    let stale = {
        let other = other.clone();
        TestServer::start(move |_| stalled_with(10_000, ("X-Checksum-Sha256", other.clone())))
    };
    let s3_style =
        TestServer::start(|_| stalled_with(10_000, ("x-amz-checksum-sha256", base64(&[7u8; 32]))));
    let good = {
        let body = body.clone();
        let hash = sha256_hex(&body);
        TestServer::start(move |_| {
            Reply::ok(body.clone()).with_header("X-Checksum-Sha256", &hash.to_uppercase())
        })
    };
    let mut sandbox = Sandbox::new();
    // Waiting for the stalled bodies would take this long.
    sandbox.env("PTEX_READ_TIMEOUT", "30");
    let urls = json!([stale.url("/f"), s3_style.url("/f"), good.url("/f")]);
    let lift = sandbox.manifest(NAME, urls, Some(10_000), Some(&sha256_hex(&body)));
    let started = std::time::Instant::now();
    let out = sandbox.bind(&lift, NAME);
    out.assert_delivered(&body);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(&format!(
            "the server's X-Checksum-Sha256 header declares {other} (the body was not read)"
        )),
        "{}",
        out.stderr
    );
    let seven = "07".repeat(32);
    assert!(
        out.stderr
            .contains(&format!("x-amz-checksum-sha256 header declares {seven}")),
        "{}",
        out.stderr
    );
    assert_eq!(stale.request_count(), 1, "a wrong checksum is not retried");
}

/// Standard base64 with padding, as S3 sends its checksums.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | (b as u32) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn an_unverifiable_page_is_passed_on_with_a_warning_saying_what_it_is() {
    // Nothing gives a size or sha256 (an override file, no SCIE): ptex cannot refuse the
    // bytes, but it says that a page came back where a .tar.gz was wanted.
    let page = login_page(900);
    let served = page.clone();
    let server = TestServer::start(move |_| {
        Reply::ok(served.clone()).with_header("Content-Type", "text/html")
    });
    let sandbox = Sandbox::new();
    let lift = sandbox.manifest(NAME, json!(server.url("/f.tar.gz")), None, None);
    let out = sandbox.bind(&lift, NAME);
    out.assert_delivered(&page);
    assert!(
        out.stderr.contains(&format!(
            "ptex: warning: {NAME}: not verified, and the source sent an HTML page"
        )),
        "{}",
        out.stderr
    );
    // A real file gets no such warning.
    let body = payload(900);
    let served = body.clone();
    let server = TestServer::start(move |_| Reply::ok(served.clone()));
    let lift = sandbox.manifest(NAME, json!(server.url("/f.tar.gz")), None, None);
    let out = sandbox.bind(&lift, NAME);
    out.assert_delivered(&body);
    assert!(!out.stderr.contains("HTML"), "{}", out.stderr);
}
