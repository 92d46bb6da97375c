//! Mirror rewrite rules, allow/block, per-host credentials (config `auth` and
//! `PTEX_AUTH_*`), `--config` and `--dry-run`: the config file a company puts on the
//! machines that run scies, against real servers on loopback.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::support::s3::{ACCESS_KEY, S3Server, SECRET_KEY};
use crate::support::scie::{Outcome, Sandbox, payload, sha256_hex};
use crate::support::server::{Reply, TestServer};

const NAME: &str = "cpython-3.10.8+20221106-x86_64-unknown-linux-gnu-install_only.tar.gz";

/// Writes `value` as the config file in the sandbox's HOME and returns its path.
fn write_config(sandbox: &Sandbox, value: Value) -> PathBuf {
    write_raw_config(sandbox, &value.to_string())
}

/// Writes `text` verbatim as the config file in the sandbox's HOME and returns its path.
fn write_raw_config(sandbox: &Sandbox, text: &str) -> PathBuf {
    let path = sandbox.home().join("ptex-config.json");
    std::fs::write(&path, text).expect("write config");
    path
}

/// A server answering every request with `body`.
fn serve(body: Vec<u8>) -> TestServer {
    TestServer::start(move |_| Reply::ok(body.clone()))
}

/// A server answering every request with `404`.
fn missing() -> TestServer {
    TestServer::start(|_| Reply::status(404))
}

/// A manifest for `NAME` with the given URLs and `body`'s size and hash.
fn lift(sandbox: &Sandbox, urls: Value, body: &[u8]) -> PathBuf {
    sandbox.manifest(NAME, urls, Some(body.len() as u64), Some(&sha256_hex(body)))
}

/// `ptex --config CONFIG LIFT NAME`.
fn bind_with(sandbox: &Sandbox, config: &Path, lift: &Path) -> Outcome {
    sandbox.run(&[
        "--config",
        config.to_str().expect("utf-8 path"),
        lift.to_str().expect("utf-8 path"),
        NAME,
    ])
}

/// The stderr lines that are warnings.
fn warnings(out: &Outcome) -> Vec<&str> {
    out.stderr
        .lines()
        .filter(|line| line.starts_with("ptex: warning:"))
        .collect()
}

/// Asserts that stderr is exactly one warning line, naming `url` and `reason`.
fn assert_one_warning(out: &Outcome, url: &str, reason: &str) {
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "expected one warning line: {}", out.stderr);
    assert!(
        lines[0].starts_with("ptex: warning:")
            && lines[0].contains(url)
            && lines[0].contains(reason),
        "warning should name {url} and {reason:?}: {}",
        lines[0]
    );
}

/// `Basic` credentials as sent on the wire, for the (precomputed) base64 of `user:pass`.
fn basic(base64: &str) -> Option<String> {
    Some(format!("Basic {base64}"))
}

/// The Authorization header of the `index`th request `server` received.
fn authorization(server: &TestServer, index: usize) -> Option<String> {
    server.requests()[index]
        .header("authorization")
        .map(str::to_string)
}

// ---------------------------------------------------------------------------------------
// Rewrite rules
// ---------------------------------------------------------------------------------------

#[test]
fn prefix_rule_with_origin_last_fetches_from_the_mirror_only() {
    let body = payload(100_000);
    let origin = serve(body.clone());
    let mirror = serve(body.clone());
    let sandbox = Sandbox::new();
    let config = write_config(
        &sandbox,
        json!({"mirrors": [{
            "prefix": origin.url("/releases/download/"),
            "urls": [mirror.url("/pbs/")],
            "origin": "last"
        }]}),
    );
    let lift = lift(
        &sandbox,
        json!(origin.url(&format!("/releases/download/20221106/{NAME}"))),
        &body,
    );
    let out = bind_with(&sandbox, &config, &lift);
    out.assert_delivered(&body);
    assert!(out.stderr.is_empty(), "unexpected stderr: {}", out.stderr);
    assert_eq!(mirror.request_count(), 1);
    assert_eq!(mirror.requests()[0].path, format!("/pbs/20221106/{NAME}"));
    assert_eq!(origin.request_count(), 0);
}

#[test]
fn prefix_rule_with_origin_first_tries_the_origin_first() {
    let body = payload(20_000);

    // The origin serves: the mirror is never asked.
    let origin = serve(body.clone());
    let mirror = serve(body.clone());
    let sandbox = Sandbox::new();
    let rule = |origin: &TestServer, mirror: &TestServer| {
        json!({"mirrors": [{
            "prefix": origin.url("/rel/"),
            "urls": [mirror.url("/m/")],
            "origin": "first"
        }]})
    };
    let config = write_config(&sandbox, rule(&origin, &mirror));
    let lift_path = lift(&sandbox, json!(origin.url("/rel/v1/f.tar.gz")), &body);
    let out = bind_with(&sandbox, &config, &lift_path);
    out.assert_delivered(&body);
    assert!(out.stderr.is_empty(), "unexpected stderr: {}", out.stderr);
    assert_eq!((origin.request_count(), mirror.request_count()), (1, 0));
    assert_eq!(origin.requests()[0].path, "/rel/v1/f.tar.gz");

    // The origin is missing the file: the mirror is used, with one warning.
    let origin = missing();
    let mirror = serve(body.clone());
    let sandbox = Sandbox::new();
    let config = write_config(&sandbox, rule(&origin, &mirror));
    let origin_url = origin.url("/rel/v1/f.tar.gz");
    let lift_path = lift(&sandbox, json!(origin_url), &body);
    let out = bind_with(&sandbox, &config, &lift_path);
    out.assert_delivered(&body);
    assert_one_warning(&out, &origin_url, "not found");
    assert_eq!((origin.request_count(), mirror.request_count()), (1, 1));
    assert_eq!(mirror.requests()[0].path, "/m/v1/f.tar.gz");
}

#[test]
fn regex_rule_with_origin_never_never_touches_the_origin() {
    let body = payload(5_000);
    let origin = serve(body.clone());
    let served = body.clone();
    let mirror = TestServer::start(move |r| match r.path.as_str() {
        "/proxy/v2/good.tar.gz" => Reply::ok(served.clone()),
        _ => Reply::status(404),
    });
    let sandbox = Sandbox::new();
    let config = write_config(
        &sandbox,
        json!({"mirrors": [{
            "regex": format!(r"^http://127\.0\.0\.1:{}/files/(.*)$", origin.port()),
            "urls": [mirror.url("/proxy/$1")],
            "origin": "never"
        }]}),
    );

    let good = lift(&sandbox, json!(origin.url("/files/v2/good.tar.gz")), &body);
    let out = bind_with(&sandbox, &config, &good);
    out.assert_delivered(&body);
    assert!(out.stderr.is_empty(), "unexpected stderr: {}", out.stderr);
    assert_eq!(mirror.request_count(), 1);
    assert_eq!(mirror.requests()[0].path, "/proxy/v2/good.tar.gz");

    // The mirror lacks the file: the origin (which has it) is still never asked.
    let origin_url = origin.url("/files/v2/gone.tar.gz");
    let gone = lift(&sandbox, json!(origin_url), &body);
    let out = bind_with(&sandbox, &config, &gone);
    out.assert_failed(&[NAME, &mirror.url("/proxy/v2/gone.tar.gz"), "not found"]);
    assert!(
        !out.last_line().contains(&origin_url),
        "origin listed as tried: {}",
        out.last_line()
    );
    assert_eq!(mirror.request_count(), 2);
    assert_eq!(mirror.requests()[1].path, "/proxy/v2/gone.tar.gz");
    assert_eq!(origin.request_count(), 0);
}

#[test]
fn first_matching_rule_wins() {
    let body = payload(3_000);
    let origin = serve(body.clone());
    let first = missing();
    let second = serve(body.clone());
    let sandbox = Sandbox::new();
    let config = write_config(
        &sandbox,
        json!({"mirrors": [
            {"prefix": origin.url("/rel/v1/"), "urls": [first.url("/one/")]},
            {"prefix": origin.url("/rel/"), "urls": [second.url("/two/")]}
        ]}),
    );
    let origin_url = origin.url("/rel/v1/f.tar.gz");
    let lift_path = lift(&sandbox, json!(origin_url), &body);
    let out = bind_with(&sandbox, &config, &lift_path);
    // The first rule's mirror fails; the second rule never applies, the origin comes last.
    out.assert_delivered(&body);
    assert_one_warning(&out, &first.url("/one/f.tar.gz"), "not found");
    assert_eq!(first.request_count(), 1);
    assert_eq!(second.request_count(), 0);
    assert_eq!(origin.request_count(), 1);
}

#[test]
fn rewrite_to_a_local_file() {
    let body = payload(50_000);
    let origin = serve(body.clone());
    let sandbox = Sandbox::new();
    let dir = sandbox.home().join("mirror");
    std::fs::create_dir_all(dir.join("v1")).unwrap();
    std::fs::write(dir.join("v1").join(NAME), &body).unwrap();
    let config = write_config(
        &sandbox,
        json!({"mirrors": [{
            "prefix": origin.url("/releases/"),
            "urls": [format!("file://{}/", dir.display())]
        }]}),
    );
    let lift_path = lift(
        &sandbox,
        json!(origin.url(&format!("/releases/v1/{NAME}"))),
        &body,
    );
    let out = bind_with(&sandbox, &config, &lift_path);
    out.assert_delivered(&body);
    assert!(out.stderr.is_empty(), "unexpected stderr: {}", out.stderr);
    assert_eq!(origin.request_count(), 0);
}

#[test]
fn rewrite_to_an_s3_bucket() {
    let s3 = S3Server::start();
    let body = payload(80_000);
    s3.put_object("corp-artifacts", &format!("pbs/20221106/{NAME}"), &body);
    let origin = serve(body.clone());
    let mut sandbox = Sandbox::new();
    sandbox
        .env("AWS_ENDPOINT_URL", s3.endpoint())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("AWS_EC2_METADATA_DISABLED", "true");
    let config = write_config(
        &sandbox,
        json!({"mirrors": [{
            "prefix": origin.url("/releases/download/"),
            "urls": ["s3://corp-artifacts/pbs/"],
            "origin": "last"
        }]}),
    );
    let lift_path = lift(
        &sandbox,
        json!(origin.url(&format!("/releases/download/20221106/{NAME}"))),
        &body,
    );
    let out = bind_with(&sandbox, &config, &lift_path);
    out.assert_delivered(&body);
    assert!(out.stderr.is_empty(), "unexpected stderr: {}", out.stderr);
    assert_eq!(origin.request_count(), 0);
}

// ---------------------------------------------------------------------------------------
// Fallback between sources
// ---------------------------------------------------------------------------------------

#[test]
fn missing_on_the_mirror_falls_back_to_the_origin_by_default() {
    let body = payload(7_000);
    let origin = serve(body.clone());
    let mirror = missing();
    let sandbox = Sandbox::new();
    // No "origin": "last" is the default.
    let config = write_config(
        &sandbox,
        json!({"mirrors": [{"prefix": origin.url("/rel/"), "urls": [mirror.url("/m/")]}]}),
    );
    let lift_path = lift(&sandbox, json!(origin.url("/rel/f.tar.gz")), &body);
    let out = bind_with(&sandbox, &config, &lift_path);
    out.assert_delivered(&body);
    assert_one_warning(&out, &mirror.url("/m/f.tar.gz"), "not found");
    assert_eq!((mirror.request_count(), origin.request_count()), (1, 1));
}

#[test]
fn wrong_bytes_on_the_mirror_fall_back_to_the_origin() {
    let body = payload(7_000);
    let mut corrupt = body.clone();
    corrupt[3_500] ^= 0x80;
    let origin = serve(body.clone());
    let mirror = serve(corrupt);
    let sandbox = Sandbox::new();
    let config = write_config(
        &sandbox,
        json!({"mirrors": [{"prefix": origin.url("/rel/"), "urls": [mirror.url("/m/")], "origin": "last"}]}),
    );
    let lift_path = lift(&sandbox, json!(origin.url("/rel/f.tar.gz")), &body);
    let out = bind_with(&sandbox, &config, &lift_path);
    out.assert_delivered(&body);
    assert_one_warning(&out, &mirror.url("/m/f.tar.gz"), "sha256 mismatch");
    assert_eq!((mirror.request_count(), origin.request_count()), (1, 1));
    sandbox.assert_no_spool_debris();
}

#[test]
fn every_source_failing_is_one_error_listing_each_with_its_reason() {
    let body = payload(2_000);
    let mut corrupt = body.clone();
    corrupt[0] ^= 0x01;
    let origin = TestServer::start(|_| Reply::status(403));
    let first = missing();
    let second = serve(corrupt);
    let sandbox = Sandbox::new();
    let config = write_config(
        &sandbox,
        json!({"mirrors": [{
            "prefix": origin.url("/rel/"),
            "urls": [first.url("/a/"), second.url("/b/")],
            "origin": "last"
        }]}),
    );
    let origin_url = origin.url("/rel/f.tar.gz");
    let lift_path = lift(&sandbox, json!(origin_url), &body);
    let out = bind_with(&sandbox, &config, &lift_path);
    let first_url = first.url("/a/f.tar.gz");
    let second_url = second.url("/b/f.tar.gz");
    out.assert_failed(&[
        NAME,
        &first_url,
        "not found",
        &second_url,
        "sha256 mismatch",
        &origin_url,
        "403",
    ]);
    // Listed in the order tried.
    let last = out.last_line();
    let (a, b, c) = (
        last.find(&first_url).unwrap(),
        last.find(&second_url).unwrap(),
        last.find(&origin_url).unwrap(),
    );
    assert!(a < b && b < c, "sources out of order: {last}");
    // A warning for each fallback, then the error.
    assert_eq!(warnings(&out).len(), 2, "{}", out.stderr);
    assert_eq!(
        (
            first.request_count(),
            second.request_count(),
            origin.request_count()
        ),
        (1, 1, 1)
    );
}

#[test]
fn duplicate_candidates_are_tried_once() {
    let body = payload(1_000);
    let origin = missing();
    let mirror = missing();
    let sandbox = Sandbox::new();
    let config = write_config(
        &sandbox,
        json!({"mirrors": [{"prefix": origin.url("/rel/"), "urls": [mirror.url("/m/")]}]}),
    );
    let origin_url = origin.url("/rel/f.tar.gz");
    let mirror_url = mirror.url("/m/f.tar.gz");
    // The manifest names the mirror's copy too: it is already a candidate (from the rule).
    let lift_path = lift(&sandbox, json!([origin_url, mirror_url]), &body);
    let out = bind_with(&sandbox, &config, &lift_path);
    out.assert_failed(&[NAME, &mirror_url, &origin_url, "not found"]);
    assert_eq!(
        out.last_line().matches(&mirror_url).count(),
        1,
        "{}",
        out.last_line()
    );
    assert_eq!((mirror.request_count(), origin.request_count()), (1, 1));
}

// ---------------------------------------------------------------------------------------
// allow / block
// ---------------------------------------------------------------------------------------

#[test]
fn allowed_mirror_is_used_and_blocked_origin_never_asked() {
    // The origin is addressed as `localhost`, the mirror as `127.0.0.1`: the patterns tell
    // them apart by host.
    for allow in ["127.0.0.1", "http://127.0.0.1", "127.0.0.*"] {
        let body = payload(4_000);
        let origin = serve(body.clone());
        let mirror = serve(body.clone());
        let sandbox = Sandbox::new();
        let origin_base = format!("http://localhost:{}/rel/", origin.port());
        let config = write_config(
            &sandbox,
            json!({
                "mirrors": [{"prefix": origin_base, "urls": [mirror.url("/m/")], "origin": "last"}],
                "allow": [allow],
                "block": ["*"]
            }),
        );
        let lift_path = lift(&sandbox, json!(format!("{origin_base}f.tar.gz")), &body);
        let out = bind_with(&sandbox, &config, &lift_path);
        out.assert_delivered(&body);
        assert!(out.stderr.is_empty(), "allow {allow}: {}", out.stderr);
        assert_eq!(mirror.request_count(), 1, "allow {allow}");
        assert_eq!(origin.request_count(), 0, "allow {allow}");
    }
}

#[test]
fn blocked_origin_is_not_a_fallback() {
    let body = payload(4_000);
    let origin = serve(body.clone());
    let mirror = missing();
    let sandbox = Sandbox::new();
    let origin_base = format!("http://localhost:{}/rel/", origin.port());
    let config = write_config(
        &sandbox,
        json!({
            "mirrors": [{"prefix": origin_base, "urls": [mirror.url("/m/")], "origin": "last"}],
            "allow": ["127.0.0.1"],
            "block": ["*"]
        }),
    );
    let lift_path = lift(&sandbox, json!(format!("{origin_base}f.tar.gz")), &body);
    let out = bind_with(&sandbox, &config, &lift_path);
    out.assert_failed(&[NAME, &mirror.url("/m/f.tar.gz"), "not found"]);
    assert_eq!(mirror.request_count(), 1);
    assert_eq!(origin.request_count(), 0);
}

#[test]
fn everything_blocked_fails_with_the_blocked_message_and_no_request() {
    let body = payload(1_000);
    let origin = serve(body.clone());
    let mirror = serve(body.clone());
    let sandbox = Sandbox::new();
    let message = "Only the corporate mirror may be used; see go/mirrors";
    let config = write_config(
        &sandbox,
        json!({
            "mirrors": [{"prefix": origin.url("/rel/"), "urls": [mirror.url("/m/")]}],
            "allow": ["*.corp.example", "s3://corp-artifacts"],
            "block": ["*"],
            "blocked_message": message
        }),
    );
    let origin_url = origin.url("/rel/f.tar.gz");
    let mirror_url = mirror.url("/m/f.tar.gz");
    let lift_path = lift(&sandbox, json!(origin_url), &body);
    let out = bind_with(&sandbox, &config, &lift_path);
    out.assert_failed(&[message, &origin_url, &mirror_url]);
    assert_eq!((origin.request_count(), mirror.request_count()), (0, 0));
}

#[test]
fn block_patterns_ignore_case() {
    let origin = serve(b"x".to_vec());
    let sandbox = Sandbox::new();
    let config = write_config(&sandbox, json!({"block": ["LocalHost"]}));
    let url = format!("http://localhost:{}/f", origin.port());
    let lift_path = lift(&sandbox, json!(url), b"x");
    bind_with(&sandbox, &config, &lift_path).assert_failed(&[&url]);
    assert_eq!(origin.request_count(), 0);
}

#[test]
fn scheme_patterns_match_the_s3_bucket() {
    let s3 = S3Server::start();
    let body = payload(10_000);
    s3.put_object("corp-artifacts", "pbs/f.tar.gz", &body);
    let origin = serve(body.clone());
    let mut sandbox = Sandbox::new();
    sandbox
        .env("AWS_ENDPOINT_URL", s3.endpoint())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("AWS_EC2_METADATA_DISABLED", "true");
    let origin_url = origin.url("/rel/f.tar.gz");
    let lift_path = lift(&sandbox, json!(origin_url), &body);
    let config_allowing = |allow: &str| {
        json!({
            "mirrors": [{"prefix": origin.url("/rel/"), "urls": ["s3://corp-artifacts/pbs/"]}],
            "allow": [allow],
            "block": ["*"],
            "blocked_message": "use the bucket"
        })
    };

    let config = write_config(&sandbox, config_allowing("s3://corp-artifacts"));
    bind_with(&sandbox, &config, &lift_path).assert_delivered(&body);

    // The scheme is part of the pattern: `http://corp-artifacts` does not allow the bucket.
    let config = write_config(&sandbox, config_allowing("http://corp-artifacts"));
    bind_with(&sandbox, &config, &lift_path).assert_failed(&[
        "use the bucket",
        "s3://corp-artifacts/pbs/f.tar.gz",
        &origin_url,
    ]);
    assert_eq!(origin.request_count(), 0);
}

// ---------------------------------------------------------------------------------------
// Credentials from the config file
// ---------------------------------------------------------------------------------------

#[test]
fn bearer_env_goes_to_its_host_and_port_only() {
    let other = missing();
    let mirror = serve(b"x".to_vec());
    let mut sandbox = Sandbox::new();
    sandbox.env("CORP_MIRROR_TOKEN", "tok-7Hq2");
    let config = write_config(
        &sandbox,
        json!({"auth": {format!("127.0.0.1:{}", mirror.port()): {"bearer_env": "CORP_MIRROR_TOKEN"}}}),
    );
    let lift_path = lift(&sandbox, json!([other.url("/f"), mirror.url("/f")]), b"x");
    let out = bind_with(&sandbox, &config, &lift_path);
    out.assert_delivered(b"x");
    assert_one_warning(&out, &other.url("/f"), "not found");
    assert_eq!((other.request_count(), mirror.request_count()), (1, 1));
    assert_eq!(
        authorization(&mirror, 0),
        Some("Bearer tok-7Hq2".to_string())
    );
    assert_eq!(authorization(&other, 0), None);
    assert!(!out.stderr.contains("tok-7Hq2"), "{}", out.stderr);
}

#[test]
fn basic_env_goes_to_its_host_and_port_only() {
    let other = missing();
    let mirror = serve(b"x".to_vec());
    let mut sandbox = Sandbox::new();
    sandbox.env("ART_USER", "alice").env("ART_PASS", "s3cret");
    let config = write_config(
        &sandbox,
        json!({"auth": {format!("127.0.0.1:{}", mirror.port()):
            {"basic_env": {"user": "ART_USER", "password": "ART_PASS"}}}}),
    );
    let lift_path = lift(&sandbox, json!([other.url("/f"), mirror.url("/f")]), b"x");
    let out = bind_with(&sandbox, &config, &lift_path);
    out.assert_delivered(b"x");
    assert_eq!((other.request_count(), mirror.request_count()), (1, 1));
    // alice:s3cret
    assert_eq!(authorization(&mirror, 0), basic("YWxpY2U6czNjcmV0"));
    assert_eq!(authorization(&other, 0), None);
    assert!(!out.stderr.contains("s3cret"), "{}", out.stderr);
}

#[test]
fn bare_host_auth_key_matches_every_port() {
    let a = missing();
    let b = serve(b"x".to_vec());
    let mut sandbox = Sandbox::new();
    sandbox.env("ANY_USER", "bob").env("ANY_PASS", "any-port");
    let config = write_config(
        &sandbox,
        json!({"auth": {"127.0.0.1": {"basic_env": {"user": "ANY_USER", "password": "ANY_PASS"}}}}),
    );
    let lift_path = lift(&sandbox, json!([a.url("/f"), b.url("/f")]), b"x");
    bind_with(&sandbox, &config, &lift_path).assert_delivered(b"x");
    // bob:any-port
    assert_eq!(authorization(&a, 0), basic("Ym9iOmFueS1wb3J0"));
    assert_eq!(authorization(&b, 0), basic("Ym9iOmFueS1wb3J0"));
}

#[test]
fn configured_headers_go_to_their_host_only() {
    let with_headers = missing();
    let without = serve(b"x".to_vec());
    let sandbox = Sandbox::new();
    let config = write_config(
        &sandbox,
        json!({"auth": {format!("127.0.0.1:{}", with_headers.port()): {"headers": {
            "Accept": "application/octet-stream",
            "X-Corp-Key": "k1"
        }}}}),
    );
    let lift_path = lift(
        &sandbox,
        json!([with_headers.url("/f"), without.url("/f")]),
        b"x",
    );
    bind_with(&sandbox, &config, &lift_path).assert_delivered(b"x");
    let at_host = &with_headers.requests()[0];
    assert_eq!(at_host.header("x-corp-key"), Some("k1"));
    let accepts: Vec<&str> = at_host
        .headers
        .iter()
        .filter(|(n, _)| n == "accept")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(accepts, ["application/octet-stream"]);
    let elsewhere = &without.requests()[0];
    assert_eq!(elsewhere.header("x-corp-key"), None);
    assert_ne!(elsewhere.header("accept"), Some("application/octet-stream"));
}

#[test]
fn redirect_to_another_port_drops_the_configured_credentials() {
    let second = serve(b"x".to_vec());
    let target = second.url("/f");
    let first = TestServer::start(move |_| Reply::redirect(302, &target));
    let mut sandbox = Sandbox::new();
    sandbox.env("FIRST_TOKEN", "first-secret-token");
    let config = write_config(
        &sandbox,
        json!({"auth": {format!("127.0.0.1:{}", first.port()): {
            "bearer_env": "FIRST_TOKEN",
            "headers": {"X-Corp-Key": "first-key"}
        }}}),
    );
    let lift_path = lift(&sandbox, json!(first.url("/f")), b"x");
    let out = bind_with(&sandbox, &config, &lift_path);
    out.assert_delivered(b"x");
    assert_eq!((first.request_count(), second.request_count()), (1, 1));
    let at_first = &first.requests()[0];
    assert_eq!(
        at_first.header("authorization"),
        Some("Bearer first-secret-token")
    );
    assert_eq!(at_first.header("x-corp-key"), Some("first-key"));
    let at_second = &second.requests()[0];
    assert_eq!(at_second.header("authorization"), None);
    assert_eq!(at_second.header("x-corp-key"), None);
    for (name, value) in &at_second.headers {
        assert!(
            !value.contains("first-secret-token") && !value.contains("first-key"),
            "{name}: {value} leaked to the other port"
        );
    }
}

#[test]
fn literal_secrets_work_with_a_warning_that_never_shows_them() {
    let server = serve(b"x".to_vec());
    let key = format!("127.0.0.1:{}", server.port());
    for (entry, expected, secret) in [
        (
            json!({"bearer": "literal-tok-9f3"}),
            Some("Bearer literal-tok-9f3".to_string()),
            "literal-tok-9f3",
        ),
        (
            json!({"basic": {"user": "lu", "password": "lit-pass-77"}}),
            // lu:lit-pass-77
            basic("bHU6bGl0LXBhc3MtNzc="),
            "lit-pass-77",
        ),
    ] {
        let sandbox = Sandbox::new();
        let config = write_config(&sandbox, json!({"auth": {key.clone(): entry}}));
        let before = server.request_count();
        let lift_path = lift(&sandbox, json!(server.url("/f")), b"x");
        let out = bind_with(&sandbox, &config, &lift_path);
        out.assert_delivered(b"x");
        assert_eq!(server.request_count(), before + 1);
        assert_eq!(authorization(&server, before), expected);
        let warned = warnings(&out);
        assert!(
            warned.iter().any(|w| w.contains("literal secret")),
            "no literal-secret warning: {}",
            out.stderr
        );
        assert!(!out.stderr.contains(secret), "{}", out.stderr);
    }
}

// ---------------------------------------------------------------------------------------
// Credentials from the environment (no config file)
// ---------------------------------------------------------------------------------------

#[test]
fn env_bearer_goes_to_its_host_and_port_only() {
    let other = missing();
    let server = serve(b"x".to_vec());
    let mut sandbox = Sandbox::new();
    sandbox.env(
        &format!("PTEX_AUTH_127_0_0_1_{}_BEARER", server.port()),
        "env-tok-51",
    );
    let lift_path = lift(&sandbox, json!([other.url("/f"), server.url("/f")]), b"x");
    let out = sandbox.bind(&lift_path, NAME);
    out.assert_delivered(b"x");
    assert_eq!(
        authorization(&server, 0),
        Some("Bearer env-tok-51".to_string())
    );
    assert_eq!(authorization(&other, 0), None);
    assert!(!out.stderr.contains("env-tok-51"), "{}", out.stderr);
}

#[test]
fn env_basic_goes_to_its_host_and_port_only() {
    let other = missing();
    let server = serve(b"x".to_vec());
    let mut sandbox = Sandbox::new();
    let prefix = format!("PTEX_AUTH_127_0_0_1_{}", server.port());
    sandbox
        .env(&format!("{prefix}_BASIC_USER"), "eve")
        .env(&format!("{prefix}_BASIC_PASS"), "pw2");
    let lift_path = lift(&sandbox, json!([other.url("/f"), server.url("/f")]), b"x");
    sandbox.bind(&lift_path, NAME).assert_delivered(b"x");
    // eve:pw2
    assert_eq!(authorization(&server, 0), basic("ZXZlOnB3Mg=="));
    assert_eq!(authorization(&other, 0), None);
}

#[test]
fn env_host_with_port_comes_before_the_bare_host() {
    let other = missing();
    let server = serve(b"x".to_vec());
    let mut sandbox = Sandbox::new();
    sandbox
        .env("PTEX_AUTH_127_0_0_1_BEARER", "any-port-tok")
        .env(
            &format!("PTEX_AUTH_127_0_0_1_{}_BEARER", server.port()),
            "this-port-tok",
        );
    let lift_path = lift(&sandbox, json!([other.url("/f"), server.url("/f")]), b"x");
    sandbox.bind(&lift_path, NAME).assert_delivered(b"x");
    assert_eq!(
        authorization(&server, 0),
        Some("Bearer this-port-tok".to_string())
    );
    assert_eq!(
        authorization(&other, 0),
        Some("Bearer any-port-tok".to_string())
    );
}

#[test]
fn authorization_precedence_flag_env_config_netrc() {
    let server = serve(b"x".to_vec());
    let mut sandbox = Sandbox::new();
    std::fs::write(
        sandbox.home().join(".netrc"),
        "machine 127.0.0.1 login n password p\n",
    )
    .unwrap();
    sandbox.env("CFG_TOKEN", "from-config");
    let config = write_config(
        &sandbox,
        json!({"auth": {format!("127.0.0.1:{}", server.port()): {"bearer_env": "CFG_TOKEN"}}}),
    );
    let lift_path = lift(&sandbox, json!(server.url("/f")), b"x");
    let lift_arg = lift_path.to_str().unwrap();
    let config_arg = config.to_str().unwrap();

    // netrc alone.
    sandbox.bind(&lift_path, NAME).assert_delivered(b"x");
    // n:p
    assert_eq!(authorization(&server, 0), basic("bjpw"));

    // config > netrc.
    bind_with(&sandbox, &config, &lift_path).assert_delivered(b"x");
    assert_eq!(
        authorization(&server, 1),
        Some("Bearer from-config".to_string())
    );

    // env > config > netrc.
    sandbox.env(
        &format!("PTEX_AUTH_127_0_0_1_{}_BEARER", server.port()),
        "from-env",
    );
    bind_with(&sandbox, &config, &lift_path).assert_delivered(b"x");
    assert_eq!(
        authorization(&server, 2),
        Some("Bearer from-env".to_string())
    );

    // -H > env > config > netrc.
    sandbox
        .run(&[
            "-H",
            "Authorization: Bearer from-flag",
            "--config",
            config_arg,
            lift_arg,
            NAME,
        ])
        .assert_delivered(b"x");
    assert_eq!(
        authorization(&server, 3),
        Some("Bearer from-flag".to_string())
    );
    assert_eq!(server.request_count(), 4);
    // Exactly one Authorization header each time.
    for request in server.requests() {
        let count = request
            .headers
            .iter()
            .filter(|(n, _)| n == "authorization")
            .count();
        assert_eq!(count, 1, "{request:?}");
    }
}

// ---------------------------------------------------------------------------------------
// Where the config file is found
// ---------------------------------------------------------------------------------------

#[test]
fn config_flag_beats_ptex_config_beats_the_default_location() {
    let body = payload(1_000);
    let origin = missing();
    let default_mirror = serve(body.clone());
    let env_mirror = serve(body.clone());
    let flag_mirror = serve(body.clone());
    let mut sandbox = Sandbox::new();
    let rule = |mirror: &TestServer| {
        json!({"mirrors": [{"prefix": origin.url("/rel/"), "urls": [mirror.url("/m/")], "origin": "never"}]})
            .to_string()
    };
    let default_dir = sandbox.home().join(".config").join("ptex");
    std::fs::create_dir_all(&default_dir).unwrap();
    std::fs::write(default_dir.join("config.json"), rule(&default_mirror)).unwrap();
    let lift_path = lift(&sandbox, json!(origin.url("/rel/f.tar.gz")), &body);

    sandbox.bind(&lift_path, NAME).assert_delivered(&body);
    assert_eq!(default_mirror.request_count(), 1);

    let env_config = sandbox.home().join("env-config.json");
    std::fs::write(&env_config, rule(&env_mirror)).unwrap();
    sandbox.env("PTEX_CONFIG", &env_config);
    sandbox.bind(&lift_path, NAME).assert_delivered(&body);
    assert_eq!(env_mirror.request_count(), 1);

    let flag_config = sandbox.home().join("flag-config.json");
    std::fs::write(&flag_config, rule(&flag_mirror)).unwrap();
    bind_with(&sandbox, &flag_config, &lift_path).assert_delivered(&body);
    assert_eq!(flag_mirror.request_count(), 1);

    assert_eq!(
        (
            default_mirror.request_count(),
            env_mirror.request_count(),
            origin.request_count()
        ),
        (1, 1, 0)
    );
}

// ---------------------------------------------------------------------------------------
// --dry-run
// ---------------------------------------------------------------------------------------

#[test]
fn dry_run_lists_candidates_in_order_with_credential_names_and_no_request() {
    let body = payload(1_000);
    let origin = serve(body.clone());
    let a = serve(body.clone());
    let b = serve(body.clone());
    let c = serve(body.clone());
    let mut sandbox = Sandbox::new();
    sandbox.env("DRY_TOKEN", "dry-secret-a1");
    let b_env = format!("PTEX_AUTH_127_0_0_1_{}_BEARER", b.port());
    sandbox.env(&b_env, "dry-secret-b2");
    let origin_base = format!("http://localhost:{}/rel/", origin.port());
    let config = write_config(
        &sandbox,
        json!({
            "mirrors": [{
                "prefix": origin_base,
                "urls": [a.url("/m/"), b.url("/m/")],
                "origin": "last"
            }],
            "block": ["localhost"],
            "auth": {format!("127.0.0.1:{}", a.port()): {"bearer_env": "DRY_TOKEN"}}
        }),
    );
    let origin_url = format!("{origin_base}f.tar.gz");
    let a_url = a.url("/m/f.tar.gz");
    let b_url = b.url("/m/f.tar.gz");
    let c_url = c.url("/f.tar.gz");
    let lift_path = lift(&sandbox, json!([origin_url, c_url]), &body);
    let dry_run = |sandbox: &Sandbox| {
        sandbox.run(&[
            "--dry-run",
            "--config",
            config.to_str().unwrap(),
            lift_path.to_str().unwrap(),
            NAME,
        ])
    };

    let out = dry_run(&sandbox);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stdout.is_empty(),
        "{} bytes on stdout",
        out.stdout.len()
    );
    let lines: Vec<&str> = out.stderr.lines().collect();
    let line_of = |url: &str| {
        let matching: Vec<usize> = lines
            .iter()
            .enumerate()
            .filter(|(_, l)| l.contains(url))
            .map(|(i, _)| i)
            .collect();
        assert_eq!(
            matching.len(),
            1,
            "{url} not on exactly one line: {}",
            out.stderr
        );
        matching[0]
    };
    let (la, lb, lo, lc) = (
        line_of(&a_url),
        line_of(&b_url),
        line_of(&origin_url),
        line_of(&c_url),
    );
    assert!(
        la < lb && lb < lc,
        "candidates out of order: {}",
        out.stderr
    );
    assert!(lines[la].contains("bearer_env DRY_TOKEN"), "{}", lines[la]);
    assert!(lines[lb].contains(&b_env), "{}", lines[lb]);
    assert!(lines[lc].contains("none"), "{}", lines[lc]);
    assert!(lines[lo].contains("blocked"), "{}", lines[lo]);
    for l in [la, lb, lc] {
        assert!(!lines[l].contains("blocked"), "{}", lines[l]);
    }
    for secret in ["dry-secret-a1", "dry-secret-b2"] {
        assert!(!out.stderr.contains(secret), "{}", out.stderr);
    }

    // With a netrc entry for 127.0.0.1, the candidate without other credentials uses it.
    std::fs::write(
        sandbox.home().join(".netrc"),
        "machine 127.0.0.1 login n password netrc-secret-c3\n",
    )
    .unwrap();
    let out = dry_run(&sandbox);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stdout.is_empty());
    let line = out
        .stderr
        .lines()
        .find(|l| l.contains(&c_url))
        .unwrap_or_else(|| panic!("{c_url} not listed: {}", out.stderr));
    assert!(line.contains("netrc"), "{line}");
    assert!(!out.stderr.contains("netrc-secret-c3"), "{}", out.stderr);
    // The higher-precedence sources still win for the mirrors.
    let line = out.stderr.lines().find(|l| l.contains(&a_url)).unwrap();
    assert!(line.contains("bearer_env DRY_TOKEN"), "{line}");

    assert_eq!(
        (
            origin.request_count(),
            a.request_count(),
            b.request_count(),
            c.request_count()
        ),
        (0, 0, 0, 0)
    );
}

// ---------------------------------------------------------------------------------------
// Config mistakes
// ---------------------------------------------------------------------------------------

/// How a config file is named to ptex.
enum Via {
    Flag,
    Env,
}

/// Runs a fetch of a file on a fresh server with `config` (built from that server) as the
/// config file, and asserts a failure before any request whose last stderr line has every
/// one of `words` (built from the server and the config's path).
fn assert_config_mistake(
    via: Via,
    config: impl Fn(&TestServer) -> String,
    words: impl Fn(&TestServer, &Path) -> Vec<String>,
) {
    let server = serve(b"x".to_vec());
    let mut sandbox = Sandbox::new();
    let path = write_raw_config(&sandbox, &config(&server));
    let lift_path = lift(&sandbox, json!(server.url("/f")), b"x");
    let out = match via {
        Via::Flag => bind_with(&sandbox, &path, &lift_path),
        Via::Env => {
            sandbox.env("PTEX_CONFIG", &path);
            sandbox.bind(&lift_path, NAME)
        }
    };
    let words = words(&server, &path);
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    out.assert_failed(&words);
    assert_eq!(server.request_count(), 0);
}

#[test]
fn config_with_bad_json_fails_before_any_request() {
    assert_config_mistake(
        Via::Flag,
        |_| r#"{"mirrors": [{"prefix": "http://a/", "urls": ["#.to_string(),
        |_, path| vec![path.display().to_string()],
    );
    assert_config_mistake(
        Via::Env,
        |_| "{not json".to_string(),
        |_, path| vec![path.display().to_string()],
    );
}

#[test]
fn config_with_a_bad_regex_names_the_rule() {
    assert_config_mistake(
        Via::Flag,
        |s| {
            json!({"mirrors": [
                {"prefix": "https://elsewhere.example/", "urls": [s.url("/m/")]},
                {"regex": "(", "urls": [s.url("/m/$1")]}
            ]})
            .to_string()
        },
        |_, path| vec![path.display().to_string(), "mirrors[1]".to_string()],
    );
}

#[test]
fn config_with_an_unknown_key_names_the_rule_and_the_key() {
    assert_config_mistake(
        Via::Env,
        |s| {
            json!({"mirrors": [
                {"prefix": "https://elsewhere.example/", "urls": [s.url("/m/")]},
                {"prefx": s.url("/"), "urls": [s.url("/m/")]}
            ]})
            .to_string()
        },
        |_, path| {
            vec![
                path.display().to_string(),
                "mirrors[1]".to_string(),
                "prefx".to_string(),
            ]
        },
    );
}

#[test]
fn unset_bearer_env_variable_fails_before_any_request() {
    assert_config_mistake(
        Via::Flag,
        |s| {
            json!({"auth": {format!("127.0.0.1:{}", s.port()): {"bearer_env": "PTEX_TEST_UNSET_TOKEN"}}})
                .to_string()
        },
        |s, _| {
            vec![
                "PTEX_TEST_UNSET_TOKEN".to_string(),
                format!("auth.\"127.0.0.1:{}\"", s.port()),
            ]
        },
    );
}

#[test]
fn config_with_an_unknown_auth_key_names_the_entry_and_the_key() {
    assert_config_mistake(
        Via::Flag,
        |s| {
            json!({"auth": {format!("127.0.0.1:{}", s.port()): {"bearer_envv": "SOME_TOKEN"}}})
                .to_string()
        },
        |s, path| {
            vec![
                path.display().to_string(),
                format!("auth.\"127.0.0.1:{}\"", s.port()),
                "bearer_envv".to_string(),
            ]
        },
    );
}

#[test]
fn config_with_an_unknown_top_level_key_names_the_key() {
    assert_config_mistake(
        Via::Flag,
        |s| json!({"mirorrs": [{"prefix": s.url("/"), "urls": [s.url("/m/")]}]}).to_string(),
        |_, path| vec![path.display().to_string(), "mirorrs".to_string()],
    );
}
