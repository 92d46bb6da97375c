//! Large files come in concurrent ranged parts (issue 6): whatever order the parts arrive
//! in, whichever of them breaks off, the output is exactly the verified bytes; parts of two
//! versions of a file are never stitched together.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::gcs::GcsServer;
use crate::support::s3::{ACCESS_KEY, S3Server, SECRET_KEY};
use crate::support::scie::{Sandbox, payload, sha256_hex};
use crate::support::server::{Reply, Request, TestServer};

const MIB: usize = 1 << 20;
/// Large enough for three parts of ptex's smallest part size (4 MiB).
const SIZE: usize = 10 * MIB;

/// The byte range a request asks for: `None` for a plain GET.
fn range(request: &Request) -> Option<(usize, Option<usize>)> {
    let spec = request.header("range")?.strip_prefix("bytes=")?;
    let (first, last) = spec.split_once('-')?;
    Some((first.parse().ok()?, last.parse().ok()))
}

/// A `206` for bytes `first..=last` of `body`, as version `etag`.
fn partial(body: &[u8], first: usize, last: usize, etag: &str) -> Reply {
    Reply::Full {
        status: 206,
        headers: vec![
            (
                "Content-Range".into(),
                format!("bytes {first}-{last}/{}", body.len()),
            ),
            ("ETag".into(), etag.into()),
            ("Accept-Ranges".into(), "bytes".into()),
        ],
        body: body[first..=last].to_vec(),
    }
}

/// The whole of `body` as version `etag`, saying ranges are served.
fn whole(body: &[u8], etag: &str) -> Reply {
    Reply::ok(body.to_vec())
        .with_header("ETag", etag)
        .with_header("Accept-Ranges", "bytes")
}

/// Serves `body` as `"v1"`: whole for a plain GET, the asked part for a ranged one whose
/// `If-Range` matches. `fault` may answer a request (by its number, from 0) instead.
fn ranged_server(
    body: &[u8],
    fault: impl Fn(usize, &Request) -> Option<Reply> + Send + Sync + 'static,
) -> TestServer {
    let body = body.to_vec();
    let count = AtomicUsize::new(0);
    TestServer::start(move |request| {
        let n = count.fetch_add(1, Ordering::SeqCst);
        if let Some(reply) = fault(n, request) {
            return reply;
        }
        match range(request) {
            Some((first, last)) if request.header("if-range") == Some("\"v1\"") => {
                partial(&body, first, last.unwrap_or(body.len() - 1), "\"v1\"")
            }
            _ => whole(&body, "\"v1\""),
        }
    })
}

/// A sandbox that splits any file (no minimum size) at once (without first measuring one
/// connection), and a manifest for `body` at `url`.
fn setup(body: &[u8], url: String) -> (Sandbox, std::path::PathBuf) {
    let mut sandbox = Sandbox::new();
    sandbox
        .env("PTEX_SPLIT_SIZE", "1")
        .env("PTEX_SPLIT_AFTER", "0");
    let lift = sandbox.manifest(
        "big.bin",
        json!(url),
        Some(body.len() as u64),
        Some(&sha256_hex(body)),
    );
    (sandbox, lift)
}

/// The ranged requests a server saw, as (first, last) byte positions, sorted.
fn ranges(server: &TestServer) -> Vec<(usize, Option<usize>)> {
    let mut seen: Vec<_> = server.requests().iter().filter_map(range).collect();
    seen.sort();
    seen
}

#[test]
fn a_large_file_comes_in_guarded_parts_and_verifies() {
    let body = payload(SIZE);
    let server = ranged_server(&body, |_, _| None);
    let (sandbox, lift) = setup(&body, server.url("/big.bin"));
    let out = sandbox.run(&["-v", lift.to_str().unwrap(), "big.bin"]);
    out.assert_delivered(&body);
    assert!(out.stderr.contains("in 3 parts"), "{}", out.stderr);
    // The first request opens the file whole (and serves the first part); the others ask
    // for exactly their part of version "v1".
    let requests = server.requests();
    assert_eq!(requests.len(), 3);
    assert_eq!(requests[0].header("range"), None);
    assert_eq!(
        ranges(&server),
        [(4 * MIB, Some(8 * MIB - 1)), (8 * MIB, Some(SIZE - 1))]
    );
    assert!(
        requests[1..]
            .iter()
            .all(|r| r.header("if-range") == Some("\"v1\"")),
        "{requests:?}"
    );
    sandbox.assert_no_spool_debris();
}

#[test]
fn parts_that_arrive_out_of_order_are_hashed_in_order() {
    let body = payload(SIZE);
    // The part from 4 MiB is held back until the one after it was asked for (and answered
    // at once), so the last part arrives before the one in the middle.
    let last_asked = Arc::new(AtomicUsize::new(0));
    let seen = last_asked.clone();
    let server = ranged_server(&body, move |_, request| {
        match range(request) {
            Some((first, _)) if first == 8 * MIB => {
                seen.store(1, Ordering::SeqCst);
            }
            Some((first, _)) if first == 4 * MIB => {
                let deadline = Instant::now() + Duration::from_secs(3);
                while seen.load(Ordering::SeqCst) == 0 && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(10));
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            _ => {}
        }
        None
    });
    let (sandbox, lift) = setup(&body, server.url("/big.bin"));
    let out = sandbox.bind(&lift, "big.bin");
    out.assert_delivered(&body);
    assert_eq!(last_asked.load(Ordering::SeqCst), 1);
    assert_eq!(server.request_count(), 3);
}

#[test]
fn a_part_that_breaks_off_is_asked_again_from_where_it_stopped() {
    let body = payload(SIZE);
    let served = body.clone();
    // The part from 4 MiB is cut after 1 MiB, once.
    let cut = AtomicUsize::new(0);
    let server = ranged_server(&body, move |_, request| {
        if range(request) != Some((4 * MIB, Some(8 * MIB - 1)))
            || cut.fetch_add(1, Ordering::SeqCst) > 0
        {
            return None;
        }
        let mut raw = format!(
            "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {}-{}/{SIZE}\r\n\
             Content-Length: {}\r\nETag: \"v1\"\r\n\r\n",
            4 * MIB,
            8 * MIB - 1,
            4 * MIB
        )
        .into_bytes();
        raw.extend_from_slice(&served[4 * MIB..5 * MIB]);
        Some(Reply::Raw(raw))
    });
    let (sandbox, lift) = setup(&body, server.url("/big.bin"));
    let out = sandbox.run(&["-v", lift.to_str().unwrap(), "big.bin"]);
    out.assert_delivered(&body);
    assert_eq!(
        ranges(&server),
        [
            (4 * MIB, Some(8 * MIB - 1)),
            (5 * MIB, Some(8 * MIB - 1)),
            (8 * MIB, Some(SIZE - 1))
        ]
    );
    assert!(
        out.stderr.contains(&format!(
            "the part from byte {} broke off at byte {}",
            4 * MIB,
            5 * MIB
        )),
        "{}",
        out.stderr
    );
    sandbox.assert_no_spool_debris();
}

#[test]
fn a_file_that_changes_between_parts_is_fetched_whole_never_stitched() {
    // The first response is version 1; by the time the other parts are asked for, the file
    // is version 2, which the server sends whole (a stale If-Range). The manifest wants
    // version 2: ptex must end up with exactly it, not version 1's head and version 2's tail.
    let old = payload(SIZE);
    let new: Vec<u8> = old.iter().map(|b| b.wrapping_add(1)).collect();
    let (first, later) = (old.clone(), new.clone());
    let plain_gets = AtomicUsize::new(0);
    let server = TestServer::start(move |request| match range(request) {
        None if plain_gets.fetch_add(1, Ordering::SeqCst) == 0 => whole(&first, "\"v1\""),
        Some((from, to)) if request.header("if-range") == Some("\"v2\"") => {
            partial(&later, from, to.unwrap_or(later.len() - 1), "\"v2\"")
        }
        _ => whole(&later, "\"v2\""),
    });
    let (sandbox, lift) = setup(&new, server.url("/big.bin"));
    let out = sandbox.run(&["-v", lift.to_str().unwrap(), "big.bin"]);
    out.assert_delivered(&new);
    assert!(
        out.stderr
            .contains("no longer serves parts of the same file"),
        "{}",
        out.stderr
    );
    sandbox.assert_no_spool_debris();
}

#[test]
fn a_part_that_keeps_failing_fails_the_run_cleanly() {
    let body = payload(SIZE);
    let server = ranged_server(&body, |_, request| {
        // Every request for bytes past 8 MiB fails, a retry of the source included.
        matches!(range(request), Some((_, last)) if last.is_none_or(|l| l >= 8 * MIB))
            .then(|| Reply::status(503))
    });
    let (mut sandbox, lift) = setup(&body, server.url("/big.bin"));
    sandbox.env("PTEX_RETRIES", "1");
    let out = sandbox.bind(&lift, "big.bin");
    out.assert_failed(&["big.bin", "503"]);
    sandbox.assert_no_spool_debris();
}

#[test]
fn small_files_and_servers_without_ranges_use_one_connection() {
    let body = payload(SIZE);
    let served = body.clone();
    // No Accept-Ranges: the file is not split.
    let server =
        TestServer::start(move |_| Reply::ok(served.clone()).with_header("ETag", "\"v1\""));
    let (sandbox, lift) = setup(&body, server.url("/big.bin"));
    sandbox.bind(&lift, "big.bin").assert_delivered(&body);
    assert_eq!(server.request_count(), 1);

    // A fast connection (here it delivers the whole file while ptex measures it) is not
    // split.
    let server = ranged_server(&body, |_, _| None);
    let mut sandbox = Sandbox::new();
    sandbox.env("PTEX_SPLIT_SIZE", "1");
    let lift = sandbox.manifest(
        "big.bin",
        json!(server.url("/big.bin")),
        Some(SIZE as u64),
        Some(&sha256_hex(&body)),
    );
    sandbox.bind(&lift, "big.bin").assert_delivered(&body);
    assert_eq!(server.request_count(), 1);

    // Below the default minimum (32 MiB): not split either.
    let server = ranged_server(&body, |_, _| None);
    let sandbox = Sandbox::new();
    let lift = sandbox.manifest(
        "big.bin",
        json!(server.url("/big.bin")),
        Some(SIZE as u64),
        Some(&sha256_hex(&body)),
    );
    sandbox.bind(&lift, "big.bin").assert_delivered(&body);
    assert_eq!(server.request_count(), 1);
}

#[test]
fn an_s3_object_comes_in_parts_from_a_signing_server() {
    let server = S3Server::start();
    let body = payload(SIZE);
    server.put_object("bkt", "big.bin", &body);
    let (mut sandbox, lift) = setup(&body, "s3://bkt/big.bin".to_string());
    sandbox
        .env("AWS_ENDPOINT_URL", server.endpoint())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY);
    let out = sandbox.run(&["-v", lift.to_str().unwrap(), "big.bin"]);
    out.assert_delivered(&body);
    assert!(out.stderr.contains("in 3 parts"), "{}", out.stderr);
}

#[test]
fn a_gcs_object_comes_in_parts() {
    let server = GcsServer::start();
    let body = payload(SIZE);
    server.put_object("bkt", "big.bin", &body);
    let (mut sandbox, lift) = setup(&body, "gs://bkt/big.bin".to_string());
    sandbox.env("STORAGE_EMULATOR_HOST", server.endpoint());
    let out = sandbox.run(&["-v", lift.to_str().unwrap(), "big.bin"]);
    out.assert_delivered(&body);
    assert!(out.stderr.contains("in 3 parts"), "{}", out.stderr);
}
