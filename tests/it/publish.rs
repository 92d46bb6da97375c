//! `ptex-publish`: from URLs to a checked, mirrored skinny scie manifest, against real
//! servers on loopback (the in-process HTTP server, s3s-fs, local directories).

use std::path::Path;

use serde_json::{Value, json};

use crate::support::gcs::GcsServer;
use crate::support::s3::{ACCESS_KEY, S3Server, SECRET_KEY};
use crate::support::scie::{Outcome, Sandbox, payload, sha256_hex};
use crate::support::server::{Reply, TestServer};

/// Serves `files` (path, bytes) at their paths; anything else is a 404.
fn origin(files: Vec<(&'static str, Vec<u8>)>) -> TestServer {
    TestServer::start(
        move |request| match files.iter().find(|(path, _)| *path == request.path) {
            Some((_, body)) => Reply::ok(body.clone()),
            None => Reply::status(404),
        },
    )
}

/// A sandbox that signs S3 requests for `server` with its keys.
fn s3_sandbox(server: &S3Server) -> Sandbox {
    let mut sandbox = Sandbox::new();
    sandbox
        .env("AWS_ENDPOINT_URL", server.endpoint())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY);
    sandbox
}

fn file_url(path: &Path) -> String {
    format!("file://{}", path.display())
}

fn succeeded(out: &Outcome) {
    assert_eq!(out.code, Some(0), "ptex-publish failed: {}", out.stderr);
}

/// A lift manifest with a binding and the given `files` entries and `ptex` table.
fn manifest_text(files: Value, table: Value) -> String {
    json!({
        "scie": {"lift": {
            "name": "skinny",
            "files": files,
            "boot": {
                "commands": {"": {"exe": "{a}"}},
                "bindings": {"ptex-fetch": {"exe": "{ptex}", "args": ["{scie.lift}"]}}
            }
        }},
        "ptex": table
    })
    .to_string()
}

fn sourced(name: &str, body: &[u8]) -> Value {
    json!({"name": name, "size": body.len(), "hash": sha256_hex(body), "type": "blob",
           "source": "ptex-fetch"})
}

#[test]
fn entry_on_http_s3_and_file_urls_matches_the_bytes() {
    let (web, store, local) = (payload(70_001), payload(5_000), payload(123));
    let server = origin(vec![("/rel/python.tar.gz", web.clone())]);
    let s3 = S3Server::start();
    s3.put_object("artifacts", "jdk/jdk.zip", &store);
    let sandbox = s3_sandbox(&s3);
    let path = sandbox.home().join("tool");
    std::fs::write(&path, &local).unwrap();
    let urls = [
        server.url("/rel/python.tar.gz"),
        "s3://artifacts/jdk/jdk.zip".to_string(),
        file_url(&path),
    ];
    let out = sandbox.publish(&["entry", &urls[0], &urls[1], &urls[2]]);
    succeeded(&out);
    let printed: Value = serde_json::from_slice(&out.stdout).expect("entry prints JSON");
    let files = printed["scie"]["lift"]["files"].as_array().unwrap();
    let expected = [
        ("python.tar.gz", &web, "tar.gz"),
        ("jdk.zip", &store, "zip"),
        ("tool", &local, "blob"),
    ];
    assert_eq!(files.len(), 3);
    for ((name, body, kind), (file, url)) in expected.iter().zip(files.iter().zip(&urls)) {
        assert_eq!(
            file,
            &json!({"name": name, "size": body.len(), "hash": sha256_hex(body),
                    "type": kind, "source": "ptex-fetch"})
        );
        assert_eq!(printed["ptex"][name], json!(url));
    }
    // A URL that does not serve a file is an error naming it, and nothing is printed.
    let missing = server.url("/rel/missing.tar.gz");
    let out = sandbox.publish(&["entry", &missing]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(out.stdout.is_empty());
    for word in ["missing.tar.gz", &missing, "not found"] {
        assert!(out.last_line().contains(word), "{}", out.last_line());
    }
}

#[test]
fn entry_into_keeps_unrelated_content_byte_for_byte() {
    let (old, new) = (payload(10), payload(20_000));
    let server = origin(vec![("/a.tar.gz", new.clone()), ("/b.bin", old.clone())]);
    let sandbox = Sandbox::new();
    let (a_url, b_url) = (server.url("/a.tar.gz"), server.url("/b.bin"));
    // Odd spacing, unsorted keys, number spellings and escapes serde_json would not keep.
    let before = format!(
        "{{ \"zeta\" : 1.50,\n\t\"scie\":{{\"lift\":{{ \"name\":\"x\", \"files\": [\n\
         \t  {{\"name\": \"ptex\", \"key\": \"ptex\", \"executable\": true}},\n\
         \t  {{\"source\": \"ptex-fetch\", \"name\": \"a.tar.gz\", \"hash\": \"{}\", \"size\": 3, \
         \"key\": \"py\"}}\n\t],\n\
         \"boot\": {{\"commands\": {{\"\": {{\"exe\": \"{{py}}\\u002fbin\"}}}}}}}}}},\n\
         \"ptex\": {{\"a.tar.gz\": \"{a_url}\"}},  \"after\": [1e3, \"\\u00e9\"]\n}}\n",
        sha256_hex(b"stale")
    );
    let manifest = sandbox.raw_manifest(&before);
    let lift = manifest.to_str().unwrap();
    succeeded(&sandbox.publish(&["entry", "--into", lift, &a_url, &b_url]));
    let after = std::fs::read_to_string(&manifest).unwrap();
    let expected = before
        .replace(&sha256_hex(b"stale"), &sha256_hex(&new))
        .replace("\"size\": 3", "\"size\": 20000")
        .replace(
            "\"key\": \"py\"}",
            &format!(
                "\"key\": \"py\", \"type\": \"tar.gz\"}},\n\t  {{\"name\": \"b.bin\", \"size\": 10, \
                 \"hash\": \"{}\", \"type\": \"blob\", \"source\": \"ptex-fetch\"}}",
                sha256_hex(&old)
            ),
        )
        .replace(
            &format!("\"{a_url}\"}}"),
            &format!("\"{a_url}\", \"b.bin\": \"{b_url}\"}}"),
        );
    assert_eq!(after, expected);
    // A second run changes nothing, and ptex fetches both files with the result.
    succeeded(&sandbox.publish(&["entry", "--into", lift, &a_url, &b_url]));
    assert_eq!(std::fs::read_to_string(&manifest).unwrap(), expected);
    sandbox.bind(&manifest, "a.tar.gz").assert_delivered(&new);
    sandbox.bind(&manifest, "b.bin").assert_delivered(&old);
}

#[test]
fn check_flags_each_kind_of_broken_manifest() {
    let body = payload(100);
    let hash = sha256_hex(&body);
    let sandbox = Sandbox::new();
    let good = sandbox.home().join("good.bin");
    std::fs::write(&good, &body).unwrap();
    let url = file_url(&good);
    let mut files = vec![
        json!({"name": "ptex", "key": "ptex", "executable": true}),
        sourced("good.bin", &body),
    ];
    let broken = [
        (
            "no-size",
            json!({"name": "no-size", "hash": hash, "type": "blob"}),
            json!(url),
            "no size",
        ),
        (
            "no-hash",
            json!({"name": "no-hash", "size": 100, "type": "blob"}),
            json!(url),
            "no hash",
        ),
        (
            "bad-hash",
            json!({"name": "bad-hash", "size": 100, "hash": "ABC", "type": "blob"}),
            json!(url),
            "64 lowercase hex",
        ),
        (
            "no-type",
            json!({"name": "no-type", "size": 100, "hash": hash}),
            json!(url),
            "no type",
        ),
        (
            "no-url",
            json!({"name": "no-url", "size": 100, "hash": hash, "type": "blob"}),
            Value::Null,
            "no URL",
        ),
        (
            "gopher",
            json!({"name": "gopher", "size": 100, "hash": hash, "type": "blob"}),
            json!("gopher://h/x"),
            "unsupported URL scheme",
        ),
        (
            "bad-url",
            json!({"name": "bad-url", "size": 100, "hash": hash, "type": "blob"}),
            json!(["s3://bucket-only"]),
            "names no object",
        ),
    ];
    let mut table = json!({"good.bin": url});
    for (name, mut file, urls, _) in broken.clone() {
        file["source"] = json!("ptex-fetch");
        files.push(file);
        if !urls.is_null() {
            table[name] = urls;
        }
    }
    let manifest = sandbox.raw_manifest(&manifest_text(json!(files), table));
    let lift = manifest.to_str().unwrap();
    let out = sandbox.publish(&["check", lift]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    let text = String::from_utf8(out.stdout.clone()).unwrap();
    let good_row = text.lines().find(|l| l.starts_with("good.bin")).unwrap();
    assert!(
        good_row.ends_with("  ok") && good_row.contains(&url),
        "{text}"
    );
    for (name, _, _, word) in &broken {
        let row = text.lines().find(|l| l.starts_with(name)).unwrap_or("");
        assert!(
            row.contains("error: ") && row.contains(word),
            "{name}: {text}"
        );
        assert!(
            out.last_line().contains(word),
            "{name}: {}",
            out.last_line()
        );
    }
    assert!(
        out.last_line().contains("7 problems"),
        "{}",
        out.last_line()
    );

    let out = sandbox.publish(&["check", "--json", lift]);
    assert_eq!(out.code, Some(1));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], json!(false));
    let rows = report["results"].as_array().unwrap();
    let failed = |name: &str| rows.iter().any(|r| r["file"] == name && r["ok"] == false);
    assert!(!failed("good.bin"), "{report:#}");
    for (name, _, _, _) in &broken {
        assert!(failed(name), "{name}: {report:#}");
    }

    // Not a lift manifest at all.
    let manifest = sandbox.raw_manifest("{\"ptex\": {}}");
    let out = sandbox.publish(&["check", manifest.to_str().unwrap()]);
    assert_eq!(out.code, Some(1));
    assert!(
        out.last_line().contains("scie.lift.files"),
        "{}",
        out.last_line()
    );
}

#[test]
fn check_probe_finds_stale_and_missing_urls_and_verify_finds_wrong_bytes() {
    let body = payload(4_000);
    let changed = payload(4_000).iter().map(|b| b ^ 1).collect::<Vec<u8>>();
    let server = origin(vec![
        ("/good.bin", body.clone()),
        ("/stale.bin", payload(3_999)),
        ("/changed.bin", changed),
    ]);
    // Like a URL signed for GET only: HEAD is denied.
    let served = body.clone();
    let signed = TestServer::start(move |request| match request.method.as_str() {
        "HEAD" => Reply::status(403),
        _ => Reply::ok(served.clone()),
    });
    let s3 = S3Server::start();
    s3.put_object("bkt", "good.bin", &body);
    let sandbox = s3_sandbox(&s3);
    let urls = json!([
        server.url("/good.bin"),
        "s3://bkt/good.bin",
        server.url("/stale.bin"),
        server.url("/gone.bin"),
        server.url("/changed.bin"),
        signed.url("/f.bin?X-Amz-Signature=x"),
    ]);
    let manifest = sandbox.raw_manifest(&manifest_text(
        json!([sourced("f.bin", &body)]),
        json!({"f.bin": urls}),
    ));
    let lift = manifest.to_str().unwrap();
    let status = |out: &Outcome| -> Vec<(String, bool, String)> {
        let report: Value = serde_json::from_slice(&out.stdout).expect("JSON report");
        report["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let field = |k: &str| r[k].as_str().unwrap().to_string();
                (field("source"), r["ok"].as_bool().unwrap(), field("status"))
            })
            .collect()
    };

    let out = sandbox.publish(&["check", "--probe", "--json", lift]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    let rows = status(&out);
    let wanted = [
        (true, "ok: 4000 bytes"),
        (true, "ok: 4000 bytes"),
        (
            false,
            "size mismatch: the manifest says 4000 bytes, the source has 3999",
        ),
        (false, "not found (HTTP 404)"),
        // Same size, other bytes: a probe cannot tell.
        (true, "ok: 4000 bytes"),
        // Asked again with a GET, whose body is not read.
        (true, "ok: 4000 bytes"),
    ];
    assert_eq!(rows.len(), wanted.len(), "{rows:?}");
    for ((source, ok, text), (url, (want_ok, want))) in
        rows.iter().zip(urls.as_array().unwrap().iter().zip(wanted))
    {
        // Same URL, but a signature is never shown.
        let url = url.as_str().unwrap();
        assert_eq!(source.split('?').next(), url.split('?').next());
        assert!(!source.contains("Signature=x"), "{source}");
        assert_eq!((*ok, text.as_str()), (want_ok, want), "{source}");
    }
    assert!(out.last_line().contains("stale.bin") && out.last_line().contains("gone.bin"));
    // The probe asked with HEAD, and never for a body.
    assert!(server.requests().iter().all(|r| r.method == "HEAD"));

    let out = sandbox.publish(&["check", "--verify", "--json", lift]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    let rows = status(&out);
    assert!(
        rows[0].1 && rows[0].2.starts_with("verified: 4000 bytes"),
        "{rows:?}"
    );
    assert!(rows[1].1 && rows[1].2.starts_with("verified"), "{rows:?}");
    assert!(
        !rows[4].1 && rows[4].2.contains("sha256 mismatch"),
        "{rows:?}"
    );
    assert!(
        out.last_line().contains("changed.bin"),
        "{}",
        out.last_line()
    );
}

#[test]
fn mirror_to_s3_then_ptex_fetches_through_the_printed_rule_with_the_origin_down() {
    let (one, two) = (payload(300_000), payload(77));
    let server = origin(vec![
        ("/pbs/one.tar.gz", one.clone()),
        ("/two.bin", two.clone()),
    ]);
    let s3 = S3Server::start();
    s3.create_bucket("mirror");
    let mut sandbox = s3_sandbox(&s3);
    let (one_url, two_url) = (server.url("/pbs/one.tar.gz"), server.url("/two.bin"));
    let manifest = sandbox.raw_manifest(&manifest_text(
        json!([sourced("one.tar.gz", &one), sourced("two.bin", &two)]),
        json!({"one.tar.gz": one_url, "two.bin": [two_url]}),
    ));
    let lift = manifest.to_str().unwrap();
    let config = sandbox.home().join("ptex.json");
    let config_arg = config.to_str().unwrap();
    let out = sandbox.publish(&[
        "mirror",
        lift,
        "--to",
        "s3://mirror/scies/v1",
        "--write-config",
        config_arg,
    ]);
    succeeded(&out);
    assert!(
        out.stderr.contains("2 of 2 files uploaded"),
        "{}",
        out.stderr
    );
    for (name, body) in [("one.tar.gz", &one), ("two.bin", &two)] {
        let object = s3.object_path("mirror", &format!("scies/v1/{name}"));
        assert_eq!(&std::fs::read(&object).unwrap(), body, "{name}");
        let sidecar = s3.object_path("mirror", &format!("scies/v1/{name}.sha256"));
        assert_eq!(
            std::fs::read_to_string(sidecar).unwrap(),
            format!("{}  {name}\n", sha256_hex(body))
        );
    }
    let printed: Value = serde_json::from_slice(&out.stdout).expect("rules as JSON");
    assert_eq!(
        printed,
        json!({"mirrors": [
            {"prefix": one_url, "urls": ["s3://mirror/scies/v1/one.tar.gz"], "origin": "last"},
            {"prefix": two_url, "urls": ["s3://mirror/scies/v1/two.bin"], "origin": "last"},
        ]})
    );
    let written: Value = serde_json::from_slice(&std::fs::read(&config).unwrap()).unwrap();
    assert_eq!(written, printed);

    let uploaded_at = std::fs::metadata(s3.object_path("mirror", "scies/v1/one.tar.gz"))
        .unwrap()
        .modified()
        .unwrap();
    drop(server);
    sandbox.env("PTEX_CONFIG", &config);
    sandbox.bind(&manifest, "one.tar.gz").assert_delivered(&one);
    sandbox.bind(&manifest, "two.bin").assert_delivered(&two);

    // A second run finds both copies complete: it fetches and uploads nothing (the origin
    // is down), and the config keeps one copy of each rule.
    let out = sandbox.publish(&[
        "mirror",
        lift,
        "--to",
        "s3://mirror/scies/v1",
        "--write-config",
        config_arg,
    ]);
    succeeded(&out);
    assert!(
        out.stderr
            .contains("0 of 2 files uploaded, 2 already there"),
        "{}",
        out.stderr
    );
    let again: Value = serde_json::from_slice(&std::fs::read(&config).unwrap()).unwrap();
    assert_eq!(again, printed);
    let modified = std::fs::metadata(s3.object_path("mirror", "scies/v1/one.tar.gz"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(modified, uploaded_at);
}

#[test]
fn mirror_to_gcs_then_ptex_fetches_through_the_written_config() {
    let body = payload(20_000);
    let server = origin(vec![("/f.tar.gz", body.clone())]);
    let gcs = GcsServer::start();
    // Creates the bucket.
    gcs.put_object("mirror", "unrelated", b"x");
    let mut sandbox = Sandbox::new();
    sandbox.env("STORAGE_EMULATOR_HOST", gcs.endpoint());
    let manifest = sandbox.raw_manifest(&manifest_text(
        json!([sourced("f.tar.gz", &body)]),
        json!({"f.tar.gz": server.url("/f.tar.gz")}),
    ));
    let lift = manifest.to_str().unwrap();
    // An existing config: its own settings and rules stay, the new rule goes first.
    let config = sandbox.home().join("ptex.json");
    let before = "{\n  \"network\": {\"retries\": 2},\n  \"mirrors\": [\n    \
                  {\"prefix\": \"https://elsewhere.example/\", \"urls\": [\"file:///srv/\"]}\n  ]\n}\n";
    std::fs::write(&config, before).unwrap();
    let args = ["mirror", lift, "--to", "gs://mirror/v1/", "--write-config"];
    let config_arg = config.to_str().unwrap();
    succeeded(&sandbox.publish(&[&args[..], &[config_arg]].concat()));
    let rule = format!(
        "{{\"prefix\": \"{}\", \"urls\": [\"gs://mirror/v1/f.tar.gz\"], \"origin\": \"last\"}}",
        server.url("/f.tar.gz")
    );
    let expected = before.replace("[\n    {", &format!("[\n    {rule},\n    {{"));
    assert_eq!(std::fs::read_to_string(&config).unwrap(), expected);

    drop(server);
    sandbox.env("PTEX_CONFIG", &config);
    sandbox.bind(&manifest, "f.tar.gz").assert_delivered(&body);
    let out = sandbox.publish(&[&args[..], &[config_arg]].concat());
    succeeded(&out);
    assert!(
        out.stderr.contains("0 of 1 file uploaded, 1 already there"),
        "{}",
        out.stderr
    );
    assert_eq!(std::fs::read_to_string(&config).unwrap(), expected);
}

#[test]
fn mirror_to_a_directory_resumes_and_rewrites_the_manifest() {
    let (one, two) = (payload(50_000), payload(5));
    let server = origin(vec![("/one.zip", one.clone()), ("/two.bin", two.clone())]);
    let sandbox = Sandbox::new();
    let dir = sandbox.home().join("mirror");
    let to = format!("file://{}", dir.display());
    let (one_url, two_url) = (server.url("/one.zip"), server.url("/two.bin"));
    let manifest = sandbox.raw_manifest(&manifest_text(
        json!([sourced("one.zip", &one), sourced("two.bin", &two)]),
        json!({"one.zip": one_url, "two.bin": two_url}),
    ));
    let lift = manifest.to_str().unwrap();
    succeeded(&sandbox.publish(&["mirror", lift, "--to", &to]));
    assert_eq!(std::fs::read(dir.join("one.zip")).unwrap(), one);
    assert_eq!(server.request_count(), 2);

    // As if a run had been cut off while writing one.zip: a short copy and no .sha256.
    std::fs::write(dir.join("one.zip"), &one[..100]).unwrap();
    std::fs::remove_file(dir.join("one.zip.sha256")).unwrap();
    let rewritten = sandbox.home().join("lift.mirrored.json");
    let out = sandbox.publish(&[
        "mirror",
        lift,
        "--to",
        &to,
        "--rewrite-manifest",
        rewritten.to_str().unwrap(),
    ]);
    succeeded(&out);
    assert!(
        out.stderr
            .contains("1 of 2 files uploaded, 1 already there"),
        "{}",
        out.stderr
    );
    assert_eq!(server.request_count(), 3, "only one.zip is fetched again");
    assert_eq!(std::fs::read(dir.join("one.zip")).unwrap(), one);

    // The rewritten manifest lists the copy first and the origin after it.
    let copy = |name: &str| file_url(&dir.join(name));
    let text = std::fs::read_to_string(&rewritten).unwrap();
    let json: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["ptex"]["one.zip"], json!([copy("one.zip"), one_url]));
    assert_eq!(json["ptex"]["two.bin"], json!([copy("two.bin"), two_url]));
    // Everything else is as it was.
    let original: Value = serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();
    assert_eq!(json["scie"], original["scie"]);

    // With the origin down, ptex gets the files from the copies: through the rewritten
    // manifest, and through the printed rules as a config file.
    drop(server);
    sandbox.bind(&rewritten, "one.zip").assert_delivered(&one);
    let config = sandbox.home().join("rules.json");
    std::fs::write(&config, &out.stdout).unwrap();
    let mut with_rules = Sandbox::new();
    with_rules.env("PTEX_CONFIG", &config);
    let manifest = with_rules.raw_manifest(&std::fs::read_to_string(&manifest).unwrap());
    with_rules.bind(&manifest, "one.zip").assert_delivered(&one);
    with_rules.bind(&manifest, "two.bin").assert_delivered(&two);
}

#[test]
fn mirror_refuses_what_it_cannot_copy_before_any_request() {
    let body = payload(10);
    let server = origin(vec![("/f.bin", body.clone())]);
    let sandbox = Sandbox::new();
    let manifest = sandbox.raw_manifest(&manifest_text(
        json!([{"name": "f.bin", "type": "blob", "source": "ptex-fetch"}]),
        json!({"f.bin": server.url("/f.bin")}),
    ));
    let lift = manifest.to_str().unwrap();
    let out = sandbox.publish(&["mirror", lift, "--to", "file:///tmp/x"]);
    assert_eq!(out.code, Some(1));
    assert!(out.last_line().contains("f.bin") && out.last_line().contains("no size or hash"));
    let manifest = sandbox.raw_manifest(&manifest_text(
        json!([sourced("f.bin", &body)]),
        json!({"f.bin": server.url("/f.bin")}),
    ));
    let out = sandbox.publish(&["mirror", manifest.to_str().unwrap(), "--to", "https://h/x"]);
    assert_eq!(out.code, Some(1));
    assert!(
        out.last_line().contains("cannot upload to `https`"),
        "{}",
        out.last_line()
    );
    assert_eq!(server.request_count(), 0);
}

#[test]
fn mirror_on_a_terminal_draws_bars_and_keeps_stdout_for_the_rules() {
    // A slow origin (the last 2 000 bytes come one per millisecond), so a bar gets drawn.
    let body = payload(50_000);
    let served = body.clone();
    let server = TestServer::start(move |_| Reply::Drip {
        declared_len: 50_000,
        headers: Vec::new(),
        body: served[..48_000].to_vec(),
        drip: served[48_000..].to_vec(),
        every: std::time::Duration::from_millis(1),
    });
    let mut sandbox = Sandbox::new();
    sandbox.env("TERM", "xterm");
    let dir = sandbox.home().join("mirror");
    let manifest = sandbox.raw_manifest(&manifest_text(
        json!([sourced("one.zip", &body)]),
        json!({"one.zip": server.url("/one.zip")}),
    ));
    let rules = sandbox.work().join("rules.json");
    // `script` gives the command a terminal for stderr; stdout goes to a file.
    let shell = format!(
        "'{}' mirror '{}' --to 'file://{}' > '{}'",
        env!("CARGO_BIN_EXE_ptex-publish"),
        manifest.display(),
        dir.display(),
        rules.display()
    );
    let output = sandbox.wrapped("script", &["-q", "-e", "-c", &shell, "/dev/null"]);
    let terminal = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{terminal}");
    assert!(terminal.contains("one.zip ["), "no bar drawn: {terminal:?}");
    assert_eq!(std::fs::read(dir.join("one.zip")).unwrap(), body);
    // stdout holds the rules and nothing else: it is a config ptex can load.
    let text = std::fs::read_to_string(&rules).unwrap();
    let config: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text:?}"));
    assert!(config["mirrors"].is_array(), "{text}");
}

#[test]
fn entry_names_a_file_by_its_decoded_last_segment() {
    // python-build-standalone names hold `+`, which URLs carry as `%2B`.
    let body = payload(321);
    let server = origin(vec![("/rel/cpython-3.12%2B20240726.tar.gz", body.clone())]);
    let sandbox = Sandbox::new();
    let url = server.url("/rel/cpython-3.12%2B20240726.tar.gz");
    let out = sandbox.publish(&["entry", &url]);
    succeeded(&out);
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        printed["scie"]["lift"]["files"][0]["name"],
        "cpython-3.12+20240726.tar.gz"
    );
    assert_eq!(printed["ptex"]["cpython-3.12+20240726.tar.gz"], json!(url));
    // A decoded separator or dot name is still refused, before any request.
    for bad in ["/rel/a%2Fb.tar.gz", "/rel/a%5Cb", "/rel/%2E%2E"] {
        let out = sandbox.publish(&["entry", &server.url(bad)]);
        assert_eq!(out.code, Some(1), "{bad}: {}", out.stderr);
        assert!(out.last_line().contains("--name"), "{}", out.last_line());
    }
    assert_eq!(server.request_count(), 1);
}

#[test]
fn a_built_scie_is_checked_and_mirrored_and_its_users_get_a_urls_file() {
    use crate::support::built_scie;
    let body = payload(30_000);
    let name = "cpython-3.12+20240726-x86_64-unknown-linux-gnu-install_only.tar.gz";
    let server = origin(vec![("/pbs/python.tar.gz", body.clone())]);
    let sandbox = Sandbox::new();
    let scie = sandbox.home().join("lazy.scie");
    let hash = sha256_hex(&body);
    built_scie::write(
        &scie,
        1 << 20,
        &built_scie::lift(
            &[(name, body.len() as u64, &hash)],
            json!({ name: server.url("/pbs/python.tar.gz") }),
        ),
    );
    let scie_arg = scie.to_str().unwrap();

    let out = sandbox.publish(&["check", "--probe", scie_arg]);
    succeeded(&out);
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.contains(name) && table.contains("ok"), "{table}");

    // entry --into refuses a built scie, before any request.
    let before = server.request_count();
    let out = sandbox.publish(&[
        "entry",
        "--into",
        scie_arg,
        &server.url("/pbs/python.tar.gz"),
    ]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.last_line().contains(scie_arg) && out.last_line().contains("built scie"),
        "{}",
        out.last_line()
    );
    assert_eq!(server.request_count(), before);

    // mirror copies the scie's files and writes the file pex's users point
    // PEX_BOOTSTRAP_URLS at: plain strings naming the copies.
    let dir = sandbox.home().join("mirror");
    let urls_file = sandbox.home().join("urls.json");
    let out = sandbox.publish(&[
        "mirror",
        scie_arg,
        "--to",
        &file_url(&dir),
        "--write-urls-file",
        urls_file.to_str().unwrap(),
    ]);
    succeeded(&out);
    let urls: Value = serde_json::from_slice(&std::fs::read(&urls_file).unwrap()).unwrap();
    assert_eq!(urls, json!({"ptex": { name: file_url(&dir.join(name)) }}));

    // With the origin down, ptex run by that scie through the file gets verified bytes.
    drop(server);
    let mut user = Sandbox::new();
    user.env("SCIE", &scie);
    user.bind(&urls_file, name).assert_delivered(&body);

    // A file that is neither JSON nor a scie is refused, naming it.
    let junk = sandbox.home().join("junk.bin");
    std::fs::write(&junk, b"\x7fELF not a scie").unwrap();
    let out = sandbox.publish(&["check", junk.to_str().unwrap()]);
    assert_eq!(out.code, Some(1));
    assert!(
        out.last_line()
            .contains("neither a JSON lift manifest nor a scie"),
        "{}",
        out.last_line()
    );
}
