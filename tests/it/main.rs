//! Integration tests for the `ptex` binary.

mod support;
