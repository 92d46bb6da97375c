//! `s3://` against s3s-fs, a real S3-compatible server that checks SigV4 signatures
//! (RELIABILITY cases 30 and 31).

use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::moto::MotoServer;
use crate::support::relay::{Fault, Relay};
use crate::support::s3::{ACCESS_KEY, S3Server, SECRET_KEY};
use crate::support::scie::{Sandbox, payload, sha256_hex};
use crate::support::server::{Reply, TestServer};

/// A sandbox that knows where the S3 server is, with no credentials yet.
fn sandbox_for(server: &S3Server) -> Sandbox {
    let mut sandbox = Sandbox::new();
    sandbox
        .env("AWS_ENDPOINT_URL", server.endpoint())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    sandbox
}

fn with_static_keys(sandbox: &mut Sandbox, secret: &str) {
    sandbox
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", secret);
}

#[test]
fn signed_object_in_binding_mode_direct_mode_and_with_remote_name() {
    let server = S3Server::start();
    let body = payload(200_000);
    server.put_object("corp-artifacts", "pbs/python.tar.gz", &body);
    let mut sandbox = sandbox_for(&server);
    with_static_keys(&mut sandbox, SECRET_KEY);
    let url = "s3://corp-artifacts/pbs/python.tar.gz";
    let lift = sandbox.manifest(
        "python.tar.gz",
        json!(url),
        Some(body.len() as u64),
        Some(&sha256_hex(&body)),
    );
    sandbox.bind(&lift, "python.tar.gz").assert_delivered(&body);
    sandbox.run(&[url]).assert_delivered(&body);
    let out = sandbox.run(&["-O", url]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(
        std::fs::read(sandbox.work().join("python.tar.gz")).unwrap(),
        body
    );
}

#[test]
fn wrong_bytes_missing_object_and_wrong_secret() {
    let server = S3Server::start();
    server.put_object("bkt", "f.bin", b"served bytes");
    let mut sandbox = sandbox_for(&server);
    with_static_keys(&mut sandbox, SECRET_KEY);
    let lift = sandbox.manifest(
        "f.bin",
        json!("s3://bkt/f.bin"),
        Some(12),
        Some(&sha256_hex(b"wanted bytes")),
    );
    sandbox
        .bind(&lift, "f.bin")
        .assert_failed(&["f.bin", "s3://bkt/f.bin", "sha256 mismatch"]);
    sandbox
        .run(&["s3://bkt/missing.bin"])
        .assert_failed(&["s3://bkt/missing.bin", "not found"]);
    // The object's length disagrees with the expected size: refused before the body.
    sandbox
        .run(&["--size", "10", "s3://bkt/f.bin"])
        .assert_failed(&["s3://bkt/f.bin", "size mismatch", "declares 12"]);

    let mut wrong = sandbox_for(&server);
    with_static_keys(&mut wrong, "not-the-secret");
    let out = wrong.run(&["s3://bkt/f.bin"]);
    out.assert_failed(&["s3://bkt/f.bin", "access denied", "AWS_ACCESS_KEY_ID"]);
    assert!(!out.stderr.contains("not-the-secret"), "{}", out.stderr);
}

#[test]
fn profile_credentials_and_environment_precedence() {
    let server = S3Server::start();
    server.put_object("bkt", "f.bin", b"x");
    let mut sandbox = sandbox_for(&server);
    let aws = sandbox.home().join(".aws");
    std::fs::create_dir_all(&aws).unwrap();
    std::fs::write(
        aws.join("credentials"),
        format!(
            "[default]\naws_access_key_id = {ACCESS_KEY}\naws_secret_access_key = wrong\n\n\
             [reader]\naws_access_key_id = {ACCESS_KEY}\naws_secret_access_key = {SECRET_KEY}\n"
        ),
    )
    .unwrap();
    // The default profile has a wrong secret: refused, and the hint names the profile.
    sandbox
        .run(&["s3://bkt/f.bin"])
        .assert_failed(&["access denied", "profile \"default\""]);
    // AWS_PROFILE picks the right one.
    sandbox.env("AWS_PROFILE", "reader");
    sandbox.run(&["s3://bkt/f.bin"]).assert_delivered(b"x");
    // Keys in the environment come before any profile.
    let mut env_first = sandbox_for(&server);
    with_static_keys(&mut env_first, SECRET_KEY);
    std::fs::create_dir_all(env_first.home().join(".aws")).unwrap();
    std::fs::copy(
        aws.join("credentials"),
        env_first.home().join(".aws/credentials"),
    )
    .unwrap();
    env_first.run(&["s3://bkt/f.bin"]).assert_delivered(b"x");
}

#[test]
fn no_credentials_reads_unsigned_and_fails_fast_when_refused() {
    let server = S3Server::start();
    server.put_object("bkt", "f.bin", b"x");
    let mut sandbox = Sandbox::new();
    sandbox
        .env("AWS_ENDPOINT_URL", server.endpoint())
        .env("AWS_REGION", "us-east-1");
    // No AWS_EC2_METADATA_DISABLED: the metadata service probe itself must be bounded.
    let started = Instant::now();
    let out = sandbox.run(&["s3://bkt/f.bin"]);
    let elapsed = started.elapsed();
    // s3s-fs refuses unsigned requests, so this is the failure a private bucket gives.
    out.assert_failed(&[
        "s3://bkt/f.bin",
        "access denied",
        "no AWS credentials found",
        "unsigned",
    ]);
    // A promise (P7), not a speed measurement: an absent metadata service costs ~2 s at most.
    assert!(elapsed < Duration::from_secs(6), "took {elapsed:?}");
}

#[test]
fn endpoint_and_region_from_the_config_file() {
    let server = S3Server::start();
    server.put_object("mirror", "f.bin", b"from the mirror");
    let mut sandbox = Sandbox::new();
    let config = sandbox.home().join("ptex.json");
    std::fs::write(
        &config,
        json!({"s3": {"buckets": {"mirror": {"endpoint": server.endpoint(), "region": "eu-west-1"}}}})
            .to_string(),
    )
    .unwrap();
    with_static_keys(&mut sandbox, SECRET_KEY);
    sandbox
        .env("PTEX_CONFIG", &config)
        .env("AWS_EC2_METADATA_DISABLED", "true");
    sandbox
        .run(&["s3://mirror/f.bin"])
        .assert_delivered(b"from the mirror");
}

#[test]
fn bad_config_file_fails_before_any_request() {
    let server = TestServer::start(|_| Reply::ok("x"));
    let mut sandbox = Sandbox::new();
    let config = sandbox.home().join("ptex.json");
    std::fs::write(&config, r#"{"s3": {"regoin": "eu-west-1"}}"#).unwrap();
    sandbox.env("PTEX_CONFIG", &config);
    let out = sandbox.run(&[&server.url("/x")]);
    out.assert_failed(&[config.to_str().unwrap(), "regoin"]);
    assert_eq!(server.request_count(), 0);
}

#[test]
fn manifest_falls_back_from_s3_to_http() {
    let server = S3Server::start();
    server.put_object("bkt", "other.bin", b"-");
    let web = TestServer::start(|_| Reply::ok("the file"));
    let mut sandbox = sandbox_for(&server);
    with_static_keys(&mut sandbox, SECRET_KEY);
    let lift = sandbox.manifest(
        "f.bin",
        json!(["s3://bkt/f.bin", web.url("/f.bin")]),
        Some(8),
        Some(&sha256_hex(b"the file")),
    );
    let out = sandbox.bind(&lift, "f.bin");
    out.assert_delivered(b"the file");
    assert!(
        out.stderr.contains("s3://bkt/f.bin") && out.stderr.contains("not found"),
        "{}",
        out.stderr
    );
}

#[test]
fn public_object_is_read_unsigned_without_any_aws_setup() {
    let server = MotoServer::start();
    let body = payload(64_000);
    server.put_public_object("public-releases", "tool/v1/tool.tar.gz", &body);
    let mut sandbox = Sandbox::new();
    // No credentials anywhere: an empty HOME, no AWS_* keys, no metadata service.
    sandbox
        .env("AWS_ENDPOINT_URL", server.endpoint())
        .env("AWS_REGION", "us-east-1");
    let lift = sandbox.manifest(
        "tool.tar.gz",
        json!("s3://public-releases/tool/v1/tool.tar.gz"),
        Some(body.len() as u64),
        Some(&sha256_hex(&body)),
    );
    sandbox.bind(&lift, "tool.tar.gz").assert_delivered(&body);
}

#[test]
fn s3_503_is_retried() {
    let server = S3Server::start();
    server.put_object("bkt", "f.bin", b"signed bytes");
    // The real server behind a relay that answers the first request with 503.
    let relay = Relay::start(server.port(), vec![Fault::status(503)]);
    let mut sandbox = Sandbox::new();
    sandbox
        .env("AWS_ENDPOINT_URL", relay.endpoint())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    with_static_keys(&mut sandbox, SECRET_KEY);
    let out = sandbox.run(&["--sha256", &sha256_hex(b"signed bytes"), "s3://bkt/f.bin"]);
    out.assert_delivered(b"signed bytes");
    assert!(out.stderr.contains("HTTP 503"), "{}", out.stderr);
    // The retry asked for the same object again, and was relayed.
    let requests = relay.requests();
    assert!(requests.len() >= 2, "{requests:?}");
    assert!(
        requests[1..].iter().any(|r| r.path == requests[0].path),
        "{requests:?}"
    );
}

#[test]
fn s3_body_cut_short_is_resumed_with_a_guarded_range() {
    let server = S3Server::start();
    let body = payload(300_000);
    server.put_object("bkt", "f.bin", &body);
    // Request 0 is the HEAD for the length, request 1 the GET whose body is cut.
    let relay = Relay::start(
        server.port(),
        vec![Fault::Pass, Fault::CutBody { after: 100_000 }],
    );
    let mut sandbox = Sandbox::new();
    sandbox
        .env("AWS_ENDPOINT_URL", relay.endpoint())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    with_static_keys(&mut sandbox, SECRET_KEY);
    let lift = sandbox.manifest(
        "f.bin",
        json!("s3://bkt/f.bin"),
        Some(body.len() as u64),
        Some(&sha256_hex(&body)),
    );
    let out = sandbox.bind(&lift, "f.bin");
    out.assert_delivered(&body);
    assert_eq!(relay.cuts(), 1);
    let requests = relay.requests();
    assert_eq!(requests[1].method, "GET", "{requests:?}");
    // The retry continues after the 100 000 bytes that arrived, from the same version of
    // the object (If-Match with the ETag the first read saw).
    let retry = requests[2..]
        .iter()
        .find(|r| r.method == "GET")
        .unwrap_or_else(|| panic!("no GET after the cut: {requests:?}"));
    assert_eq!(
        retry.header("range"),
        Some("bytes=100000-299999"),
        "{retry:?}"
    );
    assert!(retry.header("if-match").is_some(), "{retry:?}");
}

#[test]
fn dry_run_shows_the_resolved_settings_and_sends_nothing() {
    let server = TestServer::start(|_| Reply::ok("x"));
    let endpoint = server.url("");
    let mut sandbox = Sandbox::new();
    let aws = sandbox.home().join(".aws");
    std::fs::create_dir_all(&aws).unwrap();
    std::fs::write(
        aws.join("config"),
        "[profile reader]\nregion = eu-west-1\ns3 =\n  addressing_style = virtual\n",
    )
    .unwrap();
    std::fs::write(
        aws.join("credentials"),
        "[reader]\naws_access_key_id = AKIAREADER\naws_secret_access_key = reader-secret\n",
    )
    .unwrap();
    sandbox
        .env("AWS_PROFILE", "reader")
        .env("AWS_ENDPOINT_URL", &endpoint);
    let lift = sandbox.manifest(
        "f.bin",
        json!(["s3://bkt/f.bin", "s3://other/f.bin"]),
        Some(1),
        Some(&sha256_hex(b"x")),
    );
    let config = sandbox.home().join("ptex.json");
    std::fs::write(
        &config,
        json!({"s3": {"buckets": {"other": {"region": "ap-south-1", "anonymous": true}}}})
            .to_string(),
    )
    .unwrap();
    sandbox.env("PTEX_CONFIG", &config);
    let out = sandbox.run(&["--dry-run", lift.to_str().unwrap(), "f.bin"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let expected = [
        format!(
            "1. s3://bkt/f.bin  (origin, listed in the manifest {}; S3 endpoint {endpoint} (AWS_ENDPOINT_URL), region \
             eu-west-1 (region of AWS profile \"reader\"), profile reader (AWS_PROFILE), \
             virtual-host style; credentials: AWS profile \"reader\")",
            lift.display()
        ),
        format!(
            "2. s3://other/f.bin  (origin, listed in the manifest {}; S3 endpoint {endpoint} (AWS_ENDPOINT_URL), region \
             ap-south-1 (s3.buckets.other.region in the ptex config), profile reader \
             (AWS_PROFILE), virtual-host style; credentials: none, unsigned (anonymous in the \
             ptex config))",
            lift.display()
        ),
    ];
    for line in &expected {
        assert!(out.stderr.contains(line.as_str()), "{line}\n{}", out.stderr);
    }
    assert!(!out.stderr.contains("reader-secret"), "{}", out.stderr);
    assert_eq!(out.stdout.len(), 0);
    assert_eq!(server.request_count(), 0, "a dry run sends nothing");
}
