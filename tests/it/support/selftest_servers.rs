//! Self-tests of the external S3, GCS and FTP servers, using curl as the client.

use std::process::{Command, Output};

use super::ftp::{self, FtpServer};
use super::gcs::GcsServer;
use super::s3::{self, S3Server};

/// SHA-256 of the empty body, which s3s-fs requires in `x-amz-content-sha256`.
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

fn curl(args: &[&str]) -> Output {
    Command::new("/usr/bin/curl")
        .args(["-sS", "--noproxy", "*"])
        .args(args)
        .output()
        .expect("run curl")
}

/// curl's exit code, asserting it did not die of a signal.
fn code(output: &Output) -> i32 {
    output.status.code().expect("curl exit code")
}

/// `GET url`, SigV4-signed with `secret`: the HTTP status and the body.
fn s3_get(url: &str, secret: &str) -> (String, Vec<u8>) {
    let sigv4 = format!("aws:amz:{}:s3", s3::REGION);
    let user = format!("{}:{secret}", s3::ACCESS_KEY);
    let sha = format!("x-amz-content-sha256: {EMPTY_SHA256}");
    let out = curl(&[
        "--aws-sigv4",
        &sigv4,
        "--user",
        &user,
        "-H",
        &sha,
        "-w",
        "%{http_code}",
        url,
    ]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let mut body = out.stdout;
    let status = body.split_off(body.len() - 3);
    (String::from_utf8(status).expect("status"), body)
}

#[test]
fn s3_signed_get_returns_the_object() {
    let server = S3Server::start();
    server.put_object("bucket", "dir/file.bin", b"s3 bytes");
    let (status, body) = s3_get(
        &format!("{}/bucket/dir/file.bin", server.endpoint()),
        s3::SECRET_KEY,
    );
    assert_eq!(status, "200", "{}", String::from_utf8_lossy(&body));
    assert_eq!(body, b"s3 bytes");
}

#[test]
fn s3_rejects_a_wrong_secret_and_reports_missing_keys() {
    let server = S3Server::start();
    server.put_object("bucket", "file", b"secret bytes");
    let url = format!("{}/bucket/file", server.endpoint());
    let (status, body) = s3_get(&url, "wrong-secret");
    assert_eq!(status, "403", "{}", String::from_utf8_lossy(&body));
    let (status, body) = s3_get(&format!("{url}-missing"), s3::SECRET_KEY);
    assert_eq!(status, "404", "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("NoSuchKey"));
}

#[test]
fn gcs_media_download_and_missing_object() {
    let server = GcsServer::start();
    server.put_object("bucket", "dir/a b.bin", b"gcs bytes");
    server.put_object("bucket", "second", b"bucket exists already");
    let out = curl(&["-f", &server.media_url("bucket", "dir/a b.bin")]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.stdout, b"gcs bytes");
    let out = curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &server.media_url("bucket", "missing"),
    ]);
    assert_eq!(out.stdout, b"404");
}

#[test]
fn ftp_serves_anonymous_and_alice_but_not_a_wrong_password() {
    let server = FtpServer::start();
    server.put_file("dir/file.txt", b"ftp bytes");
    let out = curl(&[&server.url("dir/file.txt")]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.stdout, b"ftp bytes");
    let out = curl(&[&server.url_with_login(ftp::USER, ftp::PASSWORD, "dir/file.txt")]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.stdout, b"ftp bytes");
    let out = curl(&[&server.url_with_login(ftp::USER, "wrong", "dir/file.txt")]);
    assert_eq!(code(&out), 67, "{}", String::from_utf8_lossy(&out.stderr)); // login denied
    assert!(out.stdout.is_empty());
}
