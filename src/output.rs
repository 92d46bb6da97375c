//! The only code that writes to stdout: verified payload bytes, the bare version, and
//! `ptex-publish`'s reports (JSON to paste, the `check` table).
#![allow(clippy::print_stdout)]

use std::io::{self, Read, Write};

use anyhow::anyhow;

/// Copies the `size` verified bytes `bytes` yields (no more: it is cut there) to stdout.
pub fn emit(bytes: &mut impl Read, size: u64) -> anyhow::Result<u64> {
    let mut stdout = io::stdout().lock();
    let copied = io::copy(&mut bytes.take(size), &mut stdout)
        .and_then(|n| stdout.flush().map(|()| n))
        .map_err(|e| anyhow!("error writing stdout: {e}"))?;
    if copied != size {
        // Only if the spool file shrank under us: stdout is short, and the exit code says so.
        return Err(anyhow!(
            "the spool file lost bytes after verification: {copied} of {size} written"
        ));
    }
    Ok(copied)
}

/// Closes stdout once the verified bytes are out, so that the reader (scie-jump) sees its
/// end while ptex still works (filling caches); later writes go nowhere. Best effort.
pub fn close() {
    crate::os::close_stdout();
}

/// Prints the bare version, as the original ptex does for `-V`.
pub fn version() -> anyhow::Result<()> {
    writeln!(io::stdout(), "{}", env!("CARGO_PKG_VERSION"))
        .map_err(|e| anyhow!("error writing stdout: {e}"))
}

/// Writes `text` to stdout (a `ptex-publish` report), then flushes.
pub fn text(text: &str) -> anyhow::Result<()> {
    let mut stdout = io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| anyhow!("error writing stdout: {e}"))
}
