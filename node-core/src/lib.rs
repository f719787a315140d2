//! # aemp-core: the sans-IO heart of aemp-rs
//!
//! A Rust implementation of AnyEvent::MP 2.x (AEMP), the Erlang-style
//! message-passing framework, wire-compatible with the Perl original.
//!
//! This crate holds everything that is not I/O: identifiers, message values,
//! the node kernel (ports, `rcv`, `snd`, `kil`, `mon`, `spawn`, `cal`), the
//! transport handshake and framing, the global database, and configuration.
//! It has no runtime, sockets, threads or clock: drivers (`aemp` for tokio,
//! `aemp-web` for the browser, the simulator in tests) feed it events with an
//! explicit [`Time`] and carry out the actions it returns.
//!
//! Module map:
//! * [`id`] — node IDs, port IDs, port-name generation.
//! * [`value`] — [`Value`], [`Msg`], CBOR and JSON conversion.
//! * [`time`] — [`Time`], the explicit clock.
//! * [`config`] — `configure` arguments, rc file, profiles, addresses.
//! * [`wire`] — greeting, authentication, framing (the byte-level protocol).

pub mod config;
pub mod id;
pub mod kernel;
pub mod time;
pub mod value;
pub mod wire;

pub use kernel::{
    Action, CalError, CbResult, ConnId, Error, Guard, Limits, Node, PortId, Reason, Transmit,
    Transport,
};
pub use time::Time;
pub use value::{Msg, Str, Value};
