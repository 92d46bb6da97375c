//! One run of ptex: turn the command line into a job (the file, its candidate sources after
//! mirror rules and allow/block, what it must be), fetch and verify it, then hand the
//! verified bytes to stdout or to the `-O` file.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};
use ptex_config::{Candidate, Env, ProcessEnv, Settings};
use ptex_schemes::{Dispatcher, Header, RequestOptions, Scheme, Source};
use serde_json::Value;

use crate::cache::{self, Caches, Looked};
use crate::cli::Cli;
use crate::fetch;
use crate::job::{Job, Limits};
use crate::manifest;
use crate::os::untrusted;
use crate::output;
use crate::progress::Progress;
use crate::report::{self, Reporter};
use crate::scie;
use crate::space;
use crate::spool::safe_file_name;
use crate::verify::{Expected, Sha256Hex, Verified};

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
    /// For a binding-mode file nothing gives both a size and a sha256 for: what was asked.
    unverified: Option<String>,
    /// Where the URLs, the size and the sha256 came from, for `--dry-run` and `-v`.
    provenance: Provenance,
    /// Warnings found while reading the request, shown once the reporter exists.
    warnings: Vec<String>,
}

/// Where each part of a request came from: a file, the running scie, a flag.
#[derive(Default)]
struct Provenance {
    /// The file whose `ptex` table listed the URLs (binding mode).
    urls: Option<String>,
    size: Option<String>,
    sha256: Option<String>,
}

impl Provenance {
    /// One line per known expectation, saying where it came from.
    fn lines(&self, expected: &Expected) -> Vec<String> {
        let mut lines = Vec::new();
        if let (Some(size), Some(from)) = (expected.size, &self.size) {
            lines.push(format!("expected size {size} bytes, from {from}"));
        }
        if let (Some(sha256), Some(from)) = (&expected.sha256, &self.sha256) {
            lines.push(format!("expected sha256 {sha256}, from {from}"));
        }
        if expected.size.is_none() || expected.sha256.is_none() {
            lines.push("not verified: no expected size and sha256".to_string());
        }
        lines
    }
}

/// Runs ptex as the command line asks: fetch one file, verify it, hand it on.
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
    for warning in settings.warnings.iter().chain(&request.warnings) {
        report.warn(warning);
    }

    let candidates = settings.file.routing.candidates(&request.urls);
    let provenance = request.provenance.lines(&request.expected);
    if cli.dry_run {
        dry_run(&settings, &request, &candidates, &provenance);
        return Ok(());
    }
    if let Some(from) = &request.provenance.urls {
        report.info(format_args!("{}: URLs from {from}", request.name));
    }
    for line in &provenance {
        report.info(format_args!("{}: {line}", request.name));
    }
    let job = plan(&cli, &request, &candidates, &settings)?;
    if let Some(why) = &request.unverified {
        report.warn(format_args!(
            "{}: {why}; the download cannot be verified",
            job.name
        ));
    }
    let (spool_dir, out_file) = destination(&cli, &request, &settings)?;
    deliver(&job, settings, &spool_dir, out_file, &report)
}

/// Prints the `--dry-run` plan: the caches, then the candidate sources, then `provenance`.
fn dry_run(
    settings: &Settings,
    request: &Request,
    candidates: &[Candidate],
    provenance: &[String],
) {
    let caches = cache::dry_run(settings, &request.name, &request.expected);
    let listed_in = request.provenance.urls.as_deref();
    let lines: Vec<String> = caches
        .iter()
        .map(|c| describe_candidate(c, settings, None))
        .chain(
            candidates
                .iter()
                .map(|c| describe_candidate(c, settings, listed_in)),
        )
        .collect();
    report::dry_run(&request.name, &lines, provenance);
}

/// Where the bytes wait until verified, and the `-O` file they go to (none: stdout, which
/// must be open).
fn destination(
    cli: &Cli,
    request: &Request,
    settings: &Settings,
) -> anyhow::Result<(PathBuf, Option<PathBuf>)> {
    if !cli.remote_name && untrusted::stdout_was_closed() {
        bail!(
            "cannot fetch {}: error writing stdout: it was closed when ptex started",
            request.name
        );
    }
    if cli.remote_name {
        let name = safe_file_name(&request.remote_name)
            .map_err(|e| anyhow!("cannot save {} with -O: {e}", request.context))?;
        return Ok((PathBuf::from("."), Some(PathBuf::from(name))));
    }
    let spool_dir = settings.cache_dir.join("spool");
    trusted_cache_dir(&settings.cache_dir, &spool_dir)
        .with_context(|| format!("cannot fetch {}", request.name))?;
    Ok((spool_dir, None))
}

/// Fetches `job` (from a cache, else from its sources) into `spool_dir`, hands the
/// verified bytes on to `out_file` or stdout, then fills the caches that missed.
fn deliver(
    job: &Job,
    settings: Settings,
    spool_dir: &Path,
    out_file: Option<PathBuf>,
    report: &Reporter,
) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let limits = Limits::new(&settings);
    let caches = Caches::new(&settings, &job.name, &job.expected, report);
    let mut dispatcher = Dispatcher::new(settings);
    space::check(job, spool_dir)?;
    // The caches first; on a miss, the job's own sources (this host may hold the lease).
    let (fetched, misses) = runtime.block_on(async {
        match caches
            .look(job, &mut dispatcher, &limits, spool_dir, report)
            .await
        {
            Looked::Hit(spool, verified) => (Ok((spool, verified)), None),
            Looked::Miss(misses) => {
                let fetched = fetch::fetch(job, &mut dispatcher, &limits, spool_dir, report).await;
                (fetched, Some(misses))
            }
        }
    });
    report.progress().clear();
    let outcome = (|| {
        let handed_on =
            fetched.and_then(|(spool, verified)| hand_on(spool, verified, out_file, &job.name));
        let bytes = match handed_on {
            Ok(bytes) => bytes,
            Err(err) => {
                if let Some(misses) = misses {
                    runtime.block_on(cache::release(misses, &mut dispatcher));
                }
                return Err(err);
            }
        };
        // Only now, with the verified bytes handed on: filling the caches that missed.
        if let Some(misses) = misses {
            match bytes {
                Some(mut bytes) => runtime.block_on(caches.fill(
                    misses,
                    &job.name,
                    &mut bytes,
                    &mut dispatcher,
                    report,
                )),
                None => runtime.block_on(cache::release(misses, &mut dispatcher)),
            }
        }
        Ok(())
    })();
    // Nothing async is left to do. Dropping the runtime would wait for its blocking threads,
    // and a `getaddrinfo` a silent resolver holds (connect timeouts abandon it, they cannot
    // stop it) runs on for tens of seconds; scie-jump waits for our exit. So it is let go:
    // the process exits once the bytes are out, which ends such threads.
    runtime.shutdown_background();
    outcome
}

/// Hands the verified bytes on: to the `-O` file, or to stdout (then closed, so the scie
/// goes on while ptex fills caches). Returns the bytes again, for filling caches.
fn hand_on(
    mut spool: crate::spool::Spool,
    verified: Verified,
    out_file: Option<PathBuf>,
    name: &str,
) -> anyhow::Result<Option<std::fs::File>> {
    // A handle on this run's own file, taken before the bytes leave it, so that a fill
    // uploads exactly what was verified (never a file found at the `-O` path afterwards).
    let again = spool
        .verified(verified.size)
        .ok()
        .and_then(|bytes| bytes.get_ref().try_clone().ok());
    match out_file {
        Some(path) => {
            spool
                .persist(&path)
                .with_context(|| format!("cannot save {name} as {}", path.display()))?;
            Ok(again)
        }
        None => {
            let path = spool.path().display().to_string();
            // Best effort: other runs waiting for this file may take it now.
            let _ = spool.release();
            // Exactly the verified bytes, from this run's own file.
            let mut bytes = spool
                .verified(verified.size)
                .with_context(|| format!("cannot read back spool file {path}"))?;
            output::emit(&mut bytes, verified.size)?;
            output::close();
            Ok(again)
        }
    }
}

/// Creates the cache and spool directories if missing (private to this user), and refuses
/// them when other users could rename this run's files in them and plant their own.
fn trusted_cache_dir(cache_dir: &Path, spool_dir: &Path) -> anyhow::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    untrusted::private_dirs(&mut builder);
    builder
        .create(spool_dir)
        .with_context(|| format!("cannot create the cache directory {}", spool_dir.display()))?;
    for dir in [cache_dir, spool_dir] {
        untrusted::check_dir(dir).map_err(|why| anyhow!("refusing the cache directory {why}"))?;
    }
    Ok(())
}

/// Binding mode: the file's URLs and expectations come from the lift manifest. When it
/// lacks them (a URL-override file such as pex's `PEX_BOOTSTRAP_URLS` names) and `SCIE` names
/// the running scie, the scie's own embedded manifest fills in: its `ptex` entry for a file
/// the given one does not list, its size and sha256 where the given one is silent.
fn binding_request(cli: &Cli, manifest: &Path, file: &str) -> anyhow::Result<Request> {
    let context = format!("lift manifest {}: file {file:?}", manifest.display());
    let given = manifest::read(manifest).context(context.clone())?;
    let given_urls = manifest::urls(&given, file).context(context.clone())?;
    let given_expected = manifest::expected(&given, file).context(context.clone())?;
    let here = format!("the manifest {}", manifest.display());
    let mut warnings = Vec::new();
    let needed = given_urls.is_none() || !given_expected.is_complete();
    let scie = running_scie(file, needed, &mut warnings);

    // The given file's entry replaces the scie's whole entry; a file it lacks keeps the
    // scie's.
    let scie_urls = scie
        .as_ref()
        .and_then(|s| Some((s.urls.clone()?, s.name.clone())));
    let Some((urls, urls_from)) = given_urls.map(|urls| (urls, here.clone())).or(scie_urls) else {
        let table = match given.get("ptex") {
            Some(Value::Object(_)) => "no URL for it in the `ptex` table",
            _ => "the manifest has no top-level `ptex` table of URLs",
        };
        let also = match &scie {
            Some(scie) => format!(", nor in that of {}", scie.name),
            None => String::new(),
        };
        return Err(anyhow!("{table}{also}").context(context));
    };
    let scie_expected = scie.as_ref().map(|s| (&s.expected, s.name.as_str()));
    let size = merge(
        "size",
        (given_expected.size, &here),
        scie_expected.map(|(e, name)| (e.size, name)),
    )
    .context(context.clone())?;
    let sha256 = merge(
        "sha256",
        (given_expected.sha256, &here),
        scie_expected.map(|(e, name)| (e.sha256.clone(), name)),
    )
    .context(context.clone())?;
    let flags = flag_expectations(cli).context(context.clone())?;
    let (size, size_from) = with_flag("size", size, flags.size).context(context.clone())?;
    let (sha256, sha256_from) =
        with_flag("sha256", sha256, flags.sha256).context(context.clone())?;
    let expected = Expected { size, sha256 };
    let unverified = (!expected.is_complete()).then(|| match &scie {
        Some(_) => "neither the manifest nor the running scie ($SCIE) gives both its size and \
                    sha256"
            .to_string(),
        None => "the manifest does not give both its size and sha256".to_string(),
    });
    Ok(Request {
        name: file.to_string(),
        unverified,
        urls,
        expected,
        remote_name: file.to_string(),
        context,
        provenance: Provenance {
            urls: Some(urls_from),
            size: size_from,
            sha256: sha256_from,
        },
        warnings,
    })
}

/// What the running scie's embedded manifest says about one file.
struct ScieEntry {
    /// How messages name it: "the running scie PATH ($SCIE)".
    name: String,
    urls: Option<Vec<String>>,
    expected: Expected,
}

/// The running scie's entry for `file`, when `SCIE` names a readable scie. A scie that cannot
/// be read is a warning when it was `needed` (silence otherwise: the manifest said it all).
fn running_scie(file: &str, needed: bool, warnings: &mut Vec<String>) -> Option<ScieEntry> {
    let path = PathBuf::from(ProcessEnv.var_os("SCIE").filter(|v| !v.is_empty())?);
    let name = format!("the running scie {} ($SCIE)", path.display());
    let read = scie::read(&path).and_then(|lift| {
        Ok(ScieEntry {
            urls: manifest::urls(&lift.json, file)?,
            expected: manifest::expected(&lift.json, file)?,
            name: name.clone(),
        })
    });
    match read {
        Ok(entry) => Some(entry),
        Err(err) => {
            if needed {
                warnings.push(format!(
                    "{file}: cannot use {name}: {err:#}; going on with the manifest alone"
                ));
            }
            None
        }
    }
}

/// One expectation from the given manifest and the running scie, with where it came from;
/// when both give it, they must agree.
fn merge<T: PartialEq + std::fmt::Display>(
    what: &str,
    (given, here): (Option<T>, &str),
    scie: Option<(Option<T>, &str)>,
) -> anyhow::Result<Option<(T, String)>> {
    let (theirs, there) = match scie {
        Some((Some(theirs), there)) => (theirs, there),
        _ => return Ok(given.map(|v| (v, here.to_string()))),
    };
    match given {
        Some(ours) if ours != theirs => bail!(
            "{here} gives its {what} as {ours}, but {there} gives {theirs}; refusing to guess \
             which is right"
        ),
        Some(ours) => Ok(Some((ours, here.to_string()))),
        None => Ok(Some((theirs, there.to_string()))),
    }
}

/// An expectation with its flag: the flag fills it in where nothing gave it, and must agree
/// with it otherwise. Returns the value and where it came from.
fn with_flag<T: PartialEq + std::fmt::Display>(
    what: &str,
    known: Option<(T, String)>,
    flag: Option<T>,
) -> anyhow::Result<(Option<T>, Option<String>)> {
    match (known, flag) {
        (Some((value, from)), Some(flag)) if value != flag => {
            bail!("--{what} {flag} disagrees with the {what} {value} from {from}")
        }
        (Some((value, from)), _) => Ok((Some(value), Some(from))),
        (None, Some(flag)) => Ok((Some(flag), Some(format!("--{what}")))),
        (None, None) => Ok((None, None)),
    }
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
        unverified: None,
        provenance: Provenance {
            urls: None,
            size: cli.size.map(|_| "--size".to_string()),
            sha256: cli.sha256.as_ref().map(|_| "--sha256".to_string()),
        },
        warnings: Vec::new(),
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
                .for_host(host, port, https, false)
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
fn describe_candidate(
    candidate: &Candidate,
    settings: &Settings,
    listed_in: Option<&str>,
) -> String {
    let url = ptex_schemes::redact_url(&candidate.url);
    let via = match listed_in {
        Some(file) => format!("{}, listed in {file}", candidate.via),
        None => candidate.via.clone(),
    };
    if candidate.blocked {
        return format!("{url}  ({via}; blocked)");
    }
    let credentials = match Source::parse(&candidate.url) {
        Err(e) => format!("unusable: {e}"),
        Ok(source) => match source.scheme() {
            Scheme::Http | Scheme::Https => {
                let (host, port, https) = http_target(&source).unwrap_or_default();
                let found = match settings.credentials.for_host(host, port, https, false) {
                    Ok(found) => found.source,
                    Err(e) => format!("error: {e}"),
                };
                let helper = settings
                    .file
                    .credential_helpers
                    .for_host(host)
                    .filter(|_| https || ptex_config::is_loopback(host));
                let cert = settings
                    .credentials
                    .client_cert(host, port)
                    .or(settings.tls.client_cert.as_deref())
                    .filter(|_| https);
                let mut said = match helper {
                    Some((glob, path)) => format!(
                        "the credential helper {} (credential_helpers.{glob:?}), then {found}",
                        path.display()
                    ),
                    None => found,
                };
                if let Some(cert) = cert {
                    said.push_str(&format!("; client certificate {}", cert.display()));
                }
                said
            }
            Scheme::S3 | Scheme::Gs => {
                return format!("{url}  ({via}; {})", describe_store(&source, settings));
            }
            Scheme::Ftp if !source.url().username().is_empty() => "the URL's login".to_string(),
            Scheme::Ftp => "netrc, else anonymous".to_string(),
            Scheme::File => "none".to_string(),
        },
    };
    format!("{url}  ({via}; credentials: {credentials})")
}

/// The `--dry-run` part of an `s3://` or `gs://` line: where the bucket is and which
/// credential source will be used, as `ptex-config` resolves them (no request is sent).
fn describe_store(source: &Source, settings: &Settings) -> String {
    let env = &settings.cloud;
    let described = match source.scheme() {
        Scheme::S3 => {
            let files = ptex_config::AwsFiles::load(env);
            ptex_config::S3Settings::resolve(source.host(), &settings.file.s3, env, &files)
                .map(|s3| s3.describe(env, &files))
        }
        _ => ptex_config::GcsSettings::resolve(&settings.file.gs, env).map(|gcs| gcs.describe()),
    };
    described.unwrap_or_else(|reason| format!("unusable: {reason}"))
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
