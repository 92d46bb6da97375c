//! Integration tests for the `ptex` binary: each runs the built binary as scie-jump or a
//! user would, against real servers on loopback.

mod binding;
mod direct;
mod manifest;
mod support;
