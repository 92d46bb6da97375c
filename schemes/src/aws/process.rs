//! A profile's `credential_process`: run the command, bounded in time, and read the JSON
//! credentials it prints (the AWS CLI's format, `Version: 1`). Its output is never shown.

use std::io::Read;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use reqsign_aws_v4::Credential;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Output {
    version: u32,
    access_key_id: String,
    secret_access_key: String,
    #[serde(default)]
    session_token: Option<String>,
    #[serde(default)]
    expiration: Option<String>,
}

/// Runs `command_line` (split like a shell would, without running one) and parses what it
/// prints. Errors say what went wrong without repeating the output, which holds secrets.
pub(crate) async fn run(command_line: &str, limit: Duration) -> Result<Credential, String> {
    let words = split(command_line)?;
    let (program, args) = words
        .split_first()
        .ok_or_else(|| "credential_process is empty".to_string())?;
    let (status, stdout, stderr) = run_bounded(program, args, limit).await?;
    if !status.success() {
        // The first line of stderr is the process's own reason; stdout may hold secrets.
        let said = String::from_utf8_lossy(&stderr);
        let said = said.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        let said: String = said.chars().take(200).collect();
        return Err(format!("{program:?} failed ({status}){}", {
            if said.is_empty() {
                String::new()
            } else {
                format!(": {said}")
            }
        }));
    }
    credential(program, &stdout)
}

/// Runs `program` with `args` for at most `limit`, and what it printed on stdout and stderr
/// (1 MiB of each at most).
async fn run_bounded(
    program: &str,
    args: &[String],
    limit: Duration,
) -> Result<(ExitStatus, Vec<u8>, Vec<u8>), String> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {program:?}: {e}"))?;
    // Read both pipes on their own threads so a chatty process cannot block on a full pipe.
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(pipe) = pipe {
                let _ = pipe.take(1 << 20).read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let stdout = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() >= limit => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{program:?} did not finish within {:.0} s",
                    limit.as_secs_f64()
                ));
            }
            Ok(None) => tokio::time::sleep(Duration::from_millis(10)).await,
            Err(e) => return Err(format!("waiting for {program:?}: {e}")),
        }
    };
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    Ok((status, stdout, stderr))
}

/// The credentials in a process's output, in the AWS CLI's JSON form.
fn credential(program: &str, stdout: &[u8]) -> Result<Credential, String> {
    let output: Output = serde_json::from_slice(stdout).map_err(|e| {
        format!(
            "{program:?} printed no credentials in the expected JSON form \
             (Version, AccessKeyId, SecretAccessKey): {}",
            // serde's message names the line and column, never the text around them.
            e.classify_message()
        )
    })?;
    if output.version != 1 {
        return Err(format!(
            "{program:?} printed Version {}, expected 1",
            output.version
        ));
    }
    Ok(Credential {
        access_key_id: output.access_key_id,
        secret_access_key: output.secret_access_key,
        session_token: output.session_token.filter(|t| !t.is_empty()),
        expires_in: match output.expiration {
            Some(text) => Some(
                text.parse()
                    .map_err(|_| format!("{program:?} printed an unreadable Expiration"))?,
            ),
            None => None,
        },
    })
}

/// What kind of problem serde found, without the input.
trait Classify {
    fn classify_message(&self) -> String;
}

impl Classify for serde_json::Error {
    fn classify_message(&self) -> String {
        let what = match self.classify() {
            serde_json::error::Category::Io => "unreadable output",
            serde_json::error::Category::Syntax => "not JSON",
            serde_json::error::Category::Data => "a field is missing or of the wrong type",
            serde_json::error::Category::Eof => "the output ends early",
        };
        format!("{what} at line {} column {}", self.line(), self.column())
    }
}

/// Splits a command line into words: whitespace separates, single and double quotes group,
/// a backslash escapes the next character (outside single quotes).
fn split(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut quote: Option<char> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('\''), c) => word.get_or_insert_default().push(c),
            (_, '\\') => {
                if let Some(next) = chars.next() {
                    word.get_or_insert_default().push(next);
                }
            }
            (None, '\'' | '"') => {
                quote = Some(c);
                word.get_or_insert_default();
            }
            (None, c) if c.is_whitespace() => words.extend(word.take()),
            (_, c) => word.get_or_insert_default().push(c),
        }
    }
    if quote.is_some() {
        return Err("credential_process has an unclosed quote".to_string());
    }
    words.extend(word);
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_a_shell() {
        assert_eq!(
            split(r#"/opt/my tool --profile "a b" 'c d' e\ f"#).unwrap(),
            ["/opt/my", "tool", "--profile", "a b", "c d", "e f"]
        );
        assert_eq!(split(r#"x """#).unwrap(), ["x", ""]);
        assert!(split("x 'open").is_err());
    }
}
