//! Google credentials (issue 14): one token exchange per run at the key file's `token_uri`,
//! reused by every request and bucket; the metadata server recognised by `Metadata-Flavor:
//! Google` at `GCE_METADATA_HOST`; no token exchange against an emulator. The storage
//! requests go through a relay in front of the GCS emulator, which records which bearer
//! token each carried.

use serde_json::json;

use crate::support::gcs::GcsServer;
use crate::support::relay::Relay;
use crate::support::scie::{Sandbox, payload, sha256_hex};
use crate::support::server::{Reply, TestServer};

/// A token endpoint handing out `token`, counting exchanges.
fn token_endpoint(token: &'static str) -> TestServer {
    TestServer::start(move |r| {
        if r.method == "POST" {
            Reply::ok(
                json!({"access_token": token, "expires_in": 3600, "token_type": "Bearer"})
                    .to_string(),
            )
            .with_header("Content-Type", "application/json")
        } else {
            Reply::status(405)
        }
    })
}

/// A fresh RSA key in PKCS#8 PEM, as in a service-account key file.
fn rsa_key(dir: &std::path::Path) -> String {
    let path = dir.join("key.pem");
    let status = std::process::Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&path)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl");
    assert!(status.success());
    std::fs::read_to_string(path).unwrap()
}

/// A sandbox reading GCS at `endpoint` through the config file (not as an emulator).
fn sandbox_with_endpoint(endpoint: &str, extra: serde_json::Value) -> Sandbox {
    let mut sandbox = Sandbox::new();
    let mut gs = json!({"endpoint": endpoint});
    if let (Some(gs), Some(extra)) = (gs.as_object_mut(), extra.as_object()) {
        gs.extend(extra.clone());
    }
    let config = sandbox.home().join("ptex.json");
    std::fs::write(&config, json!({"gs": gs}).to_string()).unwrap();
    sandbox.env("PTEX_CONFIG", &config);
    sandbox
}

fn bearers(relay: &Relay) -> Vec<Option<String>> {
    relay
        .requests()
        .iter()
        .map(|r| r.header("authorization").map(str::to_string))
        .collect()
}

#[test]
fn service_account_key_one_exchange_per_run_at_its_token_uri() {
    let server = GcsServer::start();
    let body = payload(1 << 20);
    server.put_object("second", "big.bin", &body);
    let large = payload(10 << 20);
    server.put_object("second", "again.bin", &large);
    let relay = Relay::start(server.port(), Vec::new());
    let tokens = token_endpoint("ya29.from-the-key");
    let sandbox = Sandbox::new();
    let key = sandbox.home().join("sa.json");
    std::fs::write(
        &key,
        json!({"type": "service_account", "client_email": "reader@p.iam.gserviceaccount.com",
            "private_key": rsa_key(&sandbox.home()), "private_key_id": "1",
            "token_uri": tokens.url("/token")})
        .to_string(),
    )
    .unwrap();
    let mut sandbox = sandbox_with_endpoint(&relay.endpoint(), json!({}));
    sandbox
        .env("GOOGLE_APPLICATION_CREDENTIALS", &key)
        .env("PTEX_SPLIT_SIZE", "1")
        .env("PTEX_SPLIT_AFTER", "0")
        .env("PTEX_CONNECTIONS", "4");
    let lift = sandbox.manifest(
        "big.bin",
        // Two buckets in one run (the first lacks the object): one token for both.
        json!(["gs://first/big.bin", "gs://second/big.bin"]),
        Some(body.len() as u64),
        Some(&sha256_hex(&body)),
    );
    sandbox.bind(&lift, "big.bin").assert_delivered(&body);
    let seen = bearers(&relay);
    assert!(seen.len() >= 3, "expected several requests: {seen:?}");
    assert!(
        seen.iter()
            .all(|b| b.as_deref() == Some("Bearer ya29.from-the-key")),
        "{seen:?}"
    );
    assert_eq!(tokens.request_count(), 1, "one exchange per run");

    // One bucket, the file in parts over several connections: still one exchange.
    let lift = sandbox.manifest(
        "again.bin",
        json!("gs://second/again.bin"),
        Some(large.len() as u64),
        Some(&sha256_hex(&large)),
    );
    let before = relay.requests().len();
    let out = sandbox.run(&["-v", lift.to_str().unwrap(), "again.bin"]);
    out.assert_delivered(&large);
    assert!(out.stderr.contains(" parts"), "{}", out.stderr);
    let seen = &bearers(&relay)[before..];
    assert!(seen.len() >= 3, "{seen:?} {}", out.stderr);
    assert!(
        seen.iter()
            .all(|b| b.as_deref() == Some("Bearer ya29.from-the-key")),
        "{seen:?}"
    );
    assert_eq!(tokens.request_count(), 2, "one more run, one more exchange");
}

#[test]
fn authorized_user_refused_exchange_is_named_and_emulator_needs_none() {
    let server = GcsServer::start();
    server.put_object("bkt", "f.bin", b"x");
    let refusing = TestServer::start(|_| Reply::status(401));
    let sandbox = Sandbox::new();
    let key = sandbox.home().join("adc.json");
    std::fs::write(
        &key,
        json!({"type": "authorized_user", "client_id": "id", "client_secret": "s3cr3t",
            "refresh_token": "1//refresh", "token_uri": refusing.url("/token")})
        .to_string(),
    )
    .unwrap();
    let mut direct = sandbox_with_endpoint(&server.endpoint(), json!({"credentials_file": key}));
    let out = direct.run(&["gs://bkt/f.bin"]);
    out.assert_failed(&["gs://bkt/f.bin", "Google key file", "adc.json"]);
    assert!(!out.stderr.contains("1//refresh"), "{}", out.stderr);
    assert_eq!(refusing.request_count(), 1);
    // With STORAGE_EMULATOR_HOST the key file is not exchanged at all.
    direct.env("STORAGE_EMULATOR_HOST", server.endpoint());
    direct.run(&["gs://bkt/f.bin"]).assert_delivered(b"x");
    assert_eq!(refusing.request_count(), 1);
}

#[test]
fn metadata_server_is_recognised_by_its_flavor_header() {
    let server = GcsServer::start();
    server.put_object("bkt", "f.bin", b"x");
    let relay = Relay::start(server.port(), Vec::new());
    let google = TestServer::start(|r| {
        let token = r.path.ends_with("/service-accounts/default/token");
        let reply = if token {
            Reply::ok(r#"{"access_token": "ya29.from-metadata", "expires_in": 3599}"#)
        } else {
            Reply::ok("")
        };
        reply.with_header("Metadata-Flavor", "Google")
    });
    // Another cloud's metadata service: it answers, but not as Google.
    let other = TestServer::start(|_| Reply::ok(r#"{"access_token": "not-google"}"#));

    let mut on_gce = sandbox_with_endpoint(&relay.endpoint(), json!({}));
    on_gce.env("GCE_METADATA_HOST", format!("127.0.0.1:{}", google.port()));
    on_gce.run(&["gs://bkt/f.bin"]).assert_delivered(b"x");
    assert!(
        bearers(&relay)
            .iter()
            .all(|b| b.as_deref() == Some("Bearer ya29.from-metadata")),
        "{:?}",
        bearers(&relay)
    );
    let asked = google.requests();
    assert!(
        asked
            .iter()
            .all(|r| r.header("metadata-flavor") == Some("Google")),
        "{asked:?}"
    );

    let before = relay.requests().len();
    let mut elsewhere = sandbox_with_endpoint(&relay.endpoint(), json!({}));
    elsewhere.env("GCE_METADATA_IP", format!("127.0.0.1:{}", other.port()));
    elsewhere.run(&["gs://bkt/f.bin"]).assert_delivered(b"x");
    let unsigned = &bearers(&relay)[before..];
    assert!(unsigned.iter().all(Option::is_none), "{unsigned:?}");
    assert!(
        !other.requests().iter().any(|r| r.path.contains("/token")),
        "a token was asked of a service that is not Google's"
    );
}

#[test]
fn external_account_without_format_reads_its_token_file_as_text() {
    let server = GcsServer::start();
    server.put_object("bkt", "f.bin", b"x");
    let relay = Relay::start(server.port(), Vec::new());
    let sts = TestServer::start(|r| {
        if r.method == "POST" {
            Reply::ok(
                json!({"access_token": "ya29.federated", "expires_in": 3600,
                    "token_type": "Bearer",
                    "issued_token_type": "urn:ietf:params:oauth:token-type:access_token"})
                .to_string(),
            )
            .with_header("Content-Type", "application/json")
        } else {
            Reply::status(405)
        }
    });
    let sandbox = Sandbox::new();
    let subject = sandbox.home().join("oidc-token");
    std::fs::write(&subject, "eyJ.subject.token").unwrap();
    let key = sandbox.home().join("wif.json");
    std::fs::write(
        &key,
        json!({"type": "external_account",
            "audience": "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/q",
            "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
            "token_url": sts.url("/v1/token"),
            "credential_source": {"file": subject}})
        .to_string(),
    )
    .unwrap();
    let mut sandbox = sandbox_with_endpoint(&relay.endpoint(), json!({}));
    sandbox.env("GOOGLE_APPLICATION_CREDENTIALS", &key);
    sandbox.run(&["gs://bkt/f.bin"]).assert_delivered(b"x");
    assert_eq!(sts.request_count(), 1);
    assert!(
        bearers(&relay)
            .iter()
            .all(|b| b.as_deref() == Some("Bearer ya29.federated")),
        "{:?}",
        bearers(&relay)
    );
}
