//! Broken lift manifests fail before any request, naming the manifest and the file
//! (RELIABILITY case 24).

use serde_json::json;

use crate::support::scie::{Sandbox, sha256_hex};
use crate::support::server::{Reply, TestServer};

#[test]
fn broken_manifests_fail_before_any_request() {
    let server = TestServer::start(|_| Reply::ok("x"));
    let url = server.url("/f");
    let hash = sha256_hex(b"x");
    let file = |extra: serde_json::Value| {
        let mut entry = json!({"name": "f"});
        for (k, v) in extra.as_object().unwrap() {
            entry[k] = v.clone();
        }
        json!({"scie": {"lift": {"files": [entry]}}, "ptex": {"f": url}}).to_string()
    };
    let cases: Vec<(&str, String, &str)> = vec![
        ("not JSON", "{\"scie\": ".to_string(), "not valid JSON"),
        (
            "no ptex table",
            json!({"scie": {}}).to_string(),
            "`ptex` table",
        ),
        (
            "file missing from the table",
            json!({"ptex": {"g": url}}).to_string(),
            "no URL",
        ),
        (
            "negative size",
            file(json!({"size": -1, "hash": hash})),
            "size",
        ),
        (
            "size as a string",
            file(json!({"size": "1", "hash": hash})),
            "size",
        ),
        (
            "short hash",
            file(json!({"size": 1, "hash": "abc"})),
            "hash",
        ),
        (
            "uppercase hash",
            file(json!({"size": 1, "hash": hash.to_uppercase()})),
            "lowercase",
        ),
        (
            "scie.lift.files not a list",
            json!({"scie": {"lift": {"files": {"f": {"size": 1, "hash": hash}}}},
                   "ptex": {"f": url}})
            .to_string(),
            "`scie.lift.files` must be a list",
        ),
        (
            "unsupported scheme",
            json!({"scie": {"lift": {"files": [{"name": "f", "size": 1, "hash": hash}]}},
                   "ptex": {"f": "gopher://127.0.0.1/f"}})
            .to_string(),
            "supported: http, https, s3, gs, file, ftp",
        ),
        (
            "URL that does not parse",
            json!({"ptex": {"f": "::nonsense"}}).to_string(),
            "invalid URL",
        ),
    ];
    for (what, text, reason) in cases {
        let sandbox = Sandbox::new();
        let lift = sandbox.raw_manifest(&text);
        let out = sandbox.bind(&lift, "f");
        assert_eq!(out.code, Some(1), "{what}: {}", out.stderr);
        assert!(out.stdout.is_empty(), "{what}");
        let last = out.last_line();
        for word in [lift.to_str().unwrap(), "\"f\"", reason] {
            assert!(last.contains(word), "{what}: {word:?} missing from: {last}");
        }
    }
    assert_eq!(server.request_count(), 0);
}

#[test]
fn missing_manifest_file_is_named() {
    let sandbox = Sandbox::new();
    let missing = sandbox.work().join("nope.json");
    let out = sandbox.bind(&missing, "f");
    out.assert_failed(&[missing.to_str().unwrap(), "\"f\"", "cannot read"]);
}

#[test]
fn unknown_keys_are_ignored() {
    let server = TestServer::start(|_| Reply::ok("x"));
    let sandbox = Sandbox::new();
    let text = json!({
        "scie": {"lift": {"files": [{"name": "f", "size": 1, "hash": sha256_hex(b"x"),
                                      "novel": {"deep": [1, 2]}}],
                          "brand_new": true}},
        "ptex": {"f": server.url("/f"), "g": 12},
        "tomorrow": "yes"
    });
    let out = sandbox.bind(&sandbox.raw_manifest(&text.to_string()), "f");
    out.assert_delivered(b"x");
}
