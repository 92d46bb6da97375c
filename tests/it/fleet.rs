//! The fleet: N hosts (separate `HOME` and `PTEX_CACHE_DIR`, started together) fetch one
//! 64 MiB file through one filling cache on s3s-fs, from an origin that counts what it
//! serves. With the lease, the origin serves the file about once; without it, about N
//! times; a host killed while holding the lease delays the others by the wait at most.

use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::caches::s3_sandbox;
use crate::support::s3::S3Server;
use crate::support::scie::{Sandbox, payload, sha256_hex};
use crate::support::server::{Reply, TestServer};

/// Hosts in the fleet.
const HOSTS: usize = 32;
/// The file's size.
const SIZE: usize = 64 << 20;

/// One simulated host: its own sandbox (HOME, PTEX_CACHE_DIR) and config.
fn host(server: &S3Server, wait: &str) -> Sandbox {
    let mut sandbox = s3_sandbox(server);
    let config: PathBuf = sandbox.home().join("ptex.json");
    let caches = json!({"caches": [{"url": "s3://cas/sha256/{sha256}", "fill": true}]});
    std::fs::write(&config, caches.to_string()).unwrap();
    sandbox
        .env("PTEX_CONFIG", config)
        .env("PTEX_CACHE_WAIT", wait)
        // One connection a host, so the origin's request count is its count of whole files.
        .env("PTEX_CONNECTIONS", "1")
        .env("PTEX_READ_TIMEOUT", "30");
    sandbox
}

/// Starts `ptex <lift> big.bin` on `sandbox`, stdout into a file, as scie-jump would.
fn start(sandbox: &Sandbox, lift: &std::path::Path) -> Child {
    let stdout = std::fs::File::create(sandbox.work().join("out.bin")).unwrap();
    sandbox
        .command(&[lift.to_str().unwrap(), "big.bin"])
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ptex")
}

/// Runs `hosts` at once; asserts every one delivered exactly `body`; the fleet's wall time.
fn run_fleet(hosts: &[Sandbox], lift: &std::path::Path, sha: &str) -> Duration {
    let started = Instant::now();
    let children: Vec<Child> = hosts.iter().map(|h| start(h, lift)).collect();
    for (index, (child, host)) in children.into_iter().zip(hosts).enumerate() {
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(0), "host {index}: {stderr}");
        let out = std::fs::read(host.work().join("out.bin")).unwrap();
        assert_eq!(out.len(), SIZE, "host {index}: {stderr}");
        assert_eq!(sha256_hex(&out), sha, "host {index}: {stderr}");
        std::fs::remove_file(host.work().join("out.bin")).unwrap();
    }
    started.elapsed()
}

#[test]
fn a_fleet_fetches_from_the_origin_about_once() {
    let body = Arc::new(payload(SIZE));
    let sha = sha256_hex(&body);
    // The origin stalls while `stall` is set (a holder to be killed mid-download).
    let stall = Arc::new(AtomicBool::new(false));
    let origin = {
        let (body, stall) = (body.clone(), stall.clone());
        TestServer::start(move |_| match stall.load(Ordering::SeqCst) {
            true => Reply::Drip {
                declared_len: SIZE as u64,
                headers: Vec::new(),
                body: body[..1 << 20].to_vec(),
                drip: Vec::new(),
                every: Duration::from_secs(1),
            },
            false => Reply::ok(body.to_vec()),
        })
    };
    let url = origin.url("/big.bin");
    let manifest = Sandbox::new();
    let lift = manifest.manifest("big.bin", json!(url), Some(SIZE as u64), Some(&sha));

    // With the lease.
    let server = S3Server::start();
    server.create_bucket("cas");
    let hosts: Vec<Sandbox> = (0..HOSTS).map(|_| host(&server, "60")).collect();
    let coordinated = run_fleet(&hosts, &lift, &sha);
    let with_lease = origin.request_count();
    assert_eq!(
        std::fs::read(server.object_path("cas", &format!("sha256/{sha}"))).unwrap(),
        *body
    );
    eprintln!(
        "fleet of {HOSTS} x {} MiB with the lease: origin served {with_lease} times, {:.1} s",
        SIZE >> 20,
        coordinated.as_secs_f64()
    );
    assert!(
        with_lease <= HOSTS / 8,
        "the origin served the file {with_lease} times to {HOSTS} hosts"
    );
    drop(hosts);
    drop(server);

    // Without coordination (PTEX_CACHE_WAIT=0), an empty cache again.
    let server = S3Server::start();
    server.create_bucket("cas");
    let hosts: Vec<Sandbox> = (0..HOSTS).map(|_| host(&server, "0")).collect();
    let before = origin.request_count();
    let uncoordinated = run_fleet(&hosts, &lift, &sha);
    let without_lease = origin.request_count() - before;
    eprintln!(
        "fleet of {HOSTS} x {} MiB without the lease: origin served {without_lease} times, \
         {:.1} s",
        SIZE >> 20,
        uncoordinated.as_secs_f64()
    );
    assert!(
        without_lease > with_lease,
        "{without_lease} vs {with_lease}"
    );
    drop(hosts);
    drop(server);

    // A holder killed mid-download: the others wait for its lease to run out (3 s), then
    // go on; none waits much longer than that. Fewer hosts: this is about the bound.
    let server = S3Server::start();
    server.create_bucket("cas");
    stall.store(true, Ordering::SeqCst);
    let holder = host(&server, "3");
    let mut child = start(&holder, &lift);
    let lease = server.object_path("cas", &format!("sha256/{sha}.lease"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while !lease.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(lease.exists(), "the first host took no lease");
    child.kill().unwrap();
    child.wait().unwrap();
    stall.store(false, Ordering::SeqCst);
    let hosts: Vec<Sandbox> = (0..HOSTS / 4).map(|_| host(&server, "3")).collect();
    let before = origin.request_count();
    let after_kill = run_fleet(&hosts, &lift, &sha);
    eprintln!(
        "fleet of {} after a lease holder was killed: origin served {} times, {:.1} s",
        HOSTS / 4,
        origin.request_count() - before,
        after_kill.as_secs_f64()
    );
    assert!(
        after_kill < Duration::from_secs(3) + uncoordinated * 2 + Duration::from_secs(10),
        "{after_kill:?}"
    );
}
