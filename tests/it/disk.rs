//! The disk under ptex: a file larger than the free space fails before any request, a
//! full disk fails the spool write cleanly (RELIABILITY case 27), and a read-only `-O`
//! directory fails before any request (P11).
//!
//! The full disk and the read-only directory are real: a 1 MiB tmpfs and a read-only bind
//! mount, made inside a private mount namespace (`unshare -m`, util-linux; needs root) that
//! vanishes with the process tree, so nothing needs cleaning up.

use std::path::PathBuf;

use serde_json::json;

use crate::support::names::unshared_outcome;
use crate::support::scie::{Outcome, Sandbox, payload, ptex_bin, sha256_hex};
use crate::support::server::{Reply, TestServer};

/// 2^60 bytes: more than any disk here has free.
const EXABYTE: u64 = 1 << 60;

fn server_of(body: &[u8]) -> TestServer {
    let served = body.to_vec();
    TestServer::start(move |_| Reply::ok(served.clone()))
}

/// Runs `ptex ARGS…` inside a private mount namespace, after the shell commands `setup` ran
/// there (with `set -e`, in the working directory, `$PTEX_CACHE_DIR` set). Returns ptex's
/// outcome and the files left under the cache directory and the working directory, as
/// seen from inside the namespace (relative paths, one per line).
fn unshared(sandbox: &Sandbox, setup: &str, args: &[&str]) -> (Outcome, String) {
    let results = sandbox.home().join("unshared");
    std::fs::create_dir_all(&results).unwrap();
    // `$0` is ptex and `$@` its arguments, so nothing needs quoting; the results are
    // written to HOME, which no setup mounts over.
    let script = format!(
        "set -e\n{setup}\n\
         code=0\n\
         \"$0\" \"$@\" > \"$HOME/unshared/stdout\" 2> \"$HOME/unshared/stderr\" || code=$?\n\
         echo \"$code\" > \"$HOME/unshared/code\"\n\
         find \"$PTEX_CACHE_DIR\" . -mindepth 1 ! -type d\n"
    );
    let ptex = ptex_bin();
    let mut argv = vec![
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        &script,
        ptex.to_str().expect("utf-8 path"),
    ];
    argv.extend_from_slice(args);
    let output = sandbox.wrapped("unshare", &argv);
    let outcome = unshared_outcome(&output, &results);
    (
        outcome,
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

fn real(path: PathBuf) -> String {
    std::fs::canonicalize(path)
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

#[test]
fn a_size_beyond_the_free_space_fails_before_any_request() {
    let body = payload(1_000);
    let server = server_of(&body);
    let url = server.url("/f.bin");
    let sandbox = Sandbox::new();
    let lift = sandbox.manifest("f.bin", json!(url), Some(EXABYTE), Some(&sha256_hex(&body)));
    let needed = format!("{EXABYTE} bytes (1.0 EiB) needed");
    // Binding mode: the spool directory does not exist yet, so the cache directory holding
    // it is the one judged.
    let cache = real(sandbox.cache());
    sandbox.bind(&lift, "f.bin").assert_failed(&[
        "f.bin",
        &url,
        "not enough free space in",
        &cache,
        &needed,
        "available",
    ]);
    // -O: the current directory is the one written to.
    let work = real(sandbox.work());
    sandbox
        .run(&["-O", "--size", &EXABYTE.to_string(), &url])
        .assert_failed(&["f.bin", &url, "not enough free space in", &work, &needed]);
    assert_eq!(server.request_count(), 0);
    sandbox.assert_no_spool_debris();
    assert_eq!(std::fs::read_dir(sandbox.work()).unwrap().count(), 0);
}

#[test]
fn a_full_disk_fails_the_spool_write_cleanly() {
    let body = payload(3 << 20);
    let server = server_of(&body);
    let url = server.url("/f.bin");
    let sandbox = Sandbox::new();
    let cache = real(sandbox.cache());
    let full_disk = "mount -t tmpfs -o size=1m ptex-full-disk \"$PTEX_CACHE_DIR\"";
    // No size given, so the free-space check cannot catch it: the write runs into ENOSPC.
    // Once into a private spool file, once into the spool shared by runs wanting this
    // sha256.
    let sha256 = sha256_hex(&body);
    for (run, args) in [
        vec![url.as_str()],
        vec!["--sha256", sha256.as_str(), url.as_str()],
    ]
    .iter()
    .enumerate()
    {
        let (out, left) = unshared(&sandbox, full_disk, args);
        out.assert_failed(&[
            "f.bin",
            &url,
            "cannot write spool file",
            &cache,
            "No space left on device",
        ]);
        assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
        assert_eq!(left, "", "debris left on the full disk");
        // A local failure no retry can fix: the URL was asked once.
        assert_eq!(server.request_count(), run + 1);
    }
}

#[test]
fn a_read_only_remote_name_directory_fails_before_any_request() {
    let body = payload(1_000);
    let server = server_of(&body);
    let url = server.url("/f.bin");
    let sandbox = Sandbox::new();
    std::fs::write(sandbox.work().join("f.bin"), b"the old file").unwrap();
    // Root ignores permission bits, so the directory is made read-only by a mount; `cd`
    // again to be on top of it.
    let read_only = "mount --bind \"$PWD\" \"$PWD\"\n\
                     mount -o remount,ro,bind \"$PWD\" \"$PWD\"\n\
                     cd \"$PWD\"";
    let (out, left) = unshared(&sandbox, read_only, &["-O", &url]);
    let work = real(sandbox.work());
    out.assert_failed(&[
        "f.bin",
        &url,
        &format!("cannot write to {work}"),
        "Read-only file system",
    ]);
    assert_eq!(server.request_count(), 0);
    assert_eq!(left, "./f.bin\n", "files written");
    assert_eq!(
        std::fs::read(sandbox.work().join("f.bin")).unwrap(),
        b"the old file"
    );
}
