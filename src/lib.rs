//! The core of ptex, shared by its two binaries: `ptex` (fetch one file for a skinny scie,
//! the original's command line) and `ptex-publish` (write, check and mirror the `ptex`
//! entries of a lift manifest). The shipped `ptex` stays lean: what only the publisher needs
//! lives in `src/bin/ptex-publish/`.

pub mod cache;
pub mod cli;
pub mod fetch;
pub mod job;
pub mod manifest;
mod os;
pub mod output;
mod parts;
pub mod progress;
pub mod report;
mod retry;
pub mod run;
pub mod scie;
mod share;
mod sniff;
mod space;
pub mod spool;
mod transfer;
pub mod verify;
