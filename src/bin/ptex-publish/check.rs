//! `check`: what would stop a skinny scie from getting its files. Every sourced file must
//! have a size, a hash, a type and at least one URL of a scheme ptex speaks; `--probe` asks
//! every source (the config's caches first, then the URLs after its mirror rules) for the
//! file's length, `--verify` downloads and verifies it; a cache reports a hit or a miss. One row per finding: a table on stdout, or JSON.

use std::path::PathBuf;

use anyhow::bail;
use ptex::verify::Expected;
use ptex_schemes::{FetchError, RequestOptions, Source, redact_url};
use serde_json::json;

use crate::lift::{self, Manifest};
use crate::pool;
use crate::session::Session;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The lift manifest to check.
    #[arg(value_name = "LIFT")]
    lift: PathBuf,

    /// Ask every source for the file's length (HEAD for http(s), the object's metadata on a
    /// store) and compare it with the manifest's size.
    #[arg(long)]
    probe: bool,

    /// Download the file from every source and verify its size and sha256.
    #[arg(long)]
    verify: bool,

    /// Print the findings as JSON.
    #[arg(long)]
    json: bool,
}

/// One finding.
struct Row {
    file: String,
    /// The (redacted) URL the finding is about, or `-`.
    source: String,
    ok: bool,
    status: String,
}

impl Row {
    fn ok(file: &str, source: &str, status: impl Into<String>) -> Row {
        Row {
            file: file.to_string(),
            source: source.to_string(),
            ok: true,
            status: status.into(),
        }
    }

    fn problem(file: &str, source: &str, status: impl ToString) -> Row {
        Row {
            ok: false,
            status: status.to_string(),
            ..Row::ok(file, source, "")
        }
    }
}

/// A source to ask about a file, and the row its answer goes to.
struct Ask {
    row: usize,
    file: String,
    source: Source,
    expected: Expected,
    /// A content-addressed cache: not having the file is a miss, not a problem.
    cache: bool,
}

pub fn run(session: &Session, args: Args) -> anyhow::Result<()> {
    let manifest = Manifest::read(&args.lift)?;
    let mut rows = Vec::new();
    let mut asks = Vec::new();
    if manifest.files().is_none() {
        rows.push(Row::problem(
            "-",
            "-",
            "the manifest has no `scie.lift.files` list",
        ));
    }
    for sourced in manifest.sourced() {
        let name = match sourced {
            Ok(name) => name,
            Err(problem) => {
                rows.push(Row::problem("-", "-", problem));
                continue;
            }
        };
        let entry = match ptex::manifest::entry(&manifest.json, &name) {
            Ok(entry) => entry,
            Err(err) => {
                rows.push(Row::problem(&name, "-", format!("{err:#}")));
                continue;
            }
        };
        if entry.expected.size.is_none() {
            rows.push(Row::problem(&name, "-", "no size"));
        }
        if entry.expected.sha256.is_none() {
            rows.push(Row::problem(&name, "-", "no hash"));
        }
        let file = manifest
            .files()
            .and_then(|files| files.iter().find(|f| f["name"] == name.as_str()));
        if file.and_then(|f| f.get("type")).is_none() {
            rows.push(Row::problem(
                &name,
                "-",
                format!(
                    "no type: scie-jump cannot tell the type of a file it does not have \
                     (by its name: \"type\": {:?})",
                    lift::file_type(&name)
                ),
            ));
        }
        let mut usable = true;
        for url in &entry.urls {
            match Source::parse(url) {
                Ok(source) if !(args.probe || args.verify) => {
                    rows.push(Row::ok(&name, &source.to_string(), "ok"));
                }
                Ok(_) => {}
                Err(err) => {
                    usable = false;
                    rows.push(Row::problem(&name, &redact_url(url), err));
                }
            }
        }
        if !(usable && (args.probe || args.verify)) {
            continue;
        }
        // The sources ptex would try, in its order: its caches first.
        let caches = ptex::cache::dry_run(&session.settings, &name, &entry.expected);
        let cached = caches.len();
        let candidates = session.settings.file.routing.candidates(&entry.urls);
        if candidates.iter().all(|c| c.blocked) {
            rows.push(Row::problem(
                &name,
                "-",
                session.settings.file.routing.blocked_message(),
            ));
        }
        for (index, candidate) in caches.into_iter().chain(candidates).enumerate() {
            let shown = redact_url(&candidate.url);
            if candidate.blocked {
                rows.push(Row::ok(&name, &shown, "skipped: blocked by the config"));
                continue;
            }
            match Source::parse(&candidate.url) {
                Ok(source) => {
                    asks.push(Ask {
                        row: rows.len(),
                        file: name.clone(),
                        source,
                        expected: entry.expected.clone(),
                        cache: index < cached,
                    });
                    rows.push(Row::ok(&name, &shown, "not asked"));
                }
                Err(err) => rows.push(Row::problem(&name, &shown, err)),
            }
        }
    }

    let answers = session.block_on(pool::each(session, &asks, async |dispatcher, ask| {
        let options = RequestOptions::new(Vec::new(), &ask.source);
        if ask.cache
            && let Err(FetchError::NotFound { .. }) = dispatcher.stat(&ask.source, &options).await
        {
            return (true, "cache miss".to_string());
        }
        let hit = if ask.cache { "cache hit: " } else { "" };
        if args.verify {
            let sources = vec![ask.source.clone()];
            let fetched = session
                .fetch(dispatcher, &ask.file, sources, ask.expected.clone(), true)
                .await;
            return match fetched {
                Ok((_spool, verified)) => (
                    true,
                    format!(
                        "{hit}verified: {} bytes, sha256 as in the manifest",
                        verified.size
                    ),
                ),
                Err(err) => (false, format!("{err:#}")),
            };
        }
        match (
            dispatcher.stat(&ask.source, &options).await,
            ask.expected.size,
        ) {
            (Ok(Some(found)), Some(size)) if found != size => (
                false,
                format!("size mismatch: the manifest says {size} bytes, the source has {found}"),
            ),
            (Ok(Some(found)), _) if ask.cache => (true, format!("{hit}{found} bytes")),
            (Ok(Some(found)), _) => (true, format!("ok: {found} bytes")),
            (Ok(None), _) => (true, "ok: found (it declares no length)".to_string()),
            (Err(err), _) => (false, err.to_string()),
        }
    }));
    for (ask, (ok, status)) in asks.iter().zip(answers) {
        rows[ask.row].ok = ok;
        rows[ask.row].status = status;
    }

    let all_ok = rows.iter().all(|row| row.ok);
    if args.json {
        let results: Vec<_> = rows
            .iter()
            .map(|r| json!({"file": r.file, "source": r.source, "ok": r.ok, "status": r.status}))
            .collect();
        let report = json!({
            "manifest": manifest.path.display().to_string(),
            "ok": all_ok,
            "results": results,
        });
        ptex::output::text(&format!("{report:#}\n"))?;
    } else {
        ptex::output::text(&table(&rows))?;
    }
    let problems: Vec<String> = rows
        .iter()
        .filter(|row| !row.ok)
        .map(|row| match row.source.as_str() {
            "-" => format!("{}: {}", row.file, row.status),
            source => format!("{} from {source}: {}", row.file, row.status),
        })
        .collect();
    if !problems.is_empty() {
        bail!(
            "lift manifest {}: {} problem{}: {}",
            manifest.path.display(),
            problems.len(),
            if problems.len() == 1 { "" } else { "s" },
            problems.join("; ")
        );
    }
    if rows.is_empty() {
        session.say(format_args!(
            "{}: no file has a `source`: nothing for ptex to fetch",
            manifest.path.display()
        ));
    }
    Ok(())
}

/// The rows as a table with aligned columns.
fn table(rows: &[Row]) -> String {
    let file_width = rows.iter().map(|r| r.file.len()).max().unwrap_or(0).max(4);
    let source_width = rows
        .iter()
        .map(|r| r.source.len())
        .max()
        .unwrap_or(0)
        .max(6);
    let mut out = format!(
        "{:file_width$}  {:source_width$}  STATUS\n",
        "FILE", "SOURCE"
    );
    for row in rows {
        let status = match row.ok {
            true => row.status.clone(),
            false => format!("error: {}", row.status),
        };
        out.push_str(&format!(
            "{:file_width$}  {:source_width$}  {status}\n",
            row.file, row.source
        ));
    }
    out
}
