//! What the driver needs from a node kernel: the driver API of
//! `docs/driver-api.md` as a trait, so the I/O loop can be tested with a
//! small mock kernel as well as run the real [`aemp_core::Node`].
//!
//! The types [`ConnId`], [`Transport`], [`Action`] and [`Transmit`] are the
//! core's.

use aemp_core::config::Config;
use aemp_core::{Node, Time};

pub use aemp_core::kernel::{Action, ConnId, Transmit, Transport};

/// The sans-IO kernel as the driver sees it (see `docs/driver-api.md`).
pub trait Kernel: 'static {
    /// A fresh kernel seeded with OS randomness.
    fn create(seed: [u8; 32]) -> Self
    where
        Self: Sized;
    /// Advances the kernel's clock without running anything; the driver
    /// calls it before `configure` and before running user closures, so
    /// timers they arm start from the current time.
    fn set_now(&mut self, now: Time);
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

/// The real kernel: every method delegates to [`Node`]'s method of the
/// same name.
impl Kernel for Node {
    fn create(seed: [u8; 32]) -> Self {
        let mut node = Node::new(seed);
        // Perl's switch for printing every message sent and received.
        node.set_trace(std::env::var("PERL_ANYEVENT_MP_TRACE").is_ok_and(|v| v == "1"));
        node
    }
    fn set_now(&mut self, now: Time) {
        Node::set_now(self, now)
    }
    fn configure(&mut self, cfg: &Config, hostname: &str) -> Result<(), String> {
        Node::configure(self, cfg, hostname)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
    fn node_id(&self) -> String {
        Node::node_id(self).to_string()
    }
    fn handle_accept(&mut self, now: Time, transport: Transport, peer: Option<String>) -> ConnId {
        Node::handle_accept(self, now, transport, peer)
    }
    fn handle_connected(&mut self, now: Time, conn: ConnId, transport: Transport) {
        Node::handle_connected(self, now, conn, transport)
    }
    fn handle_data(&mut self, now: Time, conn: ConnId, data: &[u8]) {
        Node::handle_data(self, now, conn, data)
    }
    fn handle_closed(&mut self, now: Time, conn: ConnId, error: &str) {
        Node::handle_closed(self, now, conn, error)
    }
    fn set_listeners(&mut self, addrs: Vec<String>) {
        Node::set_listeners(self, addrs)
    }
    fn poll(&mut self, now: Time) -> bool {
        Node::poll(self, now)
    }
    fn poll_timeout(&mut self) -> Option<Time> {
        Node::poll_timeout(self)
    }
    fn poll_action(&mut self) -> Option<Action> {
        Node::poll_action(self)
    }
    fn poll_transmit(&mut self) -> Option<Transmit> {
        Node::poll_transmit(self)
    }
}
