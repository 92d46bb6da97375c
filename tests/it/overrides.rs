//! pex and scie-pants scies as their users run them: the binding's argument is a user's
//! URL-override file (`PEX_BOOTSTRAP_URLS`) that lists only URLs, and `SCIE` names the
//! running scie, whose embedded lift manifest gives the size and sha256 (and the URLs of the
//! files the override does not name). The scies are written by `support::built_scie`.

use std::path::PathBuf;

use serde_json::{Value, json};

use crate::support::built_scie;
use crate::support::scie::{Sandbox, payload, sha256_hex};
use crate::support::server::{Reply, TestServer};

const NAME: &str = "cpython-3.11.9+20240726-x86_64-unknown-linux-gnu-install_only.tar.gz";

fn serve(body: Vec<u8>) -> TestServer {
    TestServer::start(move |_| Reply::ok(body.clone()))
}

/// Writes a scie embedding `lift` and points `SCIE` at it.
fn running_scie(sandbox: &mut Sandbox, lift: &Value) -> PathBuf {
    let path = sandbox.home().join("lazy.scie");
    built_scie::write(&path, 64 * 1024, lift);
    sandbox.env("SCIE", &path);
    path
}

/// Writes a URL-override file holding `json`.
fn override_file(sandbox: &Sandbox, json: &Value) -> PathBuf {
    let path = sandbox.home().join("urls.json");
    std::fs::write(&path, json.to_string()).unwrap();
    path
}

#[test]
fn override_urls_are_verified_against_the_running_scie_and_fall_back_on_wrong_bytes() {
    let body = payload(200_000);
    let mut wrong = body.clone();
    wrong[100_000] ^= 0x40;
    let bad_mirror = serve(wrong.clone());
    let good_mirror = serve(body.clone());
    let origin = serve(body.clone());
    let mut sandbox = Sandbox::new();
    let hash = sha256_hex(&body);
    let scie = running_scie(
        &mut sandbox,
        &built_scie::lift(
            &[(NAME, body.len() as u64, &hash)],
            json!({ NAME: origin.url("/origin") }),
        ),
    );
    let urls = override_file(
        &sandbox,
        &json!({"ptex": { NAME: [bad_mirror.url("/m1"), good_mirror.url("/m2")] }}),
    );

    let out = sandbox.bind(&urls, NAME);
    out.assert_delivered(&body);
    assert_eq!(bad_mirror.request_count(), 1);
    assert_eq!(good_mirror.request_count(), 1);
    assert_eq!(
        origin.request_count(),
        0,
        "the override's URLs replace the scie's"
    );
    assert!(
        out.stderr.contains("sha256 mismatch") && out.stderr.contains(&bad_mirror.url("/m1")),
        "one warning for the wrong mirror: {}",
        out.stderr
    );

    // -v and --dry-run say where the URLs and the expectations came from.
    let out = sandbox.run(&["--dry-run", urls.to_str().unwrap(), NAME]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let shown = format!("the running scie {} ($SCIE)", scie.display());
    let from_override = format!("listed in the manifest {}", urls.display());
    assert!(out.stderr.contains(&from_override), "{}", out.stderr);
    assert!(
        out.stderr
            .contains(&format!("expected sha256 {hash}, from {shown}")),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains(&format!("expected size {} bytes, from {shown}", body.len())),
        "{}",
        out.stderr
    );
    let out = sandbox.run(&["-v", urls.to_str().unwrap(), NAME]);
    out.assert_delivered(&body);
    assert!(
        out.stderr
            .contains(&format!("{NAME}: expected sha256 {hash}, from {shown}")),
        "{}",
        out.stderr
    );

    // Without SCIE (ptex as it was): the override cannot be verified, and the wrong bytes
    // of the first mirror go through with a warning.
    let plain = Sandbox::new();
    let urls = override_file(
        &plain,
        &json!({"ptex": { NAME: [bad_mirror.url("/m1"), good_mirror.url("/m2")] }}),
    );
    let out = plain.bind(&urls, NAME);
    out.assert_delivered(&wrong);
    assert!(out.stderr.contains("cannot be verified"), "{}", out.stderr);
}

#[test]
fn override_and_scie_that_disagree_fail_before_any_request() {
    let body = payload(1_000);
    let server = serve(body.clone());
    let mut sandbox = Sandbox::new();
    let theirs = sha256_hex(&body);
    let ours = sha256_hex(b"other bytes");
    let scie = running_scie(
        &mut sandbox,
        &built_scie::lift(&[(NAME, 1_000, &theirs)], json!({ NAME: server.url("/o") })),
    );
    // An override file carrying a file entry of its own, with another hash.
    let urls = override_file(
        &sandbox,
        &json!({
            "scie": {"lift": {"files": [{"name": NAME, "size": 1_000, "hash": ours}]}},
            "ptex": { NAME: server.url("/m") }
        }),
    );
    let out = sandbox.bind(&urls, NAME);
    out.assert_failed(&[
        NAME,
        urls.to_str().unwrap(),
        scie.to_str().unwrap(),
        &ours,
        &theirs,
    ]);
    assert_eq!(server.request_count(), 0);
}

#[test]
fn scie_that_cannot_be_read_is_one_warning_then_the_override_alone() {
    let body = payload(5_000);
    let server = serve(body.clone());
    let mut sandbox = Sandbox::new();
    let not_a_scie = sandbox.home().join("run.sh");
    std::fs::write(&not_a_scie, "#!/bin/sh\nexec python3 \"$@\"\n").unwrap();
    sandbox.env("SCIE", &not_a_scie);
    let urls = override_file(&sandbox, &json!({"ptex": { NAME: server.url("/m") }}));
    let out = sandbox.bind(&urls, NAME);
    out.assert_delivered(&body);
    let about_scie: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains(not_a_scie.to_str().unwrap()))
        .collect();
    assert_eq!(about_scie.len(), 1, "{}", out.stderr);
    assert!(
        about_scie[0].starts_with("ptex: warning:"),
        "{}",
        out.stderr
    );
    assert!(about_scie[0].contains("not a scie"), "{}", out.stderr);
    assert!(out.stderr.contains("cannot be verified"), "{}", out.stderr);
}

#[test]
fn override_is_merged_over_the_scies_own_table() {
    // scie-pants#474: an override naming one platform's file must not break the others.
    let (ours, theirs) = (payload(3_000), payload(4_000));
    let (mirror, origin) = (serve(ours.clone()), serve(theirs.clone()));
    let other = "other-platform.tar.gz";
    let mut sandbox = Sandbox::new();
    let scie = running_scie(
        &mut sandbox,
        &built_scie::lift(
            &[
                (NAME, ours.len() as u64, &sha256_hex(&ours)),
                (other, theirs.len() as u64, &sha256_hex(&theirs)),
            ],
            json!({ NAME: origin.url("/unused"), other: origin.url("/other") }),
        ),
    );
    let urls = override_file(&sandbox, &json!({"ptex": { NAME: mirror.url("/m") }}));

    sandbox.bind(&urls, NAME).assert_delivered(&ours);
    sandbox.bind(&urls, other).assert_delivered(&theirs);
    assert_eq!(mirror.request_count(), 1);
    assert_eq!(origin.requests().len(), 1);
    assert_eq!(origin.requests()[0].path, "/other");

    // --dry-run says which file each URL came from.
    let out = sandbox.run(&["--dry-run", urls.to_str().unwrap(), other]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let line = out
        .stderr
        .lines()
        .find(|l| l.contains(&origin.url("/other")))
        .unwrap_or_else(|| panic!("URL not listed: {}", out.stderr));
    assert!(
        line.contains(&format!("listed in the running scie {}", scie.display())),
        "{line}"
    );

    // A file neither names fails naming both.
    let out = sandbox.bind(&urls, "missing.tar.gz");
    out.assert_failed(&[urls.to_str().unwrap(), scie.to_str().unwrap(), "no URL"]);
}
