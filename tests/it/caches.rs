//! Content-addressed caches (`caches`, `PTEX_CACHES`) on s3s-fs, the GCS emulator, a
//! directory and an HTTP server: a hit spares the origin, a miss is filled after the bytes
//! are out, a cache with wrong bytes is passed over with a warning, a cache that is down
//! costs little. The fleet (many hosts, one cache, a lease) is in `fleet.rs`.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::gcs::GcsServer;
use crate::support::s3::{ACCESS_KEY, S3Server, SECRET_KEY};
use crate::support::scie::{Sandbox, payload, sha256_hex};
use crate::support::server::{Reply, TestServer};
use crate::support::store::HttpStore;

/// An origin serving `body` at `/f.bin`.
fn origin(body: &[u8]) -> TestServer {
    let body = body.to_vec();
    TestServer::start(move |request| match request.path.as_str() {
        "/f.bin" => Reply::ok(body.clone()),
        _ => Reply::status(404),
    })
}

/// Writes `config` as the sandbox's config file.
fn configure(sandbox: &mut Sandbox, config: Value) {
    let path: PathBuf = sandbox.home().join("ptex.json");
    std::fs::write(&path, config.to_string()).unwrap();
    sandbox.env("PTEX_CONFIG", path);
}

/// Fetches `body` through `sandbox` (whose cache holds wrong bytes under `sha`) and asserts
/// the poisoned object was passed over: the right bytes out, a warning naming the cache
/// object (and `reason`, when given), the origin asked once.
fn assert_poisoned_cache_passed_over(
    sandbox: &Sandbox,
    origin: &TestServer,
    body: &[u8],
    cache_object: &str,
    reason: Option<&str>,
) {
    let lift = sandbox.manifest(
        "f.bin",
        json!(origin.url("/f.bin")),
        Some(body.len() as u64),
        Some(&sha256_hex(body)),
    );
    let out = sandbox.bind(&lift, "f.bin");
    out.assert_delivered(body);
    assert!(
        out.stderr.lines().any(|l| l.contains("warning")
            && l.contains(cache_object)
            && reason.is_none_or(|r| l.contains(r))),
        "no warning naming {cache_object}: {}",
        out.stderr
    );
    assert_eq!(origin.request_count(), 1);
}

/// A sandbox that signs its S3 requests for `server`.
pub fn s3_sandbox(server: &S3Server) -> Sandbox {
    let mut sandbox = Sandbox::new();
    sandbox
        .env("AWS_ENDPOINT_URL", server.endpoint())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY);
    sandbox
}

#[test]
fn s3_cache_miss_is_filled_after_the_bytes_are_out_then_hit() {
    let server = S3Server::start();
    server.create_bucket("cas");
    let body = payload(300_000);
    let sha = sha256_hex(&body);
    let origin = origin(&body);
    let mut sandbox = s3_sandbox(&server);
    configure(
        &mut sandbox,
        json!({"caches": [{"url": "s3://cas/sha256/{sha256}", "fill": true}]}),
    );
    let lift = sandbox.manifest(
        "f.bin",
        json!(origin.url("/f.bin")),
        Some(body.len() as u64),
        Some(&sha),
    );
    let out = sandbox.bind(&lift, "f.bin");
    out.assert_delivered(&body);
    // A miss is quiet.
    assert!(!out.stderr.contains("warning"), "{}", out.stderr);
    assert_eq!(origin.request_count(), 1);
    let object = server.object_path("cas", &format!("sha256/{sha}"));
    assert_eq!(
        std::fs::read(&object).unwrap(),
        body,
        "the cache was filled"
    );
    assert!(
        !server
            .object_path("cas", &format!("sha256/{sha}.lease"))
            .exists(),
        "the lease was given back"
    );

    let out = sandbox.run(&["-v", lift.to_str().unwrap(), "f.bin"]);
    out.assert_delivered(&body);
    assert!(out.stderr.contains("cache hit"), "{}", out.stderr);
    assert_eq!(
        origin.request_count(),
        1,
        "the second run never asked the origin"
    );

    // Without a `fill`, a miss is not filled.
    std::fs::remove_file(&object).unwrap();
    configure(
        &mut sandbox,
        json!({"caches": ["s3://cas/sha256/{sha256}"]}),
    );
    sandbox.bind(&lift, "f.bin").assert_delivered(&body);
    assert!(!object.exists());
    assert_eq!(origin.request_count(), 2);
}

#[test]
fn wrong_bytes_in_a_cache_are_passed_over_reported_and_left_alone() {
    let server = S3Server::start();
    let body = payload(100_000);
    let sha = sha256_hex(&body);
    let mut poisoned = body.clone();
    poisoned[5_000] ^= 1;
    server.put_object("cas", &sha, &poisoned);
    let origin = origin(&body);
    let mut sandbox = s3_sandbox(&server);
    configure(
        &mut sandbox,
        json!({"caches": [{"url": "s3://cas/{sha256}", "fill": true}]}),
    );
    assert_poisoned_cache_passed_over(
        &sandbox,
        &origin,
        &body,
        &format!("s3://cas/{sha}"),
        Some("sha256 mismatch"),
    );
    // Not a miss: nothing is written over it (a reader always verifies).
    assert_eq!(
        std::fs::read(server.object_path("cas", &sha)).unwrap(),
        poisoned
    );
}

#[test]
fn gcs_cache_miss_filled_then_hit() {
    let server = GcsServer::start();
    server.put_object("cas", "placeholder", b"x");
    let body = payload(150_000);
    let sha = sha256_hex(&body);
    let origin = origin(&body);
    let mut sandbox = Sandbox::new();
    sandbox.env("STORAGE_EMULATOR_HOST", server.endpoint());
    configure(
        &mut sandbox,
        json!({"caches": [{"url": "gs://cas/sha256/{sha256}", "fill": true}]}),
    );
    let lift = sandbox.manifest(
        "f.bin",
        json!(origin.url("/f.bin")),
        Some(body.len() as u64),
        Some(&sha),
    );
    let out = sandbox.run(&["-v", lift.to_str().unwrap(), "f.bin"]);
    out.assert_delivered(&body);
    assert!(!out.stderr.contains("warning"), "{}", out.stderr);
    // The lease (`ifGenerationMatch=0`) is taken only where the store refuses a second
    // write. gcp-storage-emulator 2026.7.19 (the newest) has no preconditions at all: ptex
    // finds that out and goes on without a lease, and the bytes are right all the same. (An
    // emulator that honours it would print "took the lease" here.)
    assert!(out.stderr.contains("no lease"), "{}", out.stderr);
    assert_eq!(origin.request_count(), 1);
    sandbox
        .run(&[&format!("gs://cas/sha256/{sha}")])
        .assert_delivered(&body);
    let lease = sandbox.run(&[&format!("gs://cas/sha256/{sha}.lease")]);
    assert!(
        lease.stderr.contains("not found"),
        "a lease left behind: {}",
        lease.stderr
    );
    sandbox.bind(&lift, "f.bin").assert_delivered(&body);
    assert_eq!(origin.request_count(), 1, "the second run read the cache");
}

#[test]
fn directory_cache_miss_filled_then_hit_with_name_and_size() {
    let body = payload(70_000);
    let sha = sha256_hex(&body);
    let origin = origin(&body);
    let mut sandbox = Sandbox::new();
    let dir = sandbox.home().join("shared/cas");
    let template = format!("file://{}/{{size}}/{{sha256}}-{{name}}", dir.display());
    configure(
        &mut sandbox,
        json!({"caches": [{"url": template, "fill": true}]}),
    );
    let lift = sandbox.manifest(
        "f.bin",
        json!(origin.url("/f.bin")),
        Some(body.len() as u64),
        Some(&sha),
    );
    sandbox.bind(&lift, "f.bin").assert_delivered(&body);
    let object = dir.join(format!("{}/{sha}-f.bin", body.len()));
    assert_eq!(std::fs::read(&object).unwrap(), body);
    let leftovers: Vec<_> = std::fs::read_dir(object.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        leftovers.len(),
        1,
        "no temporary file or lease left: {leftovers:?}"
    );
    sandbox.bind(&lift, "f.bin").assert_delivered(&body);
    assert_eq!(origin.request_count(), 1);
    // Dry run lists the cache first.
    let out = sandbox.run(&["--dry-run", lift.to_str().unwrap(), "f.bin"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let first = out.stderr.lines().nth(1).unwrap_or_default();
    assert!(
        first.contains(&format!("{sha}-f.bin")) && first.contains("caches[0], filled on a miss"),
        "{}",
        out.stderr
    );
}

#[test]
fn http_cache_from_the_environment_hit_miss_and_down() {
    let body = payload(50_000);
    let sha = sha256_hex(&body);
    let origin = origin(&body);
    let has = Arc::new(AtomicBool::new(true));
    let cache = {
        let (body, has, path) = (body.clone(), has.clone(), format!("/cas/{sha}"));
        TestServer::start(move |request| match request.path == path {
            true if has.load(Ordering::SeqCst) => Reply::ok(body.clone()),
            _ => Reply::status(404),
        })
    };
    let mut sandbox = Sandbox::new();
    sandbox.env("PTEX_CACHES", format!("{} ", cache.url("/cas/{sha256}")));
    let lift = sandbox.manifest(
        "f.bin",
        json!(origin.url("/f.bin")),
        Some(body.len() as u64),
        Some(&sha),
    );
    sandbox.bind(&lift, "f.bin").assert_delivered(&body);
    assert_eq!(origin.request_count(), 0, "served by the cache");

    has.store(false, Ordering::SeqCst);
    let out = sandbox.bind(&lift, "f.bin");
    out.assert_delivered(&body);
    assert!(
        !out.stderr.contains("warning"),
        "a miss is quiet: {}",
        out.stderr
    );
    assert_eq!(origin.request_count(), 1);

    // A cache nobody listens on: one warning, at once, then the origin.
    let closed = crate::support::daemon::free_port();
    let mut down = Sandbox::new();
    down.env(
        "PTEX_CACHES",
        format!("http://127.0.0.1:{closed}/cas/{{sha256}}"),
    )
    .env("PTEX_CONNECT_TIMEOUT", "1");
    let started = Instant::now();
    let out = down.bind(&lift, "f.bin");
    out.assert_delivered(&body);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(
        out.stderr.contains(&format!("127.0.0.1:{closed}")) && out.stderr.contains("skipped"),
        "{}",
        out.stderr
    );
}

#[test]
fn publish_mirror_fills_a_cache_template_and_check_probe_reports_hits() {
    let body = payload(40_000);
    let sha = sha256_hex(&body);
    let origin = origin(&body);
    let mut sandbox = Sandbox::new();
    let dir = sandbox.home().join("cas");
    let template = format!("file://{}/{{sha256}}", dir.display());
    configure(&mut sandbox, json!({"caches": [template]}));
    let lift = sandbox.manifest(
        "f.bin",
        json!(origin.url("/f.bin")),
        Some(body.len() as u64),
        Some(&sha),
    );
    let lift = lift.to_str().unwrap();
    let probe = sandbox.publish(&["check", "--probe", lift]);
    assert_eq!(probe.code, Some(0), "{}", probe.stderr);
    let table = String::from_utf8_lossy(&probe.stdout).into_owned();
    assert!(table.contains("cache miss"), "{table}");

    let out = sandbox.publish(&["mirror", lift, "--to", &template]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed, json!({"caches": [template]}));
    assert_eq!(std::fs::read(dir.join(&sha)).unwrap(), body);
    // A second run finds it there.
    let again = sandbox.publish(&["mirror", lift, "--to", &template]);
    assert!(again.stderr.contains("already at"), "{}", again.stderr);

    let probe = sandbox.publish(&["check", "--probe", lift]);
    assert_eq!(probe.code, Some(0), "{}", probe.stderr);
    let table = String::from_utf8_lossy(&probe.stdout).into_owned();
    assert!(
        table.contains(&sha) && table.contains("cache hit: 40000 bytes"),
        "{table}"
    );
    sandbox
        .bind(std::path::Path::new(lift), "f.bin")
        .assert_delivered(&body);
    let gets = origin
        .requests()
        .iter()
        .filter(|r| r.method == "GET")
        .count();
    assert_eq!(gets, 1, "only the mirror fetched from the origin");
}

#[test]
fn stdout_ends_before_the_fill_which_is_bounded_and_only_warns() {
    let body = payload(80_000);
    let sha = sha256_hex(&body);
    let origin = origin(&body);
    // An S3 endpoint that has nothing (404) and never answers an upload.
    let store = TestServer::start(|request| match request.method.as_str() {
        "PUT" | "POST" => Reply::Drip {
            declared_len: 10,
            headers: Vec::new(),
            body: Vec::new(),
            drip: Vec::new(),
            every: Duration::from_secs(1),
        },
        _ => Reply::status(404),
    });
    let mut sandbox = Sandbox::new();
    sandbox
        .env("AWS_ENDPOINT_URL", store.url(""))
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ACCESS_KEY_ID", "k")
        .env("AWS_SECRET_ACCESS_KEY", "s")
        .env("PTEX_CACHE_WAIT", "0")
        .env("PTEX_FILL_TIMEOUT", "3");
    configure(
        &mut sandbox,
        json!({"caches": [{"url": "s3://cas/{sha256}", "fill": true}]}),
    );
    let lift = sandbox.manifest(
        "f.bin",
        json!(origin.url("/f.bin")),
        Some(body.len() as u64),
        Some(&sha),
    );
    let started = Instant::now();
    let mut child = sandbox
        .command(&[lift.to_str().unwrap(), "f.bin"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut child.stdout.take().unwrap(), &mut out).unwrap();
    // stdout has ended (as scie-jump sees it) while ptex is still filling the cache: it
    // lives on for the fill's 3 s (the pause lets a process that just closed its files
    // finish exiting).
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        child.try_wait().unwrap().is_none(),
        "stdout ended only when ptex exited"
    );
    assert_eq!(sha256_hex(&out), sha);
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("PTEX_FILL_TIMEOUT"), "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn allow_and_block_apply_to_caches() {
    let body = payload(30_000);
    let sha = sha256_hex(&body);
    let origin = origin(&body);
    let mut sandbox = Sandbox::new();
    let dir = sandbox.home().join("cas");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(&sha), &body).unwrap();
    let template = format!("file://{}/{{sha256}}", dir.display());
    let lift = sandbox.manifest(
        "f.bin",
        json!(origin.url("/f.bin")),
        Some(body.len() as u64),
        Some(&sha),
    );
    configure(&mut sandbox, json!({"caches": [template]}));
    sandbox.bind(&lift, "f.bin").assert_delivered(&body);
    assert_eq!(origin.request_count(), 0, "served by the cache");
    configure(
        &mut sandbox,
        json!({"caches": [template], "block": ["file://*"]}),
    );
    sandbox.bind(&lift, "f.bin").assert_delivered(&body);
    assert_eq!(origin.request_count(), 1, "a blocked cache is not read");
    let out = sandbox.run(&["--dry-run", lift.to_str().unwrap(), "f.bin"]);
    assert!(out.stderr.contains("caches[0]; blocked"), "{}", out.stderr);
}

/// `Authorization` for `alice:netrc-secret`, what the netrc of the HTTP cache tests gives.
const ALICE: &str = "Basic YWxpY2U6bmV0cmMtc2VjcmV0";

/// A sandbox whose netrc has credentials for `localhost` (the HTTP cache's name in these
/// tests; the origin is `127.0.0.1`), and whose config fills the cache `template`.
fn http_cache_sandbox(template: &str) -> Sandbox {
    let mut sandbox = Sandbox::new();
    let netrc = sandbox.home().join("netrc");
    std::fs::write(
        &netrc,
        "machine localhost login alice password netrc-secret\n",
    )
    .unwrap();
    sandbox.env("NETRC", &netrc);
    configure(
        &mut sandbox,
        json!({"caches": [{"url": template, "fill": true}]}),
    );
    sandbox
}

#[test]
fn http_cache_miss_is_filled_by_a_conditional_put_then_hit() {
    let body = payload(300_000);
    let sha = sha256_hex(&body);
    let origin = origin(&body);
    let store = HttpStore::start(true, Some(ALICE));
    let template = store
        .server
        .url("/cas/{sha256}")
        .replace("127.0.0.1", "localhost");
    let sandbox = http_cache_sandbox(&template);
    let lift = sandbox.manifest(
        "f.bin",
        json!(origin.url("/f.bin")),
        Some(body.len() as u64),
        Some(&sha),
    );
    let out = sandbox.run(&["-v", lift.to_str().unwrap(), "f.bin"]);
    out.assert_delivered(&body);
    assert!(!out.stderr.contains("warning"), "{}", out.stderr);
    assert!(out.stderr.contains("took the lease"), "{}", out.stderr);
    assert_eq!(origin.request_count(), 1);
    let object = format!("/cas/{sha}");
    assert!(store.get(&object) == Some(body.clone()), "not filled");
    let puts = store.requests_to("PUT", &object);
    assert_eq!(puts.len(), 1);
    assert_eq!(puts[0].header("if-none-match"), Some("*"));
    assert_eq!(
        puts[0].header("content-length"),
        Some(body.len().to_string().as_str())
    );
    // The cache's credentials went to the cache, never to the origin.
    assert_eq!(puts[0].header("authorization"), Some(ALICE));
    assert!(
        origin
            .requests()
            .iter()
            .all(|r| r.header("authorization").is_none())
    );
    assert_eq!(
        store.paths(),
        vec![object.clone()],
        "the lease was given back"
    );

    let out = sandbox.run(&["-v", lift.to_str().unwrap(), "f.bin"]);
    out.assert_delivered(&body);
    assert!(out.stderr.contains("cache hit"), "{}", out.stderr);
    assert_eq!(
        origin.request_count(),
        1,
        "the second run never asked the origin"
    );
    assert_eq!(store.requests_to("PUT", &object).len(), 1);
}

#[test]
fn an_http_cache_that_ignores_the_put_condition_is_filled_without_a_lease() {
    let body = payload(60_000);
    let sha = sha256_hex(&body);
    let origin = origin(&body);
    let store = HttpStore::start(false, None);
    let sandbox = http_cache_sandbox(&store.server.url("/cas/{sha256}"));
    let lift = sandbox.manifest(
        "f.bin",
        json!(origin.url("/f.bin")),
        Some(body.len() as u64),
        Some(&sha),
    );
    let out = sandbox.run(&["-v", lift.to_str().unwrap(), "f.bin"]);
    out.assert_delivered(&body);
    assert!(
        out.stderr.contains("If-None-Match: *") && out.stderr.contains("no lease"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("took the lease"), "{}", out.stderr);
    let object = format!("/cas/{sha}");
    assert!(store.get(&object) == Some(body.clone()), "not filled");
    assert_eq!(store.paths(), [object], "no lease left behind");
}

#[test]
fn wrong_bytes_in_an_http_cache_are_passed_over_reported_and_left_alone() {
    let body = payload(90_000);
    let sha = sha256_hex(&body);
    let mut poisoned = body.clone();
    poisoned[777] ^= 1;
    let origin = origin(&body);
    let store = HttpStore::start(true, None);
    let object = format!("/cas/{sha}");
    store.put(&object, &poisoned);
    let sandbox = http_cache_sandbox(&store.server.url("/cas/{sha256}"));
    assert_poisoned_cache_passed_over(
        &sandbox,
        &origin,
        &body,
        &store.server.url(&object),
        Some("sha256 mismatch"),
    );
    assert!(store.get(&object) == Some(poisoned), "written over");
    assert!(store.requests_to("PUT", &object).is_empty());
}

#[test]
fn a_put_redirected_to_another_origin_carries_the_body_but_not_the_credentials() {
    let body = payload(50_000);
    let sha = sha256_hex(&body);
    let origin = origin(&body);
    let store = HttpStore::start(true, None);
    // The cache's front door sends every request on (307 keeps the method and the body).
    let target = store.server.url("");
    let front = TestServer::start(move |request| {
        Reply::redirect(307, &format!("{target}{}", request.path))
    });
    let template = front.url("/cas/{sha256}").replace("127.0.0.1", "localhost");
    let sandbox = http_cache_sandbox(&template);
    let lift = sandbox.manifest(
        "f.bin",
        json!(origin.url("/f.bin")),
        Some(body.len() as u64),
        Some(&sha),
    );
    let out = sandbox.run(&["-v", lift.to_str().unwrap(), "f.bin"]);
    out.assert_delivered(&body);
    let object = format!("/cas/{sha}");
    assert!(
        store.get(&object) == Some(body.clone()),
        "not filled: {}",
        out.stderr
    );
    let put = front
        .requests()
        .into_iter()
        .find(|r| r.method == "PUT" && r.path == object)
        .expect("a PUT to the front door");
    assert_eq!(put.header("authorization"), Some(ALICE));
    assert!(
        store
            .server
            .requests()
            .iter()
            .all(|r| r.header("authorization").is_none()),
        "credentials crossed the redirect"
    );
}

#[test]
fn wrong_bytes_in_a_gcs_cache_are_passed_over_and_reported() {
    let server = GcsServer::start();
    let body = payload(40_000);
    let sha = sha256_hex(&body);
    let mut poisoned = body.clone();
    poisoned[39_999] ^= 1;
    server.put_object("cas", &sha, &poisoned);
    let origin = origin(&body);
    let mut sandbox = Sandbox::new();
    sandbox.env("STORAGE_EMULATOR_HOST", server.endpoint());
    configure(
        &mut sandbox,
        json!({"caches": [{"url": "gs://cas/{sha256}", "fill": true}]}),
    );
    assert_poisoned_cache_passed_over(
        &sandbox,
        &origin,
        &body,
        &format!("gs://cas/{sha}"),
        Some("sha256 mismatch"),
    );
    // Not a miss: nothing is written over it.
    let left = sandbox.run(&[&format!("gs://cas/{sha}")]);
    assert_eq!(
        sha256_hex(&left.stdout),
        sha256_hex(&poisoned),
        "left alone"
    );
}

#[test]
fn wrong_bytes_in_a_directory_cache_are_passed_over_and_reported() {
    let body = payload(20_000);
    let sha = sha256_hex(&body);
    let origin = origin(&body);
    let mut sandbox = Sandbox::new();
    let dir = sandbox.home().join("cas");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(&sha), &body[..10_000]).unwrap();
    let template = format!("file://{}/{{sha256}}", dir.display());
    configure(
        &mut sandbox,
        json!({"caches": [{"url": template, "fill": true}]}),
    );
    // Cut short rather than flipped: the reason is the size, whatever its wording.
    assert_poisoned_cache_passed_over(
        &sandbox,
        &origin,
        &body,
        &format!("{}/{sha}", dir.display()),
        None,
    );
    assert_eq!(
        std::fs::read(dir.join(&sha)).unwrap().len(),
        10_000,
        "left alone"
    );
}

#[test]
fn a_store_cache_that_is_down_costs_at_most_the_connect_timeout() {
    let body = payload(30_000);
    let sha = sha256_hex(&body);
    let origin = origin(&body);
    let closed = crate::support::daemon::free_port();
    let mut sandbox = Sandbox::new();
    sandbox
        .env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{closed}"))
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env(
            "STORAGE_EMULATOR_HOST",
            format!("http://127.0.0.1:{closed}"),
        )
        .env("PTEX_CONNECT_TIMEOUT", "1");
    configure(
        &mut sandbox,
        json!({"caches": [
            {"url": "s3://cas/{sha256}", "fill": true},
            {"url": "gs://cas/{sha256}", "fill": true}
        ]}),
    );
    let lift = sandbox.manifest(
        "f.bin",
        json!(origin.url("/f.bin")),
        Some(body.len() as u64),
        Some(&sha),
    );
    let started = Instant::now();
    let out = sandbox.bind(&lift, "f.bin");
    out.assert_delivered(&body);
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}: {}",
        started.elapsed(),
        out.stderr
    );
    for cache in [format!("s3://cas/{sha}"), format!("gs://cas/{sha}")] {
        assert!(
            out.stderr
                .lines()
                .any(|l| l.contains(&cache) && l.contains("skipped")),
            "{cache}: {}",
            out.stderr
        );
    }
    assert_eq!(origin.request_count(), 1);
}

#[test]
fn publish_mirror_fills_an_http_cache_by_put() {
    let body = payload(45_000);
    let sha = sha256_hex(&body);
    let origin = origin(&body);
    let store = HttpStore::start(true, None);
    let template = store.server.url("/cas/{sha256}");
    let sandbox = Sandbox::new();
    let lift = sandbox.manifest(
        "f.bin",
        json!(origin.url("/f.bin")),
        Some(body.len() as u64),
        Some(&sha),
    );
    let lift = lift.to_str().unwrap();
    let out = sandbox.publish(&["mirror", lift, "--to", &template]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let object = format!("/cas/{sha}");
    assert!(store.get(&object) == Some(body.clone()), "not filled");
    let puts = store.requests_to("PUT", &object);
    assert_eq!(puts.len(), 1);
    assert_eq!(puts[0].header("if-none-match"), Some("*"));
    // A second run finds it there and sends nothing.
    let again = sandbox.publish(&["mirror", lift, "--to", &template]);
    assert_eq!(again.code, Some(0), "{}", again.stderr);
    assert!(again.stderr.contains("already"), "{}", again.stderr);
    assert_eq!(store.requests_to("PUT", &object).len(), 1);
}
