//! Progress bars on stderr: shown only when stderr is a terminal and `-s` is not given. ptex
//! draws one; ptex-publish draws one per file it is working on, together ([`Bars`]).

use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A progress bar for one file; a hidden one when progress is off.
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// A bar labelled `label`, drawn on stderr if `show`.
    pub fn new(show: bool, label: &str) -> Progress {
        let bar = if show {
            ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr())
        } else {
            ProgressBar::hidden()
        };
        bar.set_message(label.to_string());
        Progress { bar }
    }

    /// Starts over for a new attempt, with the total size if known.
    pub fn start(&self, total: Option<u64>) {
        let template = match total {
            Some(_) => "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
            None => "{spinner} {msg} {bytes} {bytes_per_sec}",
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            self.bar.set_style(style.progress_chars("=> "));
        }
        self.bar.set_length(total.unwrap_or(0));
        self.bar.set_position(0);
        self.bar.enable_steady_tick(Duration::from_millis(200));
    }

    /// Records `n` more bytes received.
    pub fn advance(&self, n: u64) {
        self.bar.inc(n);
    }

    /// Runs `f` (which writes to stderr) without garbling the bar.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        self.bar.suspend(f)
    }

    /// Removes the bar from the terminal.
    pub fn clear(&self) {
        self.bar.finish_and_clear();
    }
}

/// Bars for several files at once, drawn together on stderr; lines printed through it go
/// above them.
pub struct Bars {
    group: Option<MultiProgress>,
}

impl Bars {
    /// Bars drawn on stderr if `show`; otherwise every bar is hidden.
    pub fn new(show: bool) -> Bars {
        let group = show.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        Bars { group }
    }

    /// A bar for `label` among the others (hidden when bars are off).
    pub fn bar(&self, label: &str) -> Progress {
        let bar = match &self.group {
            Some(group) => group.add(ProgressBar::new(0)),
            None => ProgressBar::hidden(),
        };
        bar.set_message(label.to_string());
        Progress { bar }
    }

    /// Prints `line` on stderr without garbling the bars.
    pub fn println(&self, line: &str) {
        match &self.group {
            Some(group) if group.println(line).is_ok() => {}
            _ => eprintln!("{line}"),
        }
    }
}
