//! Files in a directory others may write to (the cache directory, the `-O` directory):
//! opened without following links and without blocking, trusted only when they are a plain
//! file this user owns with a single name, created only new and only by this process.
//!
//! Unix checks all of that with `O_NOFOLLOW | O_NONBLOCK` and `fstat`. Windows opens
//! without following reparse points and checks that the handle is a plain file; it cannot
//! check the owner or the link count with the standard library (NTFS ACLs decide who may
//! write there), so a hard link planted by a user who can write the directory is not
//! noticed.

use std::fs::{File, Metadata, OpenOptions};
use std::io;
use std::path::Path;

/// Why a file in the directory is not trusted.
#[derive(Debug, PartialEq, Eq)]
pub enum Distrust {
    /// Not a plain file: a link, a FIFO, a directory, a device or a socket.
    NotPlain,
    /// Another user owns it.
    Foreign,
    /// It has more than one name (a hard link): writing it writes another file too.
    Linked,
}

impl std::fmt::Display for Distrust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Distrust::NotPlain => "not a plain file",
            Distrust::Foreign => "owned by another user",
            Distrust::Linked => "it has other names (a hard link)",
        })
    }
}

/// What opening an existing file found.
pub enum Found {
    /// Nothing by that name.
    Nothing,
    /// A plain file of ours with a single name, open (for reading, and writing if asked).
    Trusted(File),
    /// Something else, left unopened or closed again.
    Distrusted(Distrust),
}

/// Opens the file `path` names, if it is one this process may trust (see [`Found`]): never
/// following a link, never waiting on a FIFO.
pub fn open(path: &Path, write: bool) -> io::Result<Found> {
    let mut options = OpenOptions::new();
    options.read(true).write(write);
    sys::no_follow(&mut options);
    match options.open(path) {
        Ok(file) => Ok(match check(&file)? {
            Ok(()) => Found::Trusted(file),
            Err(why) => Found::Distrusted(why),
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Found::Nothing),
        // A symlink (ELOOP), a FIFO without a writer (ENXIO), a directory opened for
        // writing: not something to trust, whatever the error says.
        Err(_) if std::fs::symlink_metadata(path).is_ok() => {
            Ok(Found::Distrusted(Distrust::NotPlain))
        }
        Err(e) => Err(e),
    }
}

/// Creates `path` new, readable and writable by this user only; fails if anything at all
/// is there (a link to follow included).
pub fn create_new(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true).write(true).create_new(true);
    sys::private(&mut options);
    options.open(path)
}

/// Whether the open `file` may be trusted: a plain file this user owns, with one name.
pub fn check(file: &File) -> io::Result<Result<(), Distrust>> {
    let meta = file.metadata()?;
    Ok(if !meta.file_type().is_file() {
        Err(Distrust::NotPlain)
    } else if !sys::ours(&meta) {
        Err(Distrust::Foreign)
    } else if sys::links(&meta) > 1 {
        Err(Distrust::Linked)
    } else {
        Ok(())
    })
}

/// Bytes the file holds on disk (not its length: a sparse file, or one whose time alone
/// changes, shows no progress here).
pub fn stored_bytes(meta: &Metadata) -> u64 {
    sys::stored_bytes(meta)
}

/// Makes `builder` create directories only this user may enter.
pub fn private_dirs(builder: &mut std::fs::DirBuilder) {
    sys::private_dirs(builder);
}

/// Whether stdout was closed when this process started: the Rust runtime then reopens the
/// descriptor on the null device (read-write, which no shell redirection does), and every
/// byte written there would be lost while the run reports success.
pub fn stdout_was_closed() -> bool {
    sys::stdout_was_closed()
}

/// Refuses a directory that other users may write to unless it has the sticky bit (then
/// they cannot rename or remove this user's files in it), saying why.
pub fn check_dir(dir: &Path) -> Result<(), String> {
    let meta = std::fs::metadata(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    if !meta.is_dir() {
        return Err(format!("{} is not a directory", dir.display()));
    }
    sys::dir_is_safe(&meta).map_err(|why| format!("{}: {why}", dir.display()))
}

#[cfg(unix)]
mod sys {
    use std::fs::{Metadata, OpenOptions};
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};

    pub fn no_follow(options: &mut OpenOptions) {
        options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    }

    pub fn private(options: &mut OpenOptions) {
        // O_CREAT | O_EXCL never follows a link either; O_NOFOLLOW says so twice.
        options.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    }

    pub fn ours(meta: &Metadata) -> bool {
        // SAFETY: geteuid has no preconditions and cannot fail.
        meta.uid() == unsafe { libc::geteuid() }
    }

    pub fn links(meta: &Metadata) -> u64 {
        meta.nlink()
    }

    pub fn stored_bytes(meta: &Metadata) -> u64 {
        meta.blocks().saturating_mul(512)
    }

    pub fn private_dirs(builder: &mut std::fs::DirBuilder) {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }

    pub fn stdout_was_closed() -> bool {
        use std::os::fd::AsFd;
        use std::os::unix::fs::FileTypeExt;
        let Ok(fd) = std::io::stdout().as_fd().try_clone_to_owned() else {
            return false;
        };
        let file = std::fs::File::from(fd);
        let (Ok(ours), Ok(null)) = (file.metadata(), std::fs::metadata("/dev/null")) else {
            return false;
        };
        if !ours.file_type().is_char_device() || ours.rdev() != null.rdev() {
            return false;
        }
        // SAFETY: F_GETFL on a descriptor this process owns only reads its flags.
        let flags = unsafe { libc::fcntl(libc::STDOUT_FILENO, libc::F_GETFL) };
        flags >= 0 && flags & libc::O_ACCMODE == libc::O_RDWR
    }

    pub fn dir_is_safe(meta: &Metadata) -> Result<(), String> {
        let mode = meta.mode();
        // Writable by group or others, without the sticky bit: anyone who can write it can
        // rename this user's files away and plant others.
        if mode & 0o022 != 0 && mode & 0o1000 == 0 {
            return Err(format!(
                "other users can write to it (mode {:o}) and it lacks the sticky bit; make it \
                 private (chmod 700) or sticky (chmod +t, like /tmp)",
                mode & 0o7777
            ));
        }
        Ok(())
    }
}

#[cfg(windows)]
mod sys {
    use std::fs::{Metadata, OpenOptions};
    use std::os::windows::fs::OpenOptionsExt;

    /// `FILE_FLAG_OPEN_REPARSE_POINT`: open a symlink or junction itself, not its target.
    const OPEN_REPARSE_POINT: u32 = 0x0020_0000;

    pub fn no_follow(options: &mut OpenOptions) {
        options.custom_flags(OPEN_REPARSE_POINT);
    }

    pub fn private(options: &mut OpenOptions) {
        // CREATE_NEW fails on any existing name, a reparse point included.
        options.custom_flags(OPEN_REPARSE_POINT);
    }

    pub fn ours(_meta: &Metadata) -> bool {
        // Who may write is a matter of the directory's ACL on Windows.
        true
    }

    pub fn links(_meta: &Metadata) -> u64 {
        // The link count needs an unstable std API on Windows; not checked there.
        1
    }

    pub fn stored_bytes(meta: &Metadata) -> u64 {
        meta.len()
    }

    pub fn private_dirs(_builder: &mut std::fs::DirBuilder) {}

    pub fn stdout_was_closed() -> bool {
        // Windows hands a process without stdout no handle at all: writes fail on their own.
        false
    }

    pub fn dir_is_safe(_meta: &Metadata) -> Result<(), String> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_single_files_of_ours_are_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("plain");
        std::fs::write(&plain, b"x").unwrap();
        assert!(matches!(open(&plain, true).unwrap(), Found::Trusted(_)));
        assert!(matches!(
            open(&dir.path().join("missing"), false).unwrap(),
            Found::Nothing
        ));
        #[cfg(unix)]
        {
            let link = dir.path().join("link");
            std::os::unix::fs::symlink(&plain, &link).unwrap();
            assert!(matches!(
                open(&link, true).unwrap(),
                Found::Distrusted(Distrust::NotPlain)
            ));
            let hard = dir.path().join("hard");
            std::fs::hard_link(&plain, &hard).unwrap();
            assert!(matches!(
                open(&hard, false).unwrap(),
                Found::Distrusted(Distrust::Linked)
            ));
            let fifo = dir.path().join("fifo");
            let status = std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap();
            assert!(status.success());
            // Neither blocks.
            assert!(matches!(
                open(&fifo, false).unwrap(),
                Found::Distrusted(Distrust::NotPlain)
            ));
            assert!(matches!(
                open(&fifo, true).unwrap(),
                Found::Distrusted(Distrust::NotPlain)
            ));
        }
        assert!(matches!(
            open(dir.path(), false).unwrap(),
            Found::Distrusted(Distrust::NotPlain)
        ));
        assert!(create_new(&plain).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn a_directory_others_may_write_needs_the_sticky_bit() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let set = |mode| {
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(mode)).unwrap()
        };
        set(0o700);
        assert!(check_dir(dir.path()).is_ok());
        set(0o777);
        assert!(check_dir(dir.path()).unwrap_err().contains("sticky"));
        set(0o1777);
        assert!(check_dir(dir.path()).is_ok());
        set(0o700);
    }
}
