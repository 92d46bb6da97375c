//! `gs://` against a local GCS emulator (RELIABILITY case 32), and its transient errors
//! through a fault-injecting relay (P5).

use serde_json::json;

use crate::support::gcs::GcsServer;
use crate::support::relay::{Fault, Relay};
use crate::support::scie::{Sandbox, payload, sha256_hex};

#[test]
fn emulator_object_in_binding_and_direct_mode() {
    let server = GcsServer::start();
    let body = payload(100_000);
    server.put_object("corp-bucket", "jdk/jdk.tar.gz", &body);
    let sandbox = sandbox_at(&server.endpoint());
    let url = "gs://corp-bucket/jdk/jdk.tar.gz";
    let lift = sandbox.manifest(
        "jdk.tar.gz",
        json!(url),
        Some(body.len() as u64),
        Some(&sha256_hex(&body)),
    );
    sandbox.bind(&lift, "jdk.tar.gz").assert_delivered(&body);
    sandbox.run(&[url]).assert_delivered(&body);
    let out = sandbox.run(&["-O", url]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(
        std::fs::read(sandbox.work().join("jdk.tar.gz")).unwrap(),
        body
    );
}

#[test]
fn missing_object_and_wrong_bytes() {
    let server = GcsServer::start();
    server.put_object("bkt", "f.bin", b"served");
    let sandbox = sandbox_at(&server.endpoint());
    sandbox
        .run(&["gs://bkt/missing.bin"])
        .assert_failed(&["gs://bkt/missing.bin", "not found"]);
    sandbox
        .run(&["--sha256", &sha256_hex(b"wanted"), "gs://bkt/f.bin"])
        .assert_failed(&["gs://bkt/f.bin", "sha256 mismatch"]);
}

#[test]
fn token_from_the_config_file() {
    let server = GcsServer::start();
    server.put_object("bkt", "f.bin", b"x");
    let mut sandbox = Sandbox::new();
    let config = sandbox.home().join("ptex.json");
    std::fs::write(
        &config,
        json!({"gs": {"endpoint": server.endpoint(), "token_env": "CORP_GCS_TOKEN"}}).to_string(),
    )
    .unwrap();
    sandbox
        .env("PTEX_CONFIG", &config)
        .env("CORP_GCS_TOKEN", "ya29.test-token");
    let out = sandbox.run(&["-v", "gs://bkt/f.bin"]);
    out.assert_delivered(b"x");
    assert!(!out.stderr.contains("ya29.test-token"), "{}", out.stderr);
}

/// A sandbox pointed at `endpoint` as its GCS emulator.
fn sandbox_at(endpoint: &str) -> Sandbox {
    let mut sandbox = Sandbox::new();
    sandbox.env("STORAGE_EMULATOR_HOST", endpoint);
    sandbox
}

#[test]
fn transient_503s_are_retried() {
    let server = GcsServer::start();
    let body = payload(50_000);
    server.put_object("bkt", "f.bin", &body);
    let relay = Relay::start(
        server.port(),
        vec![Fault::status(503), Fault::status(503).retry_after("0")],
    );
    let sandbox = sandbox_at(&relay.endpoint());
    let out = sandbox.run(&["--sha256", &sha256_hex(&body), "gs://bkt/f.bin"]);
    out.assert_delivered(&body);
    assert!(out.stderr.contains("HTTP 503"), "{}", out.stderr);
    // Both 503s were answered, then the retry reached the emulator and read the object.
    let requests = relay.requests();
    assert!(requests.len() >= 3, "{requests:?}");
    assert_eq!(requests[2].path, requests[0].path, "{requests:?}");
    assert!(
        requests[2..].iter().any(|r| r.path.contains("alt=media")),
        "{requests:?}"
    );
}

#[test]
fn body_cut_short_is_resumed_with_a_range() {
    let server = GcsServer::start();
    let body = payload(300_000);
    server.put_object("bkt", "f.bin", &body);
    // Request 0 reads the object's metadata (its length), request 1 its bytes: cut.
    let relay = Relay::start(
        server.port(),
        vec![Fault::Pass, Fault::CutBody { after: 100_000 }],
    );
    let sandbox = sandbox_at(&relay.endpoint());
    let lift = sandbox.manifest(
        "f.bin",
        json!("gs://bkt/f.bin"),
        Some(body.len() as u64),
        Some(&sha256_hex(&body)),
    );
    let out = sandbox.bind(&lift, "f.bin");
    out.assert_delivered(&body);
    assert_eq!(relay.cuts(), 1);
    let requests = relay.requests();
    assert!(requests[1].path.contains("alt=media"), "{requests:?}");
    // The retry continues after the 100 000 bytes that arrived.
    let retry = requests[2..]
        .iter()
        .find(|r| r.path.contains("alt=media"))
        .unwrap_or_else(|| panic!("no media read after the cut: {requests:?}"));
    assert_eq!(
        retry.header("range"),
        Some("bytes=100000-299999"),
        "{retry:?}"
    );
}

#[test]
fn dry_run_shows_the_resolved_settings() {
    let server = GcsServer::start();
    let mut sandbox = sandbox_at(&server.endpoint());
    let lift = sandbox.manifest(
        "f.bin",
        json!("gs://bkt/f.bin"),
        Some(1),
        Some(&sha256_hex(b"x")),
    );
    let dry = |sandbox: &Sandbox| {
        let out = sandbox.run(&["--dry-run", lift.to_str().unwrap(), "f.bin"]);
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        assert_eq!(out.stdout.len(), 0);
        out.stderr
    };
    let emulator = server.endpoint();
    let stderr = dry(&sandbox);
    let line = format!(
        "1. gs://bkt/f.bin  (origin, listed in the manifest {}; GCS endpoint {emulator} \
         (STORAGE_EMULATOR_HOST); credentials: none, unsigned (the emulator, \
         STORAGE_EMULATOR_HOST))",
        lift.display()
    );
    assert!(stderr.contains(&line), "{line}\n{stderr}");
    sandbox.env("GOOGLE_OAUTH_ACCESS_TOKEN", "ya29.dry-secret");
    let stderr = dry(&sandbox);
    assert!(
        stderr.contains("credentials: the access token in GOOGLE_OAUTH_ACCESS_TOKEN)"),
        "{stderr}"
    );
    assert!(!stderr.contains("ya29.dry-secret"), "{stderr}");
}
