//! `ptex`: fetch a file for a skinny scie (or any URL) and emit it only once its size and
//! sha256 are verified. `main` parses, runs and maps the outcome to an exit code.

mod cli;
mod fetch;
mod manifest;
mod output;
mod parts;
mod progress;
mod report;
mod run;
mod share;
mod space;
mod spool;
mod verify;

use std::process::ExitCode;

fn main() -> ExitCode {
    keep_the_heap_small();
    let cli = match cli::parse() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    match run::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            report::error(&err);
            ExitCode::FAILURE
        }
    }
}

/// glibc keeps memory freed at the top of the heap for reuse, up to a threshold that grows
/// with the largest buffer freed; with several connections' buffers coming and going, that
/// is megabytes of resident memory doing nothing. A fixed threshold hands it back.
fn keep_the_heap_small() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; it is called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_TRIM_THRESHOLD, 128 * 1024);
    }
}
