//! Reading the small files a user points ptex at (the config file, netrc): only regular
//! files, and only so much of them, so a FIFO or a device named there cannot hang a run or
//! fill its memory.

use std::io::{self, Read};
use std::path::Path;

/// The most a config or netrc file may hold.
pub const MAX_LEN: u64 = 1 << 20;

/// The bytes of `path`, if it is a regular file (a symlink to one is fine) of at most
/// [`MAX_LEN`] bytes.
pub fn read(path: &Path) -> io::Result<Vec<u8>> {
    regular(path)?;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_LEN + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_LEN {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("larger than {MAX_LEN} bytes"),
        ));
    }
    Ok(bytes)
}

/// Fails unless `path` names a regular file.
pub fn regular(path: &Path) -> io::Result<()> {
    if std::fs::metadata(path)?.is_file() {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_small_regular_files_are_read() {
        let dir = std::env::temp_dir().join(format!("ptex-local-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let small = dir.join("small");
        std::fs::write(&small, b"machine a").unwrap();
        assert_eq!(read(&small).unwrap(), b"machine a");
        assert!(read(&dir).is_err());
        let big = dir.join("big");
        std::fs::File::create(&big)
            .unwrap()
            .set_len(MAX_LEN + 1)
            .unwrap();
        assert!(read(&big).is_err());
        // Where there is no `mkfifo` (Windows), there are no FIFOs to refuse either.
        let fifo = dir.join("fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if made.is_ok_and(|s| s.success()) {
            // Refused without opening it (which would block).
            assert!(read(&fifo).is_err());
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
