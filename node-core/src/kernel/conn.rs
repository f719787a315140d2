//! Connections: the driver-facing half of the kernel (see `docs/driver-api.md`).
//!
//! A connection is one transport (a TCP socket or a WebSocket) carrying one
//! AEMP conversation: the [handshake](crate::wire::Handshake), then framed
//! packets. The driver reports what happens to it (`handle_accept`,
//! `handle_connected`, `handle_data`, `handle_closed`) and carries out what
//! the kernel asks ([`Action`], [`Transmit`]).
//!
//! * **Write coalescing:** every packet for a connection is appended to its
//!   output buffer; [`Node::poll_transmit`] hands the driver all of it at
//!   once, one write (or one WebSocket message) for many packets.
//! * **Liveness (extension, wire-compatible):** an idle connection sends the
//!   empty packet `[]` every `heartbeat_interval`. Our greeting carries
//!   `hb=<seconds>`; when the peer's greeting does too, a connection that
//!   receives nothing for `heartbeat_timeout` is declared dead. Perl peers
//!   ignore both the key and the empty packets, and are never timed out.
//! * **Handshake timeout:** a connection that is not authenticated after
//!   `monitor_timeout` is closed.
//! * **Bounds:** handshake lines are limited to 4 KiB, packets to
//!   `max_packet` bytes; both errors close the connection (and fire the
//!   monitors of its node), nothing else is disturbed.
//! * **TLS (spec §5.3, cargo feature `tls`):** when both greetings ask for
//!   it, the connection switches to TLS right after the greetings (see
//!   [`super::tls`]): received bytes are decrypted before the handshake or
//!   the frame decoder sees them, and everything we send after the
//!   greeting (auth line, packets, keepalives) is encrypted in
//!   `poll_transmit` — packets are still encoded into one plaintext buffer
//!   and sealed in one go per poll. Only TCP connections use TLS: over a
//!   WebSocket our greeting carries no `tls` key (browsers have their own
//!   `wss://`), so TLS is never negotiated there.

use std::sync::Arc;
use std::time::Duration;

use super::remote::NetTimer;
use super::tls::{TlsContext, TlsSession};
use super::{Node, TimerAction};
use crate::time::Time;
use crate::value::{Msg, Str, Value};
use crate::wire::{
    encode_keepalive, encode_packet, FrameDecoder, Framing, Handshake, HandshakeConfig, HsEvent,
};

/// One connection (transport) between the driver and the kernel.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

impl std::fmt::Display for ConnId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "conn#{}", self.0)
    }
}

/// What carries a connection's bytes.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Transport {
    /// A TCP socket.
    Tcp,
    /// A WebSocket (handshake lines as text messages, packets as binary ones).
    WebSocket,
}

/// Something the driver must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Open a connection to `addr` (`host:port`, or a `ws://`/`wss://` URL)
    /// and report `handle_connected` or `handle_closed`.
    Connect {
        /// The id the kernel gave the new connection.
        conn: ConnId,
        /// Where to connect.
        addr: String,
    },
    /// Close the connection after writing what `poll_transmit` returned.
    Close {
        /// The connection.
        conn: ConnId,
    },
}

/// Bytes to write on a connection: everything queued for it since the last
/// call, to go out in one write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// The connection.
    pub conn: ConnId,
    /// The bytes.
    pub data: Vec<u8>,
    /// Handshake lines: a WebSocket driver sends them as a text message.
    pub text: bool,
}

/// Network settings taken from the configuration.
#[derive(Clone, Debug)]
pub(crate) struct NetConfig {
    pub hs: HandshakeConfig,
    pub monitor_timeout: Duration,
    pub connect_interval: Duration,
    pub heartbeat_interval: Duration,
    pub heartbeat_timeout: Duration,
    pub max_packet: usize,
    pub max_queue: usize,
    /// Our TLS configuration (`cert` is set).
    pub tls: Option<Arc<TlsContext>>,
}

/// Where a connection is in its life.
pub(crate) enum Phase {
    /// Outgoing, waiting for the driver to open it.
    Opening,
    /// Exchanging greetings and auth lines.
    Handshake(Box<Handshake>),
    /// Authenticated: carrying packets for the node in `Conn::peer_id`.
    Up {
        decoder: FrameDecoder,
        framing: Framing,
    },
}

/// One connection's state.
pub(crate) struct Conn {
    pub outgoing: bool,
    /// For outgoing connections: the address tried.
    pub addr: Option<String>,
    /// Outgoing connection made for this node's connect attempt.
    pub for_peer: Option<Str>,
    /// Outgoing connection to this seed (index into the seed list).
    pub seed: Option<usize>,
    pub phase: Phase,
    /// The peer's greeting named this node (set at `PeerGreeting`).
    pub peer_id: Option<Str>,
    hs_out: Vec<u8>,
    out: Vec<u8>,
    dirty: bool,
    pub started: Time,
    pub last_rx: Time,
    pub last_tx: Time,
    /// The peer sends heartbeats (its greeting has `hb`).
    pub peer_hb: bool,
    /// The peer authenticated as an untrusted node (web secret).
    pub untrusted: bool,
    /// TLS, once started: every byte after the greetings goes through it.
    tls: Option<Box<TlsSession>>,
    /// The auth method the peer used (once authenticated).
    auth_method: Str,
}

impl Conn {
    pub fn new(now: Time, outgoing: bool) -> Conn {
        Conn {
            outgoing,
            addr: None,
            for_peer: None,
            seed: None,
            phase: Phase::Opening,
            peer_id: None,
            hs_out: Vec::new(),
            out: Vec::new(),
            dirty: false,
            started: now,
            last_rx: now,
            last_tx: now,
            peer_hb: false,
            untrusted: false,
            tls: None,
            auth_method: Str::default(),
        }
    }

    /// The peer node, once authenticated.
    pub fn up_peer(&self) -> Option<&Str> {
        match &self.phase {
            Phase::Up { .. } => self.peer_id.as_ref(),
            _ => None,
        }
    }

    /// Queues handshake bytes: plaintext before TLS, through TLS after.
    fn queue_hs(&mut self, bytes: &[u8]) {
        match &mut self.tls {
            Some(tls) => tls.write_plain(bytes),
            None => self.hs_out.extend_from_slice(bytes),
        }
    }

    /// With TLS: encrypts the queued plaintext packets and returns every
    /// pending record (empty if there is nothing to send).
    fn seal(&mut self) -> Vec<u8> {
        let Some(tls) = &mut self.tls else {
            return Vec::new();
        };
        if !self.out.is_empty() {
            tls.write_plain(&self.out);
            self.out.clear();
        }
        let mut data = Vec::new();
        tls.take_records(&mut data);
        data
    }

    /// Appends one packet `[port, msg…]` in the connection's framing.
    pub fn push_packet(&mut self, port: &str, msg: &[Value]) -> bool {
        if let Phase::Up { framing, .. } = &self.phase {
            encode_packet(*framing, port, msg, &mut self.out);
            true
        } else {
            false
        }
    }
}

impl Node {
    fn net(&self) -> Option<&NetConfig> {
        self.net.as_ref()
    }

    fn alloc_conn(&mut self) -> ConnId {
        self.next_conn += 1;
        ConnId(self.next_conn)
    }

    /// Creates an outgoing connection and asks the driver to open it.
    pub(crate) fn open_conn(
        &mut self,
        addr: &str,
        for_peer: Option<Str>,
        seed: Option<usize>,
    ) -> ConnId {
        let id = self.alloc_conn();
        let mut c = Conn::new(self.now, true);
        c.addr = Some(addr.to_string());
        c.for_peer = for_peer;
        c.seed = seed;
        self.conns.insert(id, c);
        self.actions.push_back(Action::Connect {
            conn: id,
            addr: addr.to_string(),
        });
        self.ensure_tick();
        id
    }

    /// An incoming connection was accepted; returns its id.
    pub fn handle_accept(
        &mut self,
        now: Time,
        transport: Transport,
        peer_addr: Option<String>,
    ) -> ConnId {
        self.set_now(now);
        let id = self.alloc_conn();
        self.conns.insert(id, Conn::new(self.now, false));
        tracing::debug!(
            "{id}: accepted {transport:?} from {}",
            peer_addr.as_deref().unwrap_or("?")
        );
        self.start_handshake(id, peer_addr, transport);
        self.ensure_tick();
        id
    }

    /// An outgoing connection requested by [`Action::Connect`] is open.
    pub fn handle_connected(&mut self, now: Time, conn: ConnId, transport: Transport) {
        self.set_now(now);
        let Some(c) = self.conns.get(&conn) else {
            // We gave up on it meanwhile.
            self.actions.push_back(Action::Close { conn });
            return;
        };
        if !matches!(c.phase, Phase::Opening) {
            return;
        }
        let addr = c.addr.clone();
        tracing::debug!(
            "{conn}: connected {transport:?} to {}",
            addr.as_deref().unwrap_or("?")
        );
        self.start_handshake(conn, addr, transport);
    }

    fn start_handshake(&mut self, conn: ConnId, peer_addr: Option<String>, transport: Transport) {
        let Some(mut hs_cfg) = self.net().map(|n| n.hs.clone()) else {
            self.fail_conn(conn, "node not configured");
            return;
        };
        if transport == Transport::WebSocket {
            // No TLS inside WebSockets (see the module docs).
            hs_cfg.has_cert = false;
        }
        let mut nonce = [0u8; 66];
        self.random_bytes(&mut nonce);
        let hs = Handshake::new(&hs_cfg, nonce, peer_addr);
        let now = self.now;
        if let Some(c) = self.conns.get_mut(&conn) {
            c.hs_out.extend_from_slice(hs.greeting());
            c.phase = Phase::Handshake(Box::new(hs));
            c.started = now;
            c.last_tx = now;
            c.last_rx = now;
        }
        self.mark_dirty(conn);
    }

    /// Bytes arrived on a connection.
    pub fn handle_data(&mut self, now: Time, conn: ConnId, data: &[u8]) {
        self.set_now(now);
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.last_rx = self.now;
        if c.tls.is_some() {
            self.tls_input(conn, data);
        } else {
            self.plain_input(conn, data);
        }
    }

    /// Received bytes on a TLS connection: decrypt, finish the TLS
    /// handshake, pass the plaintext on.
    fn tls_input(&mut self, conn: ConnId, data: &[u8]) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let Some(tls) = c.tls.as_mut() else {
            return;
        };
        let result = tls.receive(data);
        let ready = !tls.is_handshaking();
        if tls.wants_write() {
            self.mark_dirty(conn);
        }
        let plain = match result {
            Ok(plain) => plain,
            Err(e) => {
                let up = self.conns.get(&conn).is_some_and(|c| c.up_peer().is_some());
                let what = if up {
                    "TLS error"
                } else {
                    "TLS handshake failed"
                };
                self.fail_conn(conn, &format!("{what}: {e}"));
                return;
            }
        };
        if let Some(Phase::Handshake(hs)) = self.conns.get_mut(&conn).map(|c| &mut c.phase) {
            if ready && hs.awaiting_tls() {
                match hs.tls_ready() {
                    Ok(events) => self.handshake_events(conn, events),
                    Err(e) => {
                        self.fail_conn(conn, &e.to_string());
                        return;
                    }
                }
            }
        }
        if !plain.is_empty() {
            self.plain_input(conn, &plain);
        }
    }

    /// Received bytes (decrypted, with TLS) for the handshake or the
    /// frame decoder.
    fn plain_input(&mut self, conn: ConnId, data: &[u8]) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        match &mut c.phase {
            Phase::Opening => {}
            Phase::Handshake(hs) => match hs.receive(data) {
                Ok(events) => self.handshake_events(conn, events),
                Err(e) => {
                    let unsent = hs.take_unsent();
                    // The greeting may have arrived in the same chunk as the
                    // failure: still learn who answered (seeds need it).
                    let peer = hs.peer().map(|p| crate::value::str(p.node_id()));
                    c.queue_hs(&unsent);
                    if let Some(id) = peer.filter(|_| c.peer_id.is_none()) {
                        c.peer_id = Some(id.clone());
                        self.seed_greeting(conn, &id);
                    }
                    self.fail_conn(conn, &e.to_string());
                }
            },
            Phase::Up { decoder, .. } => {
                decoder.feed(data);
                self.drain_packets(conn);
            }
        }
    }

    fn handshake_events(&mut self, conn: ConnId, events: Vec<HsEvent>) {
        for ev in events {
            if !self.conns.contains_key(&conn) {
                return;
            }
            match ev {
                HsEvent::Send(bytes) => {
                    if let Some(c) = self.conns.get_mut(&conn) {
                        c.queue_hs(&bytes);
                    }
                    self.mark_dirty(conn);
                }
                HsEvent::PeerGreeting(pg) => {
                    let id = pg.node_id().to_string();
                    if let Err(e) = crate::id::validate_node_id(&id) {
                        self.fail_conn(conn, &e);
                        return;
                    }
                    let id = Str::from(id);
                    let hb = pg.greeting.has("hb");
                    if let Some(c) = self.conns.get_mut(&conn) {
                        c.peer_id = Some(id.clone());
                        c.peer_hb = hb;
                    }
                    self.seed_greeting(conn, &id);
                    if self.peer_is_up(&id) {
                        self.fail_conn(
                            conn,
                            &format!("{id} already connected, not connecting again."),
                        );
                        return;
                    }
                }
                HsEvent::StartTls { client, rest } => {
                    let session = match self.net().and_then(|n| n.tls.as_ref()) {
                        Some(ctx) => ctx.session(client),
                        None => Err("unable to handshake TLS: no certificate".into()),
                    };
                    match session {
                        Ok(s) => {
                            if let Some(c) = self.conns.get_mut(&conn) {
                                c.tls = Some(Box::new(s));
                            }
                            tracing::debug!(
                                "{conn}: starting TLS as {}",
                                if client { "client" } else { "server" }
                            );
                            // The client speaks first; `rest` may hold records.
                            self.mark_dirty(conn);
                            self.tls_input(conn, &rest);
                        }
                        Err(e) => self.fail_conn(conn, &e),
                    }
                    return;
                }
                HsEvent::Established(est) => {
                    let est = *est;
                    let max_packet = self
                        .net()
                        .map_or(crate::wire::framing::DEFAULT_MAX_PACKET, |n| n.max_packet);
                    let mut decoder = FrameDecoder::with_max_packet(est.recv_framing, max_packet);
                    decoder.feed(&est.rest);
                    let peer = Str::from(est.peer_id.as_str());
                    if est.untrusted && !super::trust::is_untrusted_id(&peer) {
                        self.fail_conn(
                            conn,
                            &format!(
                                "untrusted nodes must use a node ID starting with '{}'",
                                super::trust::UNTRUSTED_PREFIX
                            ),
                        );
                        return;
                    }
                    if let Some(c) = self.conns.get_mut(&conn) {
                        c.untrusted = est.untrusted;
                        c.auth_method = Str::from(est.auth_method.as_str());
                        // The greeting named the same node (the handshake
                        // reports it as `peer_id`).
                        c.peer_id = Some(peer.clone());
                        c.phase = Phase::Up {
                            decoder,
                            framing: est.send_framing,
                        };
                    }
                    tracing::debug!(
                        "{conn}: authenticated {peer} ({}, sends {}, receives {})",
                        est.auth_method,
                        est.send_framing,
                        est.recv_framing
                    );
                    if !self.conn_established(conn, &peer) {
                        return;
                    }
                    self.drain_packets(conn);
                    return;
                }
            }
        }
    }

    /// Decodes and dispatches every complete packet buffered on `conn`.
    fn drain_packets(&mut self, conn: ConnId) {
        loop {
            let Some(c) = self.conns.get_mut(&conn) else {
                return;
            };
            let Phase::Up { decoder, .. } = &mut c.phase else {
                return;
            };
            match decoder.next_split() {
                Ok(Some((port, msg))) => {
                    let peer = c.peer_id.clone().expect("set when the connection came up");
                    self.receive_packet(&peer, port, msg);
                }
                Ok(None) => return,
                Err(e) => {
                    self.fail_conn(conn, &e.to_string());
                    return;
                }
            }
        }
    }

    /// One packet `[port, msg…]` from `peer` (`port` is `None` for the
    /// keepalive `[]`).
    fn receive_packet(&mut self, peer: &Str, port: Option<Value>, msg: Msg) {
        let Some(port) = port else {
            return; // keepalive
        };
        let port = match &port {
            Value::Text(s) => s.clone(),
            _ => match port.as_str() {
                Some(p) => crate::value::str(p),
                None if port.is_null() => Str::default(), // Perl's trace shows undef for ""
                None => {
                    tracing::warn!("packet from {peer} with a non-string port name: {port}");
                    return;
                }
            },
        };
        self.enqueue_local(port, msg, Some(peer.clone()));
    }

    /// The connection failed or broke: forget it, ask the driver to close
    /// it, and tell whoever depended on it.
    pub(crate) fn fail_conn(&mut self, conn: ConnId, reason: &str) {
        if let Some(c) = self.conns.get_mut(&conn) {
            // What we still owe the peer (e.g. our auth line, produced in the
            // same read that brought its bad one) goes out before the close,
            // so it learns why, as it would from Perl.
            let hs = std::mem::take(&mut c.hs_out);
            let out = if c.tls.is_some() {
                // Pending packets, then close_notify (and any alert).
                let mut out = c.seal();
                if let Some(tls) = &mut c.tls {
                    tls.close();
                    tls.take_records(&mut out);
                }
                out
            } else {
                std::mem::take(&mut c.out)
            };
            if !hs.is_empty() {
                self.final_out.push(Transmit {
                    conn,
                    data: hs,
                    text: true,
                });
            }
            if !out.is_empty() {
                self.final_out.push(Transmit {
                    conn,
                    data: out,
                    text: false,
                });
            }
            self.actions.push_back(Action::Close { conn });
        }
        self.conn_gone(conn, reason);
    }

    /// The connection failed to open, broke, or the peer closed it.
    pub fn handle_closed(&mut self, now: Time, conn: ConnId, error: &str) {
        self.set_now(now);
        let tls_handshake = self
            .conns
            .get(&conn)
            .is_some_and(|c| c.tls.is_some() && c.up_peer().is_none());
        if tls_handshake {
            // E.g. OpenSSL refusing our certificate may just close.
            self.conn_gone(conn, &format!("TLS handshake failed: {error}"));
            return;
        }
        self.conn_gone(conn, error);
    }

    fn conn_gone(&mut self, conn: ConnId, reason: &str) {
        let Some(c) = self.conns.remove(&conn) else {
            return;
        };
        tracing::debug!("{conn}: closed: {reason}");
        if let Some(peer) = c.up_peer() {
            if self.peer_conn(peer) == Some(conn) {
                let peer = peer.clone();
                self.peer_down(&peer, reason);
            }
        }
        if let Some(peer) = &c.for_peer {
            self.attempt_failed(peer, conn, reason);
        }
        if let Some(seed) = c.seed {
            self.seed_conn_gone(seed, conn, c.peer_id.as_deref(), reason);
        }
    }

    fn mark_dirty(&mut self, conn: ConnId) {
        if let Some(c) = self.conns.get_mut(&conn) {
            if !c.dirty {
                c.dirty = true;
                self.dirty.push(conn);
            }
        }
    }

    /// Queues a packet on an established connection.
    pub(crate) fn conn_send(&mut self, conn: ConnId, port: &str, msg: &[Value]) {
        let now = self.now;
        if let Some(c) = self.conns.get_mut(&conn) {
            if c.push_packet(port, msg) {
                c.last_tx = now;
                if !c.dirty {
                    c.dirty = true;
                    self.dirty.push(conn);
                }
            }
        }
    }

    /// The next action for the driver.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The next bytes to write (all that is queued for one connection).
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        if !self.final_out.is_empty() {
            return Some(self.final_out.remove(0));
        }
        while let Some(&conn) = self.dirty.last() {
            let Some(c) = self.conns.get_mut(&conn) else {
                self.dirty.pop();
                continue;
            };
            if !c.hs_out.is_empty() {
                let data = std::mem::take(&mut c.hs_out);
                if c.out.is_empty() && !c.tls.as_ref().is_some_and(|t| t.wants_write()) {
                    c.dirty = false;
                    self.dirty.pop();
                }
                return Some(Transmit {
                    conn,
                    data,
                    text: true,
                });
            }
            c.dirty = false;
            self.dirty.pop();
            if c.tls.is_some() {
                let data = c.seal();
                if !data.is_empty() {
                    return Some(Transmit {
                        conn,
                        data,
                        text: false,
                    });
                }
                continue;
            }
            if !c.out.is_empty() {
                let cap = c.out.capacity().min(1 << 16);
                let data = std::mem::replace(&mut c.out, Vec::with_capacity(cap));
                return Some(Transmit {
                    conn,
                    data,
                    text: false,
                });
            }
        }
        None
    }

    /// Makes sure the periodic liveness check runs while connections exist.
    pub(crate) fn ensure_tick(&mut self) {
        if self.tick_armed || self.net.is_none() {
            return;
        }
        let every = self.tick_interval();
        self.tick_armed = true;
        let id = self.fresh_id();
        self.timers
            .insert(id, self.now + every, TimerAction::Net(NetTimer::Tick));
    }

    fn tick_interval(&self) -> Duration {
        let hb = self
            .net()
            .map_or(Duration::from_secs(1), |n| n.heartbeat_interval);
        (hb / 2).clamp(Duration::from_millis(10), Duration::from_secs(1))
    }

    /// The periodic liveness check: handshake timeouts, heartbeats.
    pub(crate) fn tick(&mut self) {
        self.tick_armed = false;
        let Some(net) = self.net.clone() else { return };
        let now = self.now;
        let mut failed = Vec::new();
        let mut keepalive = Vec::new();
        for (&id, c) in &self.conns {
            match &c.phase {
                Phase::Opening | Phase::Handshake(_) => {
                    if now.saturating_since(c.started) >= net.monitor_timeout {
                        let what = if matches!(c.phase, Phase::Opening) {
                            "connect timeout"
                        } else {
                            "handshake timeout"
                        };
                        failed.push((id, what.to_string()));
                    }
                }
                Phase::Up { .. } => {
                    if c.peer_hb && now.saturating_since(c.last_rx) >= net.heartbeat_timeout {
                        failed.push((
                            id,
                            format!(
                                "heartbeat timeout (nothing received for {:.1}s)",
                                net.heartbeat_timeout.as_secs_f64()
                            ),
                        ));
                    } else if now.saturating_since(c.last_tx) >= net.heartbeat_interval {
                        keepalive.push(id);
                    }
                }
            }
        }
        for id in keepalive {
            if let Some(c) = self.conns.get_mut(&id) {
                if let Phase::Up { framing, .. } = &c.phase {
                    encode_keepalive(*framing, &mut c.out);
                    c.last_tx = now;
                }
            }
            self.mark_dirty(id);
        }
        failed.sort();
        for (id, why) in failed {
            self.fail_conn(id, &why);
        }
        if !self.conns.is_empty() {
            self.ensure_tick();
        }
    }

    /// The auth method `node` used on its connection to us
    /// (`hmac_sha3_512`, `tls_sha3_512`, …), if it is connected.
    /// Diagnostic: tells whether a link is protected by TLS.
    pub fn peer_auth_method(&self, node: &str) -> Option<&str> {
        let c = self.conns.get(&self.peer_conn(node)?)?;
        Some(c.auth_method.as_str())
    }

    /// True if the connection to `node` is up and runs over TLS.
    pub fn peer_uses_tls(&self, node: &str) -> bool {
        self.peer_conn(node)
            .and_then(|id| self.conns.get(&id))
            .is_some_and(|c| c.tls.is_some())
    }

    /// Number of open connections (any phase).
    pub fn conn_count(&self) -> usize {
        self.conns.len()
    }
}
