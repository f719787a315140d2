//! CBOR encoding and decoding of [`Value`](super::Value) (RFC 8949), via `minicbor`.
//! (Filled in by the wire-codec work.)
