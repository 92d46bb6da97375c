//! Host names without a real host: ptex runs in a private mount namespace (`unshare -m`,
//! util-linux; needs root, as CI runs) whose `/etc/hosts` points the names a test needs at
//! loopback, and whose `/etc/resolv.conf` names a resolver of the test's choosing. The
//! namespace vanishes with the process, so nothing needs cleaning up and nothing outside
//! it sees the files.

#![allow(dead_code)]

use std::net::{Ipv4Addr, UdpSocket};
use std::time::{Duration, Instant};

use crate::support::scie::{Outcome, Sandbox};

/// What a run inside the namespace resolves.
pub struct Names<'a> {
    /// Host names `/etc/hosts` points at 127.0.0.1.
    pub hosts: &'a [&'a str],
    /// The resolver `/etc/resolv.conf` names, for every other name (port 53, UDP).
    pub resolver: Ipv4Addr,
}

/// A resolver address on loopback that nothing listens on: every query is refused at once
/// (ICMP port unreachable), so every name outside `/etc/hosts` fails to resolve quickly.
pub fn refusing_resolver() -> Ipv4Addr {
    let free = |ip: Ipv4Addr| UdpSocket::bind((ip, 53)).is_ok();
    (1..=250)
        .map(|n| Ipv4Addr::new(127, 53, 1, n))
        .find(|ip| free(*ip))
        .expect("a free loopback address for a resolver")
}

/// A resolver on loopback that receives every query and never answers (a dead DNS server
/// behind a firewall that drops): a lookup waits for the resolver's full timeout.
pub struct SilentResolver {
    socket: UdpSocket,
}

impl SilentResolver {
    /// Binds port 53 on a free loopback address (root only).
    pub fn start() -> SilentResolver {
        let socket = (1..=250)
            .map(|n| Ipv4Addr::new(127, 53, 2, n))
            .find_map(|ip| UdpSocket::bind((ip, 53)).ok())
            .expect("bind UDP port 53 on loopback (run the tests as root)");
        SilentResolver { socket }
    }

    /// The address to name in `/etc/resolv.conf`.
    pub fn address(&self) -> Ipv4Addr {
        match self.socket.local_addr().expect("resolver address").ip() {
            std::net::IpAddr::V4(ip) => ip,
            std::net::IpAddr::V6(_) => unreachable!("bound to an IPv4 address"),
        }
    }
}

/// Runs `ptex ARGS…` with `names`, like [`Sandbox::run`]; also returns how long it took.
pub fn run_with(sandbox: &Sandbox, names: &Names, args: &[&str]) -> (Outcome, Duration) {
    let dir = sandbox.home().join("names");
    std::fs::create_dir_all(&dir).unwrap();
    let mut hosts = String::from("127.0.0.1 localhost\n");
    for host in names.hosts {
        hosts.push_str(&format!("127.0.0.1 {host}\n"));
    }
    std::fs::write(dir.join("hosts"), hosts).unwrap();
    // A timeout that is long (30 s, the most glibc takes), so a wait for the resolver shows.
    let resolv = format!(
        "nameserver {}\noptions timeout:30 attempts:2\n",
        names.resolver
    );
    std::fs::write(dir.join("resolv.conf"), resolv).unwrap();
    // `$0` is ptex and `$@` its arguments; the results go to HOME, which nothing mounts over.
    let script = "set -e\n\
         mount --bind \"$HOME/names/hosts\" /etc/hosts\n\
         mount --bind \"$HOME/names/resolv.conf\" /etc/resolv.conf\n\
         code=0\n\
         \"$0\" \"$@\" > \"$HOME/names/stdout\" 2> \"$HOME/names/stderr\" || code=$?\n\
         echo \"$code\" > \"$HOME/names/code\"\n";
    let mut argv = vec![
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        script,
        env!("CARGO_BIN_EXE_ptex"),
    ];
    argv.extend_from_slice(args);
    let started = Instant::now();
    let output = sandbox.wrapped("unshare", &argv);
    let took = started.elapsed();
    (unshared_outcome(&output, &dir), took)
}

/// What ptex did inside a private namespace, from the `code`, `stdout` and `stderr` files its
/// wrapper script wrote into `results`; panics, naming what to do, when the namespace could
/// not be set up (`output` is the `unshare` wrapper's own).
pub fn unshared_outcome(output: &std::process::Output, results: &std::path::Path) -> Outcome {
    let wrapper_stderr = String::from_utf8_lossy(&output.stderr);
    let read = |name: &str| std::fs::read(results.join(name));
    let code = read("code").unwrap_or_else(|_| {
        panic!(
            "the private mount namespace was not set up (run the tests as root, with \
             util-linux's unshare): {wrapper_stderr}"
        )
    });
    assert_eq!(output.status.code(), Some(0), "{wrapper_stderr}");
    Outcome {
        code: String::from_utf8_lossy(&code).trim().parse().ok(),
        stdout: read("stdout").unwrap(),
        stderr: String::from_utf8_lossy(&read("stderr").unwrap()).into_owned(),
    }
}
