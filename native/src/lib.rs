//! aemp: the native (tokio) driver of aemp-rs and the `aemp` command-line tool.
pub use aemp_core as core;
