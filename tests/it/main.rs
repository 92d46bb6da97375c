//! Integration tests for the `ptex` binary: each runs the built binary as scie-jump or a
//! user would, against real servers on loopback.

mod aws_credentials;
mod binding;
mod cachedir;
mod caches;
mod content;
mod conventions;
mod direct;
mod disk;
mod faults;
mod file;
mod fleet;
mod ftp;
mod gcs;
mod google_credentials;
mod leaks;
mod manifest;
mod mirrors;
mod module_graph;
mod output;
mod overrides;
mod parts;
mod publish;
mod redirects;
mod resilience;
mod retries;
mod s3;
mod support;
mod tls;
