//! One run of ptex: turn the command line into a job, fetch and verify it, then hand the
//! verified bytes to stdout or to the `-O` file.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};
use ptex_config::{Env, ProcessEnv, Settings};
use ptex_schemes::{Dispatcher, Header, RequestOptions, Source};

use crate::cli::Cli;
use crate::fetch::{self, Job};
use crate::manifest;
use crate::output;
use crate::progress::Progress;
use crate::report::Reporter;
use crate::spool::safe_file_name;
use crate::verify::{Expected, Sha256Hex};

pub fn run(cli: Cli) -> anyhow::Result<()> {
    if cli.version {
        return output::version();
    }
    let target = cli.target.clone().unwrap_or_default();
    let settings = Settings::load(&ProcessEnv)?;
    let dump_headers = cli.dump_header || ProcessEnv.non_empty("PTEX_DUMP_HEADERS").is_some();
    let show_progress = !cli.silent && std::io::stderr().is_terminal();

    let (job, unverified) = match &cli.file {
        Some(file) => binding_job(&cli, Path::new(&target), file)?,
        None => direct_job(&cli, &target)?,
    };
    let report = Reporter::new(
        cli.verbose,
        dump_headers,
        Progress::new(show_progress, &job.name),
    );
    for warning in &settings.warnings {
        report.warn(warning);
    }
    if unverified {
        report.warn(format_args!(
            "{}: the manifest does not give both its size and sha256; the download cannot be verified",
            job.name
        ));
    }

    let (spool_dir, out_file) = if cli.remote_name {
        let first = first_source(&job.sources)?;
        let name = match &cli.file {
            Some(file) => file.clone(),
            None => first.file_name(),
        };
        let name = safe_file_name(&name)
            .map_err(|e| anyhow!("cannot save {} from {first} with -O: {e}", job.name))?;
        (PathBuf::from("."), Some(PathBuf::from(name)))
    } else {
        (settings.cache_dir.join("spool"), None)
    };

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let retry = settings.retry;
    let mut dispatcher = Dispatcher::new(settings);
    let fetched = runtime.block_on(fetch::fetch(
        &job,
        &mut dispatcher,
        retry,
        &spool_dir,
        &report,
    ));
    report.progress().clear();
    let (mut spool, _verified) = fetched?;
    match out_file {
        Some(path) => spool
            .persist(&path)
            .with_context(|| format!("cannot save {} as {}", job.name, path.display())),
        None => {
            let path = spool.path().display().to_string();
            let reader = spool
                .reader()
                .with_context(|| format!("cannot read back spool file {path}"))?;
            output::emit(reader).map(drop)
        }
    }
}

/// Binding mode: the file's URLs and expectations come from the lift manifest. Returns the
/// job and whether it lacks a size or sha256 to verify against.
fn binding_job(cli: &Cli, manifest: &Path, file: &str) -> anyhow::Result<(Job, bool)> {
    let entry = manifest::load(manifest, file)?;
    let context = || format!("lift manifest {}: file {file:?}", manifest.display());
    let flags = flag_expectations(cli).with_context(context)?;
    let expected = Expected {
        size: agree("size", entry.expected.size, flags.size).with_context(context)?,
        sha256: agree("sha256", entry.expected.sha256, flags.sha256).with_context(context)?,
    };
    let sources = entry
        .urls
        .iter()
        .map(|url| Source::parse(url))
        .collect::<Result<Vec<_>, _>>()
        .with_context(context)?;
    let unverified = !expected.is_complete();
    let job = Job {
        name: file.to_string(),
        options: request_options(cli, file, first_source(&sources)?)?,
        sources,
        expected,
    };
    Ok((job, unverified))
}

/// Direct mode: one URL, verified against `--size` and `--sha256` when given.
fn direct_job(cli: &Cli, url: &str) -> anyhow::Result<(Job, bool)> {
    let source = Source::parse(url).context("cannot fetch the URL")?;
    let name = match source.file_name() {
        name if name.is_empty() => source.to_string(),
        name => name,
    };
    let job = Job {
        expected: flag_expectations(cli).with_context(|| format!("cannot fetch {source}"))?,
        options: request_options(cli, &name, &source)?,
        name,
        sources: vec![source],
    };
    Ok((job, false))
}

fn flag_expectations(cli: &Cli) -> anyhow::Result<Expected> {
    let sha256 = cli
        .sha256
        .as_deref()
        .map(|hex| Sha256Hex::parse(&hex.trim().to_ascii_lowercase()))
        .transpose()
        .map_err(|e| anyhow!("--sha256: {e}"))?;
    Ok(Expected {
        size: cli.size,
        sha256,
    })
}

/// The manifest's value, or the flag's where the manifest is silent; both must agree.
fn agree<T: PartialEq + std::fmt::Display>(
    what: &str,
    manifest: Option<T>,
    flag: Option<T>,
) -> anyhow::Result<Option<T>> {
    match (manifest, flag) {
        (Some(m), Some(f)) if m != f => {
            bail!("--{what} {f} disagrees with the manifest's {what} {m}")
        }
        (m, f) => Ok(m.or(f)),
    }
}

fn first_source(sources: &[Source]) -> anyhow::Result<&Source> {
    sources.first().context("no source URL to fetch from")
}

/// `-H` headers, validated before any connection, for the origin of the first source.
fn request_options(cli: &Cli, name: &str, first: &Source) -> anyhow::Result<RequestOptions> {
    let headers = cli
        .headers
        .iter()
        .map(|h| Header::parse(h))
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("cannot fetch {name}"))?;
    Ok(RequestOptions::new(headers, first))
}
