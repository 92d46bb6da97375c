//! Room for a download, checked before any request: the directory the spool file will be
//! written to must be writable, and, when the expected size is known, its file system must
//! have that many bytes free. A run that cannot succeed fails at once, not after a partial
//! download. What the system will not tell (no free-space figure, no block count) is
//! not checked: the spool write itself then reports the problem.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use anyhow::anyhow;

use crate::job::Job;
use crate::os;

/// Fails, naming the file, its sources, the directory and the reason, when `job` cannot be
/// spooled into `dir` (created later if missing; its nearest existing ancestor is checked).
pub fn check(job: &Job, dir: &Path) -> anyhow::Result<()> {
    room(dir, job.expected.size).map_err(|shortfall| {
        let sources: Vec<String> = job.sources.iter().map(ToString::to_string).collect();
        anyhow!(
            "cannot fetch {} from {}: {shortfall}",
            job.name,
            sources.join(", ")
        )
    })
}

/// Why a directory cannot take the download.
#[derive(Debug)]
enum Shortfall {
    /// Writing there is refused (a read-only file system, permissions).
    NotWritable { dir: PathBuf, err: io::Error },
    /// Fewer bytes free than the file needs.
    NoRoom {
        dir: PathBuf,
        needed: u64,
        available: u64,
    },
}

impl fmt::Display for Shortfall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Shortfall::NotWritable { dir, err } => {
                write!(f, "cannot write to {}: {err}", dir.display())
            }
            Shortfall::NoRoom {
                dir,
                needed,
                available,
            } => write!(
                f,
                "not enough free space in {}: {needed} bytes ({}) needed, {available} bytes \
                 ({}) available",
                dir.display(),
                human(*needed),
                human(*available)
            ),
        }
    }
}

/// Checks that `dir` (or its nearest existing ancestor) is writable and has `needed` bytes
/// free.
fn room(dir: &Path, needed: Option<u64>) -> Result<(), Shortfall> {
    let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let Some(existing) = dir.ancestors().find(|d| d.is_dir()) else {
        return Ok(());
    };
    if let Err(err) = os::check_writable(existing) {
        return Err(Shortfall::NotWritable {
            dir: existing.to_path_buf(),
            err,
        });
    }
    let (Some(needed), Some(available)) = (needed, os::available_bytes(existing)) else {
        return Ok(());
    };
    if needed > available {
        return Err(Shortfall::NoRoom {
            dir: existing.to_path_buf(),
            needed,
            available,
        });
    }
    Ok(())
}

/// `bytes` in binary units, one decimal: `3.0 MiB`.
fn human(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    match unit {
        0 => format!("{bytes} B"),
        _ => format!("{value:.1} {}", UNITS[unit]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_file_fits_and_an_exabyte_does_not() {
        let dir = tempfile::tempdir().unwrap();
        room(dir.path(), Some(1)).unwrap();
        room(dir.path(), None).unwrap();
        let err = room(dir.path(), Some(1 << 60)).unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with(&format!(
                "not enough free space in {}:",
                dir.path().display()
            )),
            "{text}"
        );
        assert!(
            text.contains("1152921504606846976 bytes (1.0 EiB) needed"),
            "{text}"
        );
    }

    #[test]
    fn a_missing_directory_is_judged_by_its_nearest_existing_ancestor() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("cache/spool");
        match room(&missing, Some(1 << 60)) {
            Err(Shortfall::NoRoom { dir: judged, .. }) => assert_eq!(judged, dir.path()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human(0), "0 B");
        assert_eq!(human(1023), "1023 B");
        assert_eq!(human(3 << 20), "3.0 MiB");
        assert_eq!(human(u64::MAX), "16.0 EiB");
    }
}
