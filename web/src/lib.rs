//! aemp-web: the browser driver of aemp-rs (wasm32).
pub use aemp_core as core;
