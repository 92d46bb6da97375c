//! Binding mode as scie-jump runs it: `ptex <lift.json> <name>`, checked like scie-jump
//! checks (sha256 of everything on stdout).

use serde_json::json;

use crate::support::scie::{Sandbox, payload, sha256_hex};
use crate::support::server::{Reply, TestServer};

const NAME: &str = "cpython-3.10.8+20221106-x86_64-unknown-linux-gnu-install_only.tar.gz";

fn serve(body: Vec<u8>) -> TestServer {
    TestServer::start(move |_| Reply::ok(body.clone()))
}

#[test]
fn good_file_is_delivered_byte_for_byte() {
    let body = payload(300_000);
    let server = serve(body.clone());
    let sandbox = Sandbox::new();
    let lift = sandbox.manifest(
        NAME,
        json!(server.url(&format!("/dl/{NAME}"))),
        Some(body.len() as u64),
        Some(&sha256_hex(&body)),
    );
    let out = sandbox.bind(&lift, NAME);
    out.assert_delivered(&body);
    assert_eq!(server.request_count(), 1);
    let request = &server.requests()[0];
    assert_eq!(request.path, format!("/dl/{NAME}"));
    assert_eq!(
        request.header("user-agent"),
        Some(concat!("ptex/", env!("CARGO_PKG_VERSION")))
    );
    assert!(out.stderr.is_empty(), "unexpected stderr: {}", out.stderr);
    sandbox.assert_no_spool_debris();
}

#[test]
fn flipped_byte_fails_with_a_sha256_mismatch_and_one_request() {
    let body = payload(10_000);
    let mut served = body.clone();
    served[5_000] ^= 0x01;
    let server = serve(served.clone());
    let sandbox = Sandbox::new();
    let url = server.url("/f.tar.gz");
    let lift = sandbox.manifest(
        "f.tar.gz",
        json!(url),
        Some(10_000),
        Some(&sha256_hex(&body)),
    );
    let out = sandbox.bind(&lift, "f.tar.gz");
    let expected = format!(
        "sha256 mismatch: expected {}, got {}",
        sha256_hex(&body),
        sha256_hex(&served)
    );
    out.assert_failed(&["f.tar.gz", &url, &expected]);
    assert_eq!(server.request_count(), 1);
    sandbox.assert_no_spool_debris();
}

#[test]
fn server_down_names_file_url_and_reason() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let sandbox = Sandbox::new();
    let url = format!("http://127.0.0.1:{port}/hello.tar.gz");
    let lift = sandbox.manifest("hello.tar.gz", json!(url), Some(1), Some(&sha256_hex(b"x")));
    let out = sandbox.bind(&lift, "hello.tar.gz");
    out.assert_failed(&["hello.tar.gz", &url, "connection refused"]);
    // The original's phrase, which scie-pants' tests match, in the README's exact format.
    assert_eq!(
        out.last_line(),
        format!(
            "ptex: error: failed to fetch hello.tar.gz: Failed to fetch {url}: could not \
             connect: connection refused"
        )
    );
    // A refused connection is a definite answer: no retry rounds.
    assert!(!out.stderr.contains("attempts"), "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
}

#[test]
fn http_errors_are_not_retried_and_explained() {
    for (status, words) in [
        (404, vec!["not found", "404"]),
        (
            401,
            vec!["401", "sent no credentials", "PTEX_AUTH_127_0_0_1_*"],
        ),
        (403, vec!["403", "credentials"]),
    ] {
        let server = TestServer::start(move |_| Reply::status(status));
        let sandbox = Sandbox::new();
        let url = server.url("/f");
        let lift = sandbox.manifest("f", json!(url), Some(1), Some(&sha256_hex(b"x")));
        let out = sandbox.bind(&lift, "f");
        let mut expected = vec!["f", url.as_str()];
        expected.extend(words);
        out.assert_failed(&expected);
        assert_eq!(server.request_count(), 1, "HTTP {status}");
    }
}

#[test]
fn missing_url_entry_fails_before_any_request() {
    let server = serve(b"x".to_vec());
    let sandbox = Sandbox::new();
    let lift = sandbox.manifest(
        "other",
        json!(server.url("/x")),
        Some(1),
        Some(&sha256_hex(b"x")),
    );
    let out = sandbox.bind(&lift, "wanted.tar.gz");
    out.assert_failed(&[lift.to_str().unwrap(), "wanted.tar.gz", "no URL"]);
    assert_eq!(server.request_count(), 0);
}

#[test]
fn second_source_is_used_when_the_first_fails() {
    let body = payload(5_000);
    let good = serve(body.clone());
    let missing = TestServer::start(|_| Reply::status(404));
    let sandbox = Sandbox::new();
    let lift = sandbox.manifest(
        "f",
        json!([missing.url("/f"), good.url("/f")]),
        Some(body.len() as u64),
        Some(&sha256_hex(&body)),
    );
    let out = sandbox.bind(&lift, "f");
    out.assert_delivered(&body);
    let warnings: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(warnings.len(), 1, "{}", out.stderr);
    assert!(warnings[0].contains(&missing.url("/f")) && warnings[0].contains("not found"));
    assert_eq!((missing.request_count(), good.request_count()), (1, 1));
}

#[test]
fn every_source_is_listed_when_all_fail() {
    let body = payload(100);
    let wrong = serve(payload(99));
    let missing = TestServer::start(|_| Reply::status(404));
    let sandbox = Sandbox::new();
    let lift = sandbox.manifest(
        "f",
        json!([wrong.url("/f"), missing.url("/f")]),
        Some(100),
        Some(&sha256_hex(&body)),
    );
    let out = sandbox.bind(&lift, "f");
    out.assert_failed(&[
        "f",
        &wrong.url("/f"),
        "size mismatch",
        &missing.url("/f"),
        "not found",
    ]);
}

#[test]
fn unverifiable_file_is_fetched_with_a_warning() {
    let body = payload(1_000);
    let server = serve(body.clone());
    let sandbox = Sandbox::new();
    let lift = sandbox.manifest("f", json!(server.url("/f")), None, None);
    let out = sandbox.bind(&lift, "f");
    out.assert_delivered(&body);
    assert!(out.stderr.contains("cannot be verified"), "{}", out.stderr);
}

#[test]
fn remote_name_in_binding_mode_uses_the_file_name() {
    let body = payload(1_234);
    let server = serve(body.clone());
    let sandbox = Sandbox::new();
    let lift = sandbox.manifest(
        NAME,
        json!(server.url("/whatever")),
        Some(body.len() as u64),
        Some(&sha256_hex(&body)),
    );
    let out = sandbox.run(&["-O", lift.to_str().unwrap(), NAME]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stdout.is_empty());
    assert_eq!(std::fs::read(sandbox.work().join(NAME)).unwrap(), body);
}

#[test]
fn hostile_file_name_never_escapes_with_remote_name() {
    let server = serve(b"x".to_vec());
    let sandbox = Sandbox::new();
    let name = "../escaped";
    let lift = sandbox.manifest(
        name,
        json!(server.url("/x")),
        Some(1),
        Some(&sha256_hex(b"x")),
    );
    let out = sandbox.run(&["-O", lift.to_str().unwrap(), name]);
    out.assert_failed(&["-O", "path separator"]);
    assert_eq!(server.request_count(), 0);
    assert!(!sandbox.work().parent().unwrap().join("escaped").exists());
    // Without -O the name is only a label: the bytes go to stdout, the spool stays inside
    // the cache directory.
    sandbox.bind(&lift, name).assert_delivered(b"x");
    assert!(!sandbox.cache().parent().unwrap().join("escaped").exists());
    sandbox.assert_no_spool_debris();
}

#[test]
fn silent_hides_fallback_warnings_but_not_the_error() {
    let missing = TestServer::start(|_| Reply::status(404));
    let good = serve(b"x".to_vec());
    let sandbox = Sandbox::new();
    let lift = sandbox.manifest(
        "f",
        json!([missing.url("/f"), good.url("/f")]),
        Some(1),
        Some(&sha256_hex(b"x")),
    );
    let out = sandbox.run(&["-s", lift.to_str().unwrap(), "f"]);
    out.assert_delivered(b"x");
    assert!(out.stderr.is_empty(), "{}", out.stderr);
    let lift = sandbox.manifest(
        "f",
        json!([missing.url("/f")]),
        Some(1),
        Some(&sha256_hex(b"x")),
    );
    sandbox
        .run(&["-s", lift.to_str().unwrap(), "f"])
        .assert_failed(&["f", "not found"]);
}

#[test]
fn every_failed_source_carries_the_originals_phrase() {
    let gone = TestServer::start(|_| Reply::status(404));
    let denied = TestServer::start(|_| Reply::status(403));
    let sandbox = Sandbox::new();
    let (first, second) = (gone.url("/f.tar.gz"), denied.url("/f.tar.gz"));
    let lift = sandbox.manifest(
        "f.tar.gz",
        json!([first, second]),
        Some(1),
        Some(&sha256_hex(b"x")),
    );
    let out = sandbox.bind(&lift, "f.tar.gz");
    out.assert_failed(&[
        "ptex: error: failed to fetch f.tar.gz: all 2 sources failed: ",
        &format!("Failed to fetch {first}: not found"),
        &format!("; Failed to fetch {second}: "),
        "credentials",
    ]);
}
