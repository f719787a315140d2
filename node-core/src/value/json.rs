//! JSON encoding and decoding of [`Value`](super::Value), via `serde_json`.
//! (Filled in by the wire-codec work.)
