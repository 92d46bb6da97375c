//! Spool files: where bytes wait until they are verified. Every spool file is created new
//! by this process under a random name, readable and writable by this user only, and locked
//! while in use; nothing found in the directory is written through or read without a
//! bound (see [`crate::os::untrusted`]). A spool file is either private or shared by every
//! run that wants the same sha256 (`<sha256>.ptex-part`, so a run killed mid-way can be
//! resumed by the next, which copies the spans its note vouches for into a file of its
//! own). Either is removed when dropped, and becomes visible under a final name only by an
//! atomic rename after verification.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::os::{
    self,
    untrusted::{self, Found},
};

/// The end of every spool file name.
const SUFFIX: &str = ".ptex-part";
/// The end of a shared spool's note, and of the temporary name a note is written under.
const NOTE: &str = ".ptex-note";
const NOTE_TEMP: &str = ".ptex-note-new";
/// Where something untrusted found at a spool name is moved when it cannot be removed (a
/// directory).
const ASIDE: &str = ".ptex-aside";
/// The first line of a note: its format.
const NOTE_FORMAT: &str = "ptex-note 2";
/// A note is read no further than this (a real one is a few hundred bytes).
const NOTE_MAX: u64 = 16 * 1024;
/// Spans a note lists at most; bytes past them are fetched again.
const NOTE_SPANS: usize = 256;

/// Byte ranges `start..end` of a file, in order, not overlapping.
pub type Spans = Vec<(u64, u64)>;

/// A temporary file being filled; deleted on drop unless persisted.
pub struct Spool {
    path: PathBuf,
    /// Whether the file at `path` is this spool's, to remove when dropped.
    name: Name,
    /// Unbuffered: whoever writes gathers the bytes first, and reads them back to hash them.
    file: Option<File>,
    /// Where the next appended byte goes. Writes name their offset: on Windows, reading
    /// back at an offset (to hash) moves the cursor that every clone of the handle shares.
    end: u64,
    /// For a shared spool: where the source, validator and spans of its bytes are noted.
    note: Option<PathBuf>,
}

/// Whether a spool's name in the directory is its own.
#[derive(Clone, Copy, PartialEq)]
enum Name {
    /// The spool file is at its path, and removed with the spool.
    Ours,
    /// Nothing at its path is the spool's any more: the file left the directory (released
    /// to waiting runs) or went to its target (persisted).
    Gone,
}

/// What a shared spool file left by an earlier run holds, as its note vouches (see
/// [`Spool::note`]), now copied into this run's own file.
#[derive(Debug, Clone, PartialEq)]
pub struct Leftover {
    pub source_key: String,
    pub validator: String,
    /// The file's size, as its source declared it.
    pub total: Option<u64>,
    /// The byte ranges on disk.
    pub spans: Spans,
}

impl Leftover {
    /// How many of the file's first bytes are all there.
    pub fn prefix(&self) -> u64 {
        match self.spans.first() {
            Some(&(0, end)) => end,
            _ => 0,
        }
    }
}

/// What claiming the shared spool gave.
pub struct Claimed {
    pub spool: Spool,
    pub leftover: Option<Leftover>,
}

impl Spool {
    /// Creates a new, empty, private spool file in `dir` (created if missing), named after
    /// `hint`.
    pub fn create(dir: &Path, hint: &str) -> io::Result<Spool> {
        std::fs::create_dir_all(dir)?;
        let (path, file) = create_locked(dir, &format!(".{}", sanitize(hint)), SUFFIX)?;
        Ok(Spool {
            path,
            name: Name::Ours,
            file: Some(file),
            end: 0,
            note: None,
        })
    }

    /// The spool shared by every run fetching the file whose sha256 is `sha256`, locked for
    /// this process. `Ok(None)` when another live process holds it, or something this
    /// process cannot set aside sits at its name (the caller then spools privately:
    /// correctness never waits on a lock). Bytes an earlier, killed run left there are
    /// copied into this run's own file, as far as their note vouches for them, never past
    /// `limit` (the expected size) nor past the size the note records; they are described by
    /// the returned [`Leftover`]. Whatever is set aside is described in `notices`.
    pub fn claim(
        dir: &Path,
        sha256: &str,
        limit: Option<u64>,
        notices: &mut Vec<String>,
    ) -> io::Result<Option<Claimed>> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(format!("{sha256}{SUFFIX}"));
        let note = dir.join(format!("{sha256}{NOTE}"));
        let old = match untrusted::open(&path, false)? {
            Found::Nothing => None,
            Found::Trusted(file) => Some(file),
            Found::Distrusted(why) => {
                if !set_aside(dir, &path, &why.to_string(), notices) {
                    return Ok(None);
                }
                None
            }
        };
        let (temp, mut file) = create_locked(dir, &format!(".{sha256}"), SUFFIX)?;
        let mut spool = Spool {
            path: temp,
            name: Name::Ours,
            file: None,
            end: 0,
            note: None,
        };
        let leftover = match old {
            Some(mut old) => {
                match old.try_lock() {
                    Ok(()) => {}
                    Err(std::fs::TryLockError::WouldBlock) => return Ok(None),
                    Err(std::fs::TryLockError::Error(e)) => return Err(e),
                }
                // The holder before us may have removed the file after we opened it: the
                // lock must be on the file the path names now.
                if !os::same_file(&old, &path) {
                    return Ok(None);
                }
                let leftover = read_note(dir, &note, notices)
                    .and_then(|found| copy_spans(&mut old, &mut file, found, limit));
                // Replaces the old file while its lock is held: a run that opened it and
                // locks it later finds it is no longer the file at `path`.
                os::replace(&spool.path, &path)?;
                leftover
            }
            None => {
                // Never replaces what another run just created there.
                match std::fs::hard_link(&spool.path, &path) {
                    Ok(()) => std::fs::remove_file(&spool.path)?,
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(None),
                    Err(_) => os::replace(&spool.path, &path)?,
                }
                // A note without its file vouches for nothing; read only to set aside
                // whatever is planted there.
                let _ = read_note(dir, &note, notices);
                None
            }
        };
        spool.path = path;
        spool.note = Some(note);
        spool.file = Some(file);
        match &leftover {
            Some(left) => {
                let _ = spool.note(&left.source_key, &left.validator, left.total, &left.spans);
            }
            None => {
                if let Some(note) = &spool.note {
                    let _ = std::fs::remove_file(note);
                }
            }
        }
        spool.end = leftover.as_ref().map_or(0, Leftover::prefix);
        Ok(Some(Claimed { spool, leftover }))
    }

    /// For a shared spool: notes which source (by key) and which validator its bytes come
    /// from, the file's size if known, and which `spans` of it are on disk, so a later run
    /// can continue exactly those. Written under a new random name, then renamed into place.
    /// Private spools ignore it.
    pub fn note(
        &self,
        source_key: &str,
        validator: &str,
        total: Option<u64>,
        spans: &[(u64, u64)],
    ) -> io::Result<()> {
        let Some(note) = &self.note else {
            return Ok(());
        };
        let dir = note.parent().unwrap_or(Path::new("."));
        let stem = note
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(NOTE))
            .unwrap_or("note");
        let total = total.map_or("-".to_string(), |t| t.to_string());
        let spans: Vec<String> = spans
            .iter()
            .filter(|(start, end)| start < end)
            .take(NOTE_SPANS)
            .map(|(start, end)| format!("{start}-{end}"))
            .collect();
        let text = format!(
            "{NOTE_FORMAT}\n{source_key}\n{validator}\n{total}\n{}\n",
            spans.join(",")
        );
        let (temp, mut file) = create_locked(dir, &format!(".{stem}"), NOTE_TEMP)?;
        let written = file
            .write_all(text.as_bytes())
            .and_then(|()| os::replace(&temp, note));
        if written.is_err() {
            let _ = std::fs::remove_file(&temp);
        }
        written
    }

    /// A handle on the file for reading (to hash what was written) and writing at offsets
    /// (concurrent parts).
    pub fn handle(&mut self) -> io::Result<Arc<File>> {
        Ok(Arc::new(self.file_mut()?.try_clone()?))
    }

    /// Appends after the file's first `len` bytes from now on (concurrent parts may have
    /// left bytes further on, which stay).
    pub fn seek(&mut self, len: u64) -> io::Result<()> {
        self.file_mut()?;
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

    /// The file's first `size` bytes (the verified ones), to read from the start: exactly
    /// those, whatever else the file may hold.
    pub fn verified(&mut self, size: u64) -> io::Result<io::Take<&mut File>> {
        let file = self.file_mut()?;
        file.seek(SeekFrom::Start(0))?;
        Ok(file.take(size))
    }

    /// Lets other runs have the verified bytes of a shared spool before they are handed on
    /// (which may be slow: stdout is a pipe): the file leaves the directory and its lock is
    /// released, so runs waiting for it copy it through their own handles. The bytes stay
    /// readable here. Private spools are left as they are.
    pub fn release(&mut self) -> io::Result<()> {
        let Some(note) = self.note.take() else {
            return Ok(());
        };
        let _ = std::fs::remove_file(note);
        std::fs::remove_file(&self.path)?;
        self.name = Name::Gone;
        self.file_mut()?.unlock()
    }

    /// Syncs the file to disk and renames it to `target`, replacing whatever was there
    /// (a symlink is replaced, never written through).
    pub fn persist(mut self, target: &Path) -> io::Result<()> {
        let file = self
            .file
            .take()
            .ok_or_else(|| io::Error::other("spool file already closed"))?;
        file.sync_all()?;
        drop(file);
        os::replace(&self.path, target)?;
        // Nothing left to clean up.
        self.name = Name::Gone;
        Ok(())
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
        if self.name == Name::Ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Another run's shared spool file, watched until that run lets go of it: then, if the run
/// got the whole file, its bytes are copied into a spool of this run's own, to verify
/// there and use.
pub struct Watch {
    file: File,
}

impl Watch {
    /// Opens the shared spool for the file whose sha256 is `sha256` for reading, if it is
    /// there and trusted (a plain file of this user's, with one name).
    pub fn open(dir: &Path, sha256: &str) -> Option<Watch> {
        let path = dir.join(format!("{sha256}{SUFFIX}"));
        match untrusted::open(&path, false).ok()? {
            Found::Trusted(file) => Some(Watch { file }),
            _ => None,
        }
    }

    /// Whether the run that held the file let go of it (it finished, failed or died).
    pub fn released(&self) -> bool {
        let free = self.file.try_lock_shared().is_ok();
        if free {
            let _ = self.file.unlock();
        }
        free
    }

    /// The file's length and the bytes it holds on disk: the holder makes progress when the
    /// latter grow (a file whose time alone changes, or that is only extended, does not).
    pub fn progress(&self) -> Option<(u64, u64)> {
        let meta = self.file.metadata().ok()?;
        Some((meta.len(), untrusted::stored_bytes(&meta)))
    }

    /// Copies the file's first `len` bytes into a new private spool in `dir`: what is
    /// verified and used is that copy, which no one else can write.
    pub fn copy(mut self, dir: &Path, hint: &str, len: u64) -> io::Result<Spool> {
        let mut spool = Spool::create(dir, hint)?;
        self.file.seek(SeekFrom::Start(0))?;
        let copied = io::copy(&mut (&mut self.file).take(len), spool.file_mut()?)?;
        if copied != len {
            return Err(io::Error::other(
                "the other run's file is shorter than it was",
            ));
        }
        spool.end = len;
        Ok(spool)
    }
}

/// Creates `<prefix>.<random><suffix>` new in `dir` and locks it: a name no other process
/// can predict and plant, and a lock that tells every other run the file is in use (see
/// [`remove_stale`]). Tries again under another name if the file was removed before the
/// lock was taken.
fn create_locked(dir: &Path, prefix: &str, suffix: &str) -> io::Result<(PathBuf, File)> {
    let mut last = None;
    for _ in 0..4 {
        let path = dir.join(format!("{prefix}.{:016x}{suffix}", random_u64()));
        let file = untrusted::create_new(&path)?;
        if file.try_lock().is_ok() && os::same_file(&file, &path) {
            return Ok((path, file));
        }
        last = Some(path);
    }
    Err(io::Error::other(format!(
        "cannot create and lock a file such as {}",
        last.unwrap_or_default().display()
    )))
}

/// Moves what sits at `path` (a link, a FIFO, a directory, a hard link, another user's
/// file) out of the way: removes the name, or for a directory renames it to a random name.
/// Whether the name is free now.
fn set_aside(dir: &Path, path: &Path, why: &str, notices: &mut Vec<String>) -> bool {
    let is_dir = std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir());
    let done = match is_dir {
        true => {
            let aside = dir.join(format!(".{:016x}{ASIDE}", random_u64()));
            std::fs::rename(path, aside)
        }
        false => std::fs::remove_file(path),
    };
    match done {
        Ok(()) => notices.push(format!("set aside {} ({why})", path.display())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => {
            notices.push(format!(
                "cannot set aside {} ({why}): {e}; not using it",
                path.display()
            ));
            return false;
        }
    }
    true
}

/// The note at `path`, if it is a trusted file, no larger than a note can be, in the
/// current format; anything else found there is set aside.
fn read_note(dir: &Path, path: &Path, notices: &mut Vec<String>) -> Option<Leftover> {
    let mut file = match untrusted::open(path, false).ok()? {
        Found::Trusted(file) => file,
        Found::Nothing => return None,
        Found::Distrusted(why) => {
            set_aside(dir, path, &why.to_string(), notices);
            return None;
        }
    };
    let mut text = String::new();
    (&mut file)
        .take(NOTE_MAX + 1)
        .read_to_string(&mut text)
        .ok()?;
    if text.len() as u64 > NOTE_MAX {
        set_aside(dir, path, "larger than a note", notices);
        return None;
    }
    parse_note(&text)
}

fn parse_note(text: &str) -> Option<Leftover> {
    let mut lines = text.lines();
    if lines.next()? != NOTE_FORMAT {
        return None;
    }
    let source_key = lines.next()?.to_string();
    let validator = lines.next()?.to_string();
    let total = match lines.next()? {
        "-" => None,
        n => Some(n.parse().ok()?),
    };
    let mut spans = Spans::new();
    for span in lines.next()?.split(',').filter(|s| !s.is_empty()) {
        let (start, end) = span.split_once('-')?;
        let (start, end): (u64, u64) = (start.parse().ok()?, end.parse().ok()?);
        // In order, not overlapping, not empty.
        if start >= end || spans.last().is_some_and(|&(_, last)| start < last) {
            return None;
        }
        spans.push((start, end));
    }
    Some(Leftover {
        source_key,
        validator,
        total,
        spans,
    })
}

/// Copies the spans `found` vouches for from `old` into `new`, at the same offsets, cut
/// at `old`'s length and at the file's size (`limit`, else the size the note records; with
/// neither, nothing is kept). What was copied, if anything.
fn copy_spans(
    old: &mut File,
    new: &mut File,
    mut found: Leftover,
    limit: Option<u64>,
) -> Option<Leftover> {
    let size = limit.or(found.total)?;
    if found.total.is_some_and(|total| total != size) {
        return None;
    }
    // A leftover larger than the file it is part of is not a part of it.
    let on_disk = old.metadata().ok()?.len();
    if found.spans.last().is_some_and(|&(_, end)| end > size) || on_disk > size {
        return None;
    }
    let mut kept = Spans::new();
    for &(start, end) in &found.spans {
        let end = end.min(on_disk);
        if start >= end {
            break;
        }
        let copied = old
            .seek(SeekFrom::Start(start))
            .and_then(|_| new.seek(SeekFrom::Start(start)))
            .and_then(|_| io::copy(&mut (&mut *old).take(end - start), new));
        match (copied, kept.last_mut()) {
            // Adjacent spans are one: what follows the first bytes must start after a gap.
            (Ok(n), Some(last)) if n > 0 && last.1 == start => last.1 = start + n,
            (Ok(n), _) if n > 0 => kept.push((start, start + n)),
            _ => break,
        }
    }
    found.total = Some(size);
    found.spans = kept;
    (!found.spans.is_empty()).then_some(found)
}

/// Removes spool files and note temporaries in `dir` left by ptex runs that no longer run
/// (killed mid-way): a file is in use while its lock is held, whichever process (or PID
/// namespace) holds it. Anything else, and anything not this user's, is left alone.
pub fn remove_stale(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            continue;
        };
        let ours = name.starts_with('.') && (name.ends_with(SUFFIX) || name.ends_with(NOTE_TEMP));
        if !ours {
            continue;
        }
        let path = entry.path();
        let Ok(Found::Trusted(file)) = untrusted::open(&path, false) else {
            continue;
        };
        // Removed while locked, and only if the name still names what was locked: a run
        // that creates a file and locks it after this checks the same (see create_locked).
        if file.try_lock().is_ok() && os::same_file(&file, &path) {
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// A number no other process can predict, for file names.
pub(crate) fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    // RandomState is seeded from the OS's random source once per process, then varied.
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.write_u32(std::process::id());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    hasher.write_u128(nanos);
    hasher.finish()
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

    fn read_all(spool: &mut Spool, len: u64) -> String {
        let mut all = String::new();
        spool
            .verified(len)
            .unwrap()
            .read_to_string(&mut all)
            .unwrap();
        all
    }

    /// Simulates a killed run: the handle closes, the files stay.
    fn kill(mut spool: Spool) {
        spool.name = Name::Gone;
        spool.note = None;
    }

    #[test]
    fn spool_is_removed_unless_persisted() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::create(dir.path(), "../../etc/passwd").unwrap();
        assert_eq!(spool.path().parent(), Some(dir.path()));
        spool.write(b"abc").unwrap();
        assert_eq!(read_all(&mut spool, 3), "abc");
        assert_eq!(
            read_all(&mut spool, 2),
            "ab",
            "never past the verified size"
        );
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
    fn stale_spool_files_are_those_no_one_holds_locked() {
        let dir = tempfile::tempdir().unwrap();
        let ours = Spool::create(dir.path(), "mine.tgz").unwrap();
        let dead = dir.path().join(".x.tgz.0123456789abcdef.ptex-part");
        let other = dir.path().join("unrelated.ptex-part.txt");
        std::fs::write(&dead, b"partial").unwrap();
        std::fs::write(&other, b"keep").unwrap();
        remove_stale(dir.path());
        assert!(!dead.exists());
        assert!(other.exists() && ours.path().exists());
    }

    #[test]
    fn shared_spool_is_locked_and_keeps_noted_spans() {
        let dir = tempfile::tempdir().unwrap();
        let sha = "ab".repeat(32);
        let mut notices = Vec::new();
        let claimed = Spool::claim(dir.path(), &sha, Some(11), &mut notices)
            .unwrap()
            .unwrap();
        assert!(claimed.leftover.is_none());
        let mut first = claimed.spool;
        assert!(
            Spool::claim(dir.path(), &sha, Some(11), &mut notices)
                .unwrap()
                .is_none(),
            "the lock is held"
        );
        first.write(b"hello, part").unwrap();
        // Only "hello" and "part" are vouched for.
        first
            .note("key", "\"v1\"", None, &[(0, 5), (7, 11)])
            .unwrap();
        kill(first);
        let Claimed {
            mut spool,
            leftover,
        } = Spool::claim(dir.path(), &sha, Some(11), &mut notices)
            .unwrap()
            .unwrap();
        let leftover = leftover.unwrap();
        assert_eq!(leftover.source_key, "key");
        assert_eq!(leftover.spans, vec![(0, 5), (7, 11)]);
        assert_eq!(leftover.prefix(), 5);
        assert_eq!(read_all(&mut spool, 11), "hello\0\0part");
        spool
            .note("key", "\"v1\"", None, &[(0, 5), (5, 7)])
            .unwrap();
        kill(spool);
        let Claimed { spool, leftover } = Spool::claim(dir.path(), &sha, Some(11), &mut notices)
            .unwrap()
            .unwrap();
        assert_eq!(
            leftover.unwrap().spans,
            vec![(0, 7)],
            "adjacent spans are one"
        );
        drop(spool);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        assert!(notices.is_empty(), "{notices:?}");
    }

    #[test]
    fn leftovers_larger_than_the_file_are_discarded() {
        let dir = tempfile::tempdir().unwrap();
        let sha = "ef".repeat(32);
        let mut notices = Vec::new();
        let mut first = Spool::claim(dir.path(), &sha, None, &mut notices)
            .unwrap()
            .unwrap()
            .spool;
        first.write(b"hello, world").unwrap();
        first.note("key", "\"v1\"", Some(5), &[(0, 12)]).unwrap();
        kill(first);
        let claimed = Spool::claim(dir.path(), &sha, None, &mut notices)
            .unwrap()
            .unwrap();
        assert!(claimed.leftover.is_none());
        drop(claimed);
        // Without any size, nothing is kept either.
        let mut first = Spool::claim(dir.path(), &sha, None, &mut notices)
            .unwrap()
            .unwrap()
            .spool;
        first.write(b"hello").unwrap();
        first.note("key", "\"v1\"", None, &[(0, 5)]).unwrap();
        kill(first);
        let claimed = Spool::claim(dir.path(), &sha, None, &mut notices)
            .unwrap()
            .unwrap();
        assert!(claimed.leftover.is_none());
    }

    #[test]
    fn a_watched_spool_is_released_when_its_holder_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let sha = "01".repeat(32);
        let mut holder = Spool::claim(dir.path(), &sha, None, &mut Vec::new())
            .unwrap()
            .unwrap()
            .spool;
        let watch = Watch::open(dir.path(), &sha).unwrap();
        assert!(!watch.released());
        holder.write(b"whole file").unwrap();
        assert_eq!(watch.progress().unwrap().0, 10);
        drop(holder);
        assert!(watch.released());
        // The holder removed the file; the watcher copies its bytes.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        let mut spool = watch.copy(dir.path(), "saved", 10).unwrap();
        assert_eq!(read_all(&mut spool, 10), "whole file");
        let target = dir.path().join("saved");
        spool.persist(&target).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"whole file");
    }

    #[test]
    fn shared_spool_never_writes_through_what_is_planted() {
        let dir = tempfile::tempdir().unwrap();
        let sha = "cd".repeat(32);
        let target = dir.path().join("precious");
        std::fs::write(&target, b"keep").unwrap();
        let link = dir.path().join(format!("{sha}{SUFFIX}"));
        let note = dir.path().join(format!("{sha}{NOTE}"));
        // Whether it planted `how`.
        let plant = |how: &str| {
            let _ = std::fs::remove_file(&link);
            let _ = std::fs::remove_file(&note);
            match how {
                // A Windows user may not have the right to make one: nothing to plant then.
                "symlink" => return crate::os::symlink(&target, &link).is_ok(),
                "hard link" => std::fs::hard_link(&target, &link).unwrap(),
                _ => std::fs::create_dir(&link).unwrap(),
            }
            true
        };
        for how in ["symlink", "hard link", "directory"] {
            if !plant(how) {
                continue;
            }
            let mut notices = Vec::new();
            let claimed = Spool::claim(dir.path(), &sha, Some(3), &mut notices)
                .unwrap()
                .unwrap();
            assert!(claimed.leftover.is_none(), "{how}");
            let mut spool = claimed.spool;
            spool.write(b"new").unwrap();
            spool.note("key", "\"v\"", Some(3), &[(0, 3)]).unwrap();
            assert_eq!(std::fs::read(&target).unwrap(), b"keep", "{how}");
            assert_eq!(notices.len(), 1, "{how}: {notices:?}");
            drop(spool);
        }
    }

    #[test]
    fn notes_parse_strictly() {
        let note = parse_note("ptex-note 2\nk\n\"v\"\n10\n0-4,6-10\n").unwrap();
        assert_eq!(note.spans, vec![(0, 4), (6, 10)]);
        for bad in [
            "k\n\"v\"\n",
            "ptex-note 2\nk\nv\n10\n4-2\n",
            "ptex-note 2\nk\nv\n10\n0-4,3-6\n",
            "ptex-note 2\nk\nv\nten\n0-4\n",
        ] {
            assert!(parse_note(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn safe_names() {
        assert!(safe_file_name("a.tar.gz").is_ok());
        for bad in ["", ".", "..", "a/b", "../x", "a\\b", "/"] {
            assert!(safe_file_name(bad).is_err(), "{bad:?}");
        }
    }
}
