//! Test-support code shared by the `it` integration tests.

pub mod scie;
pub mod server;
pub mod tls;

#[cfg(test)]
mod selftest;
