//! The one place in `src/` that names an operating system: positional reads and writes,
//! free space, writability, allocator tuning, closing stdout early, whether a handle and a
//! path are one file, replacing a file by renaming over it, and which names a file may not
//! have; `untrusted` opens and creates files in directories others may write to. Everything
//! else calls these and stays portable; `unix.rs` and `windows.rs` hold the two
//! implementations. File locks (`File::try_lock`) and the cache
//! directory (the `directories` crate, in ptex-config) are portable already.

use std::fs::File;
use std::io;
use std::path::Path;

pub mod untrusted;

#[cfg(unix)]
mod unix;
#[cfg(unix)]
use unix as imp;
#[cfg(windows)]
mod windows;
#[cfg(windows)]
use windows as imp;

/// Reads exactly `buf.len()` bytes of `file` from `offset`. The file's cursor is left
/// alone on Unix; on Windows it moves, so callers never mix this with cursor-based I/O on
/// handles that share a cursor (see [`write_all_at`]).
pub fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    imp::read_exact_at(file, buf, offset)
}

/// Writes all of `buf` into `file` at `offset`. Spools write only this way, so the
/// Windows cursor moved by positional I/O never decides where bytes land.
pub fn write_all_at(file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
    imp::write_all_at(file, buf, offset)
}

/// Bytes an unprivileged writer may still use on the file system holding the existing
/// directory `dir`, or `None` when the system does not say (or reports no blocks at all,
/// as an unlimited tmpfs and some network file systems do).
pub fn available_bytes(dir: &Path) -> Option<u64> {
    imp::available_bytes(dir)
}

/// `Err` when this process may not create files in the existing directory `dir` (a
/// read-only file system, permissions). `Ok` when it may, or when the system cannot tell
/// without trying: the spool write then reports the problem.
pub fn check_writable(dir: &Path) -> io::Result<()> {
    imp::check_writable(dir)
}

/// Tunes the allocator for a long-running download, before any other thread starts.
pub fn tune_allocator() {
    imp::tune_allocator();
}

/// Points stdout at the null device, so that its reader (scie-jump) sees the end of the
/// bytes while ptex still works (filling caches); later writes go nowhere. Best effort; the
/// caller has flushed what it wrote.
pub fn close_stdout() {
    imp::close_stdout();
}

/// Whether `file` is the file `path` names now (itself, not through a symlink).
pub fn same_file(file: &File, path: &Path) -> bool {
    imp::same_file(file, path)
}

/// Renames `from` to `to`, replacing a file (or a symlink, never written through) at `to`.
/// Atomic where the system makes it so (POSIX rename; `MoveFileEx` on NTFS).
pub fn replace(from: &Path, to: &Path) -> io::Result<()> {
    imp::replace(from, to)
}

/// Why `name` cannot name a file in a directory on this system beyond what every system
/// refuses (separators, `.`, `..`): on Windows a `:` opens an alternate data stream and
/// `CON`, `NUL`, `COM1`… are devices. `None` when it can.
pub fn refuses_file_name(name: &str) -> Option<&'static str> {
    imp::refuses_file_name(name)
}

/// Makes a symlink at `link` to the file `target`, for tests that plant one where ptex
/// must not follow it. On Windows this needs the right to create symlinks (Developer Mode
/// or an administrator), so a test treats an error as nothing to plant.
#[cfg(test)]
pub fn symlink(target: &Path, link: &Path) -> io::Result<()> {
    imp::symlink(target, link)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positional_writes_and_reads_ignore_the_cursor() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let file = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .unwrap();
        write_all_at(&file, b"world", 6).unwrap();
        write_all_at(&file, b"hello ", 0).unwrap();
        let mut back = [0u8; 11];
        read_exact_at(&file, &mut back, 0).unwrap();
        assert_eq!(&back, b"hello world");
        let mut past = [0u8; 1];
        assert!(
            read_exact_at(&file, &mut past, 11).is_err(),
            "read past the end"
        );
    }

    #[test]
    fn a_temp_dir_is_writable_and_has_room() {
        let dir = tempfile::tempdir().unwrap();
        check_writable(dir.path()).unwrap();
        if let Some(free) = available_bytes(dir.path()) {
            assert!(free > 0);
        }
    }

    #[test]
    fn replace_takes_the_place_of_an_existing_file_and_same_file_follows_it() {
        let dir = tempfile::tempdir().unwrap();
        let (from, to) = (dir.path().join("new"), dir.path().join("old"));
        std::fs::write(&from, b"new").unwrap();
        std::fs::write(&to, b"old").unwrap();
        let handle = File::open(&from).unwrap();
        assert!(same_file(&handle, &from));
        assert!(!same_file(&handle, &to));
        replace(&from, &to).unwrap();
        assert_eq!(std::fs::read(&to).unwrap(), b"new");
        assert!(same_file(&handle, &to));
        assert!(!same_file(&handle, &from));
    }

    #[test]
    fn ordinary_names_are_allowed() {
        assert_eq!(refuses_file_name("cpython-3.10.8.tar.gz"), None);
        if cfg!(windows) {
            assert!(refuses_file_name("f.txt:stream").is_some());
            assert!(refuses_file_name("nul").is_some());
            assert!(refuses_file_name("COM1.txt").is_some());
        }
    }
}
