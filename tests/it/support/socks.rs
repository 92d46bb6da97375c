//! A SOCKS5 proxy on loopback (RFC 1928, no authentication, CONNECT only) that records the
//! destination each client asked for, as the client wrote it: a host name when the client
//! left resolving to the proxy (`socks5h://`), an address when it resolved it itself
//! (`socks5://`). Every destination is reached at 127.0.0.1, the one host tests have.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;

/// A running SOCKS5 proxy; it stops accepting when dropped.
pub struct SocksProxy {
    port: u16,
    asked: Arc<Mutex<Vec<String>>>,
}

impl SocksProxy {
    /// Starts the proxy on a free port.
    pub fn start() -> SocksProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind socks proxy");
        let port = listener.local_addr().expect("socks proxy address").port();
        let asked = Arc::new(Mutex::new(Vec::new()));
        let log = asked.clone();
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let log = log.clone();
                thread::spawn(move || {
                    let _ = serve(stream, &log);
                });
            }
        });
        SocksProxy { port, asked }
    }

    /// `scheme://127.0.0.1:PORT`, e.g. with `socks5h`.
    pub fn url(&self, scheme: &str) -> String {
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// Every destination asked for, as `host:port` (`name:port` or `a.b.c.d:port`).
    pub fn asked(&self) -> Vec<String> {
        self.asked.lock().unwrap().clone()
    }
}

fn serve(mut client: TcpStream, log: &Mutex<Vec<String>>) -> std::io::Result<()> {
    let mut head = [0u8; 2];
    client.read_exact(&mut head)?;
    let mut methods = vec![0u8; head[1] as usize];
    client.read_exact(&mut methods)?;
    // Version 5, "no authentication required".
    client.write_all(&[5, 0])?;
    let mut request = [0u8; 4];
    client.read_exact(&mut request)?;
    let host = match request[3] {
        1 => {
            let mut ip = [0u8; 4];
            client.read_exact(&mut ip)?;
            format!("{}.{}.{}.{}", ip[0], ip[1], ip[2], ip[3])
        }
        3 => {
            let mut len = [0u8; 1];
            client.read_exact(&mut len)?;
            let mut name = vec![0u8; len[0] as usize];
            client.read_exact(&mut name)?;
            String::from_utf8_lossy(&name).into_owned()
        }
        _ => {
            // Address type not supported.
            client.write_all(&[5, 8, 0, 1, 0, 0, 0, 0, 0, 0])?;
            return Ok(());
        }
    };
    let mut port = [0u8; 2];
    client.read_exact(&mut port)?;
    let port = u16::from_be_bytes(port);
    log.lock().unwrap().push(format!("{host}:{port}"));
    let upstream = match TcpStream::connect(("127.0.0.1", port)) {
        Ok(upstream) => upstream,
        Err(_) => {
            // Connection refused.
            client.write_all(&[5, 5, 0, 1, 0, 0, 0, 0, 0, 0])?;
            return Ok(());
        }
    };
    client.write_all(&[5, 0, 0, 1, 127, 0, 0, 1, 0, 0])?;
    let (mut from_client, mut to_upstream) = (client.try_clone()?, upstream.try_clone()?);
    thread::spawn(move || {
        let _ = std::io::copy(&mut from_client, &mut to_upstream);
        let _ = to_upstream.shutdown(std::net::Shutdown::Write);
    });
    let (mut from_upstream, mut to_client) = (upstream, client);
    std::io::copy(&mut from_upstream, &mut to_client)?;
    to_client.shutdown(std::net::Shutdown::Write)
}
