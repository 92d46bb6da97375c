//! Reading the lift manifest a built scie carries at its end, from the file's tail only.
//!
//! scie-jump writes a scie as: the launcher, the files, a zip (ending in its
//! end-of-central-directory record and that record's comment), then the lift manifest as
//! JSON. It finds the manifest by looking for the record's signature in the last bytes of
//! the file, and loads no manifest larger than 64 KiB; so reading those last bytes is enough,
//! however large the scie (the format is described in PKWARE's APPNOTE, section 4.3.16).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use anyhow::{Context, anyhow, bail};
use serde_json::Value;

/// The signature that opens a zip end-of-central-directory record.
const EOCD_SIGNATURE: [u8; 4] = *b"PK\x05\x06";
/// The record's length without its comment; the comment's length is its last two bytes.
const EOCD_LEN: usize = 22;
/// The largest lift manifest scie-jump loads.
const MAX_LIFT: usize = 0xFFFF;
/// The most of a scie's tail ever read: the record, the longest comment, the largest manifest.
pub const MAX_TAIL: u64 = (EOCD_LEN + u16::MAX as usize + MAX_LIFT) as u64;

/// The lift manifest found at the end of a scie.
#[derive(Debug)]
pub struct Embedded {
    /// The manifest as it stands in the scie.
    pub text: String,
    /// The same, parsed.
    pub json: Value,
}

/// Reads the lift manifest embedded in the scie at `path`, reading at most [`MAX_TAIL`]
/// bytes from its end. Errors say why (the caller names the file).
pub fn read(path: &Path) -> anyhow::Result<Embedded> {
    // A FIFO or a device could block or never end: only a regular file is opened.
    let meta = std::fs::metadata(path).context("cannot read it")?;
    if !meta.is_file() {
        bail!("it is not a regular file");
    }
    let mut file = File::open(path).context("cannot read it")?;
    let len = file.metadata().context("cannot read it")?.len();
    let want = len.min(MAX_TAIL);
    file.seek(SeekFrom::Start(len - want))
        .context("cannot read it")?;
    let mut tail = vec![0; want as usize];
    file.read_exact(&mut tail).context("cannot read it")?;
    let text = lift_text(&tail)?;
    let json: Value = serde_json::from_str(text)
        .map_err(|e| anyhow!("not a scie: what follows its zip is not JSON ({e})"))?;
    if json.pointer("/scie/lift").is_none() {
        bail!("not a scie: the JSON at its end has no `scie.lift`");
    }
    Ok(Embedded {
        text: text.to_string(),
        json,
    })
}

/// Whether `head`, the first bytes of a file, look like JSON text rather than an executable:
/// a lift manifest starts with `{` (after any whitespace or byte order mark).
pub fn looks_like_json(head: &[u8]) -> bool {
    let head = head.strip_prefix(b"\xef\xbb\xbf").unwrap_or(head);
    head.iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|&b| b == b'{')
}

/// The manifest text in `tail`, the last bytes of a scie: what follows the last zip
/// end-of-central-directory record and its comment.
fn lift_text(tail: &[u8]) -> anyhow::Result<&str> {
    // JSON text holds no raw control bytes, so the manifest cannot contain the signature:
    // the last one in the tail is the record.
    let record = tail
        .len()
        .checked_sub(EOCD_LEN)
        .and_then(|last| {
            (0..=last)
                .rev()
                .find(|&at| tail[at..at + 4] == EOCD_SIGNATURE)
        })
        .ok_or_else(|| {
            anyhow!("not a scie: no zip end-of-central-directory record in its last bytes")
        })?;
    let comment = u16::from_le_bytes([tail[record + 20], tail[record + 21]]) as usize;
    let start = record + EOCD_LEN + comment;
    let lift = tail
        .get(start..)
        .filter(|lift| !lift.is_empty())
        .ok_or_else(|| anyhow!("not a scie: no lift manifest after its zip"))?;
    if lift.len() > MAX_LIFT {
        bail!("not a scie: the JSON at its end is larger than scie-jump reads");
    }
    std::str::from_utf8(lift).map_err(|_| anyhow!("not a scie: its lift manifest is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// Launcher bytes, an empty zip whose record carries `comment`, then `lift`.
    fn scie(prefix: &[u8], comment: &[u8], lift: &str) -> Vec<u8> {
        let mut bytes = prefix.to_vec();
        bytes.extend_from_slice(&EOCD_SIGNATURE);
        bytes.extend_from_slice(&[0; 16]);
        bytes.extend_from_slice(&(comment.len() as u16).to_le_bytes());
        bytes.extend_from_slice(comment);
        bytes.extend_from_slice(lift.as_bytes());
        bytes
    }

    const LIFT: &str = r#"{"scie": {"lift": {"files": []}}, "ptex": {"f": "https://h/f"}}"#;

    fn read_bytes(bytes: &[u8]) -> anyhow::Result<Embedded> {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(bytes).unwrap();
        read(file.path())
    }

    #[test]
    fn finds_the_manifest_after_the_record_and_its_comment() {
        // An earlier record (a zip inside the launcher's files) does not confuse it.
        let mut prefix = b"\x7fELF launcher".to_vec();
        prefix.extend_from_slice(&scie(b"", b"", "{}"));
        for comment in [&b""[..], b"a zip comment"] {
            let embedded = read_bytes(&scie(&prefix, comment, LIFT)).unwrap();
            assert_eq!(embedded.text, LIFT);
            assert_eq!(embedded.json["ptex"]["f"], "https://h/f");
        }
    }

    #[test]
    fn reads_only_the_tail_of_a_large_file() {
        // The launcher part is far larger than the tail; the record is still found.
        let big = vec![0u8; 3 * MAX_TAIL as usize];
        assert!(read_bytes(&scie(&big, b"", LIFT)).is_ok());
    }

    #[test]
    fn refuses_what_is_not_a_scie() {
        let cases: [(Vec<u8>, &str); 6] = [
            (b"#!/bin/sh\necho hi\n".to_vec(), "end-of-central-directory"),
            (Vec::new(), "end-of-central-directory"),
            (scie(b"x", b"", ""), "no lift manifest"),
            (scie(b"x", b"", "not json"), "not JSON"),
            (scie(b"x", b"", r#"{"ptex": {}}"#), "scie.lift"),
            (scie(b"x", b"", "\u{7f}\u{0}"), "not JSON"),
        ];
        for (bytes, why) in cases {
            let err = format!("{:#}", read_bytes(&bytes).unwrap_err());
            assert!(err.contains(why), "{err}");
        }
        let dir = tempfile::tempdir().unwrap();
        let err = format!("{:#}", read(dir.path()).unwrap_err());
        assert!(err.contains("not a regular file"), "{err}");
    }

    #[test]
    fn tells_json_from_an_executable() {
        assert!(looks_like_json(b"  \n{\"ptex\": {}}"));
        assert!(looks_like_json(b"\xef\xbb\xbf{"));
        assert!(!looks_like_json(b"\x7fELF"));
        assert!(!looks_like_json(b""));
    }
}
