//! `gs://` against a local GCS emulator (RELIABILITY case 32).

use serde_json::json;

use crate::support::gcs::GcsServer;
use crate::support::scie::{Sandbox, payload, sha256_hex};

#[test]
fn emulator_object_in_binding_and_direct_mode() {
    let server = GcsServer::start();
    let body = payload(100_000);
    server.put_object("corp-bucket", "jdk/jdk.tar.gz", &body);
    let mut sandbox = Sandbox::new();
    sandbox.env("STORAGE_EMULATOR_HOST", server.endpoint());
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
    let mut sandbox = Sandbox::new();
    sandbox.env("STORAGE_EMULATOR_HOST", server.endpoint());
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
