//! Monitors: what happens when a watched port dies (spec §2.12).
//!
//! A monitor is one-shot. It is registered either in the local table (for
//! ports of this node, keyed by port name) or with the remote peer object
//! (for ports of other nodes). Every monitor has a numeric id, which its
//! [`Guard`](super::Guard) uses to unregister it.

use rustc_hash::FxHashMap;

use super::Node;
use crate::kernel::Reason;
use crate::value::{Msg, Str};

/// A monitor callback (form 3).
pub(crate) type MonCallback = Box<dyn FnOnce(&mut Node, Reason)>;

/// What a monitor does when it fires.
pub(crate) enum MonAction {
    /// Form 3: call back with the reason (empty = normal).
    Callback(MonCallback),
    /// Forms 1 and 2: kill this port with the same reason, unless normal.
    Link(Str),
    /// Form 4: `snd rcvport, @msg, @reason`.
    Send(Str, Msg),
}

impl MonAction {
    /// Carries the action out.
    pub(crate) fn fire(self, node: &mut Node, reason: Reason) {
        match self {
            MonAction::Callback(cb) => {
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| cb(node, reason)));
                if let Err(p) = r {
                    tracing::error!("monitor callback panicked: {}", super::panic_text(&p));
                }
            }
            MonAction::Link(port) => {
                if !reason.is_normal() {
                    if let Err(e) = node.kil(&port, reason.0) {
                        tracing::warn!("monitor could not kill {port}: {e}");
                    }
                }
            }
            MonAction::Send(port, mut msg) => {
                msg.extend(reason.0);
                node.snd(&port, msg);
            }
        }
    }
}

/// Where a monitor is registered (for unregistering by id).
#[derive(Clone, Debug)]
pub(crate) enum MonLoc {
    /// Registration job still queued.
    Pending,
    /// In the local table under this port name.
    Local(Str),
    /// With the peer object of this node, under this port name.
    Remote(Str, Str),
}

/// Monitors of one set of ports (the local table, or one peer's table).
#[derive(Default)]
pub(crate) struct MonTable {
    by_port: FxHashMap<Str, Vec<(u64, MonAction)>>,
}

impl MonTable {
    /// Adds a monitor; returns true if it is the first for this port.
    pub fn add(&mut self, port: Str, id: u64, action: MonAction) -> bool {
        let v = self.by_port.entry(port).or_default();
        v.push((id, action));
        v.len() == 1
    }

    /// Removes a monitor by id; returns `Some(true)` if the port has no
    /// monitors left, `None` if the id was not there.
    pub fn remove(&mut self, port: &str, id: u64) -> Option<bool> {
        let v = self.by_port.get_mut(port)?;
        let i = v.iter().position(|(x, _)| *x == id)?;
        v.remove(i);
        if v.is_empty() {
            self.by_port.remove(port);
            Some(true)
        } else {
            Some(false)
        }
    }

    /// Takes every monitor of one port.
    pub fn take(&mut self, port: &str) -> Vec<(u64, MonAction)> {
        self.by_port.remove(port).unwrap_or_default()
    }

    /// Takes every monitor of every port.
    pub fn take_all(&mut self) -> Vec<(u64, MonAction)> {
        self.by_port.drain().flat_map(|(_, v)| v).collect()
    }
}
