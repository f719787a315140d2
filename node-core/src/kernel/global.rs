//! The global service: what makes a node a *global node* (spec §4.1, §4.4).
//!
//! Global nodes form a full mesh, hold the merged database of the whole
//! network and answer address lookups. The merge is per *shard*: every
//! contributing node (our slaves, including ourselves, and the other global
//! nodes) has its own shard, and the global view of a key is the value from
//! one of the shards that hold it. This is a faithful port of Perl
//! AnyEvent::MP 2.02's `Global.pm`, including its replacement rule on
//! delete: when a key disappears from one shard but another still holds it,
//! the value from a shard of one of *our slaves* wins, else one from another
//! global node's shard (and the delete is forwarded to the other globals).
//!
//! A node becomes global when it finds its own address in its seed list,
//! when another node sends it `g_slave`, or when its services list names
//! `AnyEvent::MP::Global::`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rand_chacha::rand_core::RngCore;

use super::db::{db_value, family_value, key_list, map_entries, sv_eq, DbChange, DbFamily, DbMap};
use super::remote::NetTimer;
use super::{Node, TimerAction};
use crate::value::{Msg, Str, Value};

/// State of a global node.
#[derive(Default)]
pub(crate) struct Global {
    /// All local databases merged (`%GLOBAL_DB`).
    pub db: DbMap,
    /// The shard of every contributing node (`%LOCAL_DBS`).
    shards: BTreeMap<Str, DbMap>,
    /// Our slaves and the families each monitors (`%GLOBAL_SLAVE`).
    slaves: BTreeMap<Str, BTreeSet<Str>>,
    /// Subscribers per family (`%GLOBAL_MON`).
    mons: BTreeMap<Str, BTreeSet<Str>>,
    /// Global nodes to stay connected to, with a use count.
    keepalive: BTreeMap<Str, usize>,
    keepalive_down: BTreeSet<Str>,
    keepalive_retry: Duration,
    keepalive_timer: Option<u64>,
}

impl Node {
    /// True if this node runs the global service.
    pub fn is_global(&self) -> bool {
        self.global.is_some()
    }

    /// The merged database of the network as this global node sees it.
    pub fn global_db(&self) -> Option<&BTreeMap<Str, DbFamily>> {
        self.global.as_ref().map(|g| &g.db)
    }

    /// Starts the global service (Perl's `post_configure` hook of `Global.pm`).
    pub fn become_global(&mut self) {
        if self.global.is_some() || !self.is_configured() {
            return;
        }
        tracing::info!("{} becomes a global node", self.id);
        self.global = Some(Global::default());
        let me = self.id.clone();
        // Global nodes are their own masters.
        self.master_set(&me);
        self.db_set("'g", &me, Value::Null).forget();
        for n in self.up_nodes() {
            self.snd(&n, vec![Value::from("g_global")]);
            if self.db.globals.contains_key(&n) {
                self.g_global_connect(&n);
            }
        }
        // Keep connections to every global node we learn of.
        self.db_mon("'g", |n: &mut Node, c: &DbChange<'_>| {
            for k in c.added {
                n.keepalive_add(k);
            }
            for k in c.deleted {
                n.keepalive_del(k);
            }
        })
        .forget();
    }

    /// Sends `msg` to every other global node.
    fn g_broadcast(&mut self, msg: Msg) {
        let nodes: Vec<Str> = self.db.globals.keys().cloned().collect();
        for n in nodes {
            self.snd(&n, msg.clone());
        }
    }

    /// The update algorithm (Perl's `g_upd`): `node`'s shard of `family`
    /// gets `set` and loses `del`.
    fn g_upd(&mut self, node: &Str, family: &Str, set: Vec<(Str, Value)>, del: Vec<Str>) {
        let Some(g) = self.global.as_mut() else {
            return;
        };
        let mut set: BTreeMap<Str, Value> = set.into_iter().collect();
        let node_is_slave = g.slaves.contains_key(node);
        {
            let ldb = g
                .shards
                .entry(node.clone())
                .or_default()
                .entry(family.clone())
                .or_default();
            let gdb = g.db.entry(family.clone()).or_default();
            for (k, v) in &set {
                ldb.insert(k.clone(), v.clone());
                gdb.insert(k.clone(), v.clone());
            }
        }
        let mut local_set: BTreeMap<Str, Value> = BTreeMap::new();
        let mut bcast_extra: BTreeMap<Str, Value> = BTreeMap::new();
        let (mut del_local, mut del_global) = (Vec::new(), Vec::new());
        for k in del {
            if let Some(l) = g.shards.get_mut(node).and_then(|s| s.get_mut(family)) {
                l.remove(&k);
            }
            let others: Vec<Str> = g
                .shards
                .iter()
                .filter(|(_, s)| s.get(family).is_some_and(|f| f.contains_key(&k)))
                .map(|(n, _)| n.clone())
                .collect();
            if others.is_empty() {
                if let Some(gdb) = g.db.get_mut(family) {
                    gdb.remove(&k);
                }
                if node_is_slave {
                    del_global.push(k.clone());
                }
                del_local.push(k);
                continue;
            }
            let current = g.db.get(family).and_then(|f| f.get(&k)).cloned();
            let differs = |v: &Value| current.as_ref().is_none_or(|c| !sv_eq(c, v));
            if let Some(local) = others.iter().find(|n| g.slaves.contains_key(*n)) {
                let v = g.shards[local][family][&k].clone();
                if differs(&v) {
                    g.db.entry(family.clone())
                        .or_default()
                        .insert(k.clone(), v.clone());
                    set.insert(k, v);
                } else if node_is_slave {
                    bcast_extra.insert(k, v);
                }
            } else {
                let global = &others[0];
                let v = g.shards[global][family][&k].clone();
                del_global.push(k.clone());
                if differs(&v) {
                    g.db.entry(family.clone())
                        .or_default()
                        .insert(k.clone(), v.clone());
                    local_set.insert(k, v);
                }
            }
        }
        if g.db.get(family).is_some_and(DbFamily::is_empty) {
            g.db.remove(family);
        }
        if let Some(s) = g.shards.get_mut(node) {
            if s.get(family).is_some_and(DbFamily::is_empty) {
                s.remove(family);
            }
        }
        let subscribers: Vec<Str> = g
            .mons
            .get(family)
            .map(|m| m.iter().cloned().collect())
            .unwrap_or_default();
        let to_map = |m: &BTreeMap<Str, Value>| {
            Value::Map(m.iter().map(|(k, v)| (Value::from(k), v.clone())).collect())
        };
        let keys = |v: &[Str]| Value::Array(v.iter().map(Value::from).collect());
        if node_is_slave && (!set.is_empty() || !del_global.is_empty() || !bcast_extra.is_empty()) {
            let mut b = bcast_extra.clone();
            b.extend(set.iter().map(|(k, v)| (k.clone(), v.clone())));
            self.g_broadcast(vec![
                Value::from("g_upd"),
                Value::from(family),
                to_map(&b),
                keys(&del_global),
            ]);
        }
        if !set.is_empty() || !local_set.is_empty() || !del_local.is_empty() {
            set.extend(local_set);
            let msg = vec![
                Value::from("g_chg2"),
                Value::from(family),
                to_map(&set),
                keys(&del_local),
            ];
            for s in subscribers {
                self.snd(&s, msg.clone());
            }
        }
    }

    /// Applies a whole database as updates from `node` (Perl's `g_set`).
    fn g_set(&mut self, node: &Str, db: &Value) {
        for (f, fam) in map_entries(db) {
            self.g_upd(node, &f, map_entries(&fam), Vec::new());
        }
    }

    /// Deletes every key of `node`'s shard (Perl's `g_clr`).
    fn g_clr(&mut self, node: &Str) {
        let Some(shard) = self
            .global
            .as_ref()
            .and_then(|g| g.shards.get(node))
            .cloned()
        else {
            return;
        };
        for (f, fam) in shard {
            self.g_upd(node, &f, Vec::new(), fam.keys().cloned().collect());
        }
        if let Some(g) = self.global.as_mut() {
            g.shards.remove(node);
        }
    }

    /// Forgets everything `node` contributed (node down, or it became global).
    fn g_disconnect(&mut self, node: &Str) {
        self.db.globals.remove(node);
        self.db_del("'g", &[node]);
        self.db_del("'l", &[node]);
        self.g_clr(node);
        if let Some(g) = self.global.as_mut() {
            if let Some(fams) = g.slaves.remove(node) {
                for f in fams {
                    if let Some(m) = g.mons.get_mut(&f) {
                        m.remove(node);
                        if m.is_empty() {
                            g.mons.remove(&f);
                        }
                    }
                }
            }
        }
    }

    /// Tells another global node everything our slaves contributed.
    fn g_global_connect(&mut self, node: &Str) {
        self.db_set("'g", node, Value::Null).forget();
        let Some(g) = self.global.as_ref() else {
            return;
        };
        let mut merged: DbMap = DbMap::new();
        for (n, shard) in &g.shards {
            if !g.slaves.contains_key(n) {
                continue;
            }
            for (f, fam) in shard {
                let m = merged.entry(f.clone()).or_default();
                for (k, v) in fam {
                    m.insert(k.clone(), v.clone());
                }
            }
        }
        let db = db_value(&merged);
        self.snd(node, vec![Value::from("g_set"), db]);
    }

    /// Node up/down on a global node.
    pub(super) fn global_node_event(&mut self, node: &str, up: bool) {
        let n = crate::value::str(node);
        if up {
            self.snd(node, vec![Value::from("g_global")]);
        } else {
            self.g_disconnect(&n);
        }
        self.keepalive_event(&n, up);
    }

    /// The requests of the global protocol.
    pub(super) fn global_request(&mut self, tag: &str, mut msg: Msg) {
        let src = crate::value::str(self.src_node());
        if self.global.is_none() {
            if tag == "g_slave" {
                self.become_global();
            } else {
                tracing::warn!(
                    "error processing node message from {src}: {tag}: this node does not run the global service"
                );
                return;
            }
        }
        let family = || msg.first().and_then(Value::as_str).map(crate::value::str);
        match tag {
            "g_slave" => {
                let Some(db) = msg.first().map(|db| self.filter_untrusted_db(&src, db)) else {
                    return; // empty g_slave only starts the global service
                };
                // Replace the slave's shard: apply the new one, drop stale keys.
                let old = self
                    .global
                    .as_ref()
                    .and_then(|g| g.shards.get(&src))
                    .cloned()
                    .unwrap_or_default();
                if let Some(g) = self.global.as_mut() {
                    g.slaves.entry(src.clone()).or_default();
                }
                self.g_set(&src, &db);
                let new: BTreeMap<Str, Vec<Str>> = map_entries(&db)
                    .into_iter()
                    .map(|(f, fam)| (f, map_entries(&fam).into_iter().map(|(k, _)| k).collect()))
                    .collect();
                for (f, fam) in old {
                    let stale: Vec<Str> = fam
                        .keys()
                        .filter(|k| !new.get(&f).is_some_and(|n| n.contains(k)))
                        .cloned()
                        .collect();
                    if !stale.is_empty() {
                        self.g_upd(&src, &f, Vec::new(), stale);
                    }
                }
            }
            "g_set" => {
                let db = msg.first().cloned().unwrap_or_default();
                let binds = db
                    .get("'l")
                    .and_then(|l| l.get(&src))
                    .cloned()
                    .unwrap_or_default();
                self.g_set(&src, &db);
                self.db_set("'l", &src, binds).forget();
            }
            "g_upd" => {
                let Some(f) = family() else { return };
                let mut set = msg.get(1).map(map_entries).unwrap_or_default();
                let mut del = key_list(msg.get(2));
                if !self.may_write(&src, &f, None) {
                    set.retain(|(k, _)| self.may_write(&src, &f, Some(k)));
                    del.retain(|k| self.may_write(&src, &f, Some(k)));
                }
                self.g_upd(&src, &f, set, del);
            }
            "g_find" => {
                let Some(node) = family() else { return };
                let addrs = self
                    .global
                    .as_ref()
                    .and_then(|g| g.db.get("'l"))
                    .and_then(|l| l.get(&node))
                    .cloned()
                    .unwrap_or_default();
                let mut reply = vec![Value::from("g_found"), Value::from(&node), addrs];
                // Extension: the route node of a bind-less node (Perl ignores it).
                if let Some(route) = self.global_route(&node) {
                    reply.push(Value::from(&route));
                }
                self.snd(&src, reply);
            }
            "g_db_family" | "g_db_keys" | "g_db_values" => {
                let (Some(f), Some(id)) = (family(), msg.get(1).cloned()) else {
                    return;
                };
                let fam = self
                    .global
                    .as_ref()
                    .and_then(|g| g.db.get(&f))
                    .cloned()
                    .unwrap_or_default();
                let result = match tag {
                    "g_db_family" => family_value(&fam),
                    "g_db_keys" => Value::Array(fam.keys().map(Value::from).collect()),
                    _ => Value::Array(fam.values().cloned().collect()),
                };
                self.snd(&src, vec![Value::from("g_reply"), id, result]);
            }
            "g_mon1" => {
                let Some(f) = family() else { return };
                let Some(g) = self.global.as_mut() else {
                    return;
                };
                g.slaves.entry(src.clone()).or_default().insert(f.clone());
                g.mons.entry(f.clone()).or_default().insert(src.clone());
                let fam = g.db.get(&f).map(family_value).unwrap_or(Value::Null);
                self.snd(&src, vec![Value::from("g_chg1"), Value::from(&f), fam]);
            }
            "g_mon0" => {
                let Some(f) = family() else { return };
                let Some(g) = self.global.as_mut() else {
                    return;
                };
                if let Some(m) = g.mons.get_mut(&f) {
                    m.remove(&src);
                    if m.is_empty() {
                        g.mons.remove(&f);
                    }
                }
                if let Some(s) = g.slaves.get_mut(&src) {
                    s.remove(&f);
                }
            }
            "g_global" => {
                self.g_disconnect(&src);
                self.db.globals.insert(src.clone(), ());
                self.g_global_connect(&src);
            }
            _ => {
                msg.clear();
                tracing::warn!(
                    "error processing node message from {src}: unknown global request {tag}"
                );
            }
        }
    }

    // ------------------------------------------------------------ keepalive

    fn keepalive_add(&mut self, node: &Str) {
        if *node == self.id {
            return;
        }
        let up = self.peer_is_up(node);
        let Some(g) = self.global.as_mut() else {
            return;
        };
        let c = g.keepalive.entry(node.clone()).or_default();
        *c += 1;
        if *c > 1 || up {
            return;
        }
        g.keepalive_down.insert(node.clone());
        self.keepalive_again();
    }

    fn keepalive_del(&mut self, node: &Str) {
        let Some(g) = self.global.as_mut() else {
            return;
        };
        let Some(c) = g.keepalive.get_mut(node) else {
            return;
        };
        *c -= 1;
        if *c > 0 {
            return;
        }
        g.keepalive.remove(node);
        g.keepalive_down.remove(node);
    }

    fn keepalive_event(&mut self, node: &Str, up: bool) {
        let Some(g) = self.global.as_mut() else {
            return;
        };
        if !g.keepalive.contains_key(node) {
            return;
        }
        if up {
            g.keepalive_down.remove(node);
        } else {
            g.keepalive_down.insert(node.clone());
            self.keepalive_again();
        }
    }

    fn keepalive_again(&mut self) {
        let factor = 1.0 + (self.rng.next_u32() % 1000) as f64 / 1000.0;
        if let Some(g) = self.global.as_mut() {
            g.keepalive_retry = Duration::from_millis(300).mul_f64(factor);
        }
        self.keepalive_all();
    }

    /// One keepalive round: connect every global node that is down.
    pub(super) fn keepalive_all(&mut self) {
        let max = self
            .net
            .as_ref()
            .map_or(Duration::from_secs(30), |n| n.monitor_timeout);
        let Some(g) = self.global.as_mut() else {
            return;
        };
        if let Some(t) = g.keepalive_timer.take() {
            self.timers.cancel(t);
        }
        let Some(g) = self.global.as_mut() else {
            return;
        };
        let down: Vec<Str> = g.keepalive_down.iter().cloned().collect();
        if down.is_empty() {
            return;
        }
        let delay = g.keepalive_retry;
        g.keepalive_retry = (delay * 2).min(max);
        for n in down {
            self.connect(&n);
        }
        let id = self.fresh_id();
        self.timers
            .insert(id, self.now + delay, TimerAction::Net(NetTimer::Keepalive));
        if let Some(g) = self.global.as_mut() {
            g.keepalive_timer = Some(id);
        }
    }

    /// Listener addresses of `node` from the merged `'l` family.
    pub(super) fn global_addresses(&self, node: &str) -> Option<Vec<String>> {
        let l = self.global.as_ref()?.db.get("'l")?.get(node)?;
        Some(key_list(Some(l)).iter().map(|s| s.to_string()).collect())
    }
}
