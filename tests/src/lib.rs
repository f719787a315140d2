//! Test support for aemp-rs: the deterministic multi-node simulator and
//! helpers for multi-process tests.

pub mod sim;
