//! `entry`: fetch each URL, count and hash its bytes as ptex would, and give the file's
//! `scie.lift.files` entry and `ptex` table entry: printed as JSON to paste, or written into
//! a lift manifest in place (`--into`), every other byte of it kept.

use std::path::PathBuf;

use anyhow::{anyhow, bail};
use ptex::verify::Expected;
use ptex_schemes::Source;
use serde_json::Value;

use crate::lift::{self, Manifest};
use crate::pool;
use crate::session::{Session, write_atomically};
use crate::splice::{At, Document, Step};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where each file comes from: one file per URL (http, https, s3, gs, file, ftp).
    #[arg(required = true, value_name = "URL")]
    urls: Vec<String>,

    /// The file's name in the manifest (with one URL only); by default the URL's last path
    /// segment.
    #[arg(long)]
    name: Option<String>,

    /// The file's `key`, by which boot commands name it (`{key}`), with one URL only.
    #[arg(long)]
    key: Option<String>,

    /// The manifest's binding that runs ptex: the file's `source`.
    #[arg(long, value_name = "BINDING", default_value = "ptex-fetch")]
    source: String,

    /// Add the entries to this lift manifest, or update them there, keeping the rest of the
    /// file byte for byte.
    #[arg(long, value_name = "LIFT")]
    into: Option<PathBuf>,
}

/// What the manifest gets for one file.
struct FileEntry {
    name: String,
    key: Option<String>,
    size: u64,
    hash: String,
    kind: &'static str,
    source: String,
    url: String,
}

impl FileEntry {
    /// The `scie.lift.files` entry, on one line, keys in the order scie-jump writes them.
    fn file_json(&self) -> String {
        let mut members = vec![("name", quote(&self.name))];
        if let Some(key) = &self.key {
            members.push(("key", quote(key)));
        }
        members.extend([
            ("size", self.size.to_string()),
            ("hash", quote(&self.hash)),
            ("type", quote(self.kind)),
            ("source", quote(&self.source)),
        ]);
        let members: Vec<String> = members
            .iter()
            .map(|(key, value)| format!("\"{key}\": {value}"))
            .collect();
        format!("{{{}}}", members.join(", "))
    }
}

pub fn run(session: &Session, args: Args) -> anyhow::Result<()> {
    if args.urls.len() > 1 && (args.name.is_some() || args.key.is_some()) {
        bail!("--name and --key describe one file: give one URL with them");
    }
    if let Some(path) = &args.into
        && Manifest::read(path)?.in_scie
    {
        bail!(
            "lift manifest {}: it is a built scie, whose manifest cannot be edited in place: \
             give --into the lift manifest it was built from, then build it again (or hand \
             users a URL-override file: `ptex-publish mirror --write-urls-file`)",
            path.display()
        );
    }
    // Every URL is checked before the first request.
    let mut wanted = Vec::new();
    for url in &args.urls {
        let source = Source::parse(url)?;
        let name = match &args.name {
            Some(name) => name.clone(),
            None => source.file_name(),
        };
        if ptex::spool::safe_file_name(&name).is_err() {
            bail!("cannot name the file of {source} {name:?}: give --name");
        }
        if wanted.iter().any(|(other, _, _)| *other == name) {
            bail!("two URLs name the same file {name:?}: give one URL per file");
        }
        wanted.push((name, source, url.clone()));
    }
    let fetched = session.block_on(pool::each(
        session,
        &wanted,
        async |dispatcher, (name, source, url)| {
            let sources = vec![source.clone()];
            let expected = Expected::default();
            let (_spool, verified) = session
                .fetch(dispatcher, name, sources, expected, false)
                .await?;
            session.say(format_args!(
                "{name}: {} bytes, sha256 {}",
                verified.size, verified.sha256
            ));
            anyhow::Ok(FileEntry {
                name: name.clone(),
                key: args.key.clone(),
                size: verified.size,
                hash: verified.sha256.to_string(),
                kind: lift::file_type(name),
                source: args.source.clone(),
                url: url.clone(),
            })
        },
    ));
    let mut entries = Vec::new();
    let mut failures = Vec::new();
    for result in fetched {
        match result {
            Ok(entry) => entries.push(entry),
            Err(err) => failures.push(format!("{err:#}")),
        }
    }
    if !failures.is_empty() {
        bail!("{}", failures.join("; "));
    }
    match &args.into {
        Some(path) => write_into(session, path, &entries),
        None => ptex::output::text(&paste_ready(&entries)),
    }
}

/// The entries as one JSON document shaped like a manifest, to paste from.
fn paste_ready(entries: &[FileEntry]) -> String {
    let files: Vec<String> = entries
        .iter()
        .map(|e| format!("    {}", e.file_json()))
        .collect();
    let urls: Vec<String> = entries
        .iter()
        .map(|e| format!("    {}: {}", quote(&e.name), quote(&e.url)))
        .collect();
    format!(
        "{{\n  \"scie\": {{\"lift\": {{\"files\": [\n{}\n  ]}}}},\n  \"ptex\": {{\n{}\n  }}\n}}\n",
        files.join(",\n"),
        urls.join(",\n")
    )
}

/// Adds or updates each file's entries in the manifest at `path`.
fn write_into(
    session: &Session,
    path: &std::path::Path,
    entries: &[FileEntry],
) -> anyhow::Result<()> {
    let manifest = Manifest::read(path)?;
    let at = |e: String| anyhow!("lift manifest {}: {e}", path.display());
    if manifest.files().is_none() {
        return Err(at("it has no `scie.lift.files` list".to_string()));
    }
    let mut doc = Document::parse(manifest.text).map_err(at)?;
    let files = [Step::Key("scie"), Step::Key("lift"), Step::Key("files")];
    for entry in entries {
        let file = [files[0], files[1], files[2], Step::Named(&entry.name)];
        let old = doc.get(&file);
        let old_hash = old
            .as_ref()
            .and_then(|old| old.get("hash")?.as_str().map(str::to_string));
        match &old {
            None => doc
                .insert(&files, At::Last, &entry.file_json())
                .map_err(at)?,
            Some(old) => {
                let mut set = vec![
                    ("size", entry.size.to_string()),
                    ("hash", quote(&entry.hash)),
                ];
                if let Some(key) = &entry.key {
                    set.push(("key", quote(key)));
                }
                // A type or binding the author chose stays.
                if old.get("type").is_none() {
                    set.push(("type", quote(entry.kind)));
                }
                if old.get("source").is_none() {
                    set.push(("source", quote(&entry.source)));
                }
                for (key, value) in set {
                    doc.set(&file, key, &value).map_err(at)?;
                }
            }
        }
        let changed = old_hash.as_ref().is_some_and(|hash| *hash != entry.hash);
        if let Some(hash) = old_hash.as_ref().filter(|_| changed) {
            session.say(format_args!(
                "{}: its hash was {hash}, it is now {}; its other URLs are dropped",
                entry.name, entry.hash
            ));
        }
        let url = quote(&entry.url);
        match doc.get(&[Step::Key("ptex")]) {
            None => doc
                .set(&[], "ptex", &format!("{{{}: {url}}}", quote(&entry.name)))
                .map_err(at)?,
            Some(table) => {
                // The URL listed already (alone, or among mirrors of the same bytes) stays
                // as it is; mirrors of other bytes go.
                let listed = match table.get(&entry.name) {
                    Some(Value::String(u)) => *u == entry.url,
                    Some(Value::Array(list)) => list.iter().any(|u| u.as_str() == Some(&entry.url)),
                    _ => false,
                };
                if !listed || changed {
                    doc.set(&[Step::Key("ptex")], &entry.name, &url)
                        .map_err(at)?;
                }
            }
        }
    }
    write_atomically(path, doc.text())?;
    session.say(format_args!(
        "wrote {} file entr{} into {}",
        entries.len(),
        if entries.len() == 1 { "y" } else { "ies" },
        path.display()
    ));
    Ok(())
}

/// `text` as a JSON string.
pub fn quote(text: &str) -> String {
    Value::from(text).to_string()
}
