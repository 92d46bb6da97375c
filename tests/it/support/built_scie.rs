//! Writes a built scie the way scie-jump lays one out, from the format (PKWARE's APPNOTE
//! 4.3.16 for the zip record): the launcher and file bytes, a zip ending in its
//! end-of-central-directory record (with a comment), then the lift manifest as JSON. ptex
//! reads the manifest back from the tail when `SCIE` names such a file.

#![allow(dead_code)]

use std::io::Write;
use std::path::Path;

use serde_json::{Value, json};

/// The bytes of an empty zip: its end-of-central-directory record, with `comment`.
fn empty_zip(comment: &[u8]) -> Vec<u8> {
    let mut record = b"PK\x05\x06".to_vec();
    // Disk numbers, record counts, central directory size and offset: all zero.
    record.extend_from_slice(&[0; 16]);
    record.extend_from_slice(&(comment.len() as u16).to_le_bytes());
    record.extend_from_slice(comment);
    record
}

/// Writes a scie at `path`: `body_len` bytes standing for the launcher and its files
/// (written in 1 MiB pieces, so a large scie costs no memory), the zip, then `lift`.
pub fn write(path: &Path, body_len: u64, lift: &Value) {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).expect("create scie"));
    file.write_all(b"\x7fELF scie-jump stand-in")
        .expect("write scie");
    let piece = vec![0x5au8; 1 << 20];
    let mut left = body_len;
    while left > 0 {
        let now = left.min(piece.len() as u64) as usize;
        file.write_all(&piece[..now]).expect("write scie");
        left -= now as u64;
    }
    file.write_all(&empty_zip(b"built for ptex's tests"))
        .expect("write scie");
    file.write_all(lift.to_string().as_bytes())
        .expect("write scie");
    file.flush().expect("write scie");
}

/// A lift manifest as a scie embeds it: one sourced file `name` of `size` bytes and sha256
/// `hash`, fetched from `urls` (a URL or a list), plus the ptex binding.
pub fn lift(files: &[(&str, u64, &str)], table: Value) -> Value {
    let mut entries = vec![json!({"name": "ptex-linux-x86_64", "key": "ptex", "executable": true})];
    for (name, size, hash) in files {
        entries.push(
            json!({"name": name, "size": size, "hash": hash, "type": "blob",
                            "source": "ptex-fetch"}),
        );
    }
    json!({
        "scie": {
            "jump": {"size": 1_000, "version": "1.12.0"},
            "lift": {
                "name": "lazy-scie",
                "files": entries,
                "boot": {
                    "commands": {"": {"exe": "{payload}"}},
                    "bindings": {"ptex-fetch": {
                        "exe": "{ptex}",
                        "args": ["{scie.env.PEX_BOOTSTRAP_URLS={scie.lift}}"]
                    }}
                }
            }
        },
        "ptex": table
    })
}
