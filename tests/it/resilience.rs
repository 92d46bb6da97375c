//! Stalls, drips, silent TLS peers, proxies, many processes at once and killed processes
//! (RELIABILITY cases 12, 13, 14, 21 and 28, and P10).

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::ftp::FtpServer;
use crate::support::proxy::ConnectProxy;
use crate::support::scie::{Sandbox, payload, sha256_hex};
use crate::support::server::{Reply, SilentServer, TestServer};
use crate::support::tls::self_signed;

/// A server that declares all of `body`, sends its first half, then stalls.
fn stalls_halfway(body: &[u8]) -> TestServer {
    let half = body[..body.len() / 2].to_vec();
    let declared_len = body.len() as u64;
    TestServer::start(move |_| Reply::Drip {
        declared_len,
        headers: Vec::new(),
        body: half.clone(),
        drip: Vec::new(),
        every: Duration::from_millis(100),
    })
}

#[test]
fn stall_after_part_of_the_body_hits_the_read_timeout_then_the_next_source() {
    let body = payload(10_000);
    let stalling = stalls_halfway(&body);
    let good = {
        let body = body.clone();
        TestServer::start(move |_| Reply::ok(body.clone()))
    };
    let mut sandbox = Sandbox::new();
    sandbox
        .env("PTEX_READ_TIMEOUT", "0.5")
        .env("PTEX_RETRIES", "0");
    let lift = sandbox.manifest(
        "f",
        json!([stalling.url("/f"), good.url("/f")]),
        Some(10_000),
        Some(&sha256_hex(&body)),
    );
    let out = sandbox.bind(&lift, "f");
    out.assert_delivered(&body);
    assert!(out.stderr.contains("timed out"), "{}", out.stderr);
}

#[test]
fn drip_feed_is_abandoned_at_the_low_speed_floor() {
    let stalling = TestServer::start(|_| Reply::Drip {
        declared_len: 1_000,
        headers: Vec::new(),
        body: Vec::new(),
        drip: vec![b'x'; 1_000],
        every: Duration::from_millis(100),
    });
    let mut sandbox = Sandbox::new();
    sandbox
        .env("PTEX_LOW_SPEED_TIME", "1")
        .env("PTEX_LOW_SPEED_LIMIT", "1024")
        .env("PTEX_RETRIES", "0");
    let started = Instant::now();
    let out = sandbox.run(&[&stalling.url("/f")]);
    out.assert_failed(&["too slow", "PTEX_LOW_SPEED_LIMIT"]);
    // Bounded by the floor's window, not by the 100 s the drip would take.
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn tls_peer_that_never_answers_fails_within_the_connect_timeout() {
    let silent = SilentServer::start();
    let mut sandbox = Sandbox::new();
    sandbox
        .env("PTEX_CONNECT_TIMEOUT", "1")
        .env("PTEX_RETRIES", "0");
    let url = silent.url("https", "/f");
    let started = Instant::now();
    let out = sandbox.run(&[&url]);
    out.assert_failed(&[&url, "timed out"]);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn http_proxy_from_the_environment_is_used_and_no_proxy_bypasses_it() {
    let origin = TestServer::start(|_| Reply::ok("direct"));
    let proxy = TestServer::start(|_| Reply::ok("via proxy"));
    // A name, not 127.0.0.1: some clients bypass proxies for loopback addresses.
    let url = origin.url("/f").replace("127.0.0.1", "localhost");
    let mut sandbox = Sandbox::new();
    sandbox.env("HTTP_PROXY", proxy.url(""));
    sandbox.run(&[&url]).assert_delivered(b"via proxy");
    let seen = &proxy.requests()[0];
    assert_eq!(seen.path, url, "the proxy must see the absolute URL");
    assert_eq!(origin.request_count(), 0);

    sandbox.env("NO_PROXY", "localhost");
    sandbox.run(&[&url]).assert_delivered(b"direct");
    assert_eq!((proxy.request_count(), origin.request_count()), (1, 1));
}

#[test]
fn sixteen_processes_fetching_the_same_file_all_succeed_with_one_download() {
    let body = payload(3 << 20);
    let served = body.clone();
    // A slow server: every run starts while the first is still fetching.
    let server = TestServer::start(move |_| {
        std::thread::sleep(Duration::from_secs(1));
        Reply::ok(served.clone())
    });
    let sandbox = Sandbox::new();
    let lift = sandbox.manifest(
        "f.tar.gz",
        json!(server.url("/f.tar.gz")),
        Some(body.len() as u64),
        Some(&sha256_hex(&body)),
    );
    let children: Vec<_> = (0..16)
        .map(|_| {
            sandbox
                .command(&["-v", lift.to_str().unwrap(), "f.tar.gz"])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut reused = 0;
    let mut last = String::new();
    for child in children {
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(0), "{stderr}");
        assert_eq!(sha256_hex(&output.stdout), sha256_hex(&body));
        reused += usize::from(stderr.contains("another run fetched it"));
        last = stderr.into_owned();
    }
    // Every run either downloaded the file or verified what another run downloaded; the
    // lock let them share (one download, unless a run started after the first finished).
    let downloads = server.request_count();
    assert_eq!(downloads + reused, 16);
    assert!(
        downloads < 16,
        "{downloads} downloads for 16 runs; the last said: {last}"
    );
    sandbox.assert_no_spool_debris();
}

#[test]
fn a_killed_run_leaves_debris_that_the_next_run_removes() {
    let body = payload(100_000);
    let stalling = stalls_halfway(&body);
    let sandbox = Sandbox::new();
    let lift = sandbox.manifest(
        "f",
        json!(stalling.url("/f")),
        Some(100_000),
        Some(&sha256_hex(&body)),
    );
    let mut child = sandbox.spawn_silent(&[lift.to_str().unwrap(), "f"]);
    // Wait until half the body sits in the spool, then SIGKILL (no chance to clean up).
    // Generous: on a loaded machine (2 cores, the whole suite at once) a Python server can
    // take seconds to send its first bytes. Reaching it is a failure of its own, named, so
    // that the next run's assertions are not blamed for a first run that never spooled.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let spooled: u64 = sandbox
            .spool_debris()
            .iter()
            .filter_map(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .sum();
        if spooled >= 50_000 || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        sandbox.spool_debris().len(),
        1,
        "the killed run left no spool file"
    );

    let good = {
        let body = body.clone();
        TestServer::start(move |_| Reply::ok(body.clone()))
    };
    let lift = sandbox.manifest(
        "f",
        json!(good.url("/f")),
        Some(100_000),
        Some(&sha256_hex(&body)),
    );
    sandbox.bind(&lift, "f").assert_delivered(&body);
    sandbox.assert_no_spool_debris();
}

#[test]
fn https_proxy_tunnels_and_its_credentials_stay_with_the_proxy() {
    let identity = self_signed();
    let origin = TestServer::start_tls(&identity, |_| Reply::ok("secret payload"));
    let proxy = ConnectProxy::start();
    let mut sandbox = Sandbox::new();
    let cert = identity.write_cert(&sandbox.home());
    let url = origin.url("/f").replace("127.0.0.1", "localhost");
    sandbox
        .env("SSL_CERT_FILE", &cert)
        .env("HTTPS_PROXY", proxy.url(Some("puser:ppass")));
    sandbox.run(&[&url]).assert_delivered(b"secret payload");
    let connects = proxy.connects();
    assert_eq!(connects.len(), 1);
    assert_eq!(connects[0].target, format!("localhost:{}", origin.port()));
    // puser:ppass
    assert_eq!(
        connects[0].header("proxy-authorization"),
        Some("Basic cHVzZXI6cHBhc3M=")
    );
    let at_origin = &origin.requests()[0];
    assert_eq!(at_origin.header("proxy-authorization"), None);
    assert!(
        !at_origin
            .headers
            .iter()
            .any(|(_, v)| v.contains("cHVzZXI6cHBhc3M"))
    );

    sandbox.env("NO_PROXY", "localhost");
    sandbox.run(&[&url]).assert_delivered(b"secret payload");
    assert_eq!(proxy.connects().len(), 1, "NO_PROXY must bypass the proxy");
    assert_eq!(origin.request_count(), 2);
}

/// Runs ptex on `lift` and SIGKILLs it once `at_least` bytes sit in the spool.
fn kill_midway(sandbox: &Sandbox, lift: &std::path::Path, name: &str, at_least: u64) {
    let mut child = sandbox.spawn_silent(&[lift.to_str().unwrap(), name]);
    // Generous: on a loaded machine (2 cores, the whole suite at once) a Python server can
    // take seconds to send its first bytes. Reaching it is a failure of its own, named, so
    // that the next run's assertions are not blamed for a first run that never spooled.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let debris = sandbox.spool_debris();
        let spooled: u64 = debris
            .iter()
            .filter(|p| p.to_string_lossy().ends_with(".ptex-part"))
            .filter_map(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .sum();
        // The bytes and the note that vouches for them are written one after the other at
        // a checkpoint: killed between the two, the run would leave bytes nothing vouches for.
        let noted = debris
            .iter()
            .any(|p| p.to_string_lossy().ends_with(".ptex-note"));
        if spooled >= at_least && noted {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the first run spooled {spooled} bytes (noted: {noted}) in 30 s, not {at_least}"
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Serves `body` (100 000 bytes) with `ETag: "v1"`: a plain GET gets the first half and then
/// a trickle that keeps the transfer alive until the test kills it; a ranged GET gets the
/// rest from the asked offset.
fn resumable_server(body: &[u8]) -> TestServer {
    let served = body.to_vec();
    TestServer::start(move |request| match request.header("range") {
        None => Reply::Drip {
            declared_len: 100_000,
            headers: vec![("ETag".into(), "\"v1\"".into())],
            body: served[..50_000].to_vec(),
            drip: served[50_000..50_100].to_vec(),
            every: Duration::from_millis(100),
        },
        Some(range) => {
            let start: usize = range
                .trim_start_matches("bytes=")
                .trim_end_matches('-')
                .parse()
                .unwrap();
            Reply::Full {
                status: 206,
                headers: vec![
                    (
                        "Content-Range".into(),
                        format!("bytes {start}-99999/100000"),
                    ),
                    ("ETag".into(), "\"v1\"".into()),
                ],
                body: served[start..].to_vec(),
            }
        }
    })
}

#[test]
fn a_run_killed_halfway_is_resumed_by_the_next_with_a_range_request() {
    let body = payload(100_000);
    let server = resumable_server(&body);
    let sandbox = Sandbox::new();
    let lift = sandbox.manifest(
        "f",
        json!(server.url("/f")),
        Some(100_000),
        Some(&sha256_hex(&body)),
    );
    kill_midway(&sandbox, &lift, "f", 50_000);
    assert!(
        !sandbox.spool_debris().is_empty(),
        "the killed run left nothing to resume"
    );

    let out = sandbox.run(&["-v", lift.to_str().unwrap(), "f"]);
    out.assert_delivered(&body);
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    let range = requests[1].header("range").unwrap_or_default();
    let resumed_at: u64 = range
        .trim_start_matches("bytes=")
        .trim_end_matches('-')
        .parse()
        .unwrap_or(0);
    assert!(
        resumed_at >= 50_000,
        "expected a Range past the first half, got {range:?}"
    );
    assert_eq!(requests[1].header("if-range"), Some("\"v1\""));
    assert!(out.stderr.contains("earlier run left"), "{}", out.stderr);
    sandbox.assert_no_spool_debris();
}

#[test]
fn a_corrupted_leftover_is_detected_and_never_emitted() {
    let body = payload(100_000);
    let server = resumable_server(&body);
    let mut sandbox = Sandbox::new();
    // A whole-file retry meets the trickle again: a short read timeout moves it on.
    sandbox.env("PTEX_READ_TIMEOUT", "1");
    let lift = sandbox.manifest(
        "f",
        json!(server.url("/f")),
        Some(100_000),
        Some(&sha256_hex(&body)),
    );
    kill_midway(&sandbox, &lift, "f", 50_000);
    // Flip a byte in what the killed run left.
    let part = sandbox
        .spool_debris()
        .into_iter()
        .find(|p| p.to_string_lossy().ends_with(".ptex-part"))
        .expect("a spool file");
    let mut bytes = std::fs::read(&part).unwrap();
    bytes[10] ^= 0xff;
    std::fs::write(&part, &bytes).unwrap();

    // The next run continues the corrupted prefix; the whole-file hash catches it and the
    // source is tried again from the first byte: only the right bytes reach stdout.
    let out = sandbox.bind(&lift, "f");
    out.assert_delivered(&body);
    assert!(out.stderr.contains("starting over"), "{}", out.stderr);
    let requests = server.requests();
    assert!(
        requests[1].header("range").is_some(),
        "the leftover was not continued"
    );
    assert!(
        requests[2].header("range").is_none(),
        "the retry did not start over"
    );
    sandbox.assert_no_spool_debris();
}

#[test]
fn a_stopped_run_holding_the_spool_does_not_block_the_next() {
    let body = payload(100_000);
    let stalling = stalls_halfway(&body);
    let mut sandbox = Sandbox::new();
    let lift = sandbox.manifest(
        "f",
        json!(stalling.url("/f")),
        Some(100_000),
        Some(&sha256_hex(&body)),
    );
    let mut holder = sandbox.spawn_silent(&[lift.to_str().unwrap(), "f"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while stalling.request_count() == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    // Freeze it while it holds the shared spool's lock.
    let stopped = std::process::Command::new("kill")
        .args(["-STOP", &holder.id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());

    let good = {
        let body = body.clone();
        TestServer::start(move |_| Reply::ok(body.clone()))
    };
    let lift = sandbox.manifest(
        "f",
        json!(good.url("/f")),
        Some(100_000),
        Some(&sha256_hex(&body)),
    );
    let started = Instant::now();
    sandbox.env("PTEX_LOCK_WAIT", "0.5");
    let out = sandbox.bind(&lift, "f");
    out.assert_delivered(&body);
    assert!(out.stderr.contains("made no progress"), "{}", out.stderr);
    // It waited for the frozen run only as long as PTEX_LOCK_WAIT says (the frozen run's
    // own read timeout is 5 s in tests).
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    holder.kill().unwrap();
    holder.wait().unwrap();
}
#[test]
fn an_ftp_run_killed_halfway_is_continued_by_the_next() {
    // 50 kB/s for 300 kB: the first run is killed with part of the file spooled, long before
    // it could finish; the next run checks the file is unchanged (length and time) and asks
    // only for the rest (REST).
    let server = FtpServer::start_sending_at(50_000);
    let body = payload(300_000);
    server.put_file("f.bin", &body);
    let sandbox = Sandbox::new();
    let lift = sandbox.manifest(
        "f",
        json!(server.url("/f.bin")),
        Some(body.len() as u64),
        Some(&sha256_hex(&body)),
    );
    kill_midway(&sandbox, &lift, "f", 40_000);
    let out = sandbox.run(&["-v", lift.to_str().unwrap(), "f"]);
    out.assert_delivered(&body);
    assert!(out.stderr.contains("earlier run left"), "{}", out.stderr);
    assert!(out.stderr.contains("resuming at byte"), "{}", out.stderr);
    sandbox.assert_no_spool_debris();
}

#[test]
fn a_run_saving_with_remote_name_reuses_another_runs_download() {
    let body = payload(1 << 20);
    let served = body.clone();
    let server = TestServer::start(move |_| {
        std::thread::sleep(Duration::from_millis(1500));
        Reply::ok(served.clone())
    });
    let sandbox = Sandbox::new();
    let url = server.url("/f.tar.gz");
    let sha = sha256_hex(&body);
    let args = ["-v", "-O", "--sha256", &sha, &url];
    let first = sandbox
        .command(&args)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.request_count() == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let second = sandbox.run(&args);
    let first = first.wait_with_output().unwrap();
    assert_eq!(first.status.code(), Some(0));
    assert_eq!(second.code, Some(0), "{}", second.stderr);
    assert!(
        second.stderr.contains("another run fetched it"),
        "{}",
        second.stderr
    );
    assert_eq!(server.request_count(), 1);
    assert_eq!(
        std::fs::read(sandbox.work().join("f.tar.gz")).unwrap(),
        body
    );
    let mut left: Vec<_> = std::fs::read_dir(sandbox.work())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    left.sort();
    assert_eq!(left, ["f.tar.gz"]);
}
