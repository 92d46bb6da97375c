//! Test-support code shared by the `it` integration tests.

pub mod built_scie;
pub mod daemon;
pub mod ftp;
pub mod gcs;
pub mod moto;
pub mod names;
pub mod proxy;
pub mod relay;
pub mod s3;
pub mod scie;
pub mod server;
pub mod socks;
pub mod store;
pub mod tls;

#[cfg(test)]
mod selftest;
#[cfg(test)]
mod selftest_servers;
