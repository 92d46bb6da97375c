//! Reading a scie lift manifest: the URLs of one file from the top-level `ptex` table, and
//! its expected size and sha256 from `scie.lift.files[]`. Unknown keys are ignored.

use std::path::Path;

use anyhow::anyhow;
use serde_json::Value;

use crate::verify::{Expected, Sha256Hex};

/// What the manifest says about one file.
#[derive(Debug)]
pub struct Entry {
    /// Where the file comes from, in the order to try.
    pub urls: Vec<String>,
    /// Its size and sha256, as far as the manifest gives them.
    pub expected: Expected,
}

/// Reads and parses the manifest at `path`; errors say why (the caller names the file).
pub fn read(path: &Path) -> anyhow::Result<Value> {
    let text = std::fs::read(path).map_err(|e| anyhow!("cannot read it: {e}"))?;
    serde_json::from_slice(&text).map_err(|e| anyhow!("not valid JSON: {e}"))
}

/// The entry for `name` in an already parsed manifest, which must list URLs for it.
pub fn entry(json: &Value, name: &str) -> anyhow::Result<Entry> {
    let urls = match urls(json, name)? {
        Some(urls) => urls,
        None if json.get("ptex").is_some_and(Value::is_object) => {
            return Err(anyhow!("no URL for it in the `ptex` table"));
        }
        None => {
            return Err(anyhow!(
                "the manifest has no top-level `ptex` table of URLs"
            ));
        }
    };
    Ok(Entry {
        urls,
        expected: expected(json, name)?,
    })
}

/// The URLs the `ptex` table gives for `name`, or `None` when it has no entry for it (or
/// there is no table). An entry that is not a URL or a list of URLs is an error.
pub fn urls(json: &Value, name: &str) -> anyhow::Result<Option<Vec<String>>> {
    let Some(table) = json.get("ptex").and_then(Value::as_object) else {
        return Ok(None);
    };
    match table.get(name) {
        None => Ok(None),
        Some(Value::String(url)) => Ok(Some(vec![url.clone()])),
        Some(Value::Array(list)) if !list.is_empty() => list
            .iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .map(Some)
            .ok_or_else(|| anyhow!("its `ptex` entry must list URLs as strings")),
        Some(_) => Err(anyhow!(
            "its `ptex` entry must be a URL or a non-empty list of URLs"
        )),
    }
}

/// The size and sha256 the `scie.lift.files[]` entry named `name` gives, as far as it gives
/// them; a value of the wrong form is an error.
pub fn expected(json: &Value, name: &str) -> anyhow::Result<Expected> {
    // A `files` that is there but not a list is a broken manifest, not a silent one: read
    // as silent, it would fetch the file unverified.
    let files = match json.pointer("/scie/lift/files") {
        None | Some(Value::Null) => None,
        Some(Value::Array(files)) => Some(files),
        Some(other) => {
            return Err(anyhow!(
                "its `scie.lift.files` must be a list of files, got {}",
                kind(other)
            ));
        }
    };
    let file = files.and_then(|files| {
        files
            .iter()
            .find(|f| f.get("name").and_then(Value::as_str) == Some(name))
    });
    let size = match file.and_then(|f| f.get("size")) {
        None | Some(Value::Null) => None,
        Some(size) => Some(
            size.as_u64()
                .ok_or_else(|| anyhow!("its size must be a non-negative integer, got {size}"))?,
        ),
    };
    let sha256 = match file.and_then(|f| f.get("hash")) {
        None | Some(Value::Null) => None,
        Some(Value::String(hash)) => {
            Some(Sha256Hex::parse(hash).map_err(|e| anyhow!("its hash: {e}"))?)
        }
        Some(other) => return Err(anyhow!("its hash must be a string, got {other}")),
    };
    Ok(Expected { size, sha256 })
}

/// What kind of JSON value `value` is, for messages.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const HASH: &str = "6c8db44ae0e18e320320bbaaafd2d69cde8bfea171ae2d651b7993d1396260b7";

    fn manifest(file: Value, urls: Value) -> Value {
        json!({
            "scie": {"lift": {"name": "x", "files": [
                {"name": "other", "size": 1, "hash": "0"},
                file,
            ], "boot": {}}},
            "ptex": {"f.tar.gz": urls, "unrelated": 7},
            "extra": {"ignored": true},
        })
    }

    #[test]
    fn reads_url_size_and_hash() {
        let m = manifest(
            json!({"name": "f.tar.gz", "size": 10, "hash": HASH, "key": "k", "future": 1}),
            json!("https://h/f.tar.gz"),
        );
        let e = entry(&m, "f.tar.gz").unwrap();
        assert_eq!(e.urls, ["https://h/f.tar.gz"]);
        assert_eq!(e.expected.size, Some(10));
        assert_eq!(e.expected.sha256.unwrap().to_string(), HASH);
    }

    #[test]
    fn reads_a_list_of_urls_in_order() {
        let m = manifest(
            json!({"name": "f.tar.gz"}),
            json!(["https://a/f", "https://b/f"]),
        );
        let e = entry(&m, "f.tar.gz").unwrap();
        assert_eq!(e.urls, ["https://a/f", "https://b/f"]);
        assert!(!e.expected.is_complete());
    }

    #[test]
    fn rejects_bad_entries() {
        let cases = [
            (
                json!({"name": "f.tar.gz", "size": -1, "hash": HASH}),
                json!("u"),
                "size",
            ),
            (
                json!({"name": "f.tar.gz", "size": "10", "hash": HASH}),
                json!("u"),
                "size",
            ),
            (
                json!({"name": "f.tar.gz", "size": 1.5, "hash": HASH}),
                json!("u"),
                "size",
            ),
            (
                json!({"name": "f.tar.gz", "size": 1, "hash": "abc"}),
                json!("u"),
                "hash",
            ),
            (
                json!({"name": "f.tar.gz", "size": 1, "hash": HASH.to_uppercase()}),
                json!("u"),
                "hash",
            ),
            (
                json!({"name": "f.tar.gz", "size": 1, "hash": 5}),
                json!("u"),
                "hash",
            ),
            (json!({"name": "f.tar.gz"}), json!([]), "URL"),
            (json!({"name": "f.tar.gz"}), json!(["u", 3]), "URL"),
            (json!({"name": "f.tar.gz"}), json!({"url": "u"}), "URL"),
        ];
        for (file, urls, word) in cases {
            let err = entry(&manifest(file.clone(), urls.clone()), "f.tar.gz").unwrap_err();
            assert!(err.to_string().contains(word), "{file} {urls}: {err}");
        }
    }

    #[test]
    fn example_manifest_reads() {
        let example: Value =
            serde_json::from_str(include_str!("../config/examples/lift.json")).unwrap();
        let name = "cpython-3.10.8+20221106-x86_64-unknown-linux-gnu-install_only.tar.gz";
        let e = entry(&example, name).unwrap();
        assert_eq!(e.urls.len(), 2);
        assert_eq!(e.expected.size, Some(27555856));
        assert_eq!(e.expected.sha256.unwrap().to_string(), HASH);
    }

    #[test]
    fn missing_entry_and_missing_table() {
        let m = manifest(json!({"name": "f.tar.gz"}), json!("u"));
        assert!(
            entry(&m, "nope")
                .unwrap_err()
                .to_string()
                .contains("no URL")
        );
        let err = entry(&json!({"scie": {}}), "f").unwrap_err().to_string();
        assert!(err.contains("`ptex` table"), "{err}");
    }
}
