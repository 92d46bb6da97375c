//! The Unix side of [`crate::os`] (Linux with glibc or musl, macOS): `pread`/`pwrite`,
//! `statvfs`, `faccessat`, glibc's `mallopt`, `kill(pid, 0)`, device and inode numbers.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;

pub fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    file.read_exact_at(buf, offset)
}

pub fn write_all_at(file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
    file.write_all_at(buf, offset)
}

fn c_path(path: &Path) -> Option<CString> {
    CString::new(path.as_os_str().as_bytes()).ok()
}

pub fn available_bytes(dir: &Path) -> Option<u64> {
    let path = c_path(dir)?;
    // SAFETY: statvfs only writes into the zeroed struct we own; `path` is NUL-terminated.
    let mut stats: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(path.as_ptr(), &mut stats) } != 0 || stats.f_blocks == 0 {
        return None;
    }
    // The field widths differ between platforms (u32 on macOS, u64 on Linux).
    #[allow(clippy::unnecessary_cast)]
    Some((stats.f_bavail as u64).saturating_mul(stats.f_frsize as u64))
}

pub fn check_writable(dir: &Path) -> io::Result<()> {
    let Some(path) = c_path(dir) else {
        return Ok(());
    };
    // AT_EACCESS: judged with the effective ids, the ones the spool write will use.
    // SAFETY: `path` is a valid NUL-terminated string that outlives the call.
    let refused =
        unsafe { libc::faccessat(libc::AT_FDCWD, path.as_ptr(), libc::W_OK, libc::AT_EACCESS) }
            != 0;
    if refused {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// glibc keeps memory freed at the top of the heap for reuse, up to a threshold that grows
/// with the largest buffer freed; with several connections' buffers coming and going, that
/// is megabytes of resident memory doing nothing. A fixed threshold hands it back. musl
/// and macOS have no such knob (and need none).
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter, before any other thread starts.
    unsafe {
        libc::mallopt(libc::M_TRIM_THRESHOLD, 128 * 1024);
    }
}

pub fn close_stdout() {
    use std::os::fd::AsRawFd;
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        // SAFETY: dup2 onto the stdout descriptor, whose buffered writer was flushed by the
        // caller; it only swaps which file descriptor 1 refers to.
        unsafe {
            libc::dup2(null.as_raw_fd(), libc::STDOUT_FILENO);
        }
    }
}

pub fn same_file(file: &File, path: &Path) -> bool {
    match (file.metadata(), std::fs::symlink_metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

pub fn replace(from: &Path, to: &Path) -> io::Result<()> {
    // rename(2) replaces the name atomically, a symlink at `to` included.
    std::fs::rename(from, to)
}

pub fn refuses_file_name(_name: &str) -> Option<&'static str> {
    None
}

#[cfg(test)]
pub fn symlink(target: &Path, link: &Path) -> io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}
