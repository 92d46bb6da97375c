//! Runs the built `ptex` the way scie-jump runs a source binding (argv `ptex <lift> <name>`,
//! stdin null, stdout into a file, stderr captured), or as a user would, each run in a
//! sandbox of its own: a fresh HOME, cache and working directory, and a cleared environment.
//! The ptex under test is the one cargo built, or a shipped artifact named by
//! `PTEX_TEST_BIN` (the static Linux build, another architecture's or the Windows one), run
//! through `PTEX_TEST_RUNNER` when it needs one (`qemu-aarch64-static`, `wine`).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The ptex binary under test: `PTEX_TEST_BIN` when set, else the one cargo built.
pub fn ptex_bin() -> PathBuf {
    match std::env::var_os("PTEX_TEST_BIN") {
        Some(bin) if !bin.is_empty() => PathBuf::from(bin),
        _ => PathBuf::from(env!("CARGO_BIN_EXE_ptex")),
    }
}

/// The emulator (and its arguments, split on spaces) that runs the ptex under test, from
/// `PTEX_TEST_RUNNER`; empty when it runs natively.
pub fn ptex_runner() -> Vec<String> {
    std::env::var("PTEX_TEST_RUNNER")
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// Whether the ptex under test is a Windows binary run by wine.
pub fn under_wine() -> bool {
    ptex_runner().iter().any(|word| word.contains("wine"))
}

/// The sha256 of `bytes`, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Deterministic, incompressible-looking test payload of `len` bytes.
pub fn payload(len: usize) -> Vec<u8> {
    let mut state: u32 = 0x9e37_79b9 ^ len as u32;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state >> 24) as u8
        })
        .collect()
}

/// A private HOME, cache directory and working directory for one or more runs.
pub struct Sandbox {
    root: tempfile::TempDir,
    env: Vec<(String, String)>,
}

/// What a run of ptex did.
#[derive(Debug)]
pub struct Outcome {
    pub code: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        let root = tempfile::tempdir().expect("temp dir");
        for dir in ["home", "cache", "work"] {
            std::fs::create_dir(root.path().join(dir)).expect("sandbox dir");
        }
        Sandbox {
            root,
            env: Vec::new(),
        }
    }

    pub fn home(&self) -> PathBuf {
        self.root.path().join("home")
    }

    pub fn cache(&self) -> PathBuf {
        self.root.path().join("cache")
    }

    /// The working directory of every run.
    pub fn work(&self) -> PathBuf {
        self.root.path().join("work")
    }

    /// Sets an environment variable for every later run.
    pub fn env(&mut self, name: &str, value: impl AsRef<Path>) -> &mut Sandbox {
        let value = value.as_ref().to_string_lossy().into_owned();
        self.env.push((name.to_string(), value));
        self
    }

    /// Writes a lift manifest with one sourced file, as scie-jump would extract it.
    pub fn manifest(
        &self,
        name: &str,
        urls: Value,
        size: Option<u64>,
        hash: Option<&str>,
    ) -> PathBuf {
        let mut file =
            json!({"name": name, "key": "payload", "type": "blob", "source": "ptex-fetch"});
        if let Some(size) = size {
            file["size"] = json!(size);
        }
        if let Some(hash) = hash {
            file["hash"] = json!(hash);
        }
        self.raw_manifest(&json!({
            "scie": {"lift": {
                "name": "skinny-scie",
                "files": [{"name": "ptex-linux-x86_64", "key": "ptex", "executable": true}, file],
                "boot": {
                    "commands": {"": {"exe": "{payload}"}},
                    "bindings": {"ptex-fetch": {"exe": "{ptex}", "args": ["{scie.lift}"]}}
                }
            }},
            "ptex": {name: urls}
        }).to_string())
    }

    /// Writes `text` as the lift manifest and returns its path.
    pub fn raw_manifest(&self, text: &str) -> PathBuf {
        let path = self.root.path().join("lift.json");
        std::fs::write(&path, text).expect("write manifest");
        path
    }

    /// `ptex <lift> <name>` exactly as scie-jump's source binding runs it.
    pub fn bind(&self, lift: &Path, name: &str) -> Outcome {
        self.run(&[lift.to_str().expect("utf-8 path"), name])
    }

    /// `ptex ARGS…` with stdin null, stdout into a file (as scie-jump copies the pipe into a
    /// temp file) and stderr captured.
    pub fn run(&self, args: &[&str]) -> Outcome {
        self.outcome(self.command(args))
    }

    /// `ptex-publish ARGS…`, with the same environment and working directory as `run`.
    pub fn publish(&self, args: &[&str]) -> Outcome {
        self.outcome(self.command_of(Path::new(env!("CARGO_BIN_EXE_ptex-publish")), &[], args))
    }

    /// Runs `command` with stdin null, stdout into a file and stderr captured.
    fn outcome(&self, mut command: Command) -> Outcome {
        let stdout_path = self.root.path().join("stdout.bin");
        let stdout = std::fs::File::create(&stdout_path).expect("stdout file");
        let output = command
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(Stdio::piped())
            .output()
            .expect("run ptex");
        Outcome {
            code: output.status.code(),
            stdout: std::fs::read(&stdout_path).expect("read stdout"),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// The ptex command (under its runner, if any) with the sandbox's environment, not yet
    /// run.
    pub fn command(&self, args: &[&str]) -> Command {
        self.command_of(&ptex_bin(), &ptex_runner(), args)
    }

    /// `ptex ARGS…` started in the background with no stdin, stdout or stderr: a run the
    /// test kills, freezes or lets finish while it watches something else.
    pub fn spawn_silent(&self, args: &[&str]) -> std::process::Child {
        self.command(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start ptex")
    }

    /// `program ARGS…` (one of this package's binaries, run by `runner` if not empty) with
    /// the sandbox's environment.
    fn command_of(&self, program: &Path, runner: &[String], args: &[&str]) -> Command {
        let mut command = match runner.split_first() {
            Some((emulator, options)) => {
                let mut command = Command::new(emulator);
                command.args(options).arg(program);
                command
            }
            None => Command::new(program),
        };
        command
            .args(args)
            .current_dir(self.work())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.home())
            .env("PTEX_CACHE_DIR", self.cache())
            // Keep the suite fast if something does hang.
            .env("PTEX_CONNECT_TIMEOUT", "5")
            .env("PTEX_READ_TIMEOUT", "5")
            // Retries stay on (their default count), with backoff in milliseconds.
            .env("PTEX_RETRY_BACKOFF", "0.01");
        for (name, value) in &self.env {
            command.env(name, value);
        }
        command
    }

    /// `program args…` (a wrapper such as `sh` or `script` that runs ptex itself) with the
    /// sandbox's environment and working directory, stdin null, output captured.
    pub fn wrapped(&self, program: &str, args: &[&str]) -> std::process::Output {
        let ptex = self.command(&[]);
        let mut command = Command::new(program);
        command.args(args).env_clear();
        if let Some(dir) = ptex.get_current_dir() {
            command.current_dir(dir);
        }
        for (name, value) in ptex.get_envs() {
            if let Some(value) = value {
                command.env(name, value);
            }
        }
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .expect("run the wrapper")
    }

    /// Asserts that no run left anything in the spool directory.
    pub fn assert_no_spool_debris(&self) {
        let debris = self.spool_debris();
        assert!(debris.is_empty(), "left in the spool directory: {debris:?}");
    }

    /// Files left in the spool directory (there should be none after any run).
    pub fn spool_debris(&self) -> Vec<PathBuf> {
        match std::fs::read_dir(self.cache().join("spool")) {
            Ok(entries) => entries.map(|e| e.expect("dir entry").path()).collect(),
            Err(_) => Vec::new(),
        }
    }
}

impl Outcome {
    /// The last line of stderr.
    pub fn last_line(&self) -> &str {
        self.stderr.lines().last().unwrap_or("")
    }

    /// Asserts success with exactly `expected` on stdout.
    pub fn assert_delivered(&self, expected: &[u8]) {
        assert_eq!(self.code, Some(0), "ptex failed: {}", self.stderr);
        assert_eq!(
            sha256_hex(&self.stdout),
            sha256_hex(expected),
            "stdout differs ({} bytes, expected {}); stderr: {}",
            self.stdout.len(),
            expected.len(),
            self.stderr
        );
    }

    /// Asserts a clean failure: exit 1, nothing on stdout, and a last stderr line that
    /// contains every one of `words`.
    pub fn assert_failed(&self, words: &[&str]) {
        assert_eq!(
            self.code,
            Some(1),
            "expected exit 1; stderr: {}",
            self.stderr
        );
        assert!(
            self.stdout.is_empty(),
            "{} bytes on stdout from a failed run",
            self.stdout.len()
        );
        let last = self.last_line();
        for word in words {
            assert!(
                last.contains(word),
                "last stderr line lacks {word:?}: {last}"
            );
        }
    }
}
