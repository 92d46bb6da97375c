//! Redirects and credentials: what each origin may receive (RELIABILITY cases 15-18).

use serde_json::json;

use crate::support::scie::{Sandbox, sha256_hex};
use crate::support::server::{Reply, TestServer};

#[test]
fn same_origin_redirect_keeps_headers() {
    let server = TestServer::start(|r| match r.path.as_str() {
        "/old" => Reply::redirect(302, "/new"),
        _ => Reply::ok("x"),
    });
    let out = Sandbox::new().run(&["-H", "X-Api-Key: k", &server.url("/old")]);
    out.assert_delivered(b"x");
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[1].path, "/new");
    assert_eq!(requests[1].header("x-api-key"), Some("k"));
}

#[test]
fn cross_origin_redirect_drops_every_credential() {
    let other = TestServer::start(|_| Reply::ok("x"));
    let target = other.url("/f");
    let first = TestServer::start(move |_| Reply::redirect(307, &target));
    let mut sandbox = Sandbox::new();
    let netrc = sandbox.home().join("netrc");
    // The netrc entry is for the first host only (both are 127.0.0.1, so name it by the
    // URL host used for the first server: localhost).
    std::fs::write(
        &netrc,
        "machine localhost login alice password netrc-secret\n",
    )
    .unwrap();
    sandbox.env("NETRC", &netrc);
    let first_url = first.url("/f").replace("127.0.0.1", "localhost");
    let first_url = first_url.replacen("http://", "http://user:url-secret@", 1);
    let out = sandbox.run(&[
        "-H",
        "Authorization: Bearer h-secret",
        "-H",
        "X-Api-Key: key-secret",
        &first_url,
    ]);
    out.assert_delivered(b"x");
    let at_first = &first.requests()[0];
    assert_eq!(at_first.header("authorization"), Some("Bearer h-secret"));
    assert_eq!(at_first.header("x-api-key"), Some("key-secret"));
    let at_other = &other.requests()[0];
    for (name, value) in &at_other.headers {
        for secret in [
            "h-secret",
            "key-secret",
            "url-secret",
            "netrc-secret",
            "Basic",
            "Bearer",
        ] {
            assert!(
                !value.contains(secret),
                "{name}: {value} leaked to the other origin"
            );
        }
    }
    assert!(!out.stderr.contains("secret"), "{}", out.stderr);
}

#[test]
fn url_userinfo_is_sent_to_its_own_origin_only() {
    let server = TestServer::start(|_| Reply::ok("x"));
    let url = server
        .url("/f")
        .replacen("http://", "http://alice:pw%40x@", 1);
    let out = Sandbox::new().run(&[&url]);
    out.assert_delivered(b"x");
    // alice:pw@x
    assert_eq!(
        server.requests()[0].header("authorization"),
        Some("Basic YWxpY2U6cHdAeA==")
    );
}

#[test]
fn redirect_loop_fails_as_too_many_redirects() {
    let server = TestServer::start(|_| Reply::redirect(302, "/again"));
    let url = server.url("/start");
    let out = Sandbox::new().run(&[&url]);
    out.assert_failed(&["too many redirects", &url]);
    // The first request plus ten redirects followed.
    assert_eq!(server.request_count(), 11);
}

#[test]
fn redirects_to_other_schemes_are_refused() {
    for location in [
        "file:///etc/passwd",
        "ftp://127.0.0.1/x",
        "data:,hello",
        "s3://b/k",
    ] {
        let target = location.to_string();
        let server = TestServer::start(move |_| Reply::redirect(302, &target));
        let out = Sandbox::new().run(&[&server.url("/f")]);
        out.assert_failed(&["refused redirect", "only http and https"]);
        assert_eq!(server.request_count(), 1);
    }
}

#[test]
fn netrc_password_goes_to_its_host_only() {
    let a = TestServer::start(|_| Reply::ok("a"));
    let b = TestServer::start(|_| Reply::ok("b"));
    let mut sandbox = Sandbox::new();
    // Host A by the name `localhost`, host B by `127.0.0.1`: a password for A and a
    // login-only entry for B, which must never borrow A's password.
    std::fs::write(
        sandbox.home().join(".netrc"),
        "machine localhost login alice password a-secret\nmachine 127.0.0.1 login bob\n",
    )
    .unwrap();
    let a_url = a.url("/f").replace("127.0.0.1", "localhost");
    sandbox.run(&[&a_url]).assert_delivered(b"a");
    sandbox.run(&[&b.url("/f")]).assert_delivered(b"b");
    // alice:a-secret
    assert_eq!(
        a.requests()[0].header("authorization"),
        Some("Basic YWxpY2U6YS1zZWNyZXQ=")
    );
    assert_eq!(b.requests()[0].header("authorization"), None);

    // $NETRC wins over ~/.netrc.
    let alt = sandbox.home().join("alt-netrc");
    std::fs::write(&alt, "machine 127.0.0.1 login carol password c\n").unwrap();
    sandbox.env("NETRC", &alt);
    sandbox.run(&[&b.url("/f")]).assert_delivered(b"b");
    // carol:c
    assert_eq!(
        b.requests()[1].header("authorization"),
        Some("Basic Y2Fyb2w6Yw==")
    );
}

#[test]
fn malformed_netrc_is_one_warning_not_a_failure() {
    let server = TestServer::start(|_| Reply::ok("x"));
    let sandbox = Sandbox::new();
    std::fs::write(sandbox.home().join(".netrc"), "password before-machine\n").unwrap();
    let lift = sandbox.manifest(
        "f",
        json!(server.url("/f")),
        Some(1),
        Some(&sha256_hex(b"x")),
    );
    let out = sandbox.bind(&lift, "f");
    out.assert_delivered(b"x");
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{}", out.stderr);
    assert!(
        lines[0].contains("netrc") && lines[0].contains("warning"),
        "{}",
        lines[0]
    );
    assert!(!lines[0].contains("before-machine"), "{}", lines[0]);
}

#[test]
fn custom_headers_stay_with_the_first_source() {
    let mirror = TestServer::start(|_| Reply::ok("x"));
    let first = TestServer::start(|_| Reply::status(404));
    let sandbox = Sandbox::new();
    let lift = sandbox.manifest(
        "f",
        json!([first.url("/f"), mirror.url("/f")]),
        Some(1),
        Some(&sha256_hex(b"x")),
    );
    let out = sandbox.run(&["-H", "X-Api-Key: for-first", lift.to_str().unwrap(), "f"]);
    out.assert_delivered(b"x");
    assert_eq!(first.requests()[0].header("x-api-key"), Some("for-first"));
    assert_eq!(mirror.requests()[0].header("x-api-key"), None);
}
