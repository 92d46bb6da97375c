//! One run of ptex: turn the command line into a job (the file, its candidate sources after
//! mirror rules and allow/block, what it must be), fetch and verify it, then hand the
//! verified bytes to stdout or to the `-O` file.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};
use ptex_config::{Candidate, Env, ProcessEnv, Settings};
use ptex_schemes::{Dispatcher, Header, RequestOptions, Scheme, Source};

use crate::cli::Cli;
use crate::fetch::{self, Job, Limits};
use crate::manifest;
use crate::output;
use crate::progress::Progress;
use crate::report::{self, Reporter};
use crate::space;
use crate::spool::safe_file_name;
use crate::verify::{Expected, Sha256Hex};

/// What the command line asks for, before mirrors and filters apply.
struct Request {
    /// The file's name, for messages.
    name: String,
    /// The URLs as given (manifest order, or the one URL).
    urls: Vec<String>,
    /// What the file must be.
    expected: Expected,
    /// The `-O` file name: the manifest's file name, or the given URL's last segment.
    remote_name: String,
    /// Prefix for errors about the request itself (the manifest and file, or the URL).
    context: String,
    /// A binding-mode file the manifest gives no size or sha256 for.
    unverified: bool,
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    crate::os::tune_allocator();
    if cli.version {
        return output::version();
    }
    let settings = Settings::load(&ProcessEnv, cli.config.as_deref())?;
    let dump_headers = cli.dump_header || ProcessEnv.non_empty("PTEX_DUMP_HEADERS").is_some();
    let show_progress = !cli.silent && !cli.dry_run && std::io::stderr().is_terminal();
    let target = cli.target.clone().unwrap_or_default();
    let request = match &cli.file {
        Some(file) => binding_request(&cli, Path::new(&target), file)?,
        None => direct_request(&cli, &target)?,
    };
    let report = Reporter::new(
        cli.verbose,
        cli.silent,
        dump_headers,
        Progress::new(show_progress, &request.name),
    );
    for warning in &settings.warnings {
        report.warn(warning);
    }

    let candidates = settings.file.routing.candidates(&request.urls);
    if cli.dry_run {
        let lines: Vec<String> = candidates
            .iter()
            .map(|c| describe_candidate(c, &settings))
            .collect();
        report::dry_run(&request.name, &lines);
        return Ok(());
    }
    let job = plan(&cli, &request, &candidates, &settings)?;
    if request.unverified {
        report.warn(format_args!(
            "{}: the manifest does not give both its size and sha256; the download cannot be \
             verified",
            job.name
        ));
    }

    let (spool_dir, out_file) = if cli.remote_name {
        let name = safe_file_name(&request.remote_name)
            .map_err(|e| anyhow!("cannot save {} with -O: {e}", request.context))?;
        (PathBuf::from("."), Some(PathBuf::from(name)))
    } else {
        (settings.cache_dir.join("spool"), None)
    };

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let limits = Limits {
        retry: settings.retry,
        timeouts: settings.timeouts,
        parallel: settings.parallel,
    };
    let mut dispatcher = Dispatcher::new(settings);
    space::check(&job, &spool_dir)?;
    let fetched = runtime.block_on(fetch::fetch(
        &job,
        &mut dispatcher,
        &limits,
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
            // Best effort: other runs waiting for this file may take it now.
            let _ = spool.release();
            let reader = spool
                .reader()
                .with_context(|| format!("cannot read back spool file {path}"))?;
            output::emit(reader).map(drop)
        }
    }
}

/// Binding mode: the file's URLs and expectations come from the lift manifest.
fn binding_request(cli: &Cli, manifest: &Path, file: &str) -> anyhow::Result<Request> {
    let entry = manifest::load(manifest, file)?;
    let context = format!("lift manifest {}: file {file:?}", manifest.display());
    let flags = flag_expectations(cli).context(context.clone())?;
    let expected = Expected {
        size: agree("size", entry.expected.size, flags.size).context(context.clone())?,
        sha256: agree("sha256", entry.expected.sha256, flags.sha256).context(context.clone())?,
    };
    Ok(Request {
        name: file.to_string(),
        unverified: !expected.is_complete(),
        urls: entry.urls,
        expected,
        remote_name: file.to_string(),
        context,
    })
}

/// Direct mode: one URL, verified against `--size` and `--sha256` when given.
fn direct_request(cli: &Cli, url: &str) -> anyhow::Result<Request> {
    let source = Source::parse(url).context("cannot fetch the URL")?;
    let remote_name = source.file_name();
    let name = match &remote_name {
        name if name.is_empty() => source.to_string(),
        name => name.clone(),
    };
    Ok(Request {
        expected: flag_expectations(cli).with_context(|| format!("cannot fetch {source}"))?,
        context: format!("{name} from {source}"),
        name,
        urls: vec![url.to_string()],
        remote_name,
        unverified: false,
    })
}

/// The job for `request`: its allowed sources (see [`allowed_sources`]) and how to ask them.
fn plan(
    cli: &Cli,
    request: &Request,
    candidates: &[Candidate],
    settings: &Settings,
) -> anyhow::Result<Job> {
    let sources = allowed_sources(&request.name, &request.context, candidates, settings)?;
    let headers = cli
        .headers
        .iter()
        .map(|h| Header::parse(h))
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("cannot fetch {}", request.name))?;
    // -H headers belong to the first source the user named (after rewriting) only.
    let options = RequestOptions::new(headers, &sources[0]);
    Ok(Job {
        name: request.name.clone(),
        sources,
        expected: request.expected.clone(),
        options,
    })
}

/// The candidates of file `name` that are not blocked, parsed, with their credentials
/// checked, before any request; `context` prefixes an error about a URL that does not parse.
pub fn allowed_sources(
    name: &str,
    context: &str,
    candidates: &[Candidate],
    settings: &Settings,
) -> anyhow::Result<Vec<Source>> {
    let allowed: Vec<&Candidate> = candidates.iter().filter(|c| !c.blocked).collect();
    if allowed.is_empty() {
        let blocked: Vec<String> = candidates
            .iter()
            .map(|c| ptex_schemes::redact_url(&c.url))
            .collect();
        bail!(
            "cannot fetch {name}: {} (blocked: {})",
            settings.file.routing.blocked_message(),
            blocked.join(", ")
        );
    }
    let mut sources = Vec::new();
    for candidate in allowed {
        let source = Source::parse(&candidate.url).with_context(|| context.to_string())?;
        if let Some((host, port, https)) = http_target(&source) {
            settings
                .credentials
                .for_host(host, port, https)
                .with_context(|| format!("cannot fetch {name} from {source}"))?;
        }
        sources.push(source);
    }
    Ok(sources)
}

/// Host, non-default port and https-ness of an http(s) source.
fn http_target(source: &Source) -> Option<(&str, Option<u16>, bool)> {
    match source.scheme() {
        Scheme::Http | Scheme::Https => Some((
            source.host(),
            source.url().port(),
            source.scheme() == Scheme::Https,
        )),
        _ => None,
    }
}

/// One `--dry-run` line: the URL (redacted), why it is a candidate, and which credentials
/// it would use, by name only.
fn describe_candidate(candidate: &Candidate, settings: &Settings) -> String {
    let url = ptex_schemes::redact_url(&candidate.url);
    if candidate.blocked {
        return format!("{url}  ({}; blocked)", candidate.via);
    }
    let credentials = match Source::parse(&candidate.url) {
        Err(e) => format!("unusable: {e}"),
        Ok(source) => match source.scheme() {
            Scheme::Http | Scheme::Https => {
                let (host, port, https) = http_target(&source).unwrap_or_default();
                match settings.credentials.for_host(host, port, https) {
                    Ok(found) => found.source,
                    Err(e) => format!("error: {e}"),
                }
            }
            Scheme::S3 => "the AWS credential chain (unsigned if it finds none)".to_string(),
            Scheme::Gs => "the Google credential chain (unsigned if it finds none)".to_string(),
            Scheme::Ftp if !source.url().username().is_empty() => "the URL's login".to_string(),
            Scheme::Ftp => "netrc, else anonymous".to_string(),
            Scheme::File => "none".to_string(),
        },
    };
    format!("{url}  ({}; credentials: {credentials})", candidate.via)
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
