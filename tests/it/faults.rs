//! Misbehaving servers (RELIABILITY cases 4, 5, 6 and truncation): nothing unverified
//! reaches stdout, and the spool is cleaned up.

use std::io::Write;

use serde_json::json;

use crate::support::scie::{Sandbox, payload, sha256_hex};
use crate::support::server::{Reply, TestServer};

#[test]
fn declared_length_that_disagrees_with_the_manifest_fails_before_the_body() {
    let body = payload(4_096);
    let served = payload(8_192);
    let server = TestServer::start(move |_| Reply::ok(served.clone()));
    let sandbox = Sandbox::new();
    let url = server.url("/f");
    let lift = sandbox.manifest("f", json!(url), Some(4_096), Some(&sha256_hex(&body)));
    let out = sandbox.bind(&lift, "f");
    out.assert_failed(&["f", &url, "size mismatch", "4096", "declares 8192"]);
    assert_eq!(server.request_count(), 1);
    sandbox.assert_no_spool_debris();
}

#[test]
fn endless_body_is_cut_just_past_the_expected_size() {
    let body = payload(1_000);
    let server = TestServer::start(|_| Reply::EndlessChunked {
        chunk: vec![b'z'; 512],
        // The safety stop is far beyond what ptex may read.
        max_bytes: 1 << 30,
    });
    let sandbox = Sandbox::new();
    let url = server.url("/endless.tar.gz");
    let lift = sandbox.manifest(
        "endless.tar.gz",
        json!(url),
        Some(1_000),
        Some(&sha256_hex(&body)),
    );
    let started = std::time::Instant::now();
    let out = sandbox.bind(&lift, "endless.tar.gz");
    out.assert_failed(&["endless.tar.gz", &url, "size mismatch", "sent more"]);
    // Reading 1 GiB would take far longer than the test's patience; this is not a timing
    // assertion of speed, only a guard that the stream was abandoned early.
    assert!(started.elapsed().as_secs() < 20);
    sandbox.assert_no_spool_debris();
}

#[test]
fn truncated_body_fails_and_emits_nothing() {
    let body = payload(10_000);
    let half = body[..5_000].to_vec();
    let server = TestServer::start(move |_| Reply::Truncated {
        declared_len: 10_000,
        body: half.clone(),
    });
    let sandbox = Sandbox::new();
    let url = server.url("/f");
    // Without a manifest size, only the declared length tells the body is short.
    let out = sandbox.run(&["--sha256", &sha256_hex(&body), &url]);
    out.assert_failed(&["f", &url, "interrupted"]);
    sandbox.assert_no_spool_debris();
}

#[test]
fn gzip_content_encoding_is_never_decoded() {
    // A real gzip stream, served as a .tar.gz with Content-Encoding: gzip, as misconfigured
    // servers and buckets do: the stored bytes are the file.
    let mut encoder = Vec::new();
    {
        let mut gz = GzipStored::new(&mut encoder);
        gz.write_all(&payload(3_000)).unwrap();
    }
    let stored = encoder.clone();
    let server = TestServer::start(move |_| {
        Reply::ok(stored.clone())
            .with_header("Content-Encoding", "gzip")
            .with_header("Content-Type", "application/x-gtar")
    });
    let sandbox = Sandbox::new();
    let lift = sandbox.manifest(
        "py.tar.gz",
        json!(server.url("/py.tar.gz")),
        Some(encoder.len() as u64),
        Some(&sha256_hex(&encoder)),
    );
    sandbox.bind(&lift, "py.tar.gz").assert_delivered(&encoder);
    let request = &server.requests()[0];
    let accepted = request.header("accept-encoding").unwrap_or("");
    assert!(!accepted.contains("gzip"), "asked for gzip: {accepted}");
}

/// A minimal gzip writer using stored (uncompressed) deflate blocks: a valid gzip stream
/// without a compression dependency.
struct GzipStored<'a> {
    out: &'a mut Vec<u8>,
    data: Vec<u8>,
}

impl<'a> GzipStored<'a> {
    fn new(out: &'a mut Vec<u8>) -> GzipStored<'a> {
        GzipStored {
            out,
            data: Vec::new(),
        }
    }
}

impl Write for GzipStored<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.data.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for GzipStored<'_> {
    fn drop(&mut self) {
        let out = &mut *self.out;
        out.extend_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255]);
        let blocks: Vec<&[u8]> = self.data.chunks(65_535).collect();
        for (i, block) in blocks.iter().enumerate() {
            out.push(u8::from(i + 1 == blocks.len()));
            let len = block.len() as u16;
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(&(!len).to_le_bytes());
            out.extend_from_slice(block);
        }
        out.extend_from_slice(&crc32(&self.data).to_le_bytes());
        out.extend_from_slice(&(self.data.len() as u32).to_le_bytes());
    }
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}
