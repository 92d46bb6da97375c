//! The command line of `ptex-publish`: one subcommand per job, the config and verbosity
//! shared by all.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::session::Session;
use crate::{check, entry, mirror};

/// Write, check and mirror the `ptex` entries of a skinny scie's lift manifest.
#[derive(Debug, Parser)]
#[command(name = "ptex-publish", version)]
pub struct Cli {
    /// Config file to use instead of $PTEX_CONFIG or ~/.config/ptex/config.json (its
    /// credentials, endpoints and network settings apply to every request).
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// Describe every attempt on stderr.
    #[arg(short, long, global = true)]
    pub verbose: bool,

    /// Files (or sources) handled at once.
    #[arg(long, global = true, default_value_t = 4, value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..=32))]
    pub jobs: u16,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Fetch each URL, and print its `scie.lift.files` entry (size, sha256, type) and its
    /// `ptex` table entry, or write them into a lift manifest with --into.
    Entry(entry::Args),
    /// Check that every sourced file of a lift manifest has a size, a hash and URLs ptex can
    /// fetch; with --probe or --verify, ask every source too.
    Check(check::Args),
    /// Copy every sourced file of a lift manifest (verified) under an s3://, gs:// or
    /// file:// prefix, then print the config rule that sends ptex there.
    Mirror(mirror::Args),
}

/// Runs the subcommand.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let session = Session::new(cli.config.as_deref(), cli.verbose, cli.jobs.into())?;
    match cli.command {
        Command::Entry(args) => entry::run(&session, args),
        Command::Check(args) => check::run(&session, args),
        Command::Mirror(args) => mirror::run(&session, args),
    }
}
