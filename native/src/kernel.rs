//! What the driver needs from a node kernel: the driver API of
//! `docs/driver-api.md` as a trait, so the I/O loop can be tested with a
//! small mock kernel as well as run the real [`aemp_core::Node`].
//!
//! The types [`ConnId`], [`Transport`], [`Action`] and [`Transmit`] mirror
//! the ones the core defines for its connection layer.

use aemp_core::config::Config;
use aemp_core::Time;

/// One connection (transport) between the driver and the kernel.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// What carries the bytes.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Transport {
    /// A plain TCP stream.
    Tcp,
    /// A WebSocket (client or server side).
    WebSocket,
}

/// Something the kernel asks the driver to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Open a connection to `addr` (`host:port`, or a `ws://` URL) and
    /// report the outcome with `handle_connected` or `handle_closed`.
    Connect {
        /// The id the kernel gave the connection.
        conn: ConnId,
        /// Where to connect.
        addr: String,
    },
    /// Close the connection once everything transmitted for it is written.
    Close {
        /// The connection.
        conn: ConnId,
    },
}

/// Bytes to write on a connection, all in one write (or one WS message).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// The connection.
    pub conn: ConnId,
    /// The bytes.
    pub data: Vec<u8>,
    /// Send as a WebSocket *text* message (handshake lines).
    pub text: bool,
}

/// The sans-IO kernel as the driver sees it (see `docs/driver-api.md`).
pub trait Kernel: 'static {
    /// A fresh kernel seeded with OS randomness.
    fn create(seed: [u8; 32]) -> Self
    where
        Self: Sized;
    /// Applies the effective configuration (node ID, secure mode, seeds).
    fn configure(&mut self, cfg: &Config, hostname: &str) -> Result<(), String>;
    /// The node ID (after `configure`).
    fn node_id(&self) -> String;
    /// An incoming connection was accepted.
    fn handle_accept(&mut self, now: Time, transport: Transport, peer: Option<String>) -> ConnId;
    /// An outgoing connection asked for by [`Action::Connect`] is open.
    fn handle_connected(&mut self, now: Time, conn: ConnId, transport: Transport);
    /// Bytes arrived on a connection.
    fn handle_data(&mut self, now: Time, conn: ConnId, data: &[u8]);
    /// A connection failed to open, broke, or was closed by the peer.
    fn handle_closed(&mut self, now: Time, conn: ConnId, error: &str);
    /// The real addresses of the listeners (`host:port`).
    fn set_listeners(&mut self, addrs: Vec<String>);
    /// Runs due timers and queued work; true if work remains.
    fn poll(&mut self, now: Time) -> bool;
    /// When to poll next (`None`: only on I/O).
    fn poll_timeout(&mut self) -> Option<Time>;
    /// The next action to carry out.
    fn poll_action(&mut self) -> Option<Action>;
    /// The next buffer to write.
    fn poll_transmit(&mut self) -> Option<Transmit>;
}
