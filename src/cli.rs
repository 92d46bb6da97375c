//! The command line, compatible flag for flag with the original ptex (see SCIE-BINDING.md),
//! plus `--sha256`, `--size` and `-v`.

use std::process::ExitCode;

use clap::{ArgAction, Parser};

/// Fetch a file for a skinny scie, verifying its size and sha256 before a byte is emitted.
#[derive(Debug, Parser)]
#[command(
    name = "ptex",
    disable_version_flag = true,
    override_usage = "ptex [OPTIONS] <LIFT_MANIFEST> <FILE_NAME>\n       ptex [OPTIONS] <URL>",
    after_help = "With a lift manifest and a file name, ptex looks the file up in the manifest's \
                  `ptex` table and writes its bytes to stdout once they match the manifest's size \
                  and sha256. With a URL, it fetches that URL (verifying --size and --sha256 when \
                  given)."
)]
pub struct Cli {
    /// Write to a file in the current directory named like the URL's last path segment
    /// (the file name in binding mode) instead of stdout.
    #[arg(short = 'O', long)]
    pub remote_name: bool,

    /// Extra request header `Name: value`, sent to the first URL's origin only (repeatable).
    #[arg(short = 'H', long = "header", value_name = "HEADER")]
    pub headers: Vec<String>,

    /// Dump response headers to stderr (also when PTEX_DUMP_HEADERS is non-empty).
    #[arg(short = 'D', long)]
    pub dump_header: bool,

    /// Do not show a progress bar.
    #[arg(short, long)]
    pub silent: bool,

    /// Describe every attempt on stderr.
    #[arg(short, long)]
    pub verbose: bool,

    /// Expected sha256 of the file (64 hex digits).
    #[arg(long, value_name = "HEX")]
    pub sha256: Option<String>,

    /// Expected size of the file in bytes.
    #[arg(long, value_name = "BYTES")]
    pub size: Option<u64>,

    /// Config file to use instead of $PTEX_CONFIG or ~/.config/ptex/config.json.
    #[arg(long, value_name = "PATH")]
    pub config: Option<std::path::PathBuf>,

    /// Show (on stderr) the sources that would be tried, in order, with the credentials
    /// each would use (by name), then exit without fetching.
    #[arg(long)]
    pub dry_run: bool,

    /// Print the version and exit.
    #[arg(short = 'V', long, action = ArgAction::SetTrue)]
    pub version: bool,

    /// A lift manifest (binding mode), or the URL to fetch (direct mode).
    #[arg(value_name = "LIFT_MANIFEST|URL", required_unless_present = "version")]
    pub target: Option<String>,

    /// The file to fetch, as named in the lift manifest (binding mode).
    #[arg(value_name = "FILE_NAME")]
    pub file: Option<String>,
}

/// Parses the process arguments. Help goes to stdout with exit 0; a usage error goes to
/// stderr with exit 1, as every error of the original ptex does.
pub fn parse() -> Result<Cli, ExitCode> {
    Cli::try_parse().map_err(|err| {
        let _ = err.print();
        if err.use_stderr() {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        }
    })
}
