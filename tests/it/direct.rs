//! Direct mode, `ptex [OPTS] <URL>`, and the flags of the original ptex.

use crate::support::scie::{Sandbox, payload, sha256_hex, under_wine};
use crate::support::server::{Reply, TestServer};

#[test]
fn url_to_stdout() {
    let body = payload(70_000);
    let served = body.clone();
    let server = TestServer::start(move |_| Reply::ok(served.clone()));
    let sandbox = Sandbox::new();
    sandbox
        .run(&["-s", &server.url("/a/b.bin")])
        .assert_delivered(&body);
}

#[test]
fn sha256_and_size_flags_verify() {
    let body = payload(1_000);
    let served = body.clone();
    let server = TestServer::start(move |_| Reply::ok(served.clone()));
    let url = server.url("/b.bin");
    let sandbox = Sandbox::new();
    let good = sha256_hex(&body);
    sandbox
        .run(&["--sha256", &good.to_uppercase(), "--size", "1000", &url])
        .assert_delivered(&body);
    let wrong = sha256_hex(b"other");
    sandbox.run(&["--sha256", &wrong, &url]).assert_failed(&[
        "b.bin",
        &url,
        "sha256 mismatch",
        &wrong,
        &good,
    ]);
    sandbox.run(&["--size", "999", &url]).assert_failed(&[
        "b.bin",
        &url,
        "size mismatch",
        "999",
        "1000",
    ]);
    sandbox
        .run(&["--sha256", "nothex", &url])
        .assert_failed(&["--sha256", "64"]);
}

#[test]
fn remote_name_writes_the_verified_file_in_the_working_directory() {
    let body = payload(2_000);
    let served = body.clone();
    let server = TestServer::start(move |_| Reply::ok(served.clone()));
    let sandbox = Sandbox::new();
    let out = sandbox.run(&["-O", "-s", &server.url("/dir/pkg%2Bx.tar.gz?query=1")]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stdout.is_empty(), "-O must not write to stdout");
    assert_eq!(
        std::fs::read(sandbox.work().join("pkg+x.tar.gz")).unwrap(),
        body
    );
    assert_eq!(std::fs::read_dir(sandbox.work()).unwrap().count(), 1);
}

#[test]
fn remote_name_failure_leaves_an_existing_file_untouched() {
    let server = TestServer::start(|_| Reply::ok("new bytes"));
    let sandbox = Sandbox::new();
    let target = sandbox.work().join("f.txt");
    std::fs::write(&target, "old bytes").unwrap();
    let out = sandbox.run(&["-O", "--size", "3", &server.url("/f.txt")]);
    out.assert_failed(&["f.txt", "size mismatch"]);
    assert_eq!(std::fs::read(&target).unwrap(), b"old bytes");
    assert_eq!(
        std::fs::read_dir(sandbox.work()).unwrap().count(),
        1,
        "debris left"
    );

    let out = sandbox.run(&["-O", &server.url("/f.txt")]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(std::fs::read(&target).unwrap(), b"new bytes");
}

#[test]
#[cfg(unix)] // The test makes the symlink with Unix's call.
fn remote_name_replaces_a_symlink_instead_of_writing_through_it() {
    let server = TestServer::start(|_| Reply::ok("payload"));
    let sandbox = Sandbox::new();
    let outside = sandbox.home().join("precious");
    std::fs::write(&outside, "keep me").unwrap();
    std::os::unix::fs::symlink(&outside, sandbox.work().join("f.txt")).unwrap();
    let out = sandbox.run(&["-O", &server.url("/f.txt")]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(std::fs::read(&outside).unwrap(), b"keep me");
    let target = sandbox.work().join("f.txt");
    assert!(!target.symlink_metadata().unwrap().file_type().is_symlink());
    assert_eq!(std::fs::read(target).unwrap(), b"payload");
}

#[test]
fn remote_name_refuses_unsafe_names_before_any_request() {
    let server = TestServer::start(|_| Reply::ok("x"));
    let sandbox = Sandbox::new();
    for path in ["/", "/dir/", "/%2e%2e%2fescape", "/a%2Fb", "/a%5Cb", "/.."] {
        let out = sandbox.run(&["-O", &server.url(path)]);
        out.assert_failed(&["-O", "file name"]);
        assert_eq!(
            std::fs::read_dir(sandbox.work()).unwrap().count(),
            0,
            "{path}"
        );
    }
    assert_eq!(server.request_count(), 0);
    assert!(!sandbox.home().join("escape").exists());
}

/// Windows refuses more names than Unix: a `:` writes an alternate data stream, `nul` and
/// `COM1` are devices, a trailing dot is dropped. The Windows build refuses them before any
/// request; on Unix they are ordinary names.
#[test]
fn remote_name_refuses_windows_only_names_on_windows() {
    let server = TestServer::start(|_| Reply::ok("x"));
    let sandbox = Sandbox::new();
    let names = ["f.txt:stream", "nul", "COM1.tar.gz", "trailing."];
    for name in names {
        let out = sandbox.run(&["-O", &server.url(&format!("/{name}"))]);
        if under_wine() {
            out.assert_failed(&["-O", "file name", "Windows"]);
        } else {
            assert_eq!(out.code, Some(0), "{name}: {}", out.stderr);
            assert_eq!(std::fs::read(sandbox.work().join(name)).unwrap(), b"x");
        }
    }
    let expected = if under_wine() { 0 } else { names.len() };
    assert_eq!(server.request_count(), expected);
}

#[test]
fn custom_headers_reach_the_server() {
    let server = TestServer::start(|_| Reply::ok("x"));
    let sandbox = Sandbox::new();
    let out = sandbox.run(&[
        "-H",
        "X-Api-Key: k1",
        "--header",
        "Accept:  text/plain",
        &server.url("/x"),
    ]);
    out.assert_delivered(b"x");
    let request = &server.requests()[0];
    assert_eq!(request.header("x-api-key"), Some("k1"));
    assert_eq!(request.header("accept"), Some("text/plain"));
}

#[test]
fn header_with_cr_or_lf_fails_before_any_connection() {
    let server = TestServer::start(|_| Reply::ok("x"));
    let sandbox = Sandbox::new();
    for bad in ["X-A: a\r\nX-Injected: 1", "X-A: a\nb", "X-A: a\rb"] {
        let out = sandbox.run(&["-H", bad, &server.url("/x")]);
        out.assert_failed(&["invalid header", "X-A"]);
        assert!(!out.stderr.contains("Injected"), "{}", out.stderr);
    }
    assert_eq!(server.request_count(), 0);
}

#[test]
fn dump_header_goes_to_stderr_only() {
    let server = TestServer::start(|_| Reply::ok("body").with_header("X-Marker", "m-42"));
    let sandbox = Sandbox::new();
    let out = sandbox.run(&["-D", &server.url("/x")]);
    out.assert_delivered(b"body");
    assert!(out.stderr.contains("x-marker: m-42"), "{}", out.stderr);
    assert!(out.stderr.contains(" 200"), "{}", out.stderr);

    let mut sandbox = Sandbox::new();
    sandbox.env("PTEX_DUMP_HEADERS", "1");
    let out = sandbox.run(&[&server.url("/x")]);
    out.assert_delivered(b"body");
    assert!(out.stderr.contains("x-marker: m-42"), "{}", out.stderr);

    let out = Sandbox::new().run(&[&server.url("/x")]);
    assert!(!out.stderr.contains("x-marker"), "{}", out.stderr);
}

#[test]
fn version_is_bare() {
    let out = Sandbox::new().run(&["-V"]);
    assert_eq!(out.code, Some(0));
    assert_eq!(
        out.stdout,
        format!("{}\n", env!("CARGO_PKG_VERSION")).as_bytes()
    );
    assert_eq!(Sandbox::new().run(&["--version"]).stdout, out.stdout);
    // The version policy (README, "Versions"): a successor of the original's 1.7.0 that
    // keeps its command line, so tools comparing versions see a newer ptex.
    let version = String::from_utf8(out.stdout).unwrap();
    let numbers: Vec<u64> = version
        .trim()
        .split('.')
        .map(|n| n.parse().expect("numeric version"))
        .collect();
    assert_eq!(numbers.len(), 3, "{version}");
    assert!(numbers.as_slice() > [1, 7, 0].as_slice(), "{version}");
    assert_eq!(numbers[0], 1, "same major line as 1.7.0: {version}");
}

#[test]
fn help_lists_the_original_flags() {
    let out = Sandbox::new().run(&["-h"]);
    assert_eq!(out.code, Some(0));
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--remote-name",
        "--header",
        "--dump-header",
        "--silent",
        "--version",
        "--sha256",
        "--size",
        "--verbose",
    ] {
        assert!(help.contains(flag), "{flag} missing from help:\n{help}");
    }
}

#[test]
fn usage_errors_exit_1_with_nothing_on_stdout() {
    for args in [
        &[][..],
        &["--frobnicate", "http://x/"][..],
        &["a", "b", "c"][..],
    ] {
        let out = Sandbox::new().run(args);
        assert_eq!(out.code, Some(1), "{args:?}: {}", out.stderr);
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn verbose_describes_each_attempt() {
    let server = TestServer::start(|_| Reply::ok("x"));
    let out = Sandbox::new().run(&["-v", "--sha256", &sha256_hex(b"x"), &server.url("/x")]);
    out.assert_delivered(b"x");
    assert!(out.stderr.contains("source 1 of 1"), "{}", out.stderr);
    assert!(out.stderr.contains("HTTP 200"), "{}", out.stderr);
    assert!(out.stderr.contains("verified 1 bytes"), "{}", out.stderr);
}
