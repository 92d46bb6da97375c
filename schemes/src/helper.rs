//! Bazel's credential-helper protocol: the helper runs as `helper get`, reads
//! `{"uri": "…"}` on stdin and prints `{"headers": {"Name": ["value", …]}, "expires": …}`.
//! Each run is bounded in time and output; what it prints is never shown, only whether it
//! worked; its headers are for the one URI it was asked about.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderName, HeaderValue};
use serde::Deserialize;
use url::Url;

use crate::{FetchError, platform};

/// The most a helper may print; a real answer is a few hundred bytes.
const MAX_OUTPUT: u64 = 1 << 20;

/// Headers a helper gave for one URI.
pub(crate) type HelperHeaders = Vec<(HeaderName, HeaderValue)>;

/// Runs helpers and remembers their answers (and failures) for the rest of the run, so a
/// file fetched in parts, or retried, asks once per URI.
#[derive(Default)]
pub(crate) struct Helpers {
    answers: Mutex<HashMap<(PathBuf, String), Result<HelperHeaders, String>>>,
}

impl Helpers {
    /// The headers `helper` gives for `uri`, within `timeout`.
    pub(crate) async fn headers(
        &self,
        helper: &Path,
        uri: &Url,
        timeout: Duration,
    ) -> Result<HelperHeaders, FetchError> {
        let key = (helper.to_path_buf(), uri.to_string());
        let known = self.lock().get(&key).cloned();
        let answer = match known {
            Some(answer) => answer,
            None => {
                let (path, text) = key.clone();
                let answer = tokio::task::spawn_blocking(move || run(&path, &text, timeout))
                    .await
                    .unwrap_or_else(|e| Err(format!("did not finish: {e}")));
                self.lock().insert(key, answer.clone());
                answer
            }
        };
        answer.map_err(|reason| FetchError::CredentialHelper {
            helper: helper.display().to_string(),
            reason,
        })
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<(PathBuf, String), Result<HelperHeaders, String>>> {
        self.answers.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The protocol's answer.
#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    headers: HashMap<String, Vec<String>>,
    /// When the headers stop being valid (RFC 3339); a run is short, so it is only checked
    /// for being a string.
    #[serde(default)]
    #[allow(dead_code)]
    expires: Option<String>,
}

/// Runs `helper get` for `uri`; the error says why in words that never quote its output.
fn run(helper: &Path, uri: &str, timeout: Duration) -> Result<HelperHeaders, String> {
    let mut command = Command::new(helper);
    command
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    // Its own process group, so a helper that is a script can be stopped with its children.
    platform::own_group(&mut command);
    let mut child = command.spawn().map_err(|e| format!("cannot run it: {e}"))?;
    let request = serde_json::json!({ "uri": uri }).to_string();
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that does not read its input may close it: not an error by itself.
        let _ = stdin.write_all(request.as_bytes());
    }
    let mut stdout = child.stdout.take().ok_or("no stdout")?;
    // Read on a thread of its own so a helper that never closes its output cannot hold us.
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let read = (&mut stdout).take(MAX_OUTPUT + 1).read_to_end(&mut bytes);
        let _ = sender.send(read.map(|_| bytes));
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                platform::kill_group(&child);
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "did not answer within {:.1} s (PTEX_CREDENTIAL_HELPER_TIMEOUT)",
                    timeout.as_secs_f64()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(format!("cannot wait for it: {e}")),
        }
    };
    if !status.success() {
        return Err(format!("it failed ({status})"));
    }
    let left = deadline.saturating_duration_since(Instant::now());
    let bytes = match receiver.recv_timeout(left.max(Duration::from_millis(100))) {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(e)) => return Err(format!("cannot read its answer: {e}")),
        Err(_) => return Err("its output did not end (a child of it keeps it open)".into()),
    };
    if bytes.len() as u64 > MAX_OUTPUT {
        return Err(format!("its answer is larger than {MAX_OUTPUT} bytes"));
    }
    let answer: Answer = serde_json::from_slice(&bytes).map_err(|_| {
        "its answer is not the protocol's JSON ({\"headers\": {\"Name\": [\"value\"]}})".to_string()
    })?;
    let mut headers = Vec::new();
    for (name, values) in answer.headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| "its answer holds an invalid header name".to_string())?;
        for value in values {
            let mut value = HeaderValue::from_str(&value)
                .map_err(|_| format!("its answer holds an invalid value for header {name}"))?;
            value.set_sensitive(true);
            headers.push((name.clone(), value));
        }
    }
    Ok(headers)
}
