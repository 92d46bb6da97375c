//! Spool files: where bytes wait until they are verified. A spool file is either private
//! (created new, named after the process) or shared by every run that wants the same
//! sha256 (`<sha256>.ptex-part`, locked while in use, so a run killed mid-way can be
//! resumed by the next). Either is removed when dropped, and becomes visible under a final
//! name only by an atomic rename after verification.

use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::os;

/// The end of every spool file name.
const SUFFIX: &str = ".ptex-part";

/// A temporary file being filled; deleted on drop unless persisted.
pub struct Spool {
    path: PathBuf,
    /// Unbuffered: whoever writes gathers the bytes first, and reads them back to hash them.
    file: Option<File>,
    /// Where the next appended byte goes. Writes name their offset: on Windows, reading
    /// back at an offset (to hash) moves the cursor that every clone of the handle shares.
    end: u64,
    /// For a shared spool: where the source and validator of its bytes are noted.
    note: Option<PathBuf>,
}

/// What a shared spool file left by an earlier run holds: its length, and the source and
/// validator its bytes came from (as noted by [`Spool::note`]).
pub struct Leftover {
    pub len: u64,
    pub source_key: String,
    pub validator: String,
}

impl Spool {
    /// Creates a new, empty spool file in `dir` (created if missing), named after `hint`.
    pub fn create(dir: &Path, hint: &str) -> io::Result<Spool> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        std::fs::create_dir_all(dir)?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!(
            ".{}.{}-{}-{}{SUFFIX}",
            sanitize(hint),
            std::process::id(),
            nanos,
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let path = dir.join(name);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)?;
        Ok(Spool {
            path,
            file: Some(file),
            end: 0,
            note: None,
        })
    }

    /// The spool shared by every run fetching the file whose sha256 is `sha256`, locked for
    /// this process. `Ok(None)` when another live process holds it (the caller then spools
    /// privately: correctness never waits on a lock). What an earlier, killed run left in it
    /// is described by the returned [`Leftover`], if it noted where its bytes came from;
    /// otherwise the file is emptied.
    pub fn claim(dir: &Path, sha256: &str) -> io::Result<Option<(Spool, Option<Leftover>)>> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(format!("{sha256}{SUFFIX}"));
        let note = dir.join(format!("{sha256}.ptex-note"));
        // Never write through whatever else sits at the path: a symlink is removed, anything
        // that is not a plain file (a directory) makes this run spool privately.
        if let Ok(meta) = std::fs::symlink_metadata(&path) {
            if meta.file_type().is_symlink() {
                std::fs::remove_file(&path)?;
            } else if !meta.is_file() {
                return Ok(None);
            }
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Ok(None),
            Err(std::fs::TryLockError::Error(e)) => return Err(e),
        }
        // The holder before us may have removed the file after we opened it: the lock must
        // be on the file the path names now, or two runs could share one path.
        if !os::same_file(&file, &path) {
            return Ok(None);
        }
        let len = file.metadata()?.len();
        let leftover = std::fs::read_to_string(&note).ok().and_then(|text| {
            let mut lines = text.lines();
            let source_key = lines.next()?.to_string();
            let validator = lines.next()?.to_string();
            // Concurrent parts leave bytes past the first gap: only those before it count.
            let good = match lines.next() {
                Some(good) => good.parse::<u64>().ok()?.min(len),
                None => len,
            };
            Some(Leftover {
                len: good,
                source_key,
                validator,
            })
        });
        let keep = leftover.as_ref().map_or(0, |l| l.len);
        if keep < len {
            file.set_len(keep)?;
        }
        let spool = Spool {
            path,
            file: Some(file),
            end: keep,
            note: Some(note),
        };
        Ok(Some((spool, leftover.filter(|l| l.len > 0))))
    }

    /// For a shared spool: notes which source (by key) and which validator its bytes come
    /// from, so a later run can continue them; and, while concurrent parts fill the file out
    /// of order, how many of its first bytes are all there (`good`). Private spools ignore
    /// it.
    pub fn note(&self, source_key: &str, validator: &str, good: Option<u64>) -> io::Result<()> {
        let Some(note) = &self.note else {
            return Ok(());
        };
        let temp = note.with_extension(format!("ptex-note.{}", std::process::id()));
        let good = good.map(|n| format!("{n}\n")).unwrap_or_default();
        std::fs::write(&temp, format!("{source_key}\n{validator}\n{good}"))?;
        os::replace(&temp, note)
    }

    /// A handle on the file for reading (to hash what was written) and writing at offsets
    /// (concurrent parts).
    pub fn handle(&mut self) -> io::Result<Arc<File>> {
        Ok(Arc::new(self.file_mut()?.try_clone()?))
    }

    /// Cuts the file to its first `len` bytes, the only ones known good, and appends after
    /// them from now on (concurrent parts may have left bytes further on).
    pub fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.file_mut()?.set_len(len)?;
        self.end = len;
        Ok(())
    }

    /// Whether this is a shared spool (see [`Spool::claim`]).
    pub fn is_shared(&self) -> bool {
        self.note.is_some()
    }

    /// The spool file's path, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends bytes (straight to the file: a run killed later leaves them behind for the
    /// next run to continue).
    pub fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        let end = self.end;
        os::write_all_at(self.file_mut()?, bytes, end)?;
        self.end += bytes.len() as u64;
        Ok(())
    }

    /// Empties the file, to be filled again from the start.
    pub fn reset(&mut self) -> io::Result<()> {
        if let Some(note) = &self.note {
            let _ = std::fs::remove_file(note);
        }
        self.file_mut()?.set_len(0)?;
        self.end = 0;
        Ok(())
    }

    /// Rewinds the file for reading it back from the start.
    pub fn reader(&mut self) -> io::Result<&mut File> {
        let file = self.file_mut()?;
        file.seek(SeekFrom::Start(0))?;
        Ok(file)
    }

    /// Lets other runs have the verified bytes of a shared spool before they are handed on
    /// (which may be slow: stdout is a pipe): the file leaves the directory and its lock is
    /// released, so runs waiting for it read it through their own handles. The bytes stay
    /// readable here. Private spools are left as they are.
    pub fn release(&mut self) -> io::Result<()> {
        let Some(note) = self.note.take() else {
            return Ok(());
        };
        let _ = std::fs::remove_file(note);
        std::fs::remove_file(&self.path)?;
        self.path = PathBuf::new();
        self.file_mut()?.unlock()
    }

    /// Syncs the file to disk and renames it to `target`, replacing whatever was there
    /// (a symlink is replaced, never written through).
    pub fn persist(mut self, target: &Path) -> io::Result<()> {
        if self.path.as_os_str().is_empty() {
            // Another run's bytes (see [`Watch::into_spool`]): copied, not taken.
            let dir = target.parent().filter(|d| !d.as_os_str().is_empty());
            let name = target.file_name().unwrap_or_default().to_string_lossy();
            let mut copy = Spool::create(dir.unwrap_or(Path::new(".")), &name)?;
            io::copy(self.reader()?, copy.file_mut()?)?;
            return copy.persist(target);
        }
        let file = self
            .file
            .take()
            .ok_or_else(|| io::Error::other("spool file already closed"))?;
        file.sync_all()?;
        drop(file);
        match os::replace(&self.path, target) {
            Ok(()) => {
                // Nothing left to clean up.
                self.path = PathBuf::new();
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    fn file_mut(&mut self) -> io::Result<&mut File> {
        self.file
            .as_mut()
            .ok_or_else(|| io::Error::other("spool file already closed"))
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        // Removed while still locked (the handle closes after), so no other run picks up
        // a file that is going away.
        if let Some(note) = &self.note {
            let _ = std::fs::remove_file(note);
        }
        if !self.path.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Another run's shared spool file, watched until that run lets go of it: then, if the run
/// got the whole file, its bytes can serve this run too (after verifying them again).
pub struct Watch {
    file: File,
}

impl Watch {
    /// Opens the shared spool for the file whose sha256 is `sha256` for reading, if it is
    /// there (a plain file, not a symlink).
    pub fn open(dir: &Path, sha256: &str) -> Option<Watch> {
        let path = dir.join(format!("{sha256}{SUFFIX}"));
        if !std::fs::symlink_metadata(&path).ok()?.is_file() {
            return None;
        }
        let file = File::open(&path).ok()?;
        Some(Watch { file })
    }

    /// Whether the run that held the file let go of it (it finished, failed or died).
    pub fn released(&self) -> bool {
        let free = self.file.try_lock_shared().is_ok();
        if free {
            let _ = self.file.unlock();
        }
        free
    }

    /// What changes while the holder makes progress: the file's length and modification
    /// time (concurrent parts fill it without growing it).
    pub fn progress(&self) -> Option<(u64, std::time::SystemTime)> {
        let meta = self.file.metadata().ok()?;
        Some((meta.len(), meta.modified().ok()?))
    }

    /// The file's bytes as a spool to read (they may already be gone from the directory,
    /// or saved under another run's `-O` name: never removed, never renamed).
    pub fn into_spool(self) -> Spool {
        Spool {
            path: PathBuf::new(),
            end: self.file.metadata().map_or(0, |m| m.len()),
            file: Some(self.file),
            note: None,
        }
    }
}

/// Removes spool files in `dir` left by ptex processes that no longer run (killed mid-way).
/// A spool file names its process (`.<name>.<pid>-<nanos>-<n>.ptex-part`); files of live processes,
/// and anything else, are left alone, as is everything where the system cannot tell
/// whether a process lives.
pub fn remove_stale(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(owner_pid) else {
            continue;
        };
        if pid != std::process::id() && os::process_alive(pid) == Some(false) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// The pid in a spool file name `.<hint>.<pid>-<nanos>-<n>.ptex-part`.
fn owner_pid(name: &str) -> Option<u32> {
    let stem = name.strip_prefix('.')?.strip_suffix(SUFFIX)?;
    let (_, tail) = stem.rsplit_once('.')?;
    tail.split('-').next()?.parse().ok()
}

/// A file name fit for `-O`: a single, non-empty path component that is not `.` or `..`.
pub fn safe_file_name(name: &str) -> Result<&str, String> {
    let refused = |why: &str| Err(format!("cannot use {name:?} as a file name: {why}"));
    if name.is_empty() {
        return refused("it is empty");
    }
    if name == "." || name == ".." {
        return refused("it names a directory");
    }
    if name.contains(['/', '\\', '\0']) {
        return refused("it contains a path separator");
    }
    if let Some(why) = os::refuses_file_name(name) {
        return refused(why);
    }
    Ok(name)
}

/// `hint` reduced to characters that are safe in a file name, at most 64 of them.
fn sanitize(hint: &str) -> String {
    let clean: String = hint
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '+'))
        .take(64)
        .collect();
    if clean.trim_matches('.').is_empty() {
        "download".to_string()
    } else {
        clean
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn spool_is_removed_unless_persisted() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::create(dir.path(), "../../etc/passwd").unwrap();
        assert_eq!(spool.path().parent(), Some(dir.path()));
        spool.write(b"abc").unwrap();
        let mut back = String::new();
        spool.reader().unwrap().read_to_string(&mut back).unwrap();
        assert_eq!(back, "abc");
        drop(spool);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);

        let mut spool = Spool::create(dir.path(), "x").unwrap();
        spool.write(b"def").unwrap();
        let target = dir.path().join("out");
        spool.persist(&target).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"def");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn stale_spool_files_of_dead_processes_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let ours = Spool::create(dir.path(), "mine.tgz").unwrap();
        // pid 0x7ffffffe is above Linux's pid_max: never alive.
        let dead = dir.path().join(".x.tgz.2147483646-1-0.ptex-part");
        let other = dir.path().join("unrelated.2147483646-1-0.ptex-part.txt");
        std::fs::write(&dead, b"partial").unwrap();
        std::fs::write(&other, b"keep").unwrap();
        remove_stale(dir.path());
        assert!(!dead.exists());
        assert!(other.exists() && ours.path().exists());
        assert_eq!(owner_pid(".a.b.tgz.42-7-0.ptex-part"), Some(42));
    }

    #[test]
    fn shared_spool_is_locked_and_keeps_noted_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let sha = "ab".repeat(32);
        let (mut first, leftover) = Spool::claim(dir.path(), &sha).unwrap().unwrap();
        assert!(leftover.is_none());
        assert!(
            Spool::claim(dir.path(), &sha).unwrap().is_none(),
            "the lock is held"
        );
        first.write(b"hello").unwrap();
        first.note("key", "\"v1\"", None).unwrap();
        // Simulate a killed run: the handle closes, the files stay.
        first.path = PathBuf::new();
        first.note = None;
        drop(first);
        let (mut second, leftover) = Spool::claim(dir.path(), &sha).unwrap().unwrap();
        let leftover = leftover.unwrap();
        assert_eq!((leftover.len, leftover.source_key.as_str()), (5, "key"));
        second.write(b" world").unwrap();
        let mut all = String::new();
        std::io::Read::read_to_string(second.reader().unwrap(), &mut all).unwrap();
        assert_eq!(all, "hello world");
        drop(second);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn shared_spool_keeps_only_the_bytes_before_the_first_gap() {
        let dir = tempfile::tempdir().unwrap();
        let sha = "ef".repeat(32);
        let (mut first, _) = Spool::claim(dir.path(), &sha).unwrap().unwrap();
        first.write(b"hello, parts").unwrap();
        first.note("key", "\"v1\"", Some(5)).unwrap();
        first.path = PathBuf::new();
        first.note = None;
        drop(first);
        let (mut second, leftover) = Spool::claim(dir.path(), &sha).unwrap().unwrap();
        assert_eq!(leftover.unwrap().len, 5);
        let mut all = String::new();
        std::io::Read::read_to_string(second.reader().unwrap(), &mut all).unwrap();
        assert_eq!(all, "hello");
    }

    #[test]
    fn a_watched_spool_is_released_when_its_holder_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let sha = "01".repeat(32);
        let (mut holder, _) = Spool::claim(dir.path(), &sha).unwrap().unwrap();
        let watch = Watch::open(dir.path(), &sha).unwrap();
        assert!(!watch.released());
        holder.write(b"whole file").unwrap();
        assert_eq!(watch.progress().unwrap().0, 10);
        drop(holder);
        assert!(watch.released());
        // The holder removed the file; the watcher still reads its bytes.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        let mut spool = watch.into_spool();
        let mut all = String::new();
        std::io::Read::read_to_string(spool.reader().unwrap(), &mut all).unwrap();
        assert_eq!(all, "whole file");
        let target = dir.path().join("saved");
        spool.persist(&target).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"whole file");
    }

    #[test]
    #[cfg(unix)] // Symlinks need privileges on Windows.
    fn shared_spool_never_writes_through_a_symlink_or_into_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        let sha = "cd".repeat(32);
        let target = dir.path().join("precious");
        std::fs::write(&target, b"keep").unwrap();
        let link = dir.path().join(format!("{sha}{SUFFIX}"));
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let (mut spool, leftover) = Spool::claim(dir.path(), &sha).unwrap().unwrap();
        assert!(leftover.is_none());
        spool.write(b"new").unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"keep");
        assert!(!link.symlink_metadata().unwrap().file_type().is_symlink());
        drop(spool);

        std::fs::create_dir(&link).unwrap();
        assert!(Spool::claim(dir.path(), &sha).unwrap().is_none());
    }

    #[test]
    fn safe_names() {
        assert!(safe_file_name("a.tar.gz").is_ok());
        for bad in ["", ".", "..", "a/b", "../x", "a\\b", "/"] {
            assert!(safe_file_name(bad).is_err(), "{bad:?}");
        }
    }
}
