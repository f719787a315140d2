//! Remote node objects: what this node knows about each other node (spec §7.1).
//!
//! A [`Peer`] exists for every node we send to, monitor, or are monitored
//! by. It holds the monitors set on that node's ports (the first one for a
//! port sends `mon1`, removing the last sends `mon0`), the monitors that node
//! holds on *our* ports (`mon1` received), and the packets queued while no
//! connection is up.
//!
//! When the node cannot be reached, [`Node::transport_error`] discards the
//! queue and fires **every** monitor of every port of that node with
//! `transport_error => nodeid, text` — the "no silent gap" rule: a lost
//! message is always followed by a fired monitor. The failure is always
//! delivered from the run queue, never from inside `snd` or `mon`.
//!
//! Connections (handshake, framing, addresses) plug in below this layer;
//! without one a peer fails with `no known address`.

use std::collections::VecDeque;

use rustc_hash::FxHashMap;

use super::monitor::{MonAction, MonLoc, MonTable};
use super::{Job, Node, Reason};
use crate::value::{Msg, Str, Value};

/// What we know about one other node.
#[derive(Default)]
pub(crate) struct Peer {
    /// Monitors we hold on that node's ports, by port name (`""` = the node).
    monitors: MonTable,
    /// Our ports that node monitors (`mon1`), with the local monitor id.
    rmon: FxHashMap<Str, u64>,
    /// Packets waiting for a connection.
    queue: VecDeque<(Str, Msg)>,
    /// A failure is already scheduled.
    failing: bool,
}

/// All peers, by node ID.
#[derive(Default)]
pub(crate) struct Peers {
    map: FxHashMap<Str, Peer>,
}

impl Peers {
    fn get_or_create(&mut self, node: &str) -> &mut Peer {
        if !self.map.contains_key(node) {
            self.map.insert(crate::value::str(node), Peer::default());
        }
        self.map.get_mut(node).expect("just inserted")
    }
}

impl Node {
    /// Sends a packet `[port, msg…]` to another node.
    pub(super) fn send_remote(&mut self, node: &str, port: &str, msg: Msg) {
        let peer = self.peers.get_or_create(node);
        peer.queue.push_back((crate::value::str(port), msg));
        self.connect(node);
    }

    /// Starts connecting to `node` unless a connection or a failure is
    /// already under way. No transport is attached yet, so the address is
    /// unknown.
    fn connect(&mut self, node: &str) {
        let peer = self.peers.get_or_create(node);
        if peer.failing {
            return;
        }
        peer.failing = true;
        let node = crate::value::str(node);
        self.queue
            .push_back(Job::Call(Box::new(move |n: &mut Node| {
                n.transport_error(&node, "no known address");
            })));
    }

    /// The connection to `node` failed or was lost: discard its queue, fire
    /// every monitor of its ports with `transport_error => node, text`, and
    /// forget what it monitored here.
    pub fn transport_error(&mut self, node: &str, text: &str) {
        let Some(mut peer) = self.peers.map.remove(node) else {
            return;
        };
        let lost = peer.queue.len();
        if lost > 0 {
            tracing::debug!("{node}: {text}; {lost} queued packet(s) discarded");
        }
        let reason = Reason::transport_error(node, text);
        for (id, action) in peer.monitors.take_all() {
            self.mon_index.remove(&id);
            action.fire(self, reason.clone());
        }
        for (_, id) in peer.rmon.drain() {
            self.unmon(id);
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
        if peer.monitors.remove(port, id) == Some(true) && !port.is_empty() {
            self.send_remote(node, "", vec![Value::from("mon0"), Value::from(port)]);
        }
    }

    /// `mon1`, `mon0`, `kil0`, `kil1` from another node (spec §6.1).
    pub(super) fn monitor_request(&mut self, tag: &str, mut msg: Msg) {
        let Some(port) = msg.first().and_then(Value::as_str).map(Str::from) else {
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
                    if let Some(peer) = n.peers.map.get_mut(&s2) {
                        peer.rmon.remove(&p2);
                    }
                    let mut m = Vec::with_capacity(reason.0.len() + 2);
                    m.push(Value::from("kil0"));
                    m.push(Value::from(&p2));
                    m.extend(reason.0);
                    n.send_remote(&s2, "", m);
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

    /// Requests of the global protocol (`g_*`). This node runs no global
    /// service, so they are refused with a log line.
    pub(super) fn global_request(&mut self, tag: &str, _msg: Msg) {
        tracing::warn!(
            "error processing node message from {}: {tag}: this node does not run the global service",
            self.src_node()
        );
    }

    /// Whether requests from `node` may run functions here (all
    /// authenticated peers are trusted; untrusted browser connections are
    /// a later extension).
    pub(super) fn peer_trusted(&self, _node: &str) -> bool {
        true
    }

    /// Number of packets queued for `node` (diagnostics and tests).
    pub fn queued_for(&self, node: &str) -> usize {
        self.peers.map.get(node).map_or(0, |p| p.queue.len())
    }
}
