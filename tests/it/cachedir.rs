//! The cache directory trusts nothing (issue 18, RELIABILITY P17, P18, cases 33 to 35):
//! whatever is planted at a spool name (a FIFO, a link, a directory, another user's file,
//! an endless note) cannot make ptex hang, exhaust memory, write outside its own files or
//! emit unverified bytes; a killed parts download is resumed without refetching what was
//! written.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::scie::{Outcome, Sandbox, payload, sha256_hex};
use crate::support::server::{Reply, TestServer};

const MIB: usize = 1 << 20;

/// How a [`CountingServer`] answers a plain GET (ranged GETs with the right `If-Range` are
/// always answered at once, with exactly the range asked for).
#[derive(Clone, Copy, PartialEq)]
enum Whole {
    /// The whole file.
    Send,
    /// The first `n` bytes of the file, then nothing (the connection stays open).
    StallAfter(usize),
    /// Every byte, chunked, without the closing chunk: the response never ends.
    ChunkedNoEnd,
}

/// An HTTP/1.1 server on loopback serving one file as version `"v1"` (with
/// `Accept-Ranges`), that counts the body bytes it got onto the wire. One request per
/// connection; writes are small, paced (about 30 MB/s) and the send buffer is small, so
/// what it counts is close to what the client read.
struct CountingServer {
    port: u16,
    whole: Arc<std::sync::Mutex<Whole>>,
    sent: Arc<AtomicU64>,
    requests: Arc<AtomicUsize>,
    ranges: Arc<std::sync::Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl CountingServer {
    fn start(body: Vec<u8>, whole: Whole) -> CountingServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = CountingServer {
            port,
            whole: Arc::new(std::sync::Mutex::new(whole)),
            sent: Arc::default(),
            requests: Arc::default(),
            ranges: Arc::default(),
            stop: Arc::default(),
        };
        let (whole, sent, requests, ranges, stop) = (
            server.whole.clone(),
            server.sent.clone(),
            server.requests.clone(),
            server.ranges.clone(),
            server.stop.clone(),
        );
        let body = Arc::new(body);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let whole = *whole.lock().unwrap();
                let (body, sent, requests, ranges, stop) = (
                    body.clone(),
                    sent.clone(),
                    requests.clone(),
                    ranges.clone(),
                    stop.clone(),
                );
                std::thread::spawn(move || {
                    let _ = serve(stream, &body, whole, &sent, &requests, &ranges, &stop);
                });
            }
        });
        server
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Answers later plain GETs as `whole` says.
    fn set_whole(&self, whole: Whole) {
        *self.whole.lock().unwrap() = whole;
    }

    fn sent(&self) -> u64 {
        self.sent.load(Ordering::SeqCst)
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// The `Range` header of every request so far (`-` for none).
    fn ranges(&self) -> Vec<String> {
        self.ranges.lock().unwrap().clone()
    }
}

impl Drop for CountingServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn serve(
    stream: TcpStream,
    body: &[u8],
    whole: Whole,
    sent: &AtomicU64,
    requests: &AtomicUsize,
    ranges: &std::sync::Mutex<Vec<String>>,
    stop: &AtomicBool,
) -> std::io::Result<()> {
    let socket = socket2::Socket::from(stream.try_clone()?);
    socket.set_send_buffer_size(32 * 1024)?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let (mut range, mut if_range) = (None, None);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            match name.to_ascii_lowercase().as_str() {
                "range" => range = Some(value.trim().to_string()),
                "if-range" => if_range = Some(value.trim().to_string()),
                _ => {}
            }
        }
    }
    requests.fetch_add(1, Ordering::SeqCst);
    ranges
        .lock()
        .unwrap()
        .push(range.clone().unwrap_or_else(|| "-".into()));
    let mut out = stream;
    let asked = range
        .filter(|_| if_range.as_deref() == Some("\"v1\""))
        .and_then(|r| {
            let (first, last) = r.strip_prefix("bytes=")?.split_once('-')?;
            let first: usize = first.parse().ok()?;
            let last = last.parse().map_or(body.len() - 1, |l: usize| l);
            (first < body.len()).then_some((first, last.min(body.len() - 1)))
        });
    let write_counted = |out: &mut TcpStream, bytes: &[u8]| -> std::io::Result<()> {
        for piece in bytes.chunks(16 * 1024) {
            out.write_all(piece)?;
            sent.fetch_add(piece.len() as u64, Ordering::SeqCst);
            // Slower than the client reads: little waits in buffers when it hangs up.
            std::thread::sleep(Duration::from_micros(500));
        }
        Ok(())
    };
    let common = "ETag: \"v1\"\r\nAccept-Ranges: bytes\r\nConnection: close\r\n";
    match (asked, whole) {
        (Some((first, last)), _) => {
            write!(
                out,
                "HTTP/1.1 206 Partial Content\r\n{common}Content-Range: bytes {first}-{last}/{}\r\n\
                 Content-Length: {}\r\n\r\n",
                body.len(),
                last + 1 - first
            )?;
            write_counted(&mut out, &body[first..=last])?;
        }
        (None, Whole::ChunkedNoEnd) => {
            write!(
                out,
                "HTTP/1.1 200 OK\r\n{common}Transfer-Encoding: chunked\r\n\r\n{:x}\r\n",
                body.len()
            )?;
            write_counted(&mut out, body)?;
            out.write_all(b"\r\n")?;
            hold(stop);
        }
        (None, whole) => {
            write!(
                out,
                "HTTP/1.1 200 OK\r\n{common}Content-Length: {}\r\n\r\n",
                body.len()
            )?;
            match whole {
                Whole::StallAfter(n) => {
                    write_counted(&mut out, &body[..n])?;
                    hold(stop);
                }
                _ => write_counted(&mut out, body)?,
            }
        }
    }
    out.flush()
}

/// Keeps a connection open (sending nothing) until the server is dropped, or a while.
fn hold(stop: &AtomicBool) {
    let until = Instant::now() + Duration::from_secs(60);
    while !stop.load(Ordering::SeqCst) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs ptex with `args`, killing it if it takes longer than `limit` (then the test
/// fails: a planted file made it hang).
fn run_bounded(sandbox: &Sandbox, args: &[&str], limit: Duration) -> Outcome {
    let stdout_path = sandbox.home().join(format!("stdout-{}", rand_tag()));
    let stderr_path = sandbox.home().join(format!("stderr-{}", rand_tag()));
    let mut child = sandbox
        .command(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout_path).unwrap())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!(
                "ptex {args:?} hung for {limit:?}; stderr: {}",
                std::fs::read_to_string(&stderr_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Outcome {
        code: status.code(),
        stdout: std::fs::read(&stdout_path).unwrap(),
        stderr: std::fs::read_to_string(&stderr_path).unwrap(),
    }
}

/// Waits (10 s at most) until the note of the shared spool for `body` lists `spans`, as a
/// checkpoint writes it about once a second.
fn wait_for_note(sandbox: &Sandbox, body: &[u8], spans: &str) {
    let note = sandbox
        .cache()
        .join("spool")
        .join(format!("{}.ptex-note", sha256_hex(body)));
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let text = std::fs::read_to_string(&note).unwrap_or_default();
        if text.lines().last() == Some(spans) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!(
        "the note never listed {spans}: {:?}",
        std::fs::read_to_string(&note)
    );
}

fn rand_tag() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::SeqCst)
}

/// The spool directory, created as ptex would (private to this user).
fn spool_dir(sandbox: &Sandbox) -> PathBuf {
    let dir = sandbox.cache().join("spool");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(status.success(), "mkfifo {}", path.display());
}

/// A server that serves `body` as `"v1"` with ranges, so runs note their spool files.
fn versioned_server(body: &[u8]) -> TestServer {
    let body = body.to_vec();
    TestServer::start(move |_| {
        Reply::ok(body.clone())
            .with_header("ETag", "\"v1\"")
            .with_header("Accept-Ranges", "bytes")
    })
}

#[test]
fn fifos_links_and_directories_at_spool_names_are_set_aside() {
    let body = payload(100_000);
    let sha = sha256_hex(&body);
    let server = versioned_server(&body);
    for name in [format!("{sha}.ptex-part"), format!("{sha}.ptex-note")] {
        for kind in ["fifo", "symlink", "hard link", "directory", "foreign"] {
            let mut sandbox = Sandbox::new();
            sandbox.env("PTEX_LOCK_WAIT", "1");
            let lift = sandbox.manifest(
                "f",
                json!(server.url("/f")),
                Some(body.len() as u64),
                Some(&sha),
            );
            let dir = spool_dir(&sandbox);
            let planted = dir.join(&name);
            let precious = sandbox.home().join("precious");
            std::fs::write(&precious, b"keep").unwrap();
            match kind {
                "fifo" => mkfifo(&planted),
                "symlink" => std::os::unix::fs::symlink(&precious, &planted).unwrap(),
                "hard link" => std::fs::hard_link(&precious, &planted).unwrap(),
                "directory" => std::fs::create_dir(&planted).unwrap(),
                _ => {
                    // Another user's file, writable by all (a shared directory).
                    std::fs::write(&planted, b"theirs").unwrap();
                    std::os::unix::fs::chown(&planted, Some(65534), Some(65534)).unwrap();
                    use std::os::unix::fs::PermissionsExt;
                    std::fs::set_permissions(&planted, std::fs::Permissions::from_mode(0o666))
                        .unwrap();
                }
            }
            // The old, predictable temporary names of the note: a link at each.
            let last_pid: u32 = std::fs::read_to_string("/proc/sys/kernel/ns_last_pid")
                .unwrap()
                .trim()
                .parse()
                .unwrap();
            for pid in last_pid + 1..last_pid + 50 {
                let temp = dir.join(format!("{sha}.ptex-note.{pid}"));
                std::os::unix::fs::symlink(&precious, &temp).unwrap();
            }
            let out = run_bounded(
                &sandbox,
                &["-v", lift.to_str().unwrap(), "f"],
                Duration::from_secs(20),
            );
            out.assert_delivered(&body);
            assert_eq!(
                std::fs::read(&precious).unwrap(),
                b"keep",
                "{kind} at {name}: written through"
            );
            if kind != "foreign" {
                assert!(out.stderr.contains("set aside"), "{kind}: {}", out.stderr);
            }
        }
    }
}

#[test]
fn an_oversized_or_endless_note_costs_nothing() {
    let body = payload(100_000);
    let sha = sha256_hex(&body);
    let server = versioned_server(&body);
    for kind in ["sparse 1 GiB", "/dev/zero"] {
        let sandbox = Sandbox::new();
        let lift = sandbox.manifest(
            "f",
            json!(server.url("/f")),
            Some(body.len() as u64),
            Some(&sha),
        );
        let dir = spool_dir(&sandbox);
        std::fs::write(dir.join(format!("{sha}.ptex-part")), &body[..50_000]).unwrap();
        let note = dir.join(format!("{sha}.ptex-note"));
        match kind {
            "/dev/zero" => std::os::unix::fs::symlink("/dev/zero", &note).unwrap(),
            _ => {
                let mut file = std::fs::File::create(&note).unwrap();
                file.write_all(b"ptex-note 2\n").unwrap();
                file.set_len(1 << 30).unwrap();
            }
        }
        let started = Instant::now();
        let out = run_bounded(
            &sandbox,
            &["-v", lift.to_str().unwrap(), "f"],
            Duration::from_secs(20),
        );
        out.assert_delivered(&body);
        assert!(out.stderr.contains("set aside"), "{kind}: {}", out.stderr);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{kind}: {:?}",
            started.elapsed()
        );
        sandbox.assert_no_spool_debris();
    }
}

#[test]
fn a_planted_part_rewritten_after_verification_never_reaches_stdout() {
    let body = payload(2 * MIB);
    let sha = sha256_hex(&body);
    let server = versioned_server(&body);
    let sandbox = Sandbox::new();
    let lift = sandbox.manifest(
        "f",
        json!(server.url("/f")),
        Some(body.len() as u64),
        Some(&sha),
    );
    let dir = spool_dir(&sandbox);
    let planted = dir.join(format!("{sha}.ptex-part"));
    // The planter: the right bytes at first (so they would verify), then, for as long as the
    // run lasts, other bytes over them and past their end.
    std::fs::write(&planted, &body).unwrap();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&planted)
        .unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let planter = {
        let done = done.clone();
        let garbage = vec![0x5a; body.len() + 4096];
        std::thread::spawn(move || {
            use std::os::unix::fs::FileExt;
            while !done.load(Ordering::SeqCst) {
                let _ = file.write_all_at(&garbage, 0);
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    for _ in 0..3 {
        let out = run_bounded(
            &sandbox,
            &[lift.to_str().unwrap(), "f"],
            Duration::from_secs(20),
        );
        out.assert_delivered(&body);
    }
    done.store(true, Ordering::SeqCst);
    planter.join().unwrap();
}

#[test]
fn a_symlink_replanted_in_a_race_is_never_followed() {
    let body = payload(50_000);
    let sha = sha256_hex(&body);
    let server = versioned_server(&body);
    let sandbox = Sandbox::new();
    let lift = sandbox.manifest(
        "f",
        json!(server.url("/f")),
        Some(body.len() as u64),
        Some(&sha),
    );
    let dir = spool_dir(&sandbox);
    let outside = sandbox.home().join("outside");
    let done = Arc::new(AtomicBool::new(false));
    let racer = {
        let (done, dir, outside) = (done.clone(), dir.clone(), outside.clone());
        let path = dir.join(format!("{sha}.ptex-part"));
        std::thread::spawn(move || {
            while !done.load(Ordering::SeqCst) {
                let _ = std::fs::remove_file(&path);
                let _ = std::os::unix::fs::symlink(&outside, &path);
            }
        })
    };
    for _ in 0..40 {
        let out = run_bounded(
            &sandbox,
            &[lift.to_str().unwrap(), "f"],
            Duration::from_secs(20),
        );
        out.assert_delivered(&body);
        assert!(!outside.exists(), "a file was created outside the cache");
    }
    done.store(true, Ordering::SeqCst);
    racer.join().unwrap();
}

/// Starts ptex on a 12 MiB file in three 4 MiB parts and stops it with `signal` once 9 MiB
/// are on disk (the first part stalls after 1 MiB, the other two are done) and a checkpoint
/// has passed; then reruns it and returns the bytes the server sent for the rerun.
fn kill_parts_midway_and_rerun(signal: &str) -> u64 {
    let body = payload(12 * MIB);
    let server = CountingServer::start(body.clone(), Whole::StallAfter(MIB));
    let mut sandbox = Sandbox::new();
    sandbox
        .env("PTEX_SPLIT_SIZE", "1")
        .env("PTEX_SPLIT_AFTER", "0")
        .env("PTEX_CONNECTIONS", "3")
        .env("PTEX_READ_TIMEOUT", "30");
    let lift = sandbox.manifest(
        "big.bin",
        json!(server.url("/big.bin")),
        Some(body.len() as u64),
        Some(&sha256_hex(&body)),
    );
    let mut child = sandbox.spawn_silent(&[lift.to_str().unwrap(), "big.bin"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.sent() < 9 * MIB as u64 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        server.sent(),
        9 * MIB as u64,
        "the first run never got 9 MiB"
    );
    // Until the next checkpoint (once a second) of the note.
    wait_for_note(
        &sandbox,
        &body,
        &format!("0-{MIB},{}-{}", 4 * MIB, 12 * MIB),
    );
    let killed = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    child.wait().unwrap();
    let before = server.sent();
    let out = run_bounded(
        &sandbox,
        &["-v", lift.to_str().unwrap(), "big.bin"],
        Duration::from_secs(60),
    );
    let refetched = server.sent() - before;
    eprintln!(
        "{signal}: 9 of 12 MiB written before the kill; the rerun fetched {refetched} bytes \
         (ranges asked: {:?}); stderr: {}",
        server.ranges(),
        out.stderr
    );
    out.assert_delivered(&body);
    sandbox.assert_no_spool_debris();
    refetched
}

#[test]
fn a_parts_download_killed_with_sigkill_is_resumed_fetching_only_the_holes() {
    let refetched = kill_parts_midway_and_rerun("-KILL");
    // The 3 MiB hole, not a byte more.
    assert_eq!(refetched, 3 * MIB as u64);
}

#[test]
fn a_parts_download_killed_with_sigterm_is_resumed_fetching_only_the_holes() {
    let refetched = kill_parts_midway_and_rerun("-TERM");
    assert_eq!(refetched, 3 * MIB as u64);
}

#[test]
fn a_complete_leftover_is_verified_and_used_without_a_request() {
    let body = payload(200_000);
    let server = CountingServer::start(body.clone(), Whole::ChunkedNoEnd);
    let sandbox = Sandbox::new();
    let lift = sandbox.manifest(
        "f",
        json!(server.url("/f")),
        Some(body.len() as u64),
        Some(&sha256_hex(&body)),
    );
    let mut child = sandbox.spawn_silent(&[lift.to_str().unwrap(), "f"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.sent() < body.len() as u64 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    // Every byte arrived; the response never ends. A checkpoint later, the run is killed.
    wait_for_note(&sandbox, &body, &format!("0-{}", body.len()));
    child.kill().unwrap();
    child.wait().unwrap();
    let requests = server.requests();
    let out = run_bounded(
        &sandbox,
        &["-v", lift.to_str().unwrap(), "f"],
        Duration::from_secs(20),
    );
    out.assert_delivered(&body);
    assert_eq!(server.requests(), requests, "{}", out.stderr);
    assert!(out.stderr.contains("left all"), "{}", out.stderr);
    sandbox.assert_no_spool_debris();
}

#[test]
fn a_holder_that_only_touches_its_file_blocks_no_one() {
    let body = payload(100_000);
    let sha = sha256_hex(&body);
    let server = versioned_server(&body);
    let mut sandbox = Sandbox::new();
    sandbox.env("PTEX_LOCK_WAIT", "1");
    let lift = sandbox.manifest(
        "f",
        json!(server.url("/f")),
        Some(body.len() as u64),
        Some(&sha),
    );
    let dir = spool_dir(&sandbox);
    let held = std::fs::File::create(dir.join(format!("{sha}.ptex-part"))).unwrap();
    held.lock().unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let toucher = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut len = 0;
            while !done.load(Ordering::SeqCst) {
                // New times, a new length, not a byte more on disk.
                len += 4096;
                let _ = held.set_len(len);
                let _ = held.set_modified(std::time::SystemTime::now());
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let started = Instant::now();
    let out = run_bounded(
        &sandbox,
        &["-v", lift.to_str().unwrap(), "f"],
        Duration::from_secs(20),
    );
    done.store(true, Ordering::SeqCst);
    toucher.join().unwrap();
    out.assert_delivered(&body);
    assert!(out.stderr.contains("made no progress"), "{}", out.stderr);
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_run_in_another_pid_namespace_leaves_a_live_remote_name_file_alone() {
    let unshare = Command::new("unshare")
        .args(["-Urpf", "--mount-proc", "true"])
        .status();
    if !unshare.is_ok_and(|s| s.success()) {
        eprintln!("SKIPPED: unshare cannot make a PID namespace here");
        return;
    }
    let body = payload(200_000);
    let slow = CountingServer::start(body.clone(), Whole::StallAfter(100_000));
    let other = payload(1000);
    let fast = versioned_server(&other);
    let mut sandbox = Sandbox::new();
    sandbox.env("PTEX_READ_TIMEOUT", "3");
    let sha = sha256_hex(&body);
    let slow_url = slow.url("/slow.bin");
    let first = sandbox
        .command(&["-O", "--sha256", &sha, &slow_url])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let temp = loop {
        let found = std::fs::read_dir(sandbox.work())
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.to_string_lossy().ends_with(".ptex-part"));
        if let Some(path) = found.filter(|p| std::fs::metadata(p).unwrap().len() >= 100_000) {
            break path;
        }
        assert!(Instant::now() < deadline, "the first run spooled nothing");
        std::thread::sleep(Duration::from_millis(20));
    };
    // Another run, in a PID namespace of its own, in the same directory.
    let ptex = sandbox.command(&[]);
    let mut second = Command::new("unshare");
    second
        .args(["-Urpf", "--mount-proc", env!("CARGO_BIN_EXE_ptex")])
        .args([
            "-O",
            "--sha256",
            &sha256_hex(&other),
            &fast.url("/other.bin"),
        ])
        .current_dir(sandbox.work())
        .env_clear();
    for (name, value) in ptex.get_envs() {
        if let Some(value) = value {
            second.env(name, value);
        }
    }
    let second = second.output().unwrap();
    assert_eq!(
        second.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    let mut first = first;
    if first.try_wait().unwrap().is_none() {
        assert!(temp.exists(), "the live run's temporary file was removed");
    }
    // The first run's transfer stalls until its read timeout, then continues by range, and
    // saves its file from the temporary file the other run left alone.
    let first = first.wait_with_output().unwrap();
    assert_eq!(
        first.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert_eq!(
        std::fs::read(sandbox.work().join("slow.bin")).unwrap(),
        body
    );
}

#[test]
fn a_huge_sparse_leftover_without_a_size_is_discarded_at_once() {
    let body = payload(1000);
    let sha = sha256_hex(&body);
    let server = versioned_server(&body);
    let url = server.url("/f.bin");
    let key = sha256_hex(url.as_bytes());
    // A note as ptex 0.1 wrote it (all of the file is good), and one that vouches for 16 GiB
    // of a file whose size it does not know.
    let notes = [
        format!("{key}\n\"v1\"\n"),
        format!("ptex-note 2\n{key}\n\"v1\"\n-\n0-{}\n", 16u64 << 30),
    ];
    for note in notes {
        let sandbox = Sandbox::new();
        let dir = spool_dir(&sandbox);
        let part = std::fs::File::create(dir.join(format!("{sha}.ptex-part"))).unwrap();
        part.set_len(16 << 30).unwrap();
        std::fs::write(dir.join(format!("{sha}.ptex-note")), &note).unwrap();
        let started = Instant::now();
        let out = run_bounded(&sandbox, &["--sha256", &sha, &url], Duration::from_secs(30));
        out.assert_delivered(&body);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{note:?}: {:?}",
            started.elapsed()
        );
        sandbox.assert_no_spool_debris();
    }
}

#[test]
fn a_corrupted_leftover_starts_over_at_once_without_retries() {
    let body = payload(100_000);
    let server = CountingServer::start(body.clone(), Whole::StallAfter(50_000));
    let mut sandbox = Sandbox::new();
    let lift = sandbox.manifest(
        "f",
        json!(server.url("/f")),
        Some(body.len() as u64),
        Some(&sha256_hex(&body)),
    );
    let mut child = sandbox.spawn_silent(&[lift.to_str().unwrap(), "f"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.sent() < 50_000 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    wait_for_note(&sandbox, &body, "0-50000");
    child.kill().unwrap();
    child.wait().unwrap();
    let part = sandbox
        .spool_debris()
        .into_iter()
        .find(|p| p.to_string_lossy().ends_with(".ptex-part"))
        .expect("a spool file");
    let mut bytes = std::fs::read(&part).unwrap();
    bytes[10] ^= 0xff;
    std::fs::write(&part, &bytes).unwrap();

    server.set_whole(Whole::Send);
    sandbox.env("PTEX_RETRIES", "0");
    let out = run_bounded(
        &sandbox,
        &["-v", lift.to_str().unwrap(), "f"],
        Duration::from_secs(20),
    );
    out.assert_delivered(&body);
    assert!(out.stderr.contains("starting over"), "{}", out.stderr);
    // The leftover continued by range, then the file again from its first byte.
    assert_eq!(
        server.ranges(),
        ["-", "bytes=50000-", "-"],
        "{}",
        out.stderr
    );
    sandbox.assert_no_spool_debris();
}

/// A 12 MiB file that parts are asked for at once, over three connections.
fn parts_sandbox() -> Sandbox {
    let mut sandbox = Sandbox::new();
    sandbox
        .env("PTEX_SPLIT_SIZE", "1")
        .env("PTEX_SPLIT_AFTER", "0")
        .env("PTEX_CONNECTIONS", "3");
    sandbox
}

/// A `206` for `body[first..=last]` of a file of `len` bytes, as version `etag`.
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

/// The byte range a request asks for.
fn asked_range(request: &crate::support::server::Request) -> Option<(usize, Option<usize>)> {
    let spec = request.header("range")?.strip_prefix("bytes=")?;
    let (first, last) = spec.split_once('-')?;
    Some((first.parse().ok()?, last.parse().ok()))
}

#[test]
fn a_retry_after_storm_in_parts_is_bounded_in_all() {
    let body = payload(12 * MIB);
    let served = body.clone();
    let server = TestServer::start(move |request| match asked_range(request) {
        None => Reply::ok(served.clone())
            .with_header("ETag", "\"v1\"")
            .with_header("Accept-Ranges", "bytes"),
        Some(_) => Reply::status(503).with_header("Retry-After", "1000"),
    });
    let mut sandbox = parts_sandbox();
    sandbox.env("PTEX_RETRY_MAX_WAIT", "2");
    let lift = sandbox.manifest(
        "big.bin",
        json!(server.url("/big.bin")),
        Some(body.len() as u64),
        Some(&sha256_hex(&body)),
    );
    let started = Instant::now();
    let out = run_bounded(
        &sandbox,
        &[lift.to_str().unwrap(), "big.bin"],
        Duration::from_secs(60),
    );
    out.assert_failed(&["big.bin", "kept asking to wait", "PTEX_RETRY_MAX_WAIT"]);
    // At most the 2 s every wait may add up to, plus the transfers themselves.
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn without_a_sha256_a_file_is_never_stitched_from_parts() {
    let first = payload(12 * MIB);
    let second: Vec<u8> = first.iter().map(|b| b ^ 0xff).collect();
    let (whole, parts) = (first.clone(), second.clone());
    // Every connection but the first gets other bytes under the same validator.
    let server = TestServer::start(move |request| match asked_range(request) {
        None => Reply::ok(whole.clone())
            .with_header("ETag", "\"v1\"")
            .with_header("Accept-Ranges", "bytes"),
        Some((start, end)) => partial(&parts, start, end.unwrap_or(parts.len() - 1), "\"v1\""),
    });
    let sandbox = parts_sandbox();
    let size = first.len().to_string();
    let out = run_bounded(
        &sandbox,
        &["--size", &size, &server.url("/big.bin")],
        Duration::from_secs(60),
    );
    out.assert_delivered(&first);
    assert_eq!(server.request_count(), 1, "{}", out.stderr);
}

#[test]
fn a_part_of_another_version_is_rejected_on_sight() {
    let body = payload(12 * MIB);
    let other: Vec<u8> = body.iter().map(|b| b ^ 0xff).collect();
    let (whole, parts) = (body.clone(), other.clone());
    // The server ignores If-Range: a ranged request gets version "v2".
    let server = TestServer::start(move |request| match asked_range(request) {
        None => Reply::ok(whole.clone())
            .with_header("ETag", "\"v1\"")
            .with_header("Accept-Ranges", "bytes"),
        Some((start, end)) => partial(&parts, start, end.unwrap_or(parts.len() - 1), "\"v2\""),
    });
    let sandbox = parts_sandbox();
    let lift = sandbox.manifest(
        "big.bin",
        json!(server.url("/big.bin")),
        Some(body.len() as u64),
        Some(&sha256_hex(&body)),
    );
    let out = run_bounded(
        &sandbox,
        &["-v", lift.to_str().unwrap(), "big.bin"],
        Duration::from_secs(60),
    );
    if out.code == Some(0) {
        out.assert_delivered(&body);
    } else {
        out.assert_failed(&["big.bin"]);
    }
    assert!(
        out.stderr
            .contains("no longer serves parts of the same file"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("sha256 mismatch"), "{}", out.stderr);
}

#[test]
fn fifos_named_by_the_environment_never_hang_a_run() {
    let body = payload(1000);
    let server = versioned_server(&body);
    let url = server.url("/f.bin");
    let sha = sha256_hex(&body);
    let fifo_dir = tempfile::tempdir().unwrap();
    let fifo = fifo_dir.path().join("fifo");
    mkfifo(&fifo);
    let cases = [
        ("NETRC", None),
        ("PTEX_CONFIG", Some("not a regular file")),
        ("SSL_CERT_FILE", Some("SSL_CERT_FILE")),
    ];
    for (name, refused) in cases {
        let mut sandbox = Sandbox::new();
        sandbox.env(name, &fifo);
        let out = run_bounded(&sandbox, &["--sha256", &sha, &url], Duration::from_secs(10));
        match refused {
            None => {
                out.assert_delivered(&body);
                assert!(out.stderr.contains("not a regular file"), "{}", out.stderr);
            }
            Some(word) => out.assert_failed(&[word]),
        }
    }
    // No request was made for the refused ones.
    assert_eq!(server.request_count(), 1);
}

#[test]
fn a_closed_stdout_is_an_error_not_a_success() {
    let body = payload(1000);
    let server = versioned_server(&body);
    let url = server.url("/f.bin");
    let sandbox = Sandbox::new();
    let ptex = env!("CARGO_BIN_EXE_ptex");
    let script = format!("exec '{ptex}' '{url}' >&-");
    let out = sandbox.wrapped("sh", &["-c", &script]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("stdout"), "{stderr}");
    assert_eq!(server.request_count(), 0);
    // Redirected to /dev/null on purpose, it is fine.
    let script = format!("exec '{ptex}' '{url}' >/dev/null");
    let out = sandbox.wrapped("sh", &["-c", &script]);
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn a_cache_directory_others_may_write_needs_the_sticky_bit() {
    use std::os::unix::fs::PermissionsExt;
    let body = payload(1000);
    let server = versioned_server(&body);
    let url = server.url("/f.bin");
    let sha = sha256_hex(&body);
    let mut sandbox = Sandbox::new();
    let shared = sandbox.home().join("shared");
    std::fs::create_dir(&shared).unwrap();
    sandbox.env("PTEX_CACHE_DIR", &shared);
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = run_bounded(&sandbox, &["--sha256", &sha, &url], Duration::from_secs(10));
    out.assert_failed(&["refusing the cache directory", "sticky"]);
    assert_eq!(server.request_count(), 0);
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let out = run_bounded(&sandbox, &["--sha256", &sha, &url], Duration::from_secs(10));
    out.assert_delivered(&body);
}

#[test]
fn a_holder_that_writes_forever_is_waited_for_a_bounded_time_in_all() {
    let body = payload(100_000);
    let sha = sha256_hex(&body);
    let server = versioned_server(&body);
    let mut sandbox = Sandbox::new();
    // 60 times 0.2 s in all, however the holder progresses.
    sandbox.env("PTEX_LOCK_WAIT", "0.2");
    let lift = sandbox.manifest(
        "f",
        json!(server.url("/f")),
        Some(body.len() as u64),
        Some(&sha),
    );
    let dir = spool_dir(&sandbox);
    let mut held = std::fs::File::create(dir.join(format!("{sha}.ptex-part"))).unwrap();
    held.lock().unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let done = done.clone();
        std::thread::spawn(move || {
            while !done.load(Ordering::SeqCst) {
                let _ = held.write_all(&[7; 8192]);
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    let out = run_bounded(
        &sandbox,
        &["-v", lift.to_str().unwrap(), "f"],
        Duration::from_secs(40),
    );
    done.store(true, Ordering::SeqCst);
    writer.join().unwrap();
    out.assert_delivered(&body);
    assert!(out.stderr.contains("still not done"), "{}", out.stderr);
}
