//! Seeds: keeping connections to every seed address (spec §7.3).
//!
//! Every node tries to stay connected to all of its seeds. Seeds that are
//! neither connected nor being connected get an attempt at once; further
//! rounds follow after a delay that starts at 1.2–2.4 s and doubles up to
//! `monitor_timeout`. The cycle stops when every seed is connected or being
//! connected, and starts again (with a fresh delay) when a seed connection
//! drops. A seed address that turns out to be this node itself (one of our
//! listeners, or a greeting with our own ID) is dropped from the cycle.

use std::time::Duration;

use rand_chacha::rand_core::RngCore;

use super::conn::ConnId;
use super::remote::NetTimer;
use super::{Node, TimerAction};
use crate::value::Str;

/// One seed address and what we know about it.
#[derive(Debug, Clone)]
pub(crate) struct Seed {
    pub addr: String,
    /// The outgoing connection being made or in use.
    pub conn: Option<ConnId>,
    /// The node that answered at this address.
    pub node: Option<Str>,
    /// This address is our own.
    pub is_self: bool,
}

/// The seed list and the state of its maintenance cycle.
#[derive(Debug, Default)]
pub(crate) struct Seeds {
    pub list: Vec<Seed>,
    delay: Duration,
    timer: Option<u64>,
}

impl Node {
    /// Sets the seed addresses (from configuration) and starts the cycle on
    /// the next poll.
    pub(crate) fn set_seeds(&mut self, addrs: Vec<String>) {
        self.seeds.list = addrs
            .into_iter()
            .map(|addr| Seed {
                addr,
                conn: None,
                node: None,
                is_self: false,
            })
            .collect();
        if !self.seeds.list.is_empty() {
            self.restart_seed_cycle(Duration::ZERO);
        }
    }

    /// The seed addresses and the node IDs that answered there.
    pub fn seeds(&self) -> Vec<(String, Option<Str>)> {
        self.seeds
            .list
            .iter()
            .map(|s| (s.addr.clone(), s.node.clone()))
            .collect()
    }

    /// True if one of the seed addresses is this node itself.
    pub fn is_own_seed(&self) -> bool {
        self.seeds.list.iter().any(|s| s.is_self)
    }

    fn seed_up(&self, s: &Seed) -> bool {
        s.is_self || s.conn.is_some() || s.node.as_deref().is_some_and(|n| self.peer_is_up(n))
    }

    fn restart_seed_cycle(&mut self, first: Duration) {
        if let Some(t) = self.seeds.timer.take() {
            self.timers.cancel(t);
        }
        let factor = 1.0 + (self.rng.next_u32() % 1000) as f64 / 1000.0;
        self.seeds.delay = Duration::from_millis(1200).mul_f64(factor);
        let id = self.fresh_id();
        self.timers
            .insert(id, self.now + first, TimerAction::Net(NetTimer::Seeds));
        self.seeds.timer = Some(id);
    }

    /// One round: connect every seed that is down.
    pub(crate) fn seed_round(&mut self) {
        self.seeds.timer = None;
        for i in 0..self.seeds.list.len() {
            let addr = self.seeds.list[i].addr.clone();
            if self.listeners.contains(&addr) && !self.seeds.list[i].is_self {
                self.seeds.list[i].is_self = true;
                self.become_global();
            }
            if self.seed_up(&self.seeds.list[i]) {
                continue;
            }
            let conn = self.open_conn(&addr, None, Some(i));
            self.seeds.list[i].conn = Some(conn);
        }
        if self.seeds.list.iter().all(|s| self.seed_up(s)) {
            return; // all connected or connecting: the cycle rests
        }
        let delay = self.seeds.delay;
        let max = self
            .net
            .as_ref()
            .map_or(Duration::from_secs(30), |n| n.monitor_timeout);
        self.seeds.delay = (delay * 2).min(max);
        let id = self.fresh_id();
        self.timers
            .insert(id, self.now + delay, TimerAction::Net(NetTimer::Seeds));
        self.seeds.timer = Some(id);
    }

    /// A seed connection's greeting named node `id`.
    pub(crate) fn seed_greeting(&mut self, conn: ConnId, id: &Str) {
        let Some(i) = self.conns.get(&conn).and_then(|c| c.seed) else {
            return;
        };
        let Some(s) = self.seeds.list.get_mut(i) else {
            return;
        };
        if *id == self.id {
            s.is_self = true;
            s.node = Some(id.clone());
            self.become_global();
            return;
        }
        s.node = Some(id.clone());
        // The node that answered at a seed address listens there.
        let addr = s.addr.clone();
        if *id != self.id {
            self.add_node_addresses(id, vec![addr]);
        }
    }

    /// A seed connection authenticated.
    pub(crate) fn seed_node_up(&mut self, conn: ConnId, node: &Str) {
        if let Some(i) = self.conns.get(&conn).and_then(|c| c.seed) {
            if let Some(s) = self.seeds.list.get_mut(i) {
                s.node = Some(node.clone());
            }
        }
        // Every time a connection to a seed node comes up, make sure it runs
        // the global service (an empty `g_slave`, as Perl does).
        if self
            .seeds
            .list
            .iter()
            .any(|s| s.node.as_deref() == Some(node.as_str()) && !s.is_self)
        {
            self.snd(node, vec![crate::value::Value::from("g_slave")]);
        }
    }

    /// A seed's outgoing connection went away.
    pub(crate) fn seed_conn_gone(
        &mut self,
        i: usize,
        conn: ConnId,
        peer: Option<&str>,
        reason: &str,
    ) {
        let Some(s) = self.seeds.list.get_mut(i) else {
            return;
        };
        if s.conn == Some(conn) {
            s.conn = None;
        }
        let mut myself = false;
        if let Some(p) = peer {
            s.node = Some(crate::value::str(p));
            if p == self.id.as_str() && !s.is_self {
                s.is_self = true;
                myself = true;
            }
        }
        tracing::debug!("seed {}: {reason}", s.addr);
        if myself {
            self.become_global();
        }
        if self.seeds.timer.is_none() {
            self.restart_seed_cycle(self.seeds.delay.max(Duration::from_millis(1200)));
        }
    }

    /// A node went down: if it is a seed, start the cycle again.
    pub(crate) fn seed_node_down(&mut self, node: &str) {
        if self
            .seeds
            .list
            .iter()
            .any(|s| s.node.as_deref() == Some(node))
        {
            self.restart_seed_cycle(Duration::ZERO);
        }
    }
}
