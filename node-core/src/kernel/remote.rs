//! Remote node objects: what this node knows about each other node (spec §7.1).
//!
//! A [`Peer`] exists for every node we send to, monitor, are monitored by, or
//! are connected to. It holds the monitors set on that node's ports (the
//! first one for a port sends `mon1`, removing the last sends `mon0`), the
//! monitors that node holds on *our* ports (`mon1` received), the packets
//! queued while no connection is up, and the connect attempt in progress.
//!
//! When the node cannot be reached, or its connection breaks,
//! [`Node::transport_error`] discards the queue and fires **every** monitor of
//! every port of that node with `transport_error => nodeid, text` — the "no
//! silent gap" rule: a lost message is always followed by a fired monitor.
//! Failures found inside `snd`/`mon` (no address known) are delivered from
//! the run queue, never from inside the call.
//!
//! Connecting (spec §7.1): the addresses known for the node are tried in
//! order, one every `connect_interval` (less when there are many: the whole
//! list fits into `monitor_timeout`, but never faster than every 0.4 s),
//! the next one at once when one fails. The attempt fails when every address
//! failed, or after `monitor_timeout` ("connect timeout"; we use the
//! documented budget rather than Perl 2.02's `connect_interval`, see
//! spec §14.3). Whatever node answers becomes connected under its own ID.
//!
//! Two connections between the same pair of nodes (simultaneous connects):
//! the one opened by the node with the smaller ID wins on both sides. If the
//! loser was already carrying packets it is dropped with
//! `switched connections` (its monitors fire, as in Perl); a loser that
//! never carried packets is closed quietly.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Duration;

use rand_chacha::rand_core::RngCore;
use rustc_hash::FxHashMap;

use super::conn::{Action, ConnId};
use super::guard::GuardAction;
use super::monitor::{MonAction, MonLoc, MonTable};
use super::{Guard, Job, Node, Reason, TimerAction};
use crate::value::{Msg, Str, Value};

/// Internal timers of the connection layer.
#[derive(Debug, Clone)]
pub(crate) enum NetTimer {
    /// Liveness check of all connections.
    Tick,
    /// Try the next address of a node.
    ConnectStep(Str),
    /// Give up connecting to a node.
    ConnectDeadline(Str),
    /// Seed maintenance round.
    Seeds,
    /// Global nodes: reconnect the global nodes that are down.
    Keepalive,
}

/// A connect attempt in progress.
struct Attempt {
    addrs: Vec<String>,
    next: usize,
    pending: Vec<ConnId>,
    last_error: String,
    step: Option<u64>,
    deadline: u64,
}

/// What we know about one other node.
#[derive(Default)]
pub(crate) struct Peer {
    /// Monitors we hold on that node's ports, by port name (`""` = the node).
    monitors: MonTable,
    /// Our ports that node monitors (`mon1`), with the local monitor id.
    rmon: FxHashMap<Str, u64>,
    /// Packets waiting for a connection, and their estimated size.
    queue: VecDeque<(Str, Msg)>,
    queued_bytes: usize,
    /// The established connection.
    up: Option<ConnId>,
    /// Reached through this route node instead (bind-less nodes).
    via: Option<Str>,
    /// Its packets reach us through this route node (may differ from `via`
    /// when both sides started talking at once).
    via_in: Option<Str>,
    attempt: Option<Attempt>,
    /// A failure is already scheduled on the run queue.
    failing: bool,
}

/// A `mon_nodes` callback: `(node, is_up, reason)`.
pub(crate) type NodeMonCallback = Rc<RefCell<dyn FnMut(&mut Node, &str, bool, &Reason)>>;

/// All peers, by node ID, plus the address book and node monitors.
#[derive(Default)]
pub(crate) struct Peers {
    map: FxHashMap<Str, Peer>,
    /// Known listener addresses of other nodes.
    addrs: FxHashMap<Str, Vec<String>>,
    node_mons: Vec<(u64, NodeMonCallback)>,
}

impl Peers {
    /// The connect attempt in progress for `node`.
    fn attempt_mut(&mut self, node: &str) -> Option<&mut Attempt> {
        self.map.get_mut(node).and_then(|p| p.attempt.as_mut())
    }

    fn get_or_create(&mut self, node: &str) -> &mut Peer {
        if !self.map.contains_key(node) {
            self.map.insert(crate::value::str(node), Peer::default());
        }
        self.map.get_mut(node).expect("just inserted")
    }
}

/// A rough size of a message on the wire, for the queue bound.
fn estimate(msg: &[Value]) -> usize {
    fn one(v: &Value) -> usize {
        match v {
            Value::Text(s) => s.len() + 2,
            Value::Bytes(b) => b.len() + 2,
            Value::Array(a) => 2 + a.iter().map(one).sum::<usize>(),
            Value::Map(m) => 2 + m.iter().map(|(k, v)| one(k) + one(v)).sum::<usize>(),
            _ => 9,
        }
    }
    16 + msg.iter().map(one).sum::<usize>()
}

impl Node {
    /// Sends a packet `[port, msg…]` to another node: at once if connected,
    /// else queued (bounded by `max_queue` bytes) while connecting.
    pub(super) fn send_remote(&mut self, node: &str, port: &str, msg: Msg) {
        match self.peers.map.get(node) {
            Some(Peer { up: Some(conn), .. }) => {
                let conn = *conn;
                self.conn_send(conn, port, &msg);
                return;
            }
            Some(Peer { via: Some(via), .. }) => {
                let via = via.clone();
                self.send_routed(&via, node, port, msg);
                return;
            }
            _ => {}
        }
        let max = self.net.as_ref().map_or(usize::MAX, |n| n.max_queue);
        let size = estimate(&msg);
        let peer = self.peers.get_or_create(node);
        if peer.queued_bytes + size > max {
            if !peer.failing {
                tracing::error!(
                    "{node}: send queue overflow ({} bytes queued), message lost",
                    peer.queued_bytes
                );
                self.schedule_failure(node, "send queue overflow");
            }
            return;
        }
        peer.queued_bytes += size;
        peer.queue.push_back((crate::value::str(port), msg));
        self.connect(node);
    }

    /// Reports a failure to reach `node` from the run queue.
    fn schedule_failure(&mut self, node: &str, text: &'static str) {
        let peer = self.peers.get_or_create(node);
        if peer.failing {
            return;
        }
        peer.failing = true;
        let node = crate::value::str(node);
        self.queue
            .push_back(Job::Call(Box::new(move |n: &mut Node| {
                n.transport_error(&node, text);
            })));
    }

    /// Starts connecting to `node` unless connected or already trying.
    /// Addresses come from the address book (seeds, `add_node_addresses`),
    /// a global node's merged `'l` family, or — on other nodes — a `g_find`
    /// to the master (spec §4.5).
    pub(crate) fn connect(&mut self, node: &str) {
        let peer = self.peers.get_or_create(node);
        if peer.up.is_some() || peer.via.is_some() || peer.attempt.is_some() || peer.failing {
            return;
        }
        let Some(net) = self.net.as_ref() else {
            self.schedule_failure(node, "node not configured");
            return;
        };
        let monitor_timeout = net.monitor_timeout;
        if self.untrusted_self {
            // An untrusted node can only authenticate with nodes holding the
            // web secret: it reaches everyone through its master.
            match self.db.master.clone() {
                Some(m) if m.as_str() != node => self.route_up(node, &m),
                Some(_) => {}
                None => {} // queued until a master is attached (see master_set)
            }
            return;
        }
        if let Some(via) = self.global_route(node) {
            if via != node && self.peer_is_up(&via) || via == self.id {
                self.route_up(node, &via);
                return;
            }
        }
        let mut addrs = self.peers.addrs.get(node).cloned().unwrap_or_default();
        for a in self.global_addresses(node).unwrap_or_default() {
            if !addrs.contains(&a) {
                addrs.push(a);
            }
        }
        let ask_master = addrs.is_empty() && !self.is_global();
        if addrs.is_empty() && !ask_master {
            self.schedule_failure(node, "no known address");
            return;
        }
        tracing::debug!("connecting to {node} at {addrs:?}");
        let deadline = self.fresh_id();
        self.timers.insert(
            deadline,
            self.now + monitor_timeout,
            TimerAction::Net(NetTimer::ConnectDeadline(crate::value::str(node))),
        );
        self.peers.get_or_create(node).attempt = Some(Attempt {
            addrs,
            next: 0,
            pending: Vec::new(),
            last_error: "connect timeout".into(),
            step: None,
            deadline,
        });
        if ask_master {
            self.g_find(node);
        } else {
            self.try_next_addr(node);
        }
    }

    /// The master answered a `g_find`: try those addresses, or the route
    /// (extension) for a bind-less node.
    pub(super) fn found_addresses(&mut self, node: &str, addrs: Vec<String>, route: Option<Str>) {
        let Some(att) = self.peers.attempt_mut(node) else {
            return;
        };
        if addrs.is_empty() && att.addrs.is_empty() {
            if let Some(via) = route.filter(|v| v.as_str() != node) {
                self.route_up(node, &via);
                return;
            }
        }
        let Some(att) = self.peers.attempt_mut(node) else {
            return;
        };
        for a in addrs {
            if !att.addrs.contains(&a) {
                att.addrs.push(a);
            }
        }
        if !att.pending.is_empty() || att.step.is_some() {
            return; // already working through the list
        }
        if att.next < att.addrs.len() {
            self.try_next_addr(node);
        } else {
            self.transport_error(node, "no known address");
        }
    }

    /// The spacing between addresses (spec §7.1).
    fn connect_step(&mut self, n_addrs: usize) -> Duration {
        let Some(net) = self.net.as_ref() else {
            return Duration::from_secs(2);
        };
        let mut interval = net.connect_interval;
        if n_addrs > 0 {
            let fit = net.monitor_timeout.saturating_sub(net.connect_interval) / n_addrs as u32;
            interval = interval.min(fit);
        }
        let interval = interval.max(Duration::from_millis(400));
        let jitter = 0.9 + (self.rng.next_u32() % 1000) as f64 / 10_000.0;
        interval.mul_f64(jitter)
    }

    fn try_next_addr(&mut self, node: &str) {
        let Some(att) = self.peers.attempt_mut(node) else {
            return;
        };
        if let Some(t) = att.step.take() {
            self.timers.cancel(t);
        }
        let Some(att) = self.peers.attempt_mut(node) else {
            return;
        };
        if att.next >= att.addrs.len() {
            return;
        }
        let addr = att.addrs[att.next].clone();
        att.next += 1;
        let more = att.next < att.addrs.len();
        let n = att.addrs.len();
        let conn = self.open_conn(&addr, Some(crate::value::str(node)), None);
        let step = if more {
            Some(self.connect_step(n))
        } else {
            None
        };
        let step_id = step.map(|d| {
            let id = self.fresh_id();
            self.timers.insert(
                id,
                self.now + d,
                TimerAction::Net(NetTimer::ConnectStep(crate::value::str(node))),
            );
            id
        });
        if let Some(att) = self.peers.attempt_mut(node) {
            att.pending.push(conn);
            att.step = step_id;
        }
    }

    /// One address of a connect attempt failed.
    pub(crate) fn attempt_failed(&mut self, node: &str, conn: ConnId, reason: &str) {
        let Some(att) = self.peers.attempt_mut(node) else {
            return;
        };
        att.pending.retain(|c| *c != conn);
        att.last_error = reason.to_string();
        if !att.pending.is_empty() {
            return;
        }
        if att.next < att.addrs.len() {
            self.try_next_addr(node);
        } else {
            let text = att.last_error.clone();
            self.transport_error(node, &text);
        }
    }

    /// Ends a connect attempt: cancels its timers and closes its other
    /// connections quietly (all but `keep`).
    fn end_attempt(&mut self, node: &str, keep: Option<ConnId>) {
        let Some(att) = self.peers.map.get_mut(node).and_then(|p| p.attempt.take()) else {
            return;
        };
        self.timers.cancel(att.deadline);
        if let Some(t) = att.step {
            self.timers.cancel(t);
        }
        for c in att.pending {
            if Some(c) != keep && self.conns.remove(&c).is_some() {
                self.actions.push_back(Action::Close { conn: c });
            }
        }
    }

    /// Internal timers.
    pub(super) fn net_timer(&mut self, t: NetTimer) {
        match t {
            NetTimer::Tick => self.tick(),
            NetTimer::ConnectStep(node) => {
                if let Some(att) = self.peers.attempt_mut(&node) {
                    att.step = None;
                    self.try_next_addr(&node);
                }
            }
            NetTimer::ConnectDeadline(node) => {
                if self
                    .peers
                    .map
                    .get(&node)
                    .is_some_and(|p| p.attempt.is_some())
                {
                    self.transport_error(&node, "connect timeout");
                }
            }
            NetTimer::Seeds => self.seed_round(),
            NetTimer::Keepalive => self.keepalive_all(),
        }
    }

    /// A connection authenticated as `peer`. Returns false if it was closed
    /// (lost a race against another connection).
    pub(crate) fn conn_established(&mut self, conn: ConnId, peer: &Str) -> bool {
        let outgoing = self.conns.get(&conn).is_some_and(|c| c.outgoing);
        if let Some(old) = self.peers.map.get(peer).and_then(|p| p.up) {
            if old != conn {
                // The connection opened by the smaller node ID wins on both sides.
                let keep_new = outgoing == (self.id.as_str() < peer.as_str());
                if !keep_new {
                    tracing::debug!("{conn}: second connection to {peer}, closing it");
                    self.fail_conn_quietly(conn);
                    return false;
                }
                self.transport_error(peer, "switched connections");
            }
        } else if self.is_routed(peer) {
            // A direct connection replaces a route; packets may still be in
            // flight on the old path, so the switch fires monitors (as Perl's
            // "switched connections" does).
            self.transport_error(peer, "switched connections");
        }
        self.end_attempt(peer, Some(conn));
        let p = self.peers.get_or_create(peer);
        p.up = Some(conn);
        p.failing = false;
        let queue = std::mem::take(&mut p.queue);
        p.queued_bytes = 0;
        for (port, msg) in queue {
            self.conn_send(conn, &port, &msg);
        }
        tracing::info!("node {peer} is up");
        self.seed_node_up(conn, peer);
        self.emit_node_event(peer, true, &Reason::normal());
        true
    }

    /// `node` is reachable through the route node `via`: flush its queue.
    pub(super) fn route_up(&mut self, node: &str, via: &str) {
        self.end_attempt(node, None);
        let p = self.peers.get_or_create(node);
        if p.up.is_some() {
            return;
        }
        p.via = Some(crate::value::str(via));
        p.failing = false;
        let queue = std::mem::take(&mut p.queue);
        p.queued_bytes = 0;
        tracing::info!("node {node} is up (routed via {via})");
        for (port, msg) in queue {
            self.send_routed(via, node, &port, msg);
        }
        let n = crate::value::str(node);
        self.emit_node_event(&n, true, &Reason::normal());
    }

    /// A packet from `node` came through `via`: answer the same way, unless
    /// we have a direct connection.
    pub(super) fn learn_route(&mut self, node: &str, via: &str) {
        if node == self.id.as_str() {
            return;
        }
        let p = self.peers.get_or_create(node);
        p.via_in = Some(crate::value::str(via));
        if p.up.is_some() || p.via.is_some() {
            return;
        }
        self.route_up(node, via);
    }

    /// Peers with queued packets and no way to send them yet.
    pub(super) fn peers_waiting(&self) -> Vec<Str> {
        self.peers
            .map
            .iter()
            .filter(|(_, p)| {
                p.up.is_none() && p.via.is_none() && p.attempt.is_none() && !p.queue.is_empty()
            })
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// True if packets for or from `node` travel through a route node.
    pub(super) fn is_routed(&self, node: &str) -> bool {
        self.peers
            .map
            .get(node)
            .is_some_and(|p| p.up.is_none() && p.via.is_some())
    }

    /// Forgets a connection without blaming anyone.
    fn fail_conn_quietly(&mut self, conn: ConnId) {
        if let Some(c) = self.conns.remove(&conn) {
            self.actions.push_back(Action::Close { conn });
            if let Some(peer) = c.for_peer {
                if let Some(att) = self.peers.attempt_mut(&peer) {
                    att.pending.retain(|x| *x != conn);
                }
            }
            if let Some(seed) = c.seed {
                self.seed_conn_gone(seed, conn, c.peer_id.as_deref(), "duplicate connection");
            }
        }
    }

    /// The established connection to `peer` broke.
    pub(crate) fn peer_down(&mut self, peer: &str, reason: &str) {
        self.transport_error(peer, reason);
    }

    /// The connection to `node` failed or was lost: discard its queue, fire
    /// every monitor of its ports with `transport_error => node, text`,
    /// forget what it monitored here, and report the node down.
    pub fn transport_error(&mut self, node: &str, text: &str) {
        self.end_attempt(node, None);
        let Some(mut peer) = self.peers.map.remove(node) else {
            return;
        };
        let was_up = peer.up.is_some() || peer.via.is_some();
        if let Some(c) = peer.up.take() {
            if self.conns.remove(&c).is_some() {
                self.actions.push_back(Action::Close { conn: c });
            }
        }
        let lost = peer.queue.len();
        if lost > 0 {
            tracing::debug!("{node}: {text}; {lost} queued packet(s) discarded");
        }
        if was_up {
            tracing::info!("node {node} is down: {text}");
        } else {
            tracing::debug!("cannot reach {node}: {text}");
        }
        let reason = Reason::transport_error(node, text);
        for (id, action) in peer.monitors.take_all() {
            self.mon_index.remove(&id);
            action.fire(self, reason.clone());
        }
        for (_, id) in peer.rmon.drain() {
            self.unmon(id);
        }
        // As a route node: tell both ends of every route through us.
        self.route_node_down(node, text);
        if was_up {
            self.seed_node_down(node);
            self.emit_node_event(node, false, &reason);
            // Nodes we reached, or that reached us, through this one are
            // lost too: both directions of a routed pair share one fate.
            let routed: Vec<Str> = self
                .peers
                .map
                .iter()
                .filter(|(_, p)| {
                    p.up.is_none()
                        && (p.via.as_deref() == Some(node) || p.via_in.as_deref() == Some(node))
                })
                .map(|(k, _)| k.clone())
                .collect();
            for r in routed {
                self.transport_error(&r, &format!("route via {node} lost: {text}"));
            }
        }
    }

    /// Registers a monitor on a port of another node.
    pub(super) fn mon_remote(&mut self, node: &str, port: &str, id: u64, action: MonAction) {
        let peer = self.peers.get_or_create(node);
        let first = peer.monitors.add(crate::value::str(port), id, action);
        self.mon_index.insert(
            id,
            MonLoc::Remote(crate::value::str(node), crate::value::str(port)),
        );
        if first && !port.is_empty() {
            self.send_remote(node, "", vec![Value::from("mon1"), Value::from(port)]);
        } else if port.is_empty() {
            // Monitoring a node: make sure a failure to reach it is noticed.
            self.connect(node);
        }
    }

    /// Removes a monitor on a port of another node.
    pub(super) fn unmon_remote(&mut self, node: &str, port: &str, id: u64) {
        let Some(peer) = self.peers.map.get_mut(node) else {
            return;
        };
        if peer.monitors.remove(port, id) == Some(true) && !port.is_empty() && peer.up.is_some() {
            self.send_remote(node, "", vec![Value::from("mon0"), Value::from(port)]);
        }
    }

    /// `mon1`, `mon0`, `kil0`, `kil1` from another node (spec §6.1).
    pub(super) fn monitor_request(&mut self, tag: &str, mut msg: Msg) {
        let Some(port) = msg.first().and_then(Value::as_str).map(crate::value::str) else {
            tracing::warn!(
                "error processing node message from {}: {tag} without port",
                self.src_node()
            );
            return;
        };
        let src = crate::value::str(self.src_node());
        match tag {
            "mon1" => {
                if src == self.id {
                    return; // a node never monitors itself over the wire
                }
                let peer = self.peers.get_or_create(&src);
                if peer.rmon.contains_key(&port) {
                    return;
                }
                let full = self.full_id(&port);
                let s2 = src.clone();
                let p2 = port.clone();
                let g = self.mon(&full, move |n: &mut Node, reason: Reason| {
                    let connected = match n.peers.map.get_mut(&s2) {
                        Some(peer) => {
                            peer.rmon.remove(&p2);
                            peer.up.is_some() || peer.via.is_some()
                        }
                        None => false,
                    };
                    if connected {
                        let mut m = Vec::with_capacity(reason.0.len() + 2);
                        m.push(Value::from("kil0"));
                        m.push(Value::from(&p2));
                        m.extend(reason.0);
                        n.send_remote(&s2, "", m);
                    }
                });
                if let Some(id) = g.monitor_id() {
                    self.peers.get_or_create(&src).rmon.insert(port, id);
                }
                g.forget();
            }
            "mon0" => {
                if let Some(id) = self
                    .peers
                    .map
                    .get_mut(&src)
                    .and_then(|p| p.rmon.remove(&port))
                {
                    self.unmon(id);
                }
            }
            "kil0" => {
                msg.remove(0);
                let reason = Reason(msg);
                let actions = match self.peers.map.get_mut(&src) {
                    Some(peer) => peer.monitors.take(&port),
                    None => Vec::new(),
                };
                for (id, action) in actions {
                    self.mon_index.remove(&id);
                    action.fire(self, reason.clone());
                }
            }
            "kil1" => {
                msg.remove(0);
                if port.is_empty() {
                    tracing::warn!("{src} asked to kill our node port, refused");
                    return;
                }
                self.queue.push_back(Job::Kill {
                    port,
                    reason: Reason(msg),
                });
            }
            _ => {}
        }
    }

    // ------------------------------------------------------------ public info

    /// Adds listener addresses for a node (`host:port` or `ws://` URLs), so
    /// that sending to it can connect. The global database feeds this.
    pub fn add_node_addresses(&mut self, node: &str, addrs: Vec<String>) {
        let e = self.peers.addrs.entry(crate::value::str(node)).or_default();
        for a in addrs {
            if !e.contains(&a) {
                e.push(a);
            }
        }
    }

    /// The connection carrying packets to `node`, if up.
    pub(crate) fn peer_conn(&self, node: &str) -> Option<ConnId> {
        self.peers.map.get(node).and_then(|p| p.up)
    }

    /// True if a connection to `node` is up.
    pub(crate) fn peer_is_up(&self, node: &str) -> bool {
        self.peer_conn(node).is_some()
    }

    /// `node_is_up`: `Some(true)` if connected (or `node` is this node),
    /// `Some(false)` if known but not connected, `None` if unknown.
    pub fn node_is_up(&self, node: &str) -> Option<bool> {
        if node == self.id.as_str() {
            return Some(true);
        }
        self.peers
            .map
            .get(node)
            .map(|p| p.up.is_some() || p.via.is_some())
    }

    /// The IDs of all connected nodes (without this one).
    pub fn up_nodes(&self) -> Vec<Str> {
        let mut v: Vec<Str> = self
            .peers
            .map
            .iter()
            .filter(|(_, p)| p.up.is_some())
            .map(|(k, _)| k.clone())
            .collect();
        v.sort();
        v
    }

    /// Calls `cb(node, is_up, reason)` whenever a connection to a node comes
    /// up or goes down (up and down strictly alternate per node).
    /// Dropping the guard unregisters it.
    pub fn mon_nodes(&mut self, cb: impl FnMut(&mut Node, &str, bool, &Reason) + 'static) -> Guard {
        let id = self.fresh_id();
        self.peers.node_mons.push((id, Rc::new(RefCell::new(cb))));
        Guard::new(&self.guards, GuardAction::MonNodes(id))
    }

    pub(super) fn unmon_nodes(&mut self, id: u64) {
        self.peers.node_mons.retain(|(i, _)| *i != id);
    }

    fn emit_node_event(&mut self, node: &str, up: bool, reason: &Reason) {
        self.db_node_event(node, up);
        let cbs: Vec<NodeMonCallback> = self
            .peers
            .node_mons
            .iter()
            .map(|(_, cb)| cb.clone())
            .collect();
        for cb in cbs {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                (cb.borrow_mut())(self, node, up, reason)
            }));
            if let Err(p) = r {
                tracing::error!("mon_nodes callback panicked: {}", super::panic_text(&p));
            }
        }
    }

    /// Number of packets queued for `node` (diagnostics and tests).
    pub fn queued_for(&self, node: &str) -> usize {
        self.peers.map.get(node).map_or(0, |p| p.queue.len())
    }
}
