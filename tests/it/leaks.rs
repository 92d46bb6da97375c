//! Credentials and policy hold against look-alike hosts, redirects and other spellings of a
//! URL; no secret reaches stderr; ptex exits once its bytes are out even when a resolver
//! never answers; servers that answer ranges badly still deliver (issue 17; RELIABILITY
//! P3, P7, P15). Host names resolve through a private `/etc/hosts` (see
//! [`crate::support::names`]), never through a real resolver.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::json;

use crate::retries::{cut_response, scripted};
use crate::support::names::{self, Names, SilentResolver};
use crate::support::scie::{Outcome, Sandbox, payload, sha256_hex};
use crate::support::server::{Reply, Request, TestServer};
use crate::support::tls;

/// Asserts that no header any request in `requests` carried holds one of `secrets`.
fn assert_none_carried(requests: &[Request], secrets: &[&str]) {
    for request in requests {
        for (name, value) in &request.headers {
            for secret in secrets {
                assert!(
                    !value.contains(secret),
                    "{name}: {value} reached {} {}",
                    request.header("host").unwrap_or("?"),
                    request.path
                );
            }
        }
    }
}

/// Asserts that stderr shows none of `secrets`.
fn assert_not_shown(out: &Outcome, secrets: &[&str]) {
    for secret in secrets {
        assert!(
            !out.stderr.contains(secret),
            "{secret} shown: {}",
            out.stderr
        );
    }
}

/// The port of the `Host` a request was sent to.
fn port_of(request: &Request) -> String {
    let host = request.header("host").unwrap_or_default();
    host.rsplit_once(':')
        .map(|(_, p)| p)
        .unwrap_or("443")
        .to_string()
}

// --- Point 1: a token for one host goes to that host only ---------------------------------

#[test]
fn a_look_alike_host_receives_no_token_directly_or_after_a_redirect() {
    let hosts = [
        "mirror.corp.test",
        "mirror-corp.test",
        "mirror.corp-test",
        "mirror_corp.test",
    ];
    let identity = tls::self_signed_for(&hosts);
    let server = TestServer::start_tls(&identity, |request| match request.path.as_str() {
        "/hop" => Reply::redirect(
            302,
            &format!("https://mirror-corp.test:{}/f", port_of(request)),
        ),
        _ => Reply::ok("x"),
    });
    let mut sandbox = Sandbox::new();
    let cert = identity.write_cert(&sandbox.home());
    sandbox
        .env("SSL_CERT_FILE", cert)
        .env("PTEX_AUTH_MIRROR_CORP_TEST_BEARER", "tok-secret")
        // science's variables follow the same NAME mapping: nothing for a look-alike either.
        .env("SCIENCE_AUTH_MIRROR_CORP_TEST_BASIC_USER", "sci-user")
        .env("SCIENCE_AUTH_MIRROR_CORP_TEST_BASIC_PASS", "sci-secret");
    let names = Names {
        hosts: &hosts,
        resolver: names::refusing_resolver(),
    };
    let port = server.port();
    for host in hosts {
        let (out, _) = names::run_with(&sandbox, &names, &[&format!("https://{host}:{port}/f")]);
        out.assert_delivered(b"x");
    }
    let hop = format!("https://mirror.corp.test:{port}/hop");
    let (out, _) = names::run_with(&sandbox, &names, &[&hop]);
    out.assert_delivered(b"x");
    let requests = server.requests();
    assert_eq!(requests.len(), 6);
    let (meant, others): (Vec<Request>, Vec<Request>) = requests
        .into_iter()
        .partition(|r| r.header("host") == Some(format!("mirror.corp.test:{port}").as_str()));
    assert_eq!(meant.len(), 2);
    for request in &meant {
        assert_eq!(request.header("authorization"), Some("Bearer tok-secret"));
    }
    assert_none_carried(&others, &["tok-secret", "Bearer", "Basic"]);

    // With ours gone, science's go to the meant host only.
    sandbox.env("PTEX_AUTH_MIRROR_CORP_TEST_BEARER", "");
    for host in hosts {
        let (out, _) = names::run_with(&sandbox, &names, &[&format!("https://{host}:{port}/f")]);
        out.assert_delivered(b"x");
    }
    let requests = server.requests().split_off(6);
    let (meant, others): (Vec<Request>, Vec<Request>) = requests
        .into_iter()
        .partition(|r| r.header("host") == Some(format!("mirror.corp.test:{port}").as_str()));
    assert_eq!(meant.len(), 1);
    // base64("sci-user:sci-secret")
    assert_eq!(
        meant[0].header("authorization"),
        Some("Basic c2NpLXVzZXI6c2NpLXNlY3JldA==")
    );
    assert_none_carried(&others, &["Basic", "Bearer"]);
}

// --- Point 2: an S3 redirect carries no x-amz-* credential ------------------------------

#[test]
fn an_s3_redirect_to_another_port_receives_no_amz_credentials() {
    let other = TestServer::start(|_| Reply::ok("x"));
    let target = format!("http://127.0.0.1:{}", other.port());
    let endpoint = TestServer::start(move |request| {
        Reply::redirect(307, &format!("{target}{}", request.path))
    });
    let mut sandbox = Sandbox::new();
    sandbox
        .env("AWS_ENDPOINT_URL", endpoint.url(""))
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ACCESS_KEY_ID", "AKIDLEAKTEST")
        .env("AWS_SECRET_ACCESS_KEY", "secret-key-secret")
        .env("AWS_SESSION_TOKEN", "session-token-secret");
    let out = sandbox.run(&["--size", "1", "s3://corp-bucket/f.bin"]);
    // The signed request went to the endpoint, with its session token...
    let sent = endpoint.requests();
    assert!(
        sent.iter()
            .any(|r| r.header("x-amz-security-token") == Some("session-token-secret")),
        "{sent:?}"
    );
    // ...and nothing of it went on to the other origin.
    let leaked = other.requests();
    assert_none_carried(&leaked, &["session-token-secret", "AKIDLEAKTEST", "AWS4"]);
    for request in &leaked {
        for (name, _) in &request.headers {
            assert!(
                !name.starts_with("x-amz-"),
                "{name} reached the other origin"
            );
        }
    }
    out.assert_failed(&["f.bin", "another origin"]);
    assert_not_shown(&out, &["session-token-secret", "secret-key-secret"]);
}

// --- Point 3: after a cross-origin redirect, only what is keyed for exactly that origin ----

/// A server on another port of 127.0.0.1 serving `x`, and one redirecting there.
fn redirect_to_another_port() -> (TestServer, TestServer) {
    let other = TestServer::start(|_| Reply::ok("x"));
    let target = other.url("/f");
    let first = TestServer::start(move |_| Reply::redirect(307, &target));
    (first, other)
}

#[test]
fn netrc_entries_and_netrc_default_stay_on_their_origin_after_a_redirect() {
    let (first, other) = redirect_to_another_port();
    let mut sandbox = Sandbox::new();
    let netrc = sandbox.home().join("netrc");
    std::fs::write(
        &netrc,
        "machine 127.0.0.1 login alice password machine-secret\n\
         default login anon password default-secret\n",
    )
    .unwrap();
    sandbox.env("NETRC", &netrc);
    // The machine entry of 127.0.0.1, then netrc's default (for localhost), at the first
    // origin; the second origin (127.0.0.1, another port) gets neither.
    let by_ip = first.url("/f");
    let by_name = by_ip.replace("127.0.0.1", "localhost");
    for url in [&by_ip, &by_name] {
        sandbox.run(&[url]).assert_delivered(b"x");
    }
    let at_first = first.requests();
    assert_eq!(
        at_first[0].header("authorization"),
        Some("Basic YWxpY2U6bWFjaGluZS1zZWNyZXQ=") // alice:machine-secret
    );
    assert_eq!(
        at_first[1].header("authorization"),
        Some("Basic YW5vbjpkZWZhdWx0LXNlY3JldA==") // anon:default-secret
    );
    let at_other = other.requests();
    assert_eq!(at_other.len(), 2);
    assert_none_carried(&at_other, &["Basic", "Bearer"]);
}

#[test]
fn host_keyed_auth_entries_and_variables_stay_on_their_origin_after_a_redirect() {
    let (first, other) = redirect_to_another_port();
    let mut sandbox = Sandbox::new();
    let config = sandbox.home().join("ptex-config.json");
    let auth = json!({"auth": {"127.0.0.1": {
        "bearer_env": "CORP_TOKEN",
        "headers": {"X-Team": "team-secret"}
    }}});
    std::fs::write(&config, auth.to_string()).unwrap();
    sandbox.env("CORP_TOKEN", "config-secret");
    let url = first.url("/f");
    let config = config.to_str().unwrap();
    sandbox
        .run(&["--config", config, &url])
        .assert_delivered(b"x");
    sandbox.env("PTEX_AUTH_127_0_0_1_BEARER", "variable-secret");
    sandbox.run(&[&url]).assert_delivered(b"x");
    let at_first = first.requests();
    assert_eq!(
        at_first[0].header("authorization"),
        Some("Bearer config-secret")
    );
    assert_eq!(at_first[0].header("x-team"), Some("team-secret"));
    assert_eq!(
        at_first[1].header("authorization"),
        Some("Bearer variable-secret")
    );
    let at_other = other.requests();
    assert_eq!(at_other.len(), 2);
    assert_none_carried(&at_other, &["secret", "Bearer"]);
}

// --- Point 4: every spelling of a URL is judged as the plain one --------------------------

/// Other spellings of `http://localhost:PORT/f`: Unicode blanks before it, a trailing dot
/// and capitals in the host.
fn spellings(port: u16) -> Vec<String> {
    vec![
        format!("\u{3000}http://localhost:{port}/f"),
        format!("\u{a0}http://localhost:{port}/f"),
        format!("http://localhost.:{port}/f"),
        format!("http://LocalHost.:{port}/f "),
    ]
}

#[test]
fn every_spelling_is_blocked_like_the_plain_one() {
    let server = TestServer::start(|_| Reply::ok("x"));
    let sandbox = Sandbox::new();
    let config = sandbox.home().join("ptex-config.json");
    std::fs::write(&config, json!({"block": ["localhost"]}).to_string()).unwrap();
    let config = config.to_str().unwrap();
    for url in spellings(server.port()) {
        let lift = sandbox.manifest("f", json!(url), Some(1), Some(&sha256_hex(b"x")));
        let lift = lift.to_str().unwrap();
        let out = sandbox.run(&["--config", config, lift, "f"]);
        out.assert_failed(&["f", "blocked"]);
        let dry = sandbox.run(&["--config", config, "--dry-run", lift, "f"]);
        assert!(
            dry.stderr.contains(&format!(
                "http://localhost:{}/f  (origin, listed in the manifest {lift}; blocked)",
                server.port()
            )),
            "{url:?}: {}",
            dry.stderr
        );
    }
    assert_eq!(server.request_count(), 0);
}

#[test]
fn every_spelling_is_mirrored_like_the_plain_one() {
    let origin = TestServer::start(|_| Reply::ok("from the origin"));
    let mirror = TestServer::start(|_| Reply::ok("x"));
    let sandbox = Sandbox::new();
    let config = sandbox.home().join("ptex-config.json");
    let rules = json!({"mirrors": [{
        "prefix": format!("http://localhost:{}/", origin.port()),
        "urls": [mirror.url("/m/")],
        "origin": "never"
    }]});
    std::fs::write(&config, rules.to_string()).unwrap();
    let config = config.to_str().unwrap();
    for url in spellings(origin.port()) {
        let lift = sandbox.manifest("f", json!(url), Some(1), Some(&sha256_hex(b"x")));
        let lift = lift.to_str().unwrap();
        sandbox
            .run(&["--config", config, lift, "f"])
            .assert_delivered(b"x");
        let dry = sandbox.run(&["--config", config, "--dry-run", lift, "f"]);
        assert!(
            dry.stderr.contains(&mirror.url("/m/f")) && !dry.stderr.contains("origin;"),
            "{url:?}: {}",
            dry.stderr
        );
    }
    assert_eq!(origin.request_count(), 0);
    assert_eq!(mirror.request_count(), 4);
}

// --- Point 5: no wait for a resolver once the bytes are out -------------------------------

/// Well above the 1 s connect timeout the runs below use, well below the 60 s glibc waits
/// for a resolver that never answers (30 s, twice).
const PROMPTLY: Duration = Duration::from_secs(10);

#[test]
fn a_silent_resolver_costs_at_most_the_connect_timeout() {
    let resolver = SilentResolver::start();
    let server = TestServer::start(|_| Reply::ok("x"));
    let mut sandbox = Sandbox::new();
    sandbox
        .env("PTEX_CONNECT_TIMEOUT", "1")
        .env("PTEX_RETRIES", "0");
    let names = Names {
        hosts: &[],
        resolver: resolver.address(),
    };
    let silent = "http://silent.test/f";
    // The first source's lookup never ends; the second delivers.
    let lift = sandbox.manifest(
        "f",
        json!([silent, server.url("/f")]),
        Some(1),
        Some(&sha256_hex(b"x")),
    );
    let (out, took) = names::run_with(&sandbox, &names, &[lift.to_str().unwrap(), "f"]);
    out.assert_delivered(b"x");
    assert!(took < PROMPTLY, "took {took:?} after the bytes were out");
    // Failing costs no more.
    let (out, took) = names::run_with(&sandbox, &names, &[silent]);
    out.assert_failed(&["silent.test", "timed out"]);
    assert!(took < PROMPTLY, "took {took:?} to fail");
}

// --- Point 6: servers that answer ranges badly deliver through one plain GET --------------

const SIZE: usize = 40_000;
const CUT: usize = 15_000;

/// A 206 for `body[first..=last]` saying `range` (or no `Content-Range`), as `etag`.
fn partial(body: &[u8], first: usize, last: usize, range: Option<String>, etag: &str) -> Reply {
    let mut headers = vec![("ETag".to_string(), etag.to_string())];
    if let Some(range) = range {
        headers.push(("Content-Range".to_string(), range));
    }
    Reply::Full {
        status: 206,
        headers,
        body: body[first..=last].to_vec(),
    }
}

/// How a broken server answers a resume, given the file.
type Answer = dyn Fn(&[u8]) -> Reply + Send + Sync;

/// A transfer cut at `CUT`, whose resume `broken` answers; every later request gets the
/// whole file. Returns what ptex delivered and the requests the server saw.
fn resume_against(
    broken: impl Fn(&[u8]) -> Reply + Send + Sync + 'static,
    with_hash: bool,
) -> (Vec<u8>, Outcome, Vec<Request>) {
    let body = payload(SIZE);
    let served = body.clone();
    let server = scripted(move |n| match n {
        0 => cut_response(&served, CUT),
        1 => broken(&served),
        _ => Reply::ok(served.clone()).with_header("ETag", "\"v1\""),
    });
    let sandbox = Sandbox::new();
    let url = server.url("/f");
    let hash = sha256_hex(&body);
    let out = match with_hash {
        true => sandbox.run(&["--sha256", &hash, &url]),
        false => sandbox.run(&[&url]),
    };
    (body, out, server.requests())
}

#[test]
fn each_broken_resume_answer_falls_back_to_one_plain_get() {
    let last = SIZE - 1;
    let cases: Vec<(&str, Box<Answer>)> = vec![
        (
            "416",
            Box::new(|_| Reply::status(416).with_header("Content-Range", "bytes */40000")),
        ),
        (
            "206 without Content-Range",
            Box::new(move |b| partial(b, CUT, last, None, "\"v1\"")),
        ),
        (
            "a shorter 206",
            Box::new(move |b| {
                let range = format!("bytes {CUT}-19999/{SIZE}");
                partial(b, CUT, 19_999, Some(range), "\"v1\"")
            }),
        ),
    ];
    for (case, broken) in cases {
        let (body, out, requests) = resume_against(broken, true);
        out.assert_delivered(&body);
        assert_eq!(requests.len(), 3, "{case}: {}", out.stderr);
        assert_eq!(requests[1].header("range"), Some("bytes=15000-"), "{case}");
        assert_eq!(requests[2].header("range"), None, "{case}");
    }
}

#[test]
fn a_resumed_part_of_another_version_is_never_stitched() {
    // No expected hash: nothing but the validator tells the versions apart.
    let new: Vec<u8> = payload(SIZE).iter().map(|b| b.wrapping_add(1)).collect();
    let served = new.clone();
    let (_, out, requests) = resume_against(
        move |_| {
            let range = format!("bytes {CUT}-{}/{SIZE}", SIZE - 1);
            partial(&served, CUT, SIZE - 1, Some(range), "\"v2\"")
        },
        false,
    );
    // The third request (a plain GET) is answered with version 1 whole: what is emitted is
    // one version, never version 1's head on version 2's tail.
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(sha256_hex(&out.stdout), sha256_hex(&payload(SIZE)));
    assert_ne!(sha256_hex(&out.stdout), sha256_hex(&new));
    assert_eq!(requests.len(), 3);
    assert_eq!(requests[2].header("range"), None);
}

#[test]
fn ranges_answered_whole_by_another_node_fall_back_to_one_connection() {
    // A load balancer: every node says `Accept-Ranges`, each names the file with its own
    // ETag, so every part's If-Range fails on another node and it sends the whole file.
    let body = payload(10 << 20);
    let served = body.clone();
    let plain = AtomicUsize::new(0);
    let server = TestServer::start(move |request| {
        let node = match request.header("range") {
            Some(_) => "\"node-b\"",
            None if plain.fetch_add(1, Ordering::SeqCst).is_multiple_of(2) => "\"node-a\"",
            None => "\"node-c\"",
        };
        Reply::ok(served.clone())
            .with_header("ETag", node)
            .with_header("Accept-Ranges", "bytes")
    });
    let mut sandbox = Sandbox::new();
    sandbox
        .env("PTEX_SPLIT_SIZE", "1")
        .env("PTEX_SPLIT_AFTER", "0")
        .env("PTEX_RETRIES", "1");
    let lift = sandbox.manifest(
        "big.bin",
        json!(server.url("/big.bin")),
        Some(body.len() as u64),
        Some(&sha256_hex(&body)),
    );
    let out = sandbox.bind(&lift, "big.bin");
    out.assert_delivered(&body);
    assert!(out.stderr.contains("over one connection"), "{}", out.stderr);
    sandbox.assert_no_spool_debris();
}

// --- Point 7: no secret on stderr ---------------------------------------------------------

#[test]
fn no_secret_form_reaches_stderr() {
    let server = TestServer::start(|request| match request.path.as_str() {
        "/hop" => Reply::redirect(
            302,
            "http://user:userinfo-secret@127.0.0.1:1/f?X-Amz-Signature=signature-secret",
        ),
        "/evil" => Reply::ok("x").with_header("X-Evil", "a\u{9b}31mb"),
        _ => Reply::status(404),
    });
    let mut sandbox = Sandbox::new();
    let netrc = sandbox.home().join("netrc");
    std::fs::write(&netrc, "machine h login u password netrc secret-tail\n").unwrap();
    sandbox.env("NETRC", &netrc);
    let config = sandbox.home().join("ptex-config.json");
    let auth = json!({"auth": {"h.test": {"basic": "user:literal-secret"}}});
    std::fs::write(&config, auth.to_string()).unwrap();
    let runs: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["-H".into(), "ghp_header-secret".into(), server.url("/f")],
            "header-secret",
        ),
        (
            vec!["http://h:99999/x?token=unparsed-secret".into()],
            "unparsed-secret",
        ),
        (vec!["-D".into(), server.url("/hop")], "userinfo-secret"),
        (vec!["-D".into(), server.url("/hop")], "signature-secret"),
        (
            vec![server.url("/f#access_token=fragment-secret")],
            "fragment-secret",
        ),
        (vec![server.url("/f?jwt=query-secret")], "query-secret"),
        (vec![server.url("/f")], "secret-tail"),
        (
            vec![
                "--config".into(),
                config.display().to_string(),
                server.url("/f"),
            ],
            "literal-secret",
        ),
    ];
    for (args, secret) in runs {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = sandbox.run(&args);
        assert_eq!(out.code, Some(1), "{args:?}: {}", out.stderr);
        assert_not_shown(&out, &[secret]);
    }
    // -D escapes C1 control characters (U+009B opens a terminal escape sequence).
    let out = sandbox.run(&["-D", &server.url("/evil")]);
    out.assert_delivered(b"x");
    assert!(!out.stderr.contains('\u{9b}'), "{:?}", out.stderr);
    assert!(out.stderr.contains("\\u{9b}"), "{}", out.stderr);
}

// --- Point 8: the last line names where a redirect led -----------------------------------

#[test]
fn a_redirect_target_that_does_not_resolve_is_named() {
    let server = TestServer::start(|_| Reply::redirect(302, "http://gone.test:1/f"));
    let sandbox = Sandbox::new();
    let names = Names {
        hosts: &[],
        resolver: names::refusing_resolver(),
    };
    let url = server.url("/f");
    let (out, _) = names::run_with(&sandbox, &names, &[&url]);
    out.assert_failed(&["f", &url, "http://gone.test:1/f"]);
}
