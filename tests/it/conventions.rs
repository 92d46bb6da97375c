//! The conventions users of neighbouring tools already have (issue 16, items 3, 4 and 8):
//! science's `SCIENCE_AUTH_*` and uv's `UV_PYTHON_INSTALL_MIRROR`, client certificates
//! (`SSL_CLIENT_CERT` and `auth.client_cert`), SOCKS5 proxies, Bazel-style credential
//! helpers, `CURL_CA_BUNDLE`/`REQUESTS_CA_BUNDLE`, and a self-signed `CA:TRUE` certificate.
//! Every server is on loopback; host names resolve through a private `/etc/hosts`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::names::{self, Names};
use crate::support::scie::{Sandbox, payload, sha256_hex};
use crate::support::server::{Reply, TestServer};
use crate::support::socks::SocksProxy;
use crate::support::tls::{self, ClientAuth};

const PBS: &str = "https://github.com/astral-sh/python-build-standalone/releases/download";

fn write(sandbox: &Sandbox, name: &str, text: &str) -> PathBuf {
    let path = sandbox.home().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn config(sandbox: &Sandbox, value: Value) -> PathBuf {
    write(sandbox, "config.json", &value.to_string())
}

/// An executable shell script in the sandbox's HOME.
fn script(sandbox: &Sandbox, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = write(sandbox, name, &format!("#!/bin/sh\n{body}\n"));
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

// --- science's and uv's variables ---------------------------------------------------------

#[test]
fn science_variables_are_read_after_ours_shown_by_dry_run_and_switchable_off() {
    let server = TestServer::start(|_| Reply::ok("x"));
    let url = server.url("/f");
    let name = format!("127_0_0_1_{}", server.port());
    let mut sandbox = Sandbox::new();
    sandbox.env(&format!("SCIENCE_AUTH_{name}_BEARER"), "sci-secret");
    let lift = sandbox.manifest("f", json!(url), Some(1), Some(&sha256_hex(b"x")));

    let dry = sandbox.run(&["--dry-run", s(&lift), "f"]);
    assert_eq!(dry.code, Some(0), "{}", dry.stderr);
    assert!(
        dry.stderr
            .contains(&format!("credentials: SCIENCE_AUTH_{name}_BEARER")),
        "{}",
        dry.stderr
    );
    assert!(!dry.stderr.contains("sci-secret"), "{}", dry.stderr);
    sandbox.bind(&lift, "f").assert_delivered(b"x");

    sandbox.env(&format!("PTEX_AUTH_{name}_BEARER"), "ours");
    sandbox.bind(&lift, "f").assert_delivered(b"x");

    let off = config(&sandbox, json!({"science_auth": false}));
    sandbox.env("PTEX_CONFIG", &off);
    sandbox.env(&format!("PTEX_AUTH_{name}_BEARER"), "");
    let dry = sandbox.run(&["--dry-run", s(&lift), "f"]);
    assert!(dry.stderr.contains("credentials: none"), "{}", dry.stderr);
    sandbox.bind(&lift, "f").assert_delivered(b"x");

    let sent: Vec<Option<String>> = server
        .requests()
        .iter()
        .filter(|r| r.method == "GET")
        .map(|r| r.header("authorization").map(String::from))
        .collect();
    assert_eq!(
        sent,
        [
            Some("Bearer sci-secret".to_string()),
            Some("Bearer ours".to_string()),
            None
        ]
    );
}

#[test]
fn uv_python_install_mirror_is_tried_before_the_origin_and_switchable_off() {
    let body = payload(2_000);
    let served = body.clone();
    let mirror = TestServer::start(move |_| Reply::ok(served.clone()));
    let file = "cpython-3.12.3+20240415-x86_64-unknown-linux-gnu-install_only.tar.gz";
    let origin = format!("{PBS}/20240415/{file}");
    let mut sandbox = Sandbox::new();
    sandbox.env("UV_PYTHON_INSTALL_MIRROR", mirror.url("/pbs/"));
    let lift = sandbox.manifest(
        file,
        json!(origin),
        Some(body.len() as u64),
        Some(&sha256_hex(&body)),
    );
    let dry = sandbox.run(&["--dry-run", s(&lift), file]);
    assert_eq!(dry.code, Some(0), "{}", dry.stderr);
    let lines: Vec<&str> = dry.stderr.lines().collect();
    let at = |needle: &str| lines.iter().position(|l| l.contains(needle));
    let mirrored = mirror.url("/pbs/20240415/cpython-3.12.3");
    let (m, o) = (at(&mirrored), at(&format!("{PBS}/20240415/")));
    assert!(m.is_some() && o.is_some() && m < o, "{}", dry.stderr);
    assert!(
        lines[m.unwrap()].contains("UV_PYTHON_INSTALL_MIRROR"),
        "{}",
        dry.stderr
    );
    assert!(lines[o.unwrap()].contains("origin"), "{}", dry.stderr);

    sandbox.bind(&lift, file).assert_delivered(&body);
    let requests = mirror.requests();
    assert!(
        requests
            .iter()
            .all(|r| r.path.starts_with("/pbs/20240415/cpython-3.12.3")),
        "{:?}",
        requests.iter().map(|r| &r.path).collect::<Vec<_>>()
    );

    let off = config(&sandbox, json!({"uv_python_install_mirror": false}));
    let dry = sandbox.run(&["--config", s(&off), "--dry-run", s(&lift), file]);
    assert_eq!(dry.code, Some(0), "{}", dry.stderr);
    assert!(!dry.stderr.contains(&mirror.url("/pbs")), "{}", dry.stderr);
}

// --- client certificates --------------------------------------------------------------------

#[test]
fn a_server_that_requires_a_client_certificate_gets_the_configured_one() {
    let identity = tls::self_signed();
    let auth = ClientAuth::new();
    let server =
        TestServer::start_tls_config(identity.server_config_requiring(&auth.ca_pem), |_| {
            Reply::ok("x")
        });
    let mut sandbox = Sandbox::new();
    let cert = identity.write_cert(&sandbox.home());
    sandbox.env("SSL_CERT_FILE", &cert);
    let url = server.url("/f");

    let without = sandbox.run(&[&url]);
    without.assert_failed(&[
        &url,
        "TLS",
        "requires a client certificate",
        "SSL_CLIENT_CERT",
    ]);
    assert_eq!(server.request_count(), 0);

    let id = write(&sandbox, "client.pem", &auth.client_pem);
    let per_host = config(
        &sandbox,
        json!({"auth": {format!("127.0.0.1:{}", server.port()): {"client_cert": id}}}),
    );
    sandbox
        .run(&["--config", s(&per_host), &url])
        .assert_delivered(b"x");
    let dry = sandbox.run(&["--config", s(&per_host), "--dry-run", &url]);
    assert!(dry.stderr.contains("client certificate"), "{}", dry.stderr);

    sandbox.env("SSL_CLIENT_CERT", &id);
    sandbox.run(&[&url]).assert_delivered(b"x");
    assert_eq!(server.request_count(), 2);

    let key_only = write(&sandbox, "no-key.pem", &identity.cert_pem);
    sandbox.env("SSL_CLIENT_CERT", &key_only);
    sandbox
        .run(&[&url])
        .assert_failed(&["client certificate", "no-key.pem", "private key"]);
}

// --- SOCKS5 ---------------------------------------------------------------------------------

#[test]
fn socks5h_leaves_the_name_to_the_proxy_and_socks5_resolves_it_here() {
    let server = TestServer::start(|_| Reply::ok("x"));
    let proxy = SocksProxy::start();
    let mut sandbox = Sandbox::new();
    sandbox.env("ALL_PROXY", proxy.url("socks5h"));
    // No /etc/hosts entry and a resolver that refuses: only the proxy can reach this name.
    let names = Names {
        hosts: &[],
        resolver: names::refusing_resolver(),
    };
    let by_name = format!("http://files.socks.test:{}/f", server.port());
    let (out, _) = names::run_with(&sandbox, &names, &[&by_name]);
    out.assert_delivered(b"x");
    assert_eq!(
        proxy.asked(),
        [format!("files.socks.test:{}", server.port())]
    );

    let mut local = Sandbox::new();
    local.env("ALL_PROXY", proxy.url("socks5"));
    let names = Names {
        hosts: &["files.socks.test"],
        resolver: names::refusing_resolver(),
    };
    let (out, _) = names::run_with(&local, &names, &[&by_name]);
    out.assert_delivered(b"x");
    assert_eq!(proxy.asked()[1..], [format!("127.0.0.1:{}", server.port())]);
    assert_eq!(server.request_count(), 2);
}

// --- credential helpers -----------------------------------------------------------------------

#[test]
fn a_credential_helper_gives_headers_for_its_hosts_only() {
    let other = TestServer::start(|_| Reply::ok("x"));
    let target = format!("http://localhost:{}/f", other.port());
    let server = TestServer::start(move |request| match request.path.as_str() {
        "/hop" => Reply::redirect(302, &target),
        _ => Reply::ok("x"),
    });
    let sandbox = Sandbox::new();
    let asked = sandbox.home().join("asked");
    let helper = script(
        &sandbox,
        "helper",
        &format!(
            "[ \"$1\" = get ] || exit 9\ncat >> {asked}\necho\n\
             echo '{{\"headers\": {{\"Authorization\": [\"Bearer helper-secret\"], \
             \"X-Helper\": [\"a\", \"b\"]}}, \"expires\": \"2099-01-01T00:00:00Z\"}}'",
            asked = asked.display()
        ),
    );
    let cfg = config(
        &sandbox,
        json!({"credential_helpers": {"127.0.0.1": helper}}),
    );
    let url = server.url("/f");
    let dry = sandbox.run(&["--config", s(&cfg), "--dry-run", &url]);
    assert!(dry.stderr.contains("credential helper"), "{}", dry.stderr);
    let out = sandbox.run(&["--config", s(&cfg), &url]);
    out.assert_delivered(b"x");
    assert!(!out.stderr.contains("helper-secret"), "{}", out.stderr);
    let request = server.requests().pop().unwrap();
    assert_eq!(
        request.header("authorization"),
        Some("Bearer helper-secret")
    );
    let x_helper: Vec<&str> = request
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("x-helper"))
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(x_helper, ["a", "b"]);
    let stdin: Value = serde_json::from_str(
        std::fs::read_to_string(&asked)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(stdin, json!({"uri": url}));

    // A redirect to a host the glob does not name: nothing from the helper goes there.
    sandbox
        .run(&["--config", s(&cfg), &server.url("/hop")])
        .assert_delivered(b"x");
    let hop = other.requests().pop().unwrap();
    assert_eq!(hop.header("authorization"), None);
    assert_eq!(hop.header("x-helper"), None);
}

#[test]
fn failing_slow_and_garbage_helpers_fail_the_source_clearly_and_show_nothing() {
    let server = TestServer::start(|_| Reply::ok("x"));
    let mut sandbox = Sandbox::new();
    sandbox.env("PTEX_CREDENTIAL_HELPER_TIMEOUT", "1");
    let url = server.url("/f");
    for (name, body, words) in [
        (
            "failing",
            "echo fail-secret; exit 3",
            vec!["it failed", "exit status: 3"],
        ),
        (
            "slow",
            "sleep 30 & echo $! > \"$HOME/slow.pid\"; wait",
            vec!["did not answer within 1.0 s"],
        ),
        (
            "garbage",
            "echo 'garbage-secret {'",
            vec!["not the protocol's JSON"],
        ),
        (
            "headerless",
            "echo '{\"headers\": {\"Bad Name\": [\"v\"]}}'",
            vec!["invalid header name"],
        ),
    ] {
        let helper = script(&sandbox, name, body);
        let cfg = config(
            &sandbox,
            json!({"credential_helpers": {"127.0.0.1": helper}}),
        );
        let started = Instant::now();
        let out = sandbox.run(&["--config", s(&cfg), &url]);
        let mut all = vec![&url[..], "credential helper", name];
        all.extend(words.iter().copied());
        out.assert_failed(&all);
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{name}: {:?}",
            started.elapsed()
        );
        assert!(!out.stderr.contains("-secret"), "{name}: {}", out.stderr);
    }
    assert_eq!(server.request_count(), 0);
    // What the slow helper started was stopped with it.
    let pid = std::fs::read_to_string(sandbox.home().join("slow.pid")).unwrap();
    let alive = Path::new("/proc").join(pid.trim());
    let deadline = Instant::now() + Duration::from_secs(5);
    while alive.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !alive.exists(),
        "the slow helper's sleep {} still runs",
        pid.trim()
    );
}

// --- CA bundles and CA:TRUE -------------------------------------------------------------------

#[test]
fn curl_and_requests_ca_bundles_are_trusted_after_ssl_cert_file() {
    let identity = tls::self_signed();
    let server = TestServer::start_tls(&identity, |_| Reply::ok("x"));
    let url = server.url("/f");
    for variable in ["CURL_CA_BUNDLE", "REQUESTS_CA_BUNDLE"] {
        let mut sandbox = Sandbox::new();
        let cert = identity.write_cert(&sandbox.home());
        sandbox.env(variable, &cert);
        sandbox.run(&[&url]).assert_delivered(b"x");
        // SSL_CERT_FILE comes first: a bundle without this certificate there wins.
        let other = tls::self_signed();
        let other_path = write(&sandbox, "other.pem", &other.cert_pem);
        sandbox.env("SSL_CERT_FILE", &other_path);
        sandbox.run(&[&url]).assert_failed(&[&url, "TLS"]);
    }
    assert_eq!(server.request_count(), 2);
}

#[test]
fn a_self_signed_ca_true_certificate_is_named_and_accepted_only_when_trusted_exactly() {
    let identity = tls::self_signed_ca_for(&["127.0.0.1"]);
    let server = TestServer::start_tls(&identity, |_| Reply::ok("x"));
    let url = server.url("/f");
    let mut sandbox = Sandbox::new();

    // Not trusted: rustls refuses it as CaUsedAsEndEntity; the reason in plain words.
    let words = [
        &url[..],
        "TLS",
        "CA:TRUE",
        "put that very certificate in SSL_CERT_FILE",
    ];
    sandbox.run(&[&url]).assert_failed(&words);

    // Another CA:TRUE certificate trusted, not this one: still refused.
    let another = tls::self_signed_ca_for(&["127.0.0.1"]);
    let other_path = write(&sandbox, "other.pem", &another.cert_pem);
    sandbox.env("SSL_CERT_FILE", &other_path);
    sandbox.run(&[&url]).assert_failed(&words);

    // Trusted exactly (among others): accepted.
    let both = write(
        &sandbox,
        "both.pem",
        &format!("{}{}", another.cert_pem, identity.cert_pem),
    );
    sandbox.env("SSL_CERT_FILE", &both);
    sandbox.run(&[&url]).assert_delivered(b"x");

    // The host name is still checked: the certificate names 127.0.0.1 only.
    let by_name = url.replace("127.0.0.1", "localhost");
    sandbox.run(&[&by_name]).assert_failed(&[&by_name, "TLS"]);
    assert_eq!(server.request_count(), 1);
}
