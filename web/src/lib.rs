//! # aemp-web: AEMP nodes in the browser
//!
//! The wasm32 driver of aemp-rs. It owns an [`aemp_core::Node`] and carries
//! out what it asks for with browser APIs: WebSockets for connections
//! (`ws://`/`wss://` seeds; a browser node has no listeners), one
//! `setTimeout` for the kernel's next deadline, `performance` for the clock
//! and `crypto.getRandomValues` for the node's random seed.
//!
//! The JavaScript API (`AempNode`, built with `wasm-pack build web --target
//! web`) lives in the wasm32-only module `wasm`; see `web/README.md`. The
//! [`helpers`] are plain Rust and build on every target.

pub use aemp_core as core;

pub mod helpers;

#[cfg(target_arch = "wasm32")]
mod wasm;
#[cfg(target_arch = "wasm32")]
pub use wasm::{convert, driver::now, round_trip, AempGuard, AempNode};
