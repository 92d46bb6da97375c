//! `ftp://` against pyftpdlib: anonymous by default, credentials from the URL or netrc.

use serde_json::json;

use crate::support::ftp::{FtpServer, PASSWORD, USER};
use crate::support::scie::{Sandbox, payload, sha256_hex};
use crate::support::server::SilentServer;

#[test]
fn anonymous_ftp_in_binding_and_direct_mode() {
    let server = FtpServer::start();
    let body = payload(150_000);
    server.put_file("pub/tool.tar.gz", &body);
    let sandbox = Sandbox::new();
    let url = server.url("/pub/tool.tar.gz");
    let lift = sandbox.manifest(
        "tool.tar.gz",
        json!(url),
        Some(body.len() as u64),
        Some(&sha256_hex(&body)),
    );
    sandbox.bind(&lift, "tool.tar.gz").assert_delivered(&body);
    sandbox.run(&[&url]).assert_delivered(&body);
    let out = sandbox.run(&["-O", &url]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(
        std::fs::read(sandbox.work().join("tool.tar.gz")).unwrap(),
        body
    );
}

#[test]
fn missing_file_and_wrong_bytes() {
    let server = FtpServer::start();
    server.put_file("f.bin", b"served");
    let sandbox = Sandbox::new();
    let missing = server.url("/missing.bin");
    sandbox
        .run(&[&missing])
        .assert_failed(&[&missing, "not found"]);
    let url = server.url("/f.bin");
    sandbox
        .run(&["--sha256", &sha256_hex(b"wanted"), &url])
        .assert_failed(&[&url, "sha256 mismatch"]);
}

#[test]
fn credentials_from_the_url_and_from_netrc() {
    let server = FtpServer::start();
    server.put_file("f.bin", b"x");
    let sandbox = Sandbox::new();
    sandbox
        .run(&[&server.url_with_login(USER, PASSWORD, "/f.bin")])
        .assert_delivered(b"x");
    let out = sandbox.run(&[&server.url_with_login(USER, "wrong-password", "/f.bin")]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(out.stdout.is_empty());
    assert!(!out.stderr.contains("wrong-password"), "{}", out.stderr);

    std::fs::write(
        sandbox.home().join(".netrc"),
        format!("machine 127.0.0.1 login {USER} password {PASSWORD}\n"),
    )
    .unwrap();
    sandbox
        .run(&["-v", &server.url("/f.bin")])
        .assert_delivered(b"x");
}

#[test]
fn a_server_that_never_answers_does_not_hang_ptex() {
    let silent = SilentServer::start();
    let mut sandbox = Sandbox::new();
    sandbox
        .env("PTEX_CONNECT_TIMEOUT", "0.5")
        .env("PTEX_READ_TIMEOUT", "0.5")
        .env("PTEX_RETRIES", "0");
    let url = silent.url("ftp", "/f.bin");
    let started = std::time::Instant::now();
    sandbox.run(&[&url]).assert_failed(&[&url, "timed out"]);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
}
