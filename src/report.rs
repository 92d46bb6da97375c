//! Everything ptex tells the user goes to stderr through here: warnings, `-v` lines, `-D`
//! header dumps, the progress bar and the final error line.

use std::fmt::Display;

use ptex_schemes::ResponseHead;

use crate::progress::Progress;

/// The stderr side of one run.
pub struct Reporter {
    verbose: bool,
    silent: bool,
    dump_headers: bool,
    progress: Progress,
}

impl Reporter {
    pub fn new(verbose: bool, silent: bool, dump_headers: bool, progress: Progress) -> Reporter {
        Reporter {
            verbose,
            silent,
            dump_headers,
            progress,
        }
    }

    /// A problem that does not stop the run.
    pub fn warn(&self, message: impl Display) {
        self.progress
            .suspend(|| eprintln!("ptex: warning: {}", one_line(&message.to_string())));
    }

    /// News of the fetch going on: a failed source that ptex moves on from, a retry round.
    /// A warning without `-s`, which hides it as it hides the bar.
    pub fn news(&self, message: impl Display) {
        if !self.silent {
            self.warn(message);
        }
    }

    /// A detail shown with `-v` only.
    pub fn info(&self, message: impl Display) {
        if self.verbose {
            self.progress
                .suspend(|| eprintln!("ptex: {}", one_line(&message.to_string())));
        }
    }

    /// One response head: dumped in full with `-D`, summarised with `-v`.
    pub fn response(&self, head: &ResponseHead) {
        if self.dump_headers {
            self.progress.suspend(|| {
                let mut dump = format!("{} {}\r\n", head.version, head.status);
                for (name, value) in &head.headers {
                    dump.push_str(&format!("{name}: {value}\r\n"));
                }
                eprint!("{dump}\r\n");
            });
        }
        self.info(format_args!("{}: HTTP {}", head.url, head.status));
    }

    pub fn progress(&self) -> &Progress {
        &self.progress
    }
}

/// Prints the `--dry-run` plan: the candidate sources of `name`, in order, then `notes`
/// (what it must be, and where that came from).
pub fn dry_run(name: &str, lines: &[String], notes: &[String]) {
    eprintln!("ptex: dry run: {name} would be fetched from, in order:");
    for (index, line) in lines.iter().enumerate() {
        eprintln!("  {}. {}", index + 1, one_line(line));
    }
    for note in notes {
        eprintln!("  {}", one_line(note));
    }
}

/// Prints the final error line.
pub fn error(err: &anyhow::Error) {
    error_of("ptex", err);
}

/// Prints the final error line of `program`.
pub fn error_of(program: &str, err: &anyhow::Error) {
    eprintln!("{program}: error: {}", one_line(&format!("{err:#}")));
}

/// `text` on a single line, so the last stderr line always carries the whole reason.
fn one_line(text: &str) -> String {
    text.replace(['\r', '\n'], " ")
}
