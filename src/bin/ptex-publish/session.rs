//! What every subcommand shares: the user's settings (config file, credentials, network),
//! the async runtime, messages on stderr, and fetching a file with ptex's own fetch
//! (retries, fallback, verification) into the spool directory.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow};
use ptex::fetch;
use ptex::job::{Job, Limits};
use ptex::progress::{Bars, Progress};
use ptex::report::Reporter;
use ptex::spool::Spool;
use ptex::verify::{Expected, Verified};
use ptex_config::{ProcessEnv, Settings};
use ptex_schemes::{Dispatcher, RequestOptions, Source};

/// One run of `ptex-publish`.
pub struct Session {
    pub settings: Settings,
    /// How hard every fetch tries, from the settings.
    limits: Limits,
    /// Files (or sources) handled at once.
    pub jobs: usize,
    verbose: bool,
    spool_dir: PathBuf,
    runtime: tokio::runtime::Runtime,
    /// A progress bar per file being fetched or uploaded, when stderr is a terminal.
    bars: Bars,
}

impl Session {
    pub fn new(config: Option<&Path>, verbose: bool, jobs: usize) -> anyhow::Result<Session> {
        let settings = Settings::load(&ProcessEnv, config)?;
        for warning in &settings.warnings {
            eprintln!("ptex-publish: warning: {warning}");
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")?;
        // -v prints line by line; bars would only get in the way.
        let bars = Bars::new(!verbose && std::io::stderr().is_terminal());
        Ok(Session {
            spool_dir: settings.cache_dir.join("spool"),
            limits: Limits::new(&settings),
            settings,
            jobs,
            verbose,
            runtime,
            bars,
        })
    }

    /// Runs `future` to completion.
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// A dispatcher with the user's settings.
    pub fn dispatcher(&self) -> Dispatcher {
        Dispatcher::new(self.settings.clone())
    }

    /// A progress line on stderr.
    pub fn say(&self, message: impl std::fmt::Display) {
        self.bars.println(&format!("ptex-publish: {message}"));
    }

    /// A progress bar for `label` (hidden unless stderr is a terminal).
    pub fn bar(&self, label: &str) -> Progress {
        self.bars.bar(label)
    }

    /// The sources ptex would try for a file listed with `urls`: after the config's mirror
    /// rules, without those it blocks.
    pub fn sources(&self, name: &str, urls: &[String]) -> anyhow::Result<Vec<Source>> {
        let candidates = self.settings.file.routing.candidates(urls);
        ptex::run::allowed_sources(name, &format!("file {name:?}"), &candidates, &self.settings)
    }

    /// Fetches file `name` from `sources`, in order, into a spool file, verified against
    /// `expected` (or just counted and hashed, where nothing is expected). `quiet` keeps
    /// the news of failed sources and retries off stderr.
    pub async fn fetch(
        &self,
        dispatcher: &mut Dispatcher,
        name: &str,
        sources: Vec<Source>,
        expected: Expected,
        quiet: bool,
    ) -> anyhow::Result<(Spool, Verified)> {
        let first = sources
            .first()
            .ok_or_else(|| anyhow!("cannot fetch {name}: it has no source"))?;
        let job = Job {
            name: name.to_string(),
            options: RequestOptions::new(Vec::new(), first),
            sources,
            expected,
        };
        let report = Reporter::new(self.verbose, quiet, false, self.bar(name));
        let fetched = fetch::fetch(&job, dispatcher, &self.limits, &self.spool_dir, &report).await;
        report.progress().clear();
        fetched
    }
}

/// Writes `text` to `path` through a temporary file in the same directory renamed into
/// place, so a reader never sees half a file (nor an interrupted run leaves one).
pub fn write_atomically(path: &Path, text: &str) -> anyhow::Result<()> {
    let context = || format!("cannot write {}", path.display());
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    let temp = dir.join(format!(
        ".{}.{}.ptex-publish",
        name.as_deref().unwrap_or("out"),
        std::process::id()
    ));
    std::fs::write(&temp, text).with_context(context)?;
    // An existing file keeps its permissions.
    if let Ok(meta) = std::fs::metadata(path) {
        let _ = std::fs::set_permissions(&temp, meta.permissions());
    }
    std::fs::rename(&temp, path)
        .inspect_err(|_| {
            let _ = std::fs::remove_file(&temp);
        })
        .with_context(context)
}
