//! What scie-jump reads from a lift manifest about the files ptex fetches: which files carry
//! a `source`, and the `type` scie-jump gives a file by its name. The manifest is read from a
//! JSON file or from the tail of a built scie, and kept as text too, for editing it in place
//! (see `splice`).

use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow};
use serde_json::Value;

/// A lift manifest as read from disk.
pub struct Manifest {
    pub path: PathBuf,
    pub text: String,
    pub json: Value,
    /// Whether `path` is a built scie (the manifest was read from its tail).
    pub in_scie: bool,
}

impl Manifest {
    /// Reads and parses the manifest at `path`, a JSON lift manifest or a built scie (whose
    /// embedded manifest is read from its tail); errors name it.
    pub fn read(path: &Path) -> anyhow::Result<Manifest> {
        let context = || format!("lift manifest {}", path.display());
        if !starts_like_json(path) {
            // Not JSON: a built scie, or neither (the scie reader says why).
            let embedded = ptex::scie::read(path)
                .map_err(|e| anyhow!("neither a JSON lift manifest nor a scie: {e:#}"))
                .with_context(context)?;
            return Ok(Manifest {
                path: path.to_path_buf(),
                text: embedded.text,
                json: embedded.json,
                in_scie: true,
            });
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow!("cannot read it: {e}"))
            .with_context(context)?;
        let json: Value = serde_json::from_str(&text)
            .map_err(|e| anyhow!("not valid JSON: {e}"))
            .with_context(context)?;
        Ok(Manifest {
            path: path.to_path_buf(),
            text,
            json,
            in_scie: false,
        })
    }

    /// The `scie.lift.files` list, if the manifest has one.
    pub fn files(&self) -> Option<&Vec<Value>> {
        self.json.pointer("/scie/lift/files")?.as_array()
    }

    /// The names of the files scie-jump runs a binding for (those with a `source`), in
    /// manifest order; an entry whose name is not a string is an error naming its place.
    pub fn sourced(&self) -> Vec<Result<String, String>> {
        let Some(files) = self.files() else {
            return Vec::new();
        };
        files
            .iter()
            .enumerate()
            .filter(|(_, file)| file.get("source").is_some())
            .map(
                |(index, file)| match file.get("name").and_then(Value::as_str) {
                    Some(name) if !name.is_empty() => Ok(name.to_string()),
                    _ => Err(format!("scie.lift.files[{index}] has a source but no name")),
                },
            )
            .collect()
    }
}

/// Whether the file at `path` starts like JSON text; a file that cannot be read counts as
/// JSON, so that reading it reports the error.
fn starts_like_json(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 512];
    let read = std::fs::File::open(path).and_then(|mut file| file.read(&mut head));
    match read {
        Ok(n) => ptex::scie::looks_like_json(&head[..n]) || n == 0,
        Err(_) => true,
    }
}

/// The file type scie-jump infers from a file's name, as its `type` would say it: an archive
/// kind by extension (`tar.gz`, `zip`, …), else `blob`. scie-jump needs a sourced file's
/// type written down: it cannot look at a file it does not have.
pub fn file_type(name: &str) -> &'static str {
    const ARCHIVES: [&str; 12] = [
        "zip", "tar", "tar.bz2", "tbz2", "tar.gz", "tgz", "tar.xz", "tar.lzma", "tlz", "tar.Z",
        "tar.zst", "tzst",
    ];
    // As scie-jump does: `x.tar.EXT` is `tar.EXT`, otherwise the last extension counts.
    let mut parts = name.rsplitn(3, '.');
    let (last, middle, stem) = (parts.next(), parts.next(), parts.next());
    let extension = match (last, middle, stem) {
        (Some(ext), Some("tar"), Some(_)) => format!("tar.{ext}"),
        (Some(ext), Some(_), _) => ext.to_string(),
        _ => String::new(),
    };
    ARCHIVES
        .iter()
        .find(|known| **known == extension)
        .copied()
        .unwrap_or("blob")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_by_name_as_scie_jump_infers_them() {
        for (name, kind) in [
            (
                "cpython-3.10.8+20221106-x86_64-install_only.tar.gz",
                "tar.gz",
            ),
            ("jdk.tgz", "tgz"),
            ("a.tar", "tar"),
            ("a.tar.zst", "tar.zst"),
            ("a.zip", "zip"),
            ("a.tar.bogus", "blob"),
            ("tool", "blob"),
            ("tool.exe", "blob"),
        ] {
            assert_eq!(file_type(name), kind, "{name}");
        }
    }
}
