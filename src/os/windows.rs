//! The Windows side of [`crate::os`]: `seek_read`/`seek_write`, `GetDiskFreeSpaceExW`,
//! `OpenProcess`, file indexes from `GetFileInformationByHandle`, and Windows' rules for
//! file names.

use std::fs::File;
use std::io;
use std::os::windows::ffi::OsStrExt;
use std::os::windows::fs::{FileExt, OpenOptionsExt};
use std::os::windows::io::AsRawHandle;
use std::path::Path;
use std::time::Duration;

use windows_sys::Win32::Foundation::{CloseHandle, INVALID_HANDLE_VALUE};
use windows_sys::Win32::Storage::FileSystem::{
    BY_HANDLE_FILE_INFORMATION, FILE_FLAG_BACKUP_SEMANTICS, FILE_FLAG_OPEN_REPARSE_POINT,
    GetDiskFreeSpaceExW, GetFileInformationByHandle,
};
use windows_sys::Win32::System::Console::{GetStdHandle, STD_OUTPUT_HANDLE, SetStdHandle};

// `seek_read` and `seek_write` move the cursor of the file object (shared by every handle
// `try_clone` made): spools therefore write only at explicit offsets.
pub fn read_exact_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
    while !buf.is_empty() {
        match file.seek_read(buf, offset) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

pub fn write_all_at(file: &File, mut buf: &[u8], mut offset: u64) -> io::Result<()> {
    while !buf.is_empty() {
        match file.seek_write(buf, offset) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                buf = &buf[n..];
                offset += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn wide(path: &Path) -> Vec<u16> {
    path.as_os_str().encode_wide().chain(Some(0)).collect()
}

pub fn available_bytes(dir: &Path) -> Option<u64> {
    let path = wide(dir);
    let (mut available, mut total) = (0u64, 0u64);
    // SAFETY: `path` is NUL-terminated; the out-pointers are ours and live across the call.
    let ok = unsafe {
        GetDiskFreeSpaceExW(
            path.as_ptr(),
            &mut available,
            &mut total,
            std::ptr::null_mut(),
        )
    };
    (ok != 0 && total != 0).then_some(available)
}

pub fn check_writable(_dir: &Path) -> io::Result<()> {
    // Windows ignores the read-only attribute of directories and decides by ACLs, which only
    // an attempt tells: the spool write reports a refusal.
    Ok(())
}

pub fn tune_allocator() {
    // The Windows heap has no trim threshold to set.
}

pub fn close_stdout() {
    use std::os::windows::io::IntoRawHandle;
    let Ok(null) = std::fs::OpenOptions::new().write(true).open("NUL") else {
        return;
    };
    // SAFETY: the standard output handle is swapped for one on NUL that this process owns
    // from now on; the old one is closed once, after the swap, so the reader sees its end.
    // std looks the handle up on every write, so later writes go to NUL.
    unsafe {
        let old = GetStdHandle(STD_OUTPUT_HANDLE);
        if SetStdHandle(STD_OUTPUT_HANDLE, null.into_raw_handle()) != 0
            && !old.is_null()
            && old != INVALID_HANDLE_VALUE
        {
            CloseHandle(old);
        }
    }
}

/// Volume serial number and file index: what tells two handles on one file apart from
/// handles on two files.
fn identity(file: &File) -> Option<(u32, u32, u32)> {
    // SAFETY: zeroed is a valid BY_HANDLE_FILE_INFORMATION (plain integers).
    let mut info: BY_HANDLE_FILE_INFORMATION = unsafe { std::mem::zeroed() };
    // SAFETY: the handle is open for the call's duration; `info` is ours.
    let ok = unsafe { GetFileInformationByHandle(file.as_raw_handle() as _, &mut info) };
    (ok != 0).then_some((
        info.dwVolumeSerialNumber,
        info.nFileIndexHigh,
        info.nFileIndexLow,
    ))
}

pub fn same_file(file: &File, path: &Path) -> bool {
    // The link itself, not its target; BACKUP_SEMANTICS lets a directory open too.
    let Ok(named) = File::options()
        .access_mode(0)
        .custom_flags(FILE_FLAG_OPEN_REPARSE_POINT | FILE_FLAG_BACKUP_SEMANTICS)
        .open(path)
    else {
        return false;
    };
    match (identity(file), identity(&named)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

pub fn replace(from: &Path, to: &Path) -> io::Result<()> {
    // A virus scanner or indexer may hold `to` open for a moment: Windows then refuses the
    // rename with "access denied". Retry briefly, as cargo and rustup do.
    let mut delay = Duration::from_millis(10);
    loop {
        match std::fs::rename(from, to) {
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied && delay.as_secs() < 1 => {
                std::thread::sleep(delay);
                delay *= 2;
            }
            other => return other,
        }
    }
}

pub fn refuses_file_name(name: &str) -> Option<&'static str> {
    if name.contains(':') {
        return Some("a ':' names an alternate data stream on Windows");
    }
    if name.contains(['<', '>', '"', '|', '?', '*']) || name.chars().any(char::is_control) {
        return Some("it contains a character Windows does not allow in file names");
    }
    if name.ends_with(['.', ' ']) {
        return Some("Windows drops a trailing dot or space");
    }
    let stem = name.split('.').next().unwrap_or(name).trim_end();
    let reserved = ["CON", "PRN", "AUX", "NUL"]
        .iter()
        .any(|device| stem.eq_ignore_ascii_case(device))
        || (stem.len() == 4
            && stem.as_bytes()[3].is_ascii_digit()
            && stem
                .get(..3)
                .is_some_and(|head| ["COM", "LPT"].iter().any(|d| head.eq_ignore_ascii_case(d))));
    reserved.then_some("it names a device on Windows")
}

#[cfg(test)]
pub fn symlink(target: &Path, link: &Path) -> io::Result<()> {
    std::os::windows::fs::symlink_file(target, link)
}
