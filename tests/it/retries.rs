//! Transient failures are retried in bounded, backed-off rounds; others are not
//! (RELIABILITY cases 3, 7, 8 and 10).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::scie::{Sandbox, payload, sha256_hex};
use crate::support::server::{Reply, TestServer};

/// A server that answers the n-th request (0-based) with `script(n)`.
pub(crate) fn scripted(script: impl Fn(usize) -> Reply + Send + Sync + 'static) -> TestServer {
    let count = Arc::new(AtomicUsize::new(0));
    TestServer::start(move |_| script(count.fetch_add(1, Ordering::SeqCst)))
}

#[test]
fn two_503s_then_success_takes_exactly_three_requests() {
    let server = scripted(|n| {
        if n < 2 {
            Reply::status(503)
        } else {
            Reply::ok("ok")
        }
    });
    let sandbox = Sandbox::new();
    let lift = sandbox.manifest(
        "f",
        json!(server.url("/f")),
        Some(2),
        Some(&sha256_hex(b"ok")),
    );
    let out = sandbox.bind(&lift, "f");
    out.assert_delivered(b"ok");
    assert_eq!(server.request_count(), 3);
    assert!(out.stderr.contains("503"), "{}", out.stderr);
}

#[test]
fn persistent_500_fails_after_the_retry_budget() {
    let server = TestServer::start(|_| Reply::status(500));
    let sandbox = Sandbox::new();
    let url = server.url("/f");
    let out = sandbox.run(&[&url]);
    out.assert_failed(&[&url, "HTTP 500", "after 4 attempts"]);
    assert_eq!(server.request_count(), 4);

    let mut no_retries = Sandbox::new();
    no_retries.env("PTEX_RETRIES", "0");
    let before = server.request_count();
    no_retries.run(&[&url]).assert_failed(&[&url, "HTTP 500"]);
    assert_eq!(server.request_count() - before, 1);
}

#[test]
fn retry_after_is_honoured() {
    let server = scripted(|n| {
        if n == 0 {
            Reply::status(429).with_header("Retry-After", "2")
        } else {
            Reply::ok("ok")
        }
    });
    let sandbox = Sandbox::new();
    let started = Instant::now();
    let out = sandbox.run(&[&server.url("/f")]);
    out.assert_delivered(b"ok");
    assert_eq!(server.request_count(), 2);
    // The backoff base is 10 ms in tests: only Retry-After explains a 2 s pause.
    assert!(
        started.elapsed() >= Duration::from_millis(1_900),
        "{:?}",
        started.elapsed()
    );
    assert!(
        out.stderr.contains("trying again in 2.0 s"),
        "{}",
        out.stderr
    );
}

#[test]
fn truncated_body_is_retried_and_a_persistent_cut_fails() {
    let body = payload(20_000);
    let (full, half) = (body.clone(), body[..10_000].to_vec());
    let server = scripted(move |n| {
        if n == 0 {
            Reply::Truncated {
                declared_len: 20_000,
                body: half.clone(),
            }
        } else {
            Reply::ok(full.clone())
        }
    });
    let sandbox = Sandbox::new();
    let lift = sandbox.manifest(
        "f",
        json!(server.url("/f")),
        Some(20_000),
        Some(&sha256_hex(&body)),
    );
    sandbox.bind(&lift, "f").assert_delivered(&body);
    assert_eq!(server.request_count(), 2);

    let half = body[..10_000].to_vec();
    let always_cut = TestServer::start(move |_| Reply::Truncated {
        declared_len: 20_000,
        body: half.clone(),
    });
    let lift = sandbox.manifest(
        "f",
        json!(always_cut.url("/f")),
        Some(20_000),
        Some(&sha256_hex(&body)),
    );
    sandbox
        .bind(&lift, "f")
        .assert_failed(&["f", "interrupted", "after 4 attempts"]);
    assert_eq!(always_cut.request_count(), 4);
    sandbox.assert_no_spool_debris();
}

#[test]
fn a_transient_failure_moves_on_to_the_next_source_at_once() {
    let flaky = TestServer::start(|_| Reply::status(503));
    let good = TestServer::start(|_| Reply::ok("ok"));
    let sandbox = Sandbox::new();
    let lift = sandbox.manifest(
        "f",
        json!([flaky.url("/f"), good.url("/f")]),
        Some(2),
        Some(&sha256_hex(b"ok")),
    );
    let out = sandbox.bind(&lift, "f");
    out.assert_delivered(b"ok");
    assert_eq!((flaky.request_count(), good.request_count()), (1, 1));
    assert!(!out.stderr.contains("trying again"), "{}", out.stderr);
}

/// The first response: the whole file announced with `ETag: "v1"`, cut after `cut` bytes.
pub(crate) fn cut_response(body: &[u8], cut: usize) -> Reply {
    let mut raw = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nETag: \"v1\"\r\nAccept-Ranges: bytes\r\n\r\n",
        body.len()
    )
    .into_bytes();
    raw.extend_from_slice(&body[..cut]);
    Reply::Raw(raw)
}

#[test]
fn a_cut_transfer_resumes_with_a_guarded_range_request() {
    let body = payload(40_000);
    let served = body.clone();
    let server = scripted(move |n| {
        if n == 0 {
            return cut_response(&served, 15_000);
        }
        Reply::Full {
            status: 206,
            headers: vec![
                (
                    "Content-Range".into(),
                    format!("bytes 15000-39999/{}", served.len()),
                ),
                ("ETag".into(), "\"v1\"".into()),
            ],
            body: served[15_000..].to_vec(),
        }
    });
    let sandbox = Sandbox::new();
    let lift = sandbox.manifest(
        "f",
        json!(server.url("/f")),
        Some(40_000),
        Some(&sha256_hex(&body)),
    );
    let out = sandbox.run(&["-v", lift.to_str().unwrap(), "f"]);
    out.assert_delivered(&body);
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].header("range"), None);
    assert_eq!(requests[1].header("range"), Some("bytes=15000-"));
    assert_eq!(requests[1].header("if-range"), Some("\"v1\""));
    assert!(
        out.stderr.contains("resuming at byte 15000"),
        "{}",
        out.stderr
    );
    sandbox.assert_no_spool_debris();
}

#[test]
fn a_changed_file_is_fetched_whole_not_stitched() {
    // The file changed between the attempts: the server ignores the stale If-Range and
    // sends the new version whole, which must not be appended to the old bytes.
    let old = payload(30_000);
    let new = payload(30_001)[1..].to_vec();
    let (old_served, new_served) = (old.clone(), new.clone());
    let server = scripted(move |n| {
        if n == 0 {
            cut_response(&old_served, 10_000)
        } else {
            Reply::ok(new_served.clone()).with_header("ETag", "\"v2\"")
        }
    });
    let sandbox = Sandbox::new();
    let url = server.url("/f");
    sandbox
        .run(&["--sha256", &sha256_hex(&new), &url])
        .assert_delivered(&new);
    assert_eq!(server.requests()[1].header("if-range"), Some("\"v1\""));
}

#[test]
fn a_part_from_the_wrong_offset_is_refused() {
    let body = payload(20_000);
    let served = body.clone();
    let server = scripted(move |n| match n {
        0 => cut_response(&served, 5_000),
        // A broken server: 206 from byte 0 when asked for 5000-.
        1 => Reply::Full {
            status: 206,
            headers: vec![("Content-Range".into(), "bytes 0-19999/20000".into())],
            body: served.clone(),
        },
        _ => Reply::ok(served.clone()),
    });
    let sandbox = Sandbox::new();
    let out = sandbox.run(&["--sha256", &sha256_hex(&body), &server.url("/f")]);
    out.assert_delivered(&body);
    // Its bytes are not used: one plain GET fetches the whole file instead.
    let requests = server.requests();
    assert_eq!(requests.len(), 3);
    assert_eq!(requests[2].header("range"), None);
}

#[test]
fn a_connection_reset_mid_body_is_retried() {
    let body = payload(20_000);
    let (full, half) = (body.clone(), body[..10_000].to_vec());
    let server = scripted(move |n| {
        if n == 0 {
            Reply::Reset {
                declared_len: 20_000,
                body: half.clone(),
            }
        } else {
            Reply::ok(full.clone())
        }
    });
    let sandbox = Sandbox::new();
    let out = sandbox.run(&["--sha256", &sha256_hex(&body), &server.url("/f")]);
    out.assert_delivered(&body);
    assert_eq!(server.request_count(), 2);
    assert!(out.stderr.contains("interrupted"), "{}", out.stderr);
}
