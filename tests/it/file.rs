//! `file://` sources: local files get the same verification as downloads.

use serde_json::json;

use crate::support::scie::{Sandbox, payload, sha256_hex, under_wine};

/// The `file://` URL of `path` as the ptex under test sees it: under wine, a Windows URL with
/// a drive letter (wine's `Z:` is the Unix root), `file:///Z:/tmp/…`.
fn file_url(path: &std::path::Path) -> String {
    let drive = if under_wine() { "/Z:" } else { "" };
    format!("file://{drive}{}", path.display())
}

#[test]
fn local_file_in_binding_mode_direct_mode_and_with_remote_name() {
    let sandbox = Sandbox::new();
    let body = payload(123_456);
    let path = sandbox.home().join("python.tar.gz");
    std::fs::write(&path, &body).unwrap();
    let lift = sandbox.manifest(
        "python.tar.gz",
        json!(file_url(&path)),
        Some(body.len() as u64),
        Some(&sha256_hex(&body)),
    );
    sandbox.bind(&lift, "python.tar.gz").assert_delivered(&body);
    sandbox
        .run(&["--sha256", &sha256_hex(&body), &file_url(&path)])
        .assert_delivered(&body);
    let out = sandbox.run(&["-O", &file_url(&path)]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(
        std::fs::read(sandbox.work().join("python.tar.gz")).unwrap(),
        body
    );
}

#[test]
fn wrong_missing_and_directory_files_fail_clearly() {
    let sandbox = Sandbox::new();
    let path = sandbox.home().join("f.bin");
    std::fs::write(&path, b"other bytes").unwrap();
    let url = file_url(&path);
    let lift = sandbox.manifest(
        "f.bin",
        json!(url),
        Some(11),
        Some(&sha256_hex(b"right bytes")),
    );
    sandbox
        .bind(&lift, "f.bin")
        .assert_failed(&["f.bin", &url, "sha256 mismatch"]);

    let missing = file_url(&sandbox.home().join("missing.bin"));
    sandbox
        .run(&[&missing])
        .assert_failed(&[&missing, "not found"]);

    let dir = file_url(&sandbox.home());
    sandbox.run(&[&dir]).assert_failed(&[&dir, "directory"]);
    sandbox.assert_no_spool_debris();
}
