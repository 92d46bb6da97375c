//! `ptex-publish`: the publisher's side of a skinny scie. `entry` writes the `ptex` entries
//! of a lift manifest from URLs, `check` finds what is wrong with a manifest's sources, and
//! `mirror` copies every sourced file to a bucket or directory of one's own. A binary of its
//! own, so the `ptex` that ships in scies stays lean and keeps the original's command line.

mod check;
mod cli;
mod entry;
mod lift;
mod mirror;
mod pool;
mod session;
mod splice;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            return if err.use_stderr() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            ptex::report::error_of("ptex-publish", &err);
            ExitCode::FAILURE
        }
    }
}
