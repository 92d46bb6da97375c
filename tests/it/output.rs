//! stdout carries verified payload and nothing else: a full or closed stdout is a clean
//! error, and the progress bar on a terminal never touches stdout (RELIABILITY case 26).

use std::io::Read;
use std::process::Stdio;

use crate::support::scie::{Sandbox, payload, ptex_bin};
use crate::support::server::{Reply, TestServer};

fn server_of(len: usize) -> (TestServer, Vec<u8>) {
    let body = payload(len);
    let served = body.clone();
    (TestServer::start(move |_| Reply::ok(served.clone())), body)
}

#[test]
fn full_stdout_is_a_clean_error() {
    let (server, _) = server_of(100_000);
    let sandbox = Sandbox::new();
    let output = sandbox
        .command(&[&server.url("/f.bin")])
        .stdin(Stdio::null())
        .stdout(
            std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/full")
                .unwrap(),
        )
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let last = stderr.lines().last().unwrap_or("");
    assert!(last.contains("error writing stdout"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    sandbox.assert_no_spool_debris();
}

#[test]
fn stdout_closed_early_is_a_clean_error() {
    let (server, _) = server_of(4 << 20);
    let sandbox = Sandbox::new();
    let mut child = sandbox
        .command(&["-s", &server.url("/f.bin")])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Like `| head -c1`: read one byte, then close the pipe.
    let mut stdout = child.stdout.take().unwrap();
    let mut one = [0u8; 1];
    stdout.read_exact(&mut one).unwrap();
    drop(stdout);
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("error writing stdout"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn progress_on_a_terminal_never_touches_stdout() {
    let (server, body) = server_of(2 << 20);
    let mut sandbox = Sandbox::new();
    sandbox.env("TERM", "xterm");
    let out_file = sandbox.work().join("out.bin");
    let ptex = ptex_bin();
    let ptex = ptex.display();
    // `script` runs the command on a pseudo-terminal: stderr is a tty, so the bar is on;
    // stdout is redirected to a file.
    let shell = format!(
        "'{ptex}' '{}' > '{}'",
        server.url("/f.bin"),
        out_file.display()
    );
    let output = sandbox.wrapped("script", &["-q", "-e", "-c", &shell, "/dev/null"]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_eq!(std::fs::read(&out_file).unwrap(), body);

    // With -s the output is the same.
    let silent = sandbox.work().join("silent.bin");
    let shell = format!(
        "'{ptex}' -s '{}' > '{}'",
        server.url("/f.bin"),
        silent.display()
    );
    let output = sandbox.wrapped("script", &["-q", "-e", "-c", &shell, "/dev/null"]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_eq!(std::fs::read(&silent).unwrap(), body);
    let terminal = String::from_utf8_lossy(&output.stdout);
    assert!(terminal.trim().is_empty(), "-s still drew: {terminal:?}");
}
