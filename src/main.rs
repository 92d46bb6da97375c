//! `ptex`: fetch a file for a skinny scie (or any URL) and emit it only once its size and
//! sha256 are verified. `main` parses, runs and maps the outcome to an exit code.

use std::process::ExitCode;

use ptex::{cli, report, run};

fn main() -> ExitCode {
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
