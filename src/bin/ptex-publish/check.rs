//! `check`: what would stop a skinny scie from getting its files. Every sourced file must
//! have a size, a hash, a type and at least one URL of a scheme ptex speaks; `--probe` asks
//! every source (the config's caches first, then the URLs after its mirror rules) for the
//! file's length, `--verify` downloads and verifies it; a cache reports a hit or a miss. One row per finding: a table on stdout, or JSON.

use std::path::PathBuf;

use anyhow::bail;
use ptex::manifest::Entry;
use ptex::verify::Expected;
use ptex_schemes::{Dispatcher, FetchError, RequestOptions, Source, redact_url};
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
    let asking = args.probe || args.verify;
    let Findings { mut rows, asks } = Findings::of(session, &manifest, asking);
    let answers = session.block_on(pool::each(session, &asks, async |dispatcher, ask| {
        answer(session, dispatcher, ask, args.verify).await
    }));
    for (ask, (ok, status)) in asks.iter().zip(answers) {
        rows[ask.row].ok = ok;
        rows[ask.row].status = status;
    }
    if args.json {
        ptex::output::text(&json_report(&manifest, &rows))?;
    } else {
        ptex::output::text(&table(&rows))?;
    }
    verdict(session, &manifest, &rows)
}

/// The rows so far and the sources still to ask, each tied to its row.
struct Findings {
    rows: Vec<Row>,
    asks: Vec<Ask>,
}

impl Findings {
    /// What the manifest alone tells about every sourced file; with `asking` (`--probe`,
    /// `--verify`), the sources to ask about each file whose URLs all parse.
    fn of(session: &Session, manifest: &Manifest, asking: bool) -> Findings {
        let mut findings = Findings {
            rows: Vec::new(),
            asks: Vec::new(),
        };
        if manifest.files().is_none() {
            findings.problem("-", "-", "the manifest has no `scie.lift.files` list");
        }
        for sourced in manifest.sourced() {
            match sourced {
                Ok(name) => {
                    if let Some(entry) = findings.file(manifest, &name, asking) {
                        findings.sources(session, &name, &entry);
                    }
                }
                Err(problem) => findings.problem("-", "-", problem),
            }
        }
        findings
    }

    fn problem(&mut self, file: &str, source: &str, status: impl ToString) {
        self.rows.push(Row::problem(file, source, status));
    }

    /// One sourced file's size, hash, type and URLs, as the manifest gives them. Its entry
    /// when there are sources to ask: `asking`, and every URL of a scheme ptex speaks.
    fn file(&mut self, manifest: &Manifest, name: &str, asking: bool) -> Option<Entry> {
        let entry = match ptex::manifest::entry(&manifest.json, name) {
            Ok(entry) => entry,
            Err(err) => {
                self.problem(name, "-", format!("{err:#}"));
                return None;
            }
        };
        if entry.expected.size.is_none() {
            self.problem(name, "-", "no size");
        }
        if entry.expected.sha256.is_none() {
            self.problem(name, "-", "no hash");
        }
        let file = manifest
            .files()
            .and_then(|files| files.iter().find(|f| f["name"] == name));
        if file.and_then(|f| f.get("type")).is_none() {
            self.problem(
                name,
                "-",
                format!(
                    "no type: scie-jump cannot tell the type of a file it does not have \
                     (by its name: \"type\": {:?})",
                    lift::file_type(name)
                ),
            );
        }
        let mut usable = true;
        for url in &entry.urls {
            match Source::parse(url) {
                Ok(source) if !asking => self.rows.push(Row::ok(name, &source.to_string(), "ok")),
                Ok(_) => {}
                Err(err) => {
                    usable = false;
                    self.problem(name, &redact_url(url), err);
                }
            }
        }
        (usable && asking).then_some(entry)
    }

    /// The sources ptex would try for `name`, in its order (its caches first): a row for
    /// each, and an ask for each one the config does not block.
    fn sources(&mut self, session: &Session, name: &str, entry: &Entry) {
        let caches = ptex::cache::dry_run(&session.settings, name, &entry.expected);
        let cached = caches.len();
        let routing = &session.settings.file.routing;
        let candidates = routing.candidates(&entry.urls);
        if candidates.iter().all(|c| c.blocked) {
            self.problem(name, "-", routing.blocked_message());
        }
        for (index, candidate) in caches.into_iter().chain(candidates).enumerate() {
            let shown = redact_url(&candidate.url);
            if candidate.blocked {
                self.rows
                    .push(Row::ok(name, &shown, "skipped: blocked by the config"));
                continue;
            }
            match Source::parse(&candidate.url) {
                Ok(source) => {
                    self.asks.push(Ask {
                        row: self.rows.len(),
                        file: name.to_string(),
                        source,
                        expected: entry.expected.clone(),
                        cache: index < cached,
                    });
                    self.rows.push(Row::ok(name, &shown, "not asked"));
                }
                Err(err) => self.problem(name, &shown, err),
            }
        }
    }
}

/// Asks one source about its file: whether all is well, and the status to show. A cache
/// that does not have the file reports a miss; otherwise `verify` downloads and verifies
/// the file, and without it the source's length is compared with the manifest's size.
async fn answer(
    session: &Session,
    dispatcher: &mut Dispatcher,
    ask: &Ask,
    verify: bool,
) -> (bool, String) {
    let options = RequestOptions::new(Vec::new(), &ask.source);
    if ask.cache
        && let Err(FetchError::NotFound { .. }) = dispatcher.stat(&ask.source, &options).await
    {
        return (true, "cache miss".to_string());
    }
    let hit = if ask.cache { "cache hit: " } else { "" };
    if verify {
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
}

/// `--json`: the manifest, whether all is well, and the rows.
fn json_report(manifest: &Manifest, rows: &[Row]) -> String {
    let results: Vec<_> = rows
        .iter()
        .map(|r| json!({"file": r.file, "source": r.source, "ok": r.ok, "status": r.status}))
        .collect();
    let report = json!({
        "manifest": manifest.path.display().to_string(),
        "ok": rows.iter().all(|row| row.ok),
        "results": results,
    });
    format!("{report:#}\n")
}

/// The command's result: an error listing every problem in one line (the last stderr line
/// a user sees), or a note when the manifest gives ptex nothing to fetch.
fn verdict(session: &Session, manifest: &Manifest, rows: &[Row]) -> anyhow::Result<()> {
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
