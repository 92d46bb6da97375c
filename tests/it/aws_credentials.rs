//! The AWS credential chain as engineers have it set up (issue 14): named failures, profile
//! precedence, assume-role through a test-owned STS, `credential_process`, SSO with a cached
//! token and a loopback portal, container credentials. s3s-fs accepts exactly one key pair,
//! so a delivered object proves the chain chose the credentials it should have.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde_json::json;

use crate::support::relay::Relay;
use crate::support::s3::{ACCESS_KEY, S3Server, SECRET_KEY};
use crate::support::scie::{Sandbox, sha256_hex};
use crate::support::server::{Reply, Request, TestServer};

const ROLE: &str = "arn:aws:iam::123456789012:role/reader";
/// The role's key as STS hands it out (AWS-shaped: STS answers are checked for that).
const ROLE_KEY: &str = "ASIAPTEXTESTROLEKEY1";
const ROLE_SECRET: &str = "ptex-role-secret";

/// A sandbox pointed at `server` for S3 only (STS and SSO endpoints stay separate), with no
/// metadata service and no credentials.
fn sandbox_for(server: &S3Server) -> Sandbox {
    let mut sandbox = Sandbox::new();
    sandbox
        .env("AWS_ENDPOINT_URL_S3", server.endpoint())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    sandbox
}

fn write_aws(sandbox: &Sandbox, file: &str, text: &str) {
    let aws = sandbox.home().join(".aws");
    std::fs::create_dir_all(&aws).unwrap();
    std::fs::write(aws.join(file), text).unwrap();
}

fn script(sandbox: &Sandbox, name: &str, body: &str) -> String {
    let path = sandbox.home().join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.to_string_lossy().into_owned()
}

/// An STS answer carrying the role's key pair (the one a [`role_server`] accepts).
fn sts_reply(action: &str) -> Reply {
    Reply::ok(format!(
        "<{action}Response xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><{action}Result>\
         <Credentials><AccessKeyId>{ROLE_KEY}</AccessKeyId>\
         <SecretAccessKey>{ROLE_SECRET}</SecretAccessKey>\
         <SessionToken>sts-session-token</SessionToken>\
         <Expiration>2099-01-01T00:00:00Z</Expiration></Credentials>\
         </{action}Result></{action}Response>"
    ))
    .with_header("Content-Type", "text/xml")
}

fn role_server() -> S3Server {
    S3Server::start_with(ROLE_KEY, ROLE_SECRET)
}

fn query_has(request: &Request, pair: &str) -> bool {
    request
        .path
        .split_once('?')
        .is_some_and(|(_, q)| q.split('&').any(|p| p == pair))
}

#[test]
fn step_failures_are_named_and_profiles_take_precedence() {
    let server = S3Server::start();
    server.put_object("bkt", "f.bin", b"x");
    let mut sandbox = sandbox_for(&server);
    write_aws(
        &sandbox,
        "credentials",
        &format!(
            "[default]\naws_access_key_id = {ACCESS_KEY}\naws_secret_access_key = wrong\n\n\
             [reader]\naws_access_key_id = {ACCESS_KEY}\naws_secret_access_key = {SECRET_KEY}\n\
             [half]\naws_access_key_id = {ACCESS_KEY}\n"
        ),
    );
    // A named profile that does not exist is an error, not a fall-through to `default`.
    sandbox.env("AWS_PROFILE", "missing");
    sandbox.run(&["s3://bkt/f.bin"]).assert_failed(&[
        "s3://bkt/f.bin",
        "profile \"missing\"",
        "AWS_PROFILE",
        "no such profile",
    ]);
    // AWS_PROFILE wins over the config file's default profile (README's precedence).
    let config = sandbox.home().join("ptex.json");
    std::fs::write(&config, json!({"s3": {"profile": "default"}}).to_string()).unwrap();
    sandbox
        .env("PTEX_CONFIG", &config)
        .env("AWS_PROFILE", "reader");
    sandbox.run(&["s3://bkt/f.bin"]).assert_delivered(b"x");
    // AWS_DEFAULT_PROFILE is read when AWS_PROFILE is not set.
    let mut legacy = sandbox_for(&server);
    write_aws(
        &legacy,
        "credentials",
        &std::fs::read_to_string(sandbox.home().join(".aws/credentials")).unwrap(),
    );
    legacy.env("AWS_DEFAULT_PROFILE", "reader");
    legacy.run(&["s3://bkt/f.bin"]).assert_delivered(b"x");
    // A key without its secret is named, in the profile and in the environment.
    legacy.env("AWS_DEFAULT_PROFILE", "half");
    legacy
        .run(&["s3://bkt/f.bin"])
        .assert_failed(&["profile \"half\"", "aws_secret_access_key"]);
    let mut half_env = sandbox_for(&server);
    half_env.env("AWS_ACCESS_KEY_ID", ACCESS_KEY);
    half_env
        .run(&["s3://bkt/f.bin"])
        .assert_failed(&["the environment", "AWS_SECRET_ACCESS_KEY is not"]);
    // A web-identity token file that is missing stops the chain with its name.
    let mut irsa = sandbox_for(&server);
    irsa.env("AWS_WEB_IDENTITY_TOKEN_FILE", "/nonexistent/token")
        .env("AWS_ROLE_ARN", ROLE);
    irsa.run(&["s3://bkt/f.bin"])
        .assert_failed(&["web identity", "AWS_WEB_IDENTITY_TOKEN_FILE"]);
}

#[test]
fn legacy_security_token_is_sent() {
    let server = S3Server::start();
    server.put_object("bkt", "f.bin", b"x");
    let relay = Relay::start(server.port(), Vec::new());
    let mut sandbox = Sandbox::new();
    sandbox
        .env("AWS_ENDPOINT_URL", relay.endpoint())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("AWS_SECURITY_TOKEN", "legacy-token");
    sandbox.run(&["s3://bkt/f.bin"]).assert_delivered(b"x");
    let requests = relay.requests();
    assert!(
        requests
            .iter()
            .all(|r| r.header("x-amz-security-token") == Some("legacy-token")),
        "{requests:?}"
    );
}

#[test]
fn container_credentials_prefer_the_token_file_and_name_a_refusal() {
    let server = S3Server::start();
    server.put_object("bkt", "f.bin", b"x");
    let body = json!({"AccessKeyId": ACCESS_KEY, "SecretAccessKey": SECRET_KEY,
        "Token": "container-token", "Expiration": "2099-01-01T00:00:00Z"})
    .to_string();
    let container = TestServer::start(move |r| match r.header("authorization") {
        Some("from-file") => Reply::ok(body.clone()),
        _ => Reply::status(401),
    });
    let mut sandbox = sandbox_for(&server);
    let token_file = sandbox.home().join("token");
    std::fs::write(&token_file, "from-file\n").unwrap();
    sandbox
        .env(
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            container.url("/v1/credentials"),
        )
        .env("AWS_CONTAINER_AUTHORIZATION_TOKEN", "from-variable")
        .env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", &token_file);
    sandbox.run(&["s3://bkt/f.bin"]).assert_delivered(b"x");
    // The endpoint's 401 stops the chain, named, instead of "no AWS credentials found".
    std::fs::write(&token_file, "stale\n").unwrap();
    let out = sandbox.run(&["s3://bkt/f.bin"]);
    out.assert_failed(&["container credentials"]);
    assert!(
        !out.stderr.contains("no AWS credentials found"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("stale"), "{}", out.stderr);
}

#[test]
fn credential_process_good_failing_and_garbage() {
    let server = S3Server::start();
    server.put_object("bkt", "f.bin", b"x");
    let mut sandbox = sandbox_for(&server);
    let good = script(
        &sandbox,
        "good.sh",
        &format!(
            "echo '{{\"Version\": 1, \"AccessKeyId\": \"{ACCESS_KEY}\", \
             \"SecretAccessKey\": \"{SECRET_KEY}\", \"Expiration\": \"2099-01-01T00:00:00Z\"}}'"
        ),
    );
    let failing = script(
        &sandbox,
        "failing.sh",
        "echo 'vault: token expired' >&2; exit 3",
    );
    let garbage = script(&sandbox, "garbage.sh", "echo 'secret-looking-garbage'");
    let expired = script(
        &sandbox,
        "expired.sh",
        &format!(
            "echo '{{\"Version\": 1, \"AccessKeyId\": \"{ACCESS_KEY}\", \
             \"SecretAccessKey\": \"{SECRET_KEY}\", \"Expiration\": \"2001-01-01T00:00:00Z\"}}'"
        ),
    );
    let hangs = script(&sandbox, "hangs.sh", "exec sleep 30");
    write_aws(
        &sandbox,
        "config",
        &format!(
            "[profile good]\ncredential_process = {good} --flag \"an arg\"\n\
             [profile failing]\ncredential_process = {failing}\n\
             [profile garbage]\ncredential_process = {garbage}\n\
             [profile expired]\ncredential_process = {expired}\n\
             [profile hangs]\ncredential_process = {hangs}\n"
        ),
    );
    sandbox.env("AWS_PROFILE", "good");
    sandbox.run(&["s3://bkt/f.bin"]).assert_delivered(b"x");
    sandbox.env("AWS_PROFILE", "failing");
    sandbox.run(&["s3://bkt/f.bin"]).assert_failed(&[
        "profile \"failing\"",
        "credential_process",
        "vault: token expired",
    ]);
    sandbox.env("AWS_PROFILE", "garbage");
    let out = sandbox.run(&["s3://bkt/f.bin"]);
    out.assert_failed(&["profile \"garbage\"", "credential_process", "not JSON"]);
    assert!(!out.stderr.contains("secret-looking"), "{}", out.stderr);
    sandbox.env("AWS_PROFILE", "expired");
    sandbox
        .run(&["s3://bkt/f.bin"])
        .assert_failed(&["profile \"expired\"", "expired at"]);
    // A process that hangs is stopped after connect + read timeouts (here 1 s).
    sandbox
        .env("AWS_PROFILE", "hangs")
        .env("PTEX_CONNECT_TIMEOUT", "0.5")
        .env("PTEX_READ_TIMEOUT", "0.5");
    let started = std::time::Instant::now();
    sandbox.run(&["s3://bkt/f.bin"]).assert_failed(&[
        "profile \"hangs\"",
        "credential_process",
        "did not finish within 1 s",
    ]);
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

#[test]
fn assume_role_profile_through_a_loopback_sts_once_per_run() {
    let server = role_server();
    server.put_object("second", "f.bin", b"from the second bucket");
    let sts = TestServer::start(|r| {
        if query_has(r, "Action=AssumeRole") {
            sts_reply("AssumeRole")
        } else {
            Reply::status(400)
        }
    });
    let mut sandbox = sandbox_for(&server);
    write_aws(
        &sandbox,
        "config",
        &format!(
            "[profile corp]\nrole_arn = {ROLE}\nsource_profile = base\nexternal_id = ext-1\n\
             role_session_name = ptex-test\nduration_seconds = 900\n\
             [profile mfa]\nrole_arn = {ROLE}\nsource_profile = base\n\
             mfa_serial = arn:aws:iam::123456789012:mfa/me\n"
        ),
    );
    write_aws(
        &sandbox,
        "credentials",
        "[base]\naws_access_key_id = base-key\naws_secret_access_key = base-secret\n",
    );
    sandbox
        .env("AWS_ENDPOINT_URL_STS", sts.url(""))
        .env("AWS_PROFILE", "corp");
    // Two buckets in one run (the first lacks the object): one STS call for both.
    let lift = sandbox.manifest(
        "f.bin",
        json!(["s3://first/f.bin", "s3://second/f.bin"]),
        Some(22),
        Some(&sha256_hex(b"from the second bucket")),
    );
    sandbox
        .bind(&lift, "f.bin")
        .assert_delivered(b"from the second bucket");
    let calls = sts.requests();
    assert_eq!(calls.len(), 1, "{calls:?}");
    let call = &calls[0];
    for pair in [
        "ExternalId=ext-1",
        "RoleSessionName=ptex-test",
        "DurationSeconds=900",
    ] {
        assert!(query_has(call, pair), "{pair} missing: {call:?}");
    }
    // The call was signed with the source profile's key, for the regional STS host.
    let auth = call.header("authorization").unwrap_or_default();
    assert!(auth.contains("Credential=base-key/"), "{call:?}");
    assert_eq!(call.header("host"), Some("sts.us-east-1.amazonaws.com"));
    // mfa_serial cannot work without a prompt: said plainly, and STS is not called.
    sandbox.env("AWS_PROFILE", "mfa");
    sandbox.run(&["s3://second/f.bin"]).assert_failed(&[
        "profile \"mfa\"",
        "mfa_serial",
        "cannot prompt",
    ]);
    assert_eq!(sts.request_count(), 1);

    // Only AWS_DEFAULT_REGION: STS is still called, in that region.
    let mut default_region = Sandbox::new();
    for file in ["config", "credentials"] {
        let text = std::fs::read_to_string(sandbox.home().join(".aws").join(file)).unwrap();
        write_aws(&default_region, file, &text);
    }
    default_region
        .env("AWS_ENDPOINT_URL_S3", server.endpoint())
        .env("AWS_DEFAULT_REGION", "eu-west-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ENDPOINT_URL_STS", sts.url(""))
        .env("AWS_PROFILE", "corp");
    default_region
        .run(&["s3://second/f.bin"])
        .assert_delivered(b"from the second bucket");
    let calls = sts.requests();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(calls[1].header("host"), Some("sts.eu-west-1.amazonaws.com"));
}

#[test]
fn sts_refusal_and_web_identity_profile() {
    let server = role_server();
    server.put_object("bkt", "f.bin", b"x");
    let sts = TestServer::start(|r| {
        if query_has(r, "Action=AssumeRole") {
            Reply::Full {
                status: 403,
                headers: vec![("Content-Type".into(), "text/xml".into())],
                body: b"<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code>\
                    <Message>not authorized to perform sts:AssumeRole</Message></Error>\
                    </ErrorResponse>"
                    .to_vec(),
            }
        } else {
            // AssumeRoleWithWebIdentity is a POST with a form body.
            sts_reply("AssumeRoleWithWebIdentity")
        }
    });
    let mut sandbox = sandbox_for(&server);
    let token = sandbox.home().join("web-token");
    std::fs::write(&token, "eyJ.web.token").unwrap();
    write_aws(
        &sandbox,
        "config",
        &format!(
            "[profile irsa]\nrole_arn = {ROLE}\nweb_identity_token_file = {}\n",
            token.display()
        ),
    );
    sandbox
        .env("AWS_ENDPOINT_URL_STS", sts.url(""))
        .env("AWS_PROFILE", "irsa");
    sandbox.run(&["s3://bkt/f.bin"]).assert_delivered(b"x");
    // STS refuses the role (a wrong trust policy): that error, named, not "no credentials".
    let mut denied = sandbox_for(&server);
    write_aws(
        &denied,
        "config",
        &format!("[profile denied]\nrole_arn = {ROLE}\nsource_profile = base\n"),
    );
    write_aws(
        &denied,
        "credentials",
        "[base]\naws_access_key_id = base-key\naws_secret_access_key = base-secret\n",
    );
    denied
        .env("AWS_ENDPOINT_URL_STS", sts.url(""))
        .env("AWS_PROFILE", "denied");
    let out = denied.run(&["s3://bkt/f.bin"]);
    out.assert_failed(&["profile \"denied\"", "AssumeRole", "AccessDenied"]);
    assert!(!out.stderr.contains("base-secret"), "{}", out.stderr);
}

#[test]
fn sso_profile_with_a_cached_token_and_a_loopback_portal() {
    let server = S3Server::start();
    server.put_object("bkt", "f.bin", b"x");
    let body = json!({"roleCredentials": {"accessKeyId": ACCESS_KEY,
        "secretAccessKey": SECRET_KEY, "sessionToken": "sso-session", "expiration": 4_070_908_800_000_i64}})
    .to_string();
    let portal = TestServer::start(move |r| {
        match (
            r.path.starts_with("/federation/credentials"),
            r.header("x-amz-sso_bearer_token"),
        ) {
            (true, Some("cached-access-token")) => Reply::ok(body.clone()),
            _ => Reply::status(401),
        }
    });
    let mut sandbox = sandbox_for(&server);
    write_aws(
        &sandbox,
        "config",
        "[profile dev]\nsso_session = corp\nsso_account_id = 123456789012\n\
         sso_role_name = Reader\n\
         [sso-session corp]\nsso_region = us-east-1\n\
         sso_start_url = https://corp.awsapps.com/start\n",
    );
    sandbox
        .env("AWS_ENDPOINT_URL_SSO", portal.url(""))
        .env("AWS_PROFILE", "dev");
    // No cached token yet: the user is told to log in.
    sandbox
        .run(&["s3://bkt/f.bin"])
        .assert_failed(&["profile \"dev\"", "aws sso login --profile dev"]);
    assert_eq!(portal.request_count(), 0);
    // The CLI caches the token under the SHA-1 of the session name.
    let cache = sandbox.home().join(".aws/sso/cache");
    std::fs::create_dir_all(&cache).unwrap();
    let cached = |expires: &str| {
        let file = cache.join(format!("{}.json", sha1_hex("corp")));
        std::fs::write(
            file,
            json!({"accessToken": "cached-access-token", "expiresAt": expires}).to_string(),
        )
        .unwrap();
    };
    cached("2099-01-01T00:00:00Z");
    sandbox.run(&["s3://bkt/f.bin"]).assert_delivered(b"x");
    assert_eq!(portal.request_count(), 1);
    cached("2001-01-01T00:00:00Z");
    sandbox
        .run(&["s3://bkt/f.bin"])
        .assert_failed(&["expired", "aws sso login --profile dev"]);
    assert_eq!(portal.request_count(), 1);
}

/// SHA-1 of `text` in hex, from coreutils (the test crate has no SHA-1 of its own).
fn sha1_hex(text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("in");
    std::fs::write(&path, text).unwrap();
    let out = std::process::Command::new("sha1sum")
        .arg(Path::new(&path))
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap()[..40].to_string()
}

/// A store endpoint that answers every request with `status` (and `headers`).
fn answering(status: u16, headers: &[(&str, &str)]) -> TestServer {
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    TestServer::start(move |_| Reply::Full {
        status,
        headers: headers.clone(),
        body: Vec::new(),
    })
}

#[test]
fn bare_statuses_are_said_in_plain_words() {
    // 301: the bucket's region, from x-amz-bucket-region.
    let moved = answering(301, &[("x-amz-bucket-region", "eu-west-1")]);
    let mut sandbox = Sandbox::new();
    sandbox
        .env("AWS_ENDPOINT_URL", moved.url(""))
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("AWS_SESSION_TOKEN", "old-token");
    sandbox.run(&["s3://bkt/f.bin"]).assert_failed(&[
        "s3://bkt/f.bin",
        "region eu-west-1",
        "AWS_REGION=eu-west-1",
    ]);
    assert_eq!(moved.request_count(), 1);
    // 400 to a signed HEAD: an expired session token, said so.
    let expired = answering(400, &[]);
    sandbox.env("AWS_ENDPOINT_URL", expired.url(""));
    let out = sandbox.run(&["s3://bkt/f.bin"]);
    out.assert_failed(&["access denied", "expired", "the environment"]);
    assert!(!out.stderr.contains("old-token"), "{}", out.stderr);
    // 401 on GCS: access denied, with the credentials hint.
    let private = answering(401, &[]);
    let mut gs = Sandbox::new();
    let config = gs.home().join("ptex.json");
    std::fs::write(
        &config,
        json!({"gs": {"endpoint": private.url("")}}).to_string(),
    )
    .unwrap();
    // No metadata server: nothing listens on port 9.
    gs.env("PTEX_CONFIG", &config)
        .env("GCE_METADATA_HOST", "127.0.0.1:9");
    gs.run(&["gs://bkt/f.bin"]).assert_failed(&[
        "gs://bkt/f.bin",
        "access denied",
        "no Google credentials",
    ]);
}

#[test]
fn untrusted_certificate_on_a_store_is_not_retried_and_hints_ssl_cert_file() {
    let identity = crate::support::tls::self_signed();
    let server = TestServer::start_tls(&identity, |_| Reply::ok("x"));
    let mut sandbox = Sandbox::new();
    sandbox
        .env("AWS_ENDPOINT_URL", server.url(""))
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY);
    let out = sandbox.run(&["s3://bkt/f.bin"]);
    out.assert_failed(&["s3://bkt/f.bin", "TLS", "SSL_CERT_FILE"]);
    // One attempt: no warning about a failed try before the final line.
    assert_eq!(out.stderr.matches("TLS").count(), 1, "{}", out.stderr);
    let mut gs = Sandbox::new();
    gs.env("STORAGE_EMULATOR_HOST", server.url(""));
    let out = gs.run(&["gs://bkt/f.bin"]);
    out.assert_failed(&["gs://bkt/f.bin", "TLS", "SSL_CERT_FILE"]);
    assert_eq!(out.stderr.matches("TLS").count(), 1, "{}", out.stderr);
}

/// How a stand-in metadata service treats the IMDSv2 token PUT.
#[derive(Clone, Copy)]
enum TokenPut {
    Answered,
    Refused,
    Hangs,
}

fn imds(put: TokenPut, expiration: &'static str) -> TestServer {
    let role = json!({"Code": "Success", "AccessKeyId": ACCESS_KEY, "SecretAccessKey": SECRET_KEY,
        "Token": "imds-token", "Expiration": expiration})
    .to_string();
    TestServer::start(move |r| match (r.method.as_str(), r.path.as_str(), put) {
        ("PUT", "/latest/api/token", TokenPut::Answered) => Reply::ok("session-token"),
        ("PUT", _, TokenPut::Refused) => Reply::status(403),
        ("PUT", _, TokenPut::Hangs) => Reply::Drip {
            declared_len: 10,
            headers: Vec::new(),
            body: Vec::new(),
            drip: Vec::new(),
            every: std::time::Duration::from_secs(1),
        },
        ("GET", "/latest/meta-data/iam/security-credentials/", _) => Reply::ok("reader\n"),
        ("GET", "/latest/meta-data/iam/security-credentials/reader", _) => Reply::ok(role.clone()),
        _ => Reply::status(404),
    })
}

#[test]
fn instance_metadata_v2_v1_fallback_expiry_and_one_probe_per_run() {
    let server = S3Server::start();
    server.put_object("second", "f.bin", b"x");
    for (put, name) in [
        (TokenPut::Answered, "v2"),
        (TokenPut::Refused, "v1 after a refused token PUT"),
        (TokenPut::Hangs, "v1 after a hanging token PUT"),
    ] {
        let metadata = imds(put, "2099-01-01T00:00:00Z");
        let mut sandbox = Sandbox::new();
        sandbox
            .env("AWS_ENDPOINT_URL", server.endpoint())
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_SERVICE_ENDPOINT", metadata.url(""));
        // Two buckets in one run: the metadata service is asked once.
        let lift = sandbox.manifest(
            "f.bin",
            json!(["s3://first/f.bin", "s3://second/f.bin"]),
            Some(1),
            Some(&sha256_hex(b"x")),
        );
        sandbox.bind(&lift, "f.bin").assert_delivered(b"x");
        let gets: Vec<_> = metadata
            .requests()
            .into_iter()
            .filter(|r| r.method == "GET")
            .collect();
        assert_eq!(gets.len(), 2, "{name}: {gets:?}");
        let v2 = gets
            .iter()
            .all(|r| r.header("x-aws-ec2-metadata-token") == Some("session-token"));
        assert_eq!(v2, matches!(put, TokenPut::Answered), "{name}: {gets:?}");
    }
    // An expired credential is not used as is.
    let metadata = imds(TokenPut::Answered, "2001-01-01T00:00:00Z");
    let mut sandbox = Sandbox::new();
    sandbox
        .env("AWS_ENDPOINT_URL", server.endpoint())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_SERVICE_ENDPOINT", metadata.url(""));
    sandbox
        .run(&["s3://second/f.bin"])
        .assert_failed(&["instance metadata", "expired at"]);
}

#[test]
fn endpoints_from_the_profile_and_services_section_unless_ignored() {
    let server = S3Server::start();
    server.put_object("bkt", "f.bin", b"x");
    let mut sandbox = Sandbox::new();
    write_aws(
        &sandbox,
        "config",
        &format!(
            "[profile direct]\nendpoint_url = {0}\ns3 =\n  addressing_style = path\n\
             [profile via-services]\nservices = local\n\
             [services local]\ns3 =\n  endpoint_url = {0}\n",
            server.endpoint()
        ),
    );
    write_aws(
        &sandbox,
        "credentials",
        &format!(
            "[direct]\naws_access_key_id = {ACCESS_KEY}\naws_secret_access_key = {SECRET_KEY}\n\
             [via-services]\naws_access_key_id = {ACCESS_KEY}\n\
             aws_secret_access_key = {SECRET_KEY}\n"
        ),
    );
    sandbox
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_PROFILE", "direct");
    sandbox.run(&["s3://bkt/f.bin"]).assert_delivered(b"x");
    sandbox.env("AWS_PROFILE", "via-services");
    sandbox.run(&["s3://bkt/f.bin"]).assert_delivered(b"x");
    // AWS_IGNORE_CONFIGURED_ENDPOINT_URLS: the profile's endpoint is not used (an endpoint
    // in the ptex config still is).
    sandbox.env("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true");
    let config = sandbox.home().join("ptex.json");
    std::fs::write(
        &config,
        json!({"s3": {"endpoint": "http://127.0.0.1:9"}}).to_string(),
    )
    .unwrap();
    sandbox.env("PTEX_CONFIG", &config).env("PTEX_RETRIES", "0");
    sandbox
        .run(&["s3://bkt/f.bin"])
        .assert_failed(&["s3://bkt/f.bin", "Connection refused"]);
}

#[test]
fn aws_ca_bundle_is_trusted_for_s3() {
    let identity = crate::support::tls::self_signed();
    let server = TestServer::start_tls(&identity, |_| Reply::status(404));
    let mut sandbox = Sandbox::new();
    sandbox
        .env("AWS_ENDPOINT_URL", server.url(""))
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY);
    sandbox
        .run(&["s3://bkt/f.bin"])
        .assert_failed(&["TLS", "SSL_CERT_FILE"]);
    let bundle = identity.write_cert(&sandbox.home());
    sandbox.env("AWS_CA_BUNDLE", &bundle);
    // The handshake passes: the server's own answer (404) comes back.
    sandbox
        .run(&["s3://bkt/f.bin"])
        .assert_failed(&["s3://bkt/f.bin", "not found"]);
    assert_eq!(server.request_count(), 1);
}

#[test]
fn credential_source_ecs_container_and_keys_in_the_config_file() {
    let server = role_server();
    server.put_object("bkt", "f.bin", b"x");
    let sts = TestServer::start(|r| {
        let signed_by_container = r
            .header("authorization")
            .is_some_and(|a| a.contains("Credential=ASIACONTAINERSOURCE1/"));
        if query_has(r, "Action=AssumeRole") && signed_by_container {
            sts_reply("AssumeRole")
        } else {
            Reply::status(403)
        }
    });
    let container = TestServer::start(|_| {
        Reply::ok(
            json!({"AccessKeyId": "ASIACONTAINERSOURCE1", "SecretAccessKey": "c",
                "Token": "t", "Expiration": "2099-01-01T00:00:00Z"})
            .to_string(),
        )
    });
    let mut sandbox = sandbox_for(&server);
    write_aws(
        &sandbox,
        "config",
        &format!(
            "[profile ecs-role]\nrole_arn = {ROLE}\ncredential_source = EcsContainer\n\
             [profile in-config]\naws_access_key_id = {ROLE_KEY}\n\
             aws_secret_access_key = {ROLE_SECRET}\n"
        ),
    );
    sandbox
        .env("AWS_ENDPOINT_URL_STS", sts.url(""))
        .env(
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            container.url("/creds"),
        )
        .env("AWS_PROFILE", "ecs-role");
    sandbox.run(&["s3://bkt/f.bin"]).assert_delivered(b"x");
    assert_eq!(sts.request_count(), 1);
    sandbox.env("AWS_PROFILE", "in-config");
    sandbox.run(&["s3://bkt/f.bin"]).assert_delivered(b"x");
    assert_eq!(sts.request_count(), 1);
}
