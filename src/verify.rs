//! Counting and hashing bytes as they stream in, enforcing the size cap, and the final
//! verdict against the expected size and sha256.

use std::fmt;

use std::fs::File;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, sync_channel};
use std::thread::JoinHandle;

use sha2::{Digest, Sha256};

/// A sha256 digest as 64 lowercase hex digits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sha256Hex(String);

impl Sha256Hex {
    /// Accepts exactly 64 lowercase hex digits, the form scie-jump compares against.
    pub fn parse(text: &str) -> Result<Sha256Hex, String> {
        if text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            Ok(Sha256Hex(text.to_string()))
        } else {
            Err(format!(
                "the sha256 must be 64 lowercase hex digits, got {:?}",
                text.chars().take(80).collect::<String>()
            ))
        }
    }

    /// The sha256 of `bytes`.
    pub fn digest(bytes: &[u8]) -> Sha256Hex {
        Sha256Hex::of(&Sha256::digest(bytes))
    }

    fn of(digest: &[u8]) -> Sha256Hex {
        let mut hex = String::with_capacity(64);
        for byte in digest {
            hex.push(char::from_digit((byte >> 4) as u32, 16).unwrap_or('0'));
            hex.push(char::from_digit((byte & 0xf) as u32, 16).unwrap_or('0'));
        }
        Sha256Hex(hex)
    }
}

impl fmt::Display for Sha256Hex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What the file must be; either part may be unknown.
#[derive(Clone, Debug, Default)]
pub struct Expected {
    pub size: Option<u64>,
    pub sha256: Option<Sha256Hex>,
}

impl Expected {
    /// True when both the size and the sha256 are known.
    pub fn is_complete(&self) -> bool {
        self.size.is_some() && self.sha256.is_some()
    }
}

/// Why the bytes from a source are not the expected file.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("size mismatch: expected {expected} bytes, the server declares {declared}")]
    DeclaredSize { expected: u64, declared: u64 },
    #[error("size mismatch: expected {expected} bytes, the source sent more")]
    TooLarge { expected: u64 },
    #[error("size mismatch: expected {expected} bytes, got {actual}")]
    Size { expected: u64, actual: u64 },
    #[error(
        "sha256 mismatch: expected {expected}, the server's {header} header declares {declared} \
         (the body was not read)"
    )]
    DeclaredSha256 {
        header: &'static str,
        expected: Sha256Hex,
        declared: String,
    },
    #[error("the sha256 could not be computed: {reason}")]
    HashingFailed { reason: String },
    #[error("sha256 mismatch: expected {expected}, got {actual}")]
    Sha256 {
        expected: Sha256Hex,
        actual: Sha256Hex,
    },
}

/// Counts and hashes a file's bytes against an expectation, as they land in the spool file.
/// Counting (and so the size cap) happens as bytes are handed over; hashing runs on a thread
/// of its own that reads them back from the file (from the page cache), so it overlaps
/// receiving instead of adding to it, and holds on to no network buffer.
pub struct Verifier {
    expected: Expected,
    hasher: Hasher,
    count: u64,
    clock: Arc<HashClock>,
}

/// How fast this machine hashes: the bytes hashed and the time spent hashing them (never
/// the time spent waiting for bytes), kept by whichever thread hashes.
#[derive(Default)]
struct HashClock {
    bytes: AtomicU64,
    nanos: AtomicU64,
}

/// Bytes hashed before [`Verifier::hash_rate`] trusts its measure.
const HASH_RATE_AFTER: u64 = 4 << 20;

/// Regions queued for the hashing thread at most, and the most it reads at once.
const HASH_QUEUE: usize = 64;
const HASH_PIECE: usize = 256 * 1024;

enum Hasher {
    /// Hashing in the caller's thread (before the first bytes, or if no thread could start).
    Inline(Sha256),
    /// Hashing in a thread of its own, fed through a bounded queue.
    Thread {
        queue: SyncSender<Region>,
        worker: JoinHandle<Result<Sha256, String>>,
    },
    /// Hashing stopped (the thread is gone, or the spool file could not be read back): no
    /// digest can be given, for this reason.
    Lost(String),
}

/// Bytes to hash: `len` of them in `file`, from `start`.
struct Region {
    file: Arc<File>,
    start: u64,
    len: u64,
}

impl Region {
    fn hash_into(
        self,
        sha: &mut Sha256,
        buffer: &mut Vec<u8>,
        clock: &HashClock,
    ) -> Result<(), String> {
        let started = std::time::Instant::now();
        buffer.resize(HASH_PIECE, 0);
        let mut done = 0;
        while done < self.len {
            let want = buffer.len().min((self.len - done) as usize);
            let read = &mut buffer[..want];
            crate::os::read_exact_at(&self.file, read, self.start + done)
                .map_err(|e| format!("cannot read back the spool file: {e}"))?;
            sha.update(&*read);
            done += want as u64;
        }
        let nanos = started.elapsed().as_nanos().min(u64::MAX as u128) as u64;
        clock.nanos.fetch_add(nanos, Ordering::Relaxed);
        clock.bytes.fetch_add(done, Ordering::Relaxed);
        Ok(())
    }
}

impl Hasher {
    fn update(&mut self, region: Region, clock: &Arc<HashClock>) {
        if let Hasher::Inline(sha) = self {
            let (queue, regions) = sync_channel::<Region>(HASH_QUEUE);
            let mut theirs = sha.clone();
            let their_clock = clock.clone();
            let started = std::thread::Builder::new()
                .name("ptex-sha256".to_string())
                .spawn(move || {
                    let mut buffer = Vec::new();
                    for region in regions {
                        region.hash_into(&mut theirs, &mut buffer, &their_clock)?;
                    }
                    Ok(theirs)
                });
            // If no thread can start, hashing simply stays inline.
            if let Ok(worker) = started {
                *self = Hasher::Thread { queue, worker };
            }
        }
        let sent = match self {
            Hasher::Inline(sha) => region.hash_into(sha, &mut Vec::new(), clock),
            Hasher::Thread { queue, .. } => queue.send(region).map_err(|_| String::new()),
            Hasher::Lost(_) => Ok(()),
        };
        if let Err(reason) = sent {
            // A thread that stopped says why when joined.
            let reason = match std::mem::replace(self, Hasher::Lost(String::new())) {
                Hasher::Thread { queue, worker } => {
                    drop(queue);
                    match worker.join() {
                        Ok(Err(why)) => why,
                        _ => "the hashing thread stopped".to_string(),
                    }
                }
                _ => reason,
            };
            *self = Hasher::Lost(reason);
        }
    }

    /// The digest of everything fed, or why there is none.
    fn finalize(self) -> Result<Sha256Hex, String> {
        let sha = match self {
            Hasher::Inline(sha) => sha,
            Hasher::Thread { queue, worker } => {
                drop(queue);
                worker
                    .join()
                    .map_err(|_| "the hashing thread stopped".to_string())??
            }
            Hasher::Lost(reason) => return Err(reason),
        };
        Ok(Sha256Hex::of(&sha.finalize()))
    }
}

/// The size and digest of bytes that passed verification.
#[derive(Debug)]
pub struct Verified {
    pub size: u64,
    pub sha256: Sha256Hex,
}

impl Verifier {
    pub fn new(expected: Expected) -> Verifier {
        Verifier {
            expected,
            hasher: Hasher::Inline(Sha256::new()),
            count: 0,
            clock: Arc::default(),
        }
    }

    /// Fails early when the length a source declares cannot be the expected size.
    pub fn check_declared(&self, declared: Option<u64>) -> Result<(), VerifyError> {
        match (self.expected.size, declared) {
            (Some(expected), Some(declared)) if expected != declared => {
                Err(VerifyError::DeclaredSize { expected, declared })
            }
            _ => Ok(()),
        }
    }

    /// Fails early when a checksum header the source sent (a mirror's `X-Checksum-Sha256`,
    /// S3's `x-amz-checksum-sha256`) names other bytes than the expected ones.
    pub fn check_declared_sha256(
        &self,
        declared: Option<&ptex_schemes::DeclaredSha256>,
    ) -> Result<(), VerifyError> {
        match (&self.expected.sha256, declared) {
            (Some(expected), Some(declared)) if expected.0 != declared.sha256 => {
                Err(VerifyError::DeclaredSha256 {
                    header: declared.header,
                    expected: expected.clone(),
                    declared: declared.sha256.clone(),
                })
            }
            _ => Ok(()),
        }
    }

    /// Accepts the next `len` bytes, which stand in `file` from `start` (in order: the
    /// bytes before them were accepted before); fails as soon as they run past the expected
    /// size. The hasher reads them back.
    pub fn update_from_file(
        &mut self,
        file: &Arc<File>,
        start: u64,
        len: u64,
    ) -> Result<(), VerifyError> {
        self.count(len)?;
        let file = file.clone();
        self.hasher.update(Region { file, start, len }, &self.clock);
        Ok(())
    }

    fn count(&mut self, len: u64) -> Result<(), VerifyError> {
        self.count += len;
        match self.expected.size {
            Some(expected) if self.count > expected => Err(VerifyError::TooLarge { expected }),
            _ => Ok(()),
        }
    }

    /// Whether the bytes are checked against an expected sha256.
    pub fn expects_sha256(&self) -> bool {
        self.expected.sha256.is_some()
    }

    /// How fast this machine hashed the bytes so far, in bytes per second of hashing (the
    /// time the hasher waited for bytes left out): the most one connection needs to deliver.
    /// `None` until enough bytes were hashed to tell.
    pub fn hash_rate(&self) -> Option<f64> {
        let bytes = self.clock.bytes.load(Ordering::Relaxed);
        let nanos = self.clock.nanos.load(Ordering::Relaxed);
        (bytes >= HASH_RATE_AFTER && nanos > 0).then(|| bytes as f64 * 1e9 / nanos as f64)
    }

    /// Bytes accepted so far.
    pub fn accepted(&self) -> u64 {
        self.count
    }

    /// The verdict once the stream has ended.
    pub fn finish(self) -> Result<Verified, VerifyError> {
        if let Some(expected) = self.expected.size
            && expected != self.count
        {
            return Err(VerifyError::Size {
                expected,
                actual: self.count,
            });
        }
        let actual = self
            .hasher
            .finalize()
            .map_err(|reason| VerifyError::HashingFailed { reason })?;
        match self.expected.sha256 {
            Some(expected) if expected != actual => Err(VerifyError::Sha256 { expected, actual }),
            _ => Ok(Verified {
                size: self.count,
                sha256: actual,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HELLO_SHA256: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

    fn expect(size: u64, sha: &str) -> Expected {
        Expected {
            size: Some(size),
            sha256: Some(Sha256Hex::parse(sha).unwrap()),
        }
    }

    /// A verifier over a spool file of its own: `feed` appends bytes there and hands them on.
    struct Fed {
        verifier: Verifier,
        file: Arc<File>,
        len: u64,
        _dir: tempfile::TempDir,
    }

    impl Fed {
        fn new(expected: Expected) -> Fed {
            let dir = tempfile::tempdir().unwrap();
            let file = File::options()
                .read(true)
                .write(true)
                .create_new(true)
                .open(dir.path().join("spool"))
                .unwrap();
            Fed {
                verifier: Verifier::new(expected),
                file: Arc::new(file),
                len: 0,
                _dir: dir,
            }
        }

        fn feed(&mut self, bytes: &[u8]) -> Result<(), VerifyError> {
            crate::os::write_all_at(&self.file, bytes, self.len).unwrap();
            let start = self.len;
            self.len += bytes.len() as u64;
            self.verifier
                .update_from_file(&self.file, start, bytes.len() as u64)
        }

        fn finish(self) -> Result<Verified, VerifyError> {
            self.verifier.finish()
        }
    }

    #[test]
    fn accepts_matching_bytes_in_chunks() {
        let mut v = Fed::new(expect(5, HELLO_SHA256));
        v.feed(b"he").unwrap();
        v.feed(b"llo").unwrap();
        let done = v.finish().unwrap();
        assert_eq!(done.size, 5);
        assert_eq!(done.sha256.to_string(), HELLO_SHA256);
    }

    #[test]
    fn flipped_byte_is_a_sha256_mismatch() {
        let mut v = Fed::new(expect(5, HELLO_SHA256));
        v.feed(b"hellO").unwrap();
        let err = v.finish().unwrap_err().to_string();
        assert!(err.starts_with("sha256 mismatch: expected 2cf24d"), "{err}");
    }

    #[test]
    fn stops_past_the_expected_size() {
        let mut v = Fed::new(expect(5, HELLO_SHA256));
        v.feed(b"hello").unwrap();
        assert!(matches!(v.feed(b"!"), Err(VerifyError::TooLarge { .. })));
    }

    #[test]
    fn short_body_and_declared_length() {
        let mut v = Fed::new(expect(5, HELLO_SHA256));
        assert!(v.verifier.check_declared(Some(6)).is_err());
        assert!(
            v.verifier.check_declared(Some(5)).is_ok() && v.verifier.check_declared(None).is_ok()
        );
        v.feed(b"hell").unwrap();
        assert!(matches!(
            v.finish(),
            Err(VerifyError::Size { actual: 4, .. })
        ));
    }

    #[test]
    fn unknown_expectations_still_hash() {
        let mut v = Fed::new(Expected::default());
        v.feed(b"hello").unwrap();
        assert_eq!(v.finish().unwrap().sha256.to_string(), HELLO_SHA256);
    }

    #[test]
    fn large_chunks_hash_the_same_on_the_hashing_thread() {
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let expected = Sha256Hex::digest(&data);
        let mut v = Fed::new(Expected {
            size: Some(data.len() as u64),
            sha256: Some(expected.clone()),
        });
        // One piece larger than HASH_PIECE, then many small ones.
        v.feed(&data[..1_000_000]).unwrap();
        for piece in data[1_000_000..].chunks(4096) {
            v.feed(piece).unwrap();
        }
        assert_eq!(v.finish().unwrap().sha256, expected);
    }

    #[test]
    fn a_spool_file_that_cannot_be_read_back_gives_no_digest() {
        let mut v = Fed::new(expect(5, HELLO_SHA256));
        // Bytes said to be where the file has none.
        let file = v.file.clone();
        v.verifier.update_from_file(&file, 100, 5).unwrap();
        let err = v.finish().unwrap_err().to_string();
        assert!(err.contains("cannot read back the spool file"), "{err}");
    }

    #[test]
    fn sha256_form_is_strict() {
        assert!(Sha256Hex::parse(HELLO_SHA256).is_ok());
        assert!(Sha256Hex::parse(&HELLO_SHA256.to_uppercase()).is_err());
        assert!(Sha256Hex::parse(&HELLO_SHA256[1..]).is_err());
        assert!(Sha256Hex::parse(&format!("{}g", &HELLO_SHA256[1..])).is_err());
    }
}
