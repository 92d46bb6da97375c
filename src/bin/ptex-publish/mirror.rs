//! `mirror`: copy every sourced file of a lift manifest under a prefix of one's own
//! (`s3://bucket/prefix`, `gs://bucket/prefix`, `file:///dir`), verified on the way, then
//! give the `mirrors` config rules that send ptex there (`--write-config` adds them to a
//! config file), or a copy of the manifest that lists the copies first
//! (`--rewrite-manifest`).
//!
//! Each file `NAME` goes to `PREFIX/NAME`, and its sha256 to `PREFIX/NAME.sha256` (a
//! `sha256sum` line) once the file is wholly there. A file whose copy has the manifest's
//! size and whose `.sha256` records the manifest's hash is not copied again, so a run that
//! was interrupted, or a second run, uploads only what is missing.
//!
//! `--to` may instead be a cache template with `{sha256}` (as in the config's `caches`):
//! each file goes to its content address, only where no object is yet (the address is the
//! check: no `.sha256` is written), and the `caches` config line is printed.

use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;

use anyhow::{Context, anyhow, bail};
use bytes::BytesMut;
use ptex::progress::Progress;
use ptex::verify::Expected;
use ptex_config::{CacheSpec, ConfigFile};
use ptex_schemes::{Dispatcher, FetchError, RequestOptions, Source, Written};
use serde_json::Value;
use url::Url;

use crate::entry::quote;
use crate::lift::Manifest;
use crate::pool;
use crate::session::{Session, write_atomically};
use crate::splice::{At, Document, Step};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The lift manifest whose sourced files to copy.
    #[arg(value_name = "LIFT")]
    lift: PathBuf,

    /// Where the copies go: s3://bucket/prefix, gs://bucket/prefix or file:///dir; or a
    /// cache template with {sha256} (and {size}, {name}), e.g. s3://bucket/sha256/{sha256}.
    #[arg(long, value_name = "PREFIX")]
    to: String,

    /// Add the `mirrors` rules to this ptex config file (created if missing), before its
    /// other rules; rules already there are not added twice.
    #[arg(long, value_name = "PATH")]
    write_config: Option<PathBuf>,

    /// Write a copy of the manifest whose `ptex` lists have the copy first and the original
    /// URLs after it.
    #[arg(long, value_name = "OUT")]
    rewrite_manifest: Option<PathBuf>,

    /// Write a URL-override file, `{"ptex": {"<file name>": "<copy URL>", …}}`, that a pex or
    /// scie-pants scie reads through `PEX_BOOTSTRAP_URLS` / `PANTS_BOOTSTRAP_URLS`.
    #[arg(long, value_name = "PATH")]
    write_urls_file: Option<PathBuf>,
}

/// One file to copy.
struct Copy {
    name: String,
    urls: Vec<String>,
    expected: Expected,
    size: u64,
    hash: String,
    /// Where the copy goes, and its `.sha256` (none in a content-addressed cache).
    target: Source,
    sidecar: Option<Source>,
}

/// What happened to one file.
enum Done {
    Uploaded,
    AlreadyThere,
}

/// Where the copies go.
enum Destination {
    /// `PREFIX/NAME`, with `PREFIX/NAME.sha256` beside it.
    Prefix(Url),
    /// A content-addressed cache: the template's address, no `.sha256`.
    Cache(CacheSpec),
}

impl Destination {
    /// `--to`, checked against the options that only go with a prefix.
    fn of(args: &Args) -> anyhow::Result<Destination> {
        if !args.to.contains("{sha256}") {
            return Ok(Destination::Prefix(prefix(&args.to)?));
        }
        let cache =
            CacheSpec::new(args.to.trim().to_string(), true).map_err(|e| anyhow!("--to: {e}"))?;
        if args.write_config.is_some() || args.rewrite_manifest.is_some() {
            bail!(
                "--to {}: --write-config and --rewrite-manifest go with a prefix, not a cache",
                args.to
            );
        }
        Ok(Destination::Cache(cache))
    }

    /// Where file `name` goes, and where its `.sha256` goes (none in a cache).
    fn target(
        &self,
        name: &str,
        size: u64,
        sha256: &str,
    ) -> anyhow::Result<(Source, Option<Source>)> {
        match self {
            Destination::Cache(cache) => {
                let url = cache.url(sha256, size, name);
                let target = Source::parse(&url).with_context(|| format!("--to {url}"))?;
                Ok((target, None))
            }
            Destination::Prefix(prefix) => Ok((
                object(prefix, name)?,
                Some(object(prefix, &format!("{name}.sha256"))?),
            )),
        }
    }
}

pub fn run(session: &Session, args: Args) -> anyhow::Result<()> {
    let manifest = Manifest::read(&args.lift)?;
    let destination = Destination::of(&args)?;
    let copies = copies(&manifest, &destination)?;
    copy_all(session, &copies)?;
    match &destination {
        Destination::Cache(cache) => {
            ptex::output::text(&format!("{{\"caches\": [{}]}}\n", quote(&cache.template)))
        }
        Destination::Prefix(_) => point_at_copies(session, &args, &manifest, &copies),
    }
}

/// Every sourced file of the manifest and where it goes; an error when one has no size or
/// hash (a copy could not be verified) or when there is none.
fn copies(manifest: &Manifest, destination: &Destination) -> anyhow::Result<Vec<Copy>> {
    let lift = manifest.path.display();
    let mut copies = Vec::new();
    for sourced in manifest.sourced() {
        let name = sourced.map_err(|e| anyhow!("lift manifest {lift}: {e}"))?;
        let entry = ptex::manifest::entry(&manifest.json, &name)
            .with_context(|| format!("lift manifest {lift}: file {name:?}"))?;
        let (Some(size), Some(sha256)) = (entry.expected.size, entry.expected.sha256.clone())
        else {
            bail!(
                "lift manifest {lift}: file {name:?} has no size or hash, so a copy could not be \
                 verified; run `ptex-publish check` on it"
            );
        };
        let hash = sha256.to_string();
        let (target, sidecar) = destination.target(&name, size, &hash)?;
        copies.push(Copy {
            target,
            sidecar,
            urls: entry.urls,
            expected: entry.expected,
            size,
            hash,
            name,
        });
    }
    if copies.is_empty() {
        bail!("lift manifest {lift}: no file has a `source`: nothing to mirror");
    }
    Ok(copies)
}

/// Copies every file (`--jobs` at a time), a line for each and a summary; an error listing
/// every failure.
fn copy_all(session: &Session, copies: &[Copy]) -> anyhow::Result<()> {
    let total = copies.len();
    let outcomes = session.block_on(pool::each(session, copies, async |dispatcher, copy| {
        let outcome = copy_one(session, dispatcher, copy).await;
        match &outcome {
            Ok(Done::AlreadyThere) => session.say(format_args!(
                "{}: already at {}, skipped",
                copy.name, copy.target
            )),
            Ok(Done::Uploaded) => session.say(format_args!(
                "{}: uploaded {} bytes to {}",
                copy.name, copy.size, copy.target
            )),
            Err(_) => {}
        }
        outcome
    }));
    let mut failures = Vec::new();
    let mut uploaded = 0;
    for outcome in outcomes {
        match outcome {
            Ok(Done::Uploaded) => uploaded += 1,
            Ok(Done::AlreadyThere) => {}
            Err(err) => failures.push(format!("{err:#}")),
        }
    }
    session.say(format_args!(
        "{uploaded} of {total} file{} uploaded, {} already there, {} failed",
        if total == 1 { "" } else { "s" },
        total - uploaded - failures.len(),
        failures.len()
    ));
    if !failures.is_empty() {
        bail!("{}", failures.join("; "));
    }
    Ok(())
}

/// What sends ptex to the copies under a prefix: the `mirrors` rules on stdout, and the
/// files `--write-config`, `--rewrite-manifest` and `--write-urls-file` ask for.
fn point_at_copies(
    session: &Session,
    args: &Args,
    manifest: &Manifest,
    copies: &[Copy],
) -> anyhow::Result<()> {
    let rules = rules(copies);
    ptex::output::text(&format!(
        "{{\"mirrors\": [\n  {}\n]}}\n",
        rules.join(",\n  ")
    ))?;
    if let Some(path) = &args.write_config {
        write_config(path, &rules)?;
        session.say(format_args!("added the rules to {}", path.display()));
    }
    if let Some(out) = &args.rewrite_manifest {
        rewrite_manifest(manifest, copies, out)?;
        session.say(format_args!("wrote {}", out.display()));
    }
    if let Some(out) = &args.write_urls_file {
        write_atomically(out, &urls_file(copies))?;
        session.say(format_args!(
            "wrote the URL-override file {}",
            out.display()
        ));
    }
    Ok(())
}

/// A URL-override file naming each file's copy: one plain string per file, since the other
/// tools that read these files (pex, scie-pants) accept nothing else.
fn urls_file(copies: &[Copy]) -> String {
    let entries: Vec<String> = copies
        .iter()
        .map(|copy| {
            format!(
                "{}: {}",
                quote(&copy.name),
                quote(copy.target.url().as_str())
            )
        })
        .collect();
    format!("{{\"ptex\": {{\n  {}\n}}}}\n", entries.join(",\n  "))
}

/// Copies one file unless its copy is already complete.
async fn copy_one(
    session: &Session,
    dispatcher: &mut Dispatcher,
    copy: &Copy,
) -> anyhow::Result<Done> {
    let failed = |action: &str, at: &Source| format!("cannot {action} {} at {at}", copy.name);
    if already_there(dispatcher, copy)
        .await
        .with_context(|| failed("look for the copy of", &copy.target))?
    {
        return Ok(Done::AlreadyThere);
    }
    session.say(format_args!("{}: fetching {} bytes", copy.name, copy.size));
    let sources = session.sources(&copy.name, &copy.urls)?;
    let (mut spool, verified) = session
        .fetch(
            dispatcher,
            &copy.name,
            sources,
            copy.expected.clone(),
            false,
        )
        .await?;
    let path = spool.path().display().to_string();
    let reader = spool
        .verified(verified.size)
        .with_context(|| format!("cannot read back spool file {path}"))?;
    let progress = session.bar(&format!("{} (uploading)", copy.name));
    progress.start(Some(copy.size));
    let mut counted = Counted {
        reader,
        size: verified.size,
        progress,
    };
    let Some(sidecar) = &copy.sidecar else {
        // A content address: written only where no object is (a fleet may be filling it).
        let written = dispatcher.put_new(&copy.target, &mut counted).await;
        counted.progress.clear();
        return match written.with_context(|| failed("upload", &copy.target))? {
            Written::Written => Ok(Done::Uploaded),
            Written::AlreadyThere => Ok(Done::AlreadyThere),
        };
    };
    let uploaded = dispatcher.put(&copy.target, &mut counted).await;
    counted.progress.clear();
    uploaded.with_context(|| failed("upload", &copy.target))?;
    // The copy counts as complete only once its sha256 is recorded next to it.
    let line = format!("{}  {}\n", copy.hash, copy.name);
    dispatcher
        .put(sidecar, &mut line.as_bytes())
        .await
        .with_context(|| failed("record the sha256 of", sidecar))?;
    Ok(Done::Uploaded)
}

/// A reader that moves a progress bar along.
struct Counted<R> {
    reader: R,
    /// Where the bytes read end.
    size: u64,
    progress: Progress,
}

/// An HTTP upload reads its length from the end, and a redirected one starts over: the
/// verified bytes only, whatever else the spool file holds.
impl Seek for Counted<std::io::Take<&mut std::fs::File>> {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let at = match to {
            SeekFrom::Start(at) => Some(at),
            SeekFrom::End(delta) => self.size.checked_add_signed(delta),
            SeekFrom::Current(_) => None,
        };
        let at = at
            .filter(|&at| at <= self.size)
            .ok_or_else(|| std::io::Error::other("seek outside the verified bytes"))?;
        self.reader.get_mut().seek(SeekFrom::Start(at))?;
        self.reader.set_limit(self.size - at);
        Ok(at)
    }
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let n = self.reader.read(buffer)?;
        self.progress.advance(n as u64);
        Ok(n)
    }
}

/// Whether the copy has the manifest's size and its `.sha256` the manifest's hash.
async fn already_there(dispatcher: &mut Dispatcher, copy: &Copy) -> Result<bool, FetchError> {
    let options = RequestOptions::new(Vec::new(), &copy.target);
    match dispatcher.stat(&copy.target, &options).await {
        Ok(Some(size)) if size == copy.size => {}
        Ok(_) | Err(FetchError::NotFound { .. }) => return Ok(false),
        Err(err) => return Err(err),
    }
    // In a cache, the address is the hash (and every reader verifies).
    let Some(sidecar) = &copy.sidecar else {
        return Ok(true);
    };
    let options = RequestOptions::new(Vec::new(), sidecar);
    let mut download = match dispatcher.open(sidecar, &options, None, &mut |_| {}).await {
        Ok(download) => download,
        Err(FetchError::NotFound { .. }) => return Ok(false),
        Err(err) => return Err(err),
    };
    // A sha256sum line is short; anything much longer is not ours.
    let mut text = BytesMut::new();
    while let Some(chunk) = download.chunk().await? {
        text.extend_from_slice(&chunk);
        if text.len() > 4096 {
            return Ok(false);
        }
    }
    let recorded = String::from_utf8_lossy(&text);
    Ok(recorded.split_whitespace().next() == Some(copy.hash.as_str()))
}

/// The `--to` prefix, checked: a URL of a scheme ptex can upload to.
fn prefix(text: &str) -> anyhow::Result<Url> {
    let url = Url::parse(text.trim()).map_err(|e| anyhow!("--to {text}: not a URL: {e}"))?;
    if !matches!(url.scheme(), "s3" | "gs" | "file") {
        bail!(
            "--to {text}: {}",
            FetchError::CannotUpload {
                scheme: url.scheme().to_string()
            }
        );
    }
    if url.query().is_some() || url.fragment().is_some() {
        bail!("--to {text}: a prefix has no query or fragment");
    }
    Ok(url)
}

/// The object for file `name` under `prefix`, as a source ptex can fetch.
fn object(prefix: &Url, name: &str) -> anyhow::Result<Source> {
    // A name such as `../x` must not reach outside the prefix.
    let name = ptex::spool::safe_file_name(name).map_err(|e| anyhow!("--to {prefix}: {e}"))?;
    let mut url = prefix.clone();
    url.path_segments_mut()
        .map_err(|()| anyhow!("--to {prefix}: not a prefix that names can be added to"))?
        .pop_if_empty()
        .push(name);
    Source::parse(url.as_str()).with_context(|| format!("--to {prefix}: file {name:?}"))
}

/// One `mirrors` rule (JSON) per URL of the manifest: that URL's file comes from its copy
/// first, the original after it.
fn rules(copies: &[Copy]) -> Vec<String> {
    let mut rules = Vec::new();
    for copy in copies {
        let target = copy.target.url().as_str();
        for url in copy.urls.iter().filter(|url| *url != target) {
            rules.push(format!(
                "{{\"prefix\": {}, \"urls\": [{}], \"origin\": \"last\"}}",
                quote(url),
                quote(target)
            ));
        }
    }
    rules.dedup();
    rules
}

/// Adds `rules` to the config file at `path` (new ones first, in their order), keeping the
/// rest of it byte for byte; the result must load as a ptex config.
fn write_config(path: &std::path::Path, rules: &[String]) -> anyhow::Result<()> {
    let at = |e: String| anyhow!("config file {}: {e}", path.display());
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => "{}\n".to_string(),
        Err(e) => return Err(at(format!("cannot read it: {e}"))),
    };
    let mut doc = Document::parse(text).map_err(at)?;
    let mirrors = [Step::Key("mirrors")];
    let existing = match doc.get(&mirrors) {
        Some(Value::Array(list)) => list,
        Some(_) => return Err(at("`mirrors` is not a list".to_string())),
        None => {
            doc.set(&[], "mirrors", "[]").map_err(at)?;
            Vec::new()
        }
    };
    for rule in rules.iter().rev() {
        let value: Value = serde_json::from_str(rule).map_err(|e| at(e.to_string()))?;
        if !existing.contains(&value) {
            doc.insert(&mirrors, At::First, rule).map_err(at)?;
        }
    }
    ConfigFile::parse(doc.text().as_bytes(), path)?;
    write_atomically(path, doc.text())
}

/// Writes the manifest to `out` with each file's copy first in its `ptex` list.
fn rewrite_manifest(
    manifest: &Manifest,
    copies: &[Copy],
    out: &std::path::Path,
) -> anyhow::Result<()> {
    let at = |e: String| anyhow!("lift manifest {}: {e}", manifest.path.display());
    let mut doc = Document::parse(manifest.text.clone()).map_err(at)?;
    for copy in copies {
        let target = copy.target.url().as_str();
        let mut urls = vec![quote(target)];
        urls.extend(copy.urls.iter().filter(|u| *u != target).map(|u| quote(u)));
        doc.set(
            &[Step::Key("ptex")],
            &copy.name,
            &format!("[{}]", urls.join(", ")),
        )
        .map_err(at)?;
    }
    write_atomically(out, doc.text())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ptex_schemes::Scheme;

    #[test]
    fn objects_go_under_the_prefix_with_their_names_encoded() {
        let name = |to: &str, file: &str| object(&prefix(to).unwrap(), file).unwrap();
        let s3 = name("s3://bkt/pbs", "cpython-3.10+x.tar.gz");
        assert_eq!(s3.url().as_str(), "s3://bkt/pbs/cpython-3.10+x.tar.gz");
        assert_eq!(s3.object_key(), "pbs/cpython-3.10+x.tar.gz");
        assert_eq!(name("s3://bkt/pbs/", "a b#c").object_key(), "pbs/a b#c");
        assert_eq!(name("s3://bkt", "f").object_key(), "f");
        let file = name("file:///srv/mirror/", "f.zip");
        assert_eq!(
            file.url().to_file_path().unwrap(),
            PathBuf::from("/srv/mirror/f.zip")
        );
        assert_eq!(file.scheme(), Scheme::File);
        for bad in ["https://h/x", "ftp://h/x", "not a url", "s3://bkt/p?x=1"] {
            assert!(prefix(bad).is_err(), "{bad}");
        }
        for bad in ["..", "a/b", "", "a\\b"] {
            assert!(
                object(&prefix("file:///srv").unwrap(), bad).is_err(),
                "{bad}"
            );
        }
    }
}
