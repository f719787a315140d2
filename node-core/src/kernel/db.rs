//! The distributed database, client side (spec §2.16, §4.2, §4.3).
//!
//! Every node owns a *local database*: `family → subkey → value`. Global
//! nodes merge all local databases of the network (see
//! [`global`](super::global)); every other node attaches to one global node,
//! its **master**, sends it its whole local database (`g_slave`), then
//! incremental updates (`g_upd`), and asks it questions (`g_db_family`,
//! `g_db_keys`, `g_db_values`, `g_find`) and for change feeds (`g_mon1` →
//! `g_chg1`, `g_chg2`).
//!
//! # Consistency model
//!
//! Eventual consistency, owner wins per key. An entry exists while its owner
//! node holds it in its local database and is connected to some global node;
//! every global node converges to the union of the live owners' local
//! databases, and every `db_mon` mirror converges to its master's view. If
//! two nodes set the same family/subkey, the visible value is one of them,
//! which one is not specified. Queries and monitors issued while no master
//! is reachable wait (without a time limit) and are re-sent to the next
//! master; when the master changes, the whole local database and every
//! pending query and subscription are re-sent, so mirrors resynchronise and
//! callbacks see the difference.
//!
//! The master is the first connected seed node (a global node is its own
//! master). Wire formats are exactly Perl 2.02's.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use rustc_hash::FxHashMap;

use super::guard::GuardAction;
use super::{Guard, Job, Node};
use crate::value::{Msg, Str, Value};

/// One family: subkey → value.
pub type DbFamily = BTreeMap<Str, Value>;

/// A whole database: family → subkey → value.
pub(crate) type DbMap = BTreeMap<Str, DbFamily>;

/// What a `db_mon` callback is told: the family's mirror and which subkeys
/// were added, changed and deleted by this update. The first call after
/// subscribing reports every existing key as added.
#[derive(Debug)]
pub struct DbChange<'a> {
    /// The family.
    pub family: &'a str,
    /// The mirror of the whole family after the change.
    pub db: &'a DbFamily,
    /// Subkeys that appeared.
    pub added: &'a [Str],
    /// Subkeys whose value was set again (the value may be unchanged).
    pub changed: &'a [Str],
    /// Subkeys that disappeared.
    pub deleted: &'a [Str],
}

/// A `db_mon` callback.
pub(crate) type DbMonCallback = Rc<RefCell<dyn FnMut(&mut Node, &DbChange<'_>)>>;

/// A query callback (`g_reply` payload).
type ReplyCallback = Box<dyn FnOnce(&mut Node, Value)>;

/// Client-side database state of a node.
#[derive(Default)]
pub(crate) struct Db {
    /// This node's own entries (`%LOCAL_DB`).
    pub local: DbMap,
    /// The global node we are attached to.
    pub master: Option<Str>,
    /// Requests to re-send to every new master (`%GLOBAL_REQ`), in order.
    reqs: BTreeMap<u64, Msg>,
    /// Request id → its position in `reqs`.
    req_ids: FxHashMap<Str, u64>,
    req_seq: u64,
    /// Pending query callbacks by request id (`%GLOBAL_RES`).
    res: FxHashMap<Str, ReplyCallback>,
    res_counter: Vec<u8>,
    /// Mirrors of monitored families (`%MON_DB`).
    mirrors: BTreeMap<Str, DbFamily>,
    /// Monitor callbacks per family (`%LOCAL_MON`).
    mons: BTreeMap<Str, Vec<(u64, DbMonCallback)>>,
    /// Which family each monitor id watches.
    mon_family: FxHashMap<u64, Str>,
    /// Nodes that told us they are global (`%GLOBAL_NODE`).
    pub globals: BTreeMap<Str, ()>,
}

/// Turns a wire map `{k: v}` into pairs with string keys (bytes keys from
/// Perl become text; non-string keys are skipped).
pub(crate) fn map_entries(v: &Value) -> Vec<(Str, Value)> {
    match v {
        Value::Map(m) => m
            .iter()
            .filter_map(|(k, v)| k.as_str().map(|k| (crate::value::str(k), v.clone())))
            .collect(),
        _ => Vec::new(),
    }
}

/// Turns a wire array of strings into keys.
pub(crate) fn key_list(v: Option<&Value>) -> Vec<Str> {
    match v {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|k| k.as_str().map(crate::value::str))
            .collect(),
        _ => Vec::new(),
    }
}

/// Encodes a family as a wire map.
pub(crate) fn family_value(f: &DbFamily) -> Value {
    Value::Map(f.iter().map(|(k, v)| (Value::from(k), v.clone())).collect())
}

/// Encodes a whole database as a wire map of maps.
pub(crate) fn db_value(db: &DbMap) -> Value {
    Value::Map(
        db.iter()
            .map(|(f, fam)| (Value::from(f), family_value(fam)))
            .collect(),
    )
}

/// Perl's `sv_eq`: are two database values the same?
pub(crate) fn sv_eq(a: &Value, b: &Value) -> bool {
    a.text_eq(b)
}

impl Node {
    // ------------------------------------------------------------ local db

    /// Sets `family`/`subkey` to `value` in this node's local database and
    /// tells the master (only if the value changed). The guard deletes the
    /// entry again; call `forget()` on it to keep the entry.
    ///
    /// ```
    /// use aemp_core::{Node, Value};
    /// let mut node = Node::new([1; 32]);
    /// node.db_set("myapp_workers", "w1", Value::from("idle")).forget();
    /// assert_eq!(node.db_local("myapp_workers").unwrap()["w1"], Value::from("idle"));
    /// ```
    pub fn db_set(&mut self, family: &str, subkey: &str, value: Value) -> Guard {
        let (f, k) = (crate::value::str(family), crate::value::str(subkey));
        let changed = match self.db.local.get(&f).and_then(|fam| fam.get(&k)) {
            Some(old) => !sv_eq(old, &value),
            None => true,
        };
        if changed {
            self.db
                .local
                .entry(f.clone())
                .or_default()
                .insert(k.clone(), value.clone());
            if let Some(m) = self.db.master.clone() {
                let set = Value::Map(vec![(Value::from(&k), value)]);
                self.snd(&m, vec![Value::from("g_upd"), Value::from(&f), set]);
            }
        }
        Guard::new(&self.guards, GuardAction::DbDel(f, k))
    }

    /// Deletes subkeys of `family` from this node's local database (those
    /// that exist) and tells the master.
    pub fn db_del(&mut self, family: &str, subkeys: &[&str]) {
        let Some(fam) = self.db.local.get_mut(family) else {
            return;
        };
        let del: Vec<Str> = subkeys
            .iter()
            .filter(|k| fam.remove(**k).is_some())
            .map(|k| crate::value::str(k))
            .collect();
        if fam.is_empty() {
            self.db.local.remove(family);
        }
        if del.is_empty() {
            return;
        }
        if let Some(m) = self.db.master.clone() {
            let keys = Value::Array(del.iter().map(Value::from).collect());
            self.snd(
                &m,
                vec![Value::from("g_upd"), Value::from(family), Value::Null, keys],
            );
        }
    }

    pub(super) fn db_guard_del(&mut self, family: &str, subkey: &str) {
        self.db_del(family, &[subkey]);
    }

    /// Registers `port` in `family` (with `value`): the entry is deleted
    /// when the port dies, or when the guard is dropped.
    pub fn db_reg(&mut self, family: &str, port: &str, value: Value) -> Guard {
        let (f, p) = (crate::value::str(family), crate::value::str(port));
        self.mon(port, move |n, _| n.db_del(&f, &[&p])).forget();
        self.db_set(family, port, value)
    }

    /// This node's own entries of `family` (no network involved).
    pub fn db_local(&self, family: &str) -> Option<&DbFamily> {
        self.db.local.get(family)
    }

    // ----------------------------------------------------- master requests

    /// Adds a persistent request (sent to every master until deleted).
    fn global_req_add(&mut self, id: Str, req: Msg) {
        if self.db.req_ids.contains_key(&id) {
            return;
        }
        self.db.req_seq += 1;
        self.db.req_ids.insert(id, self.db.req_seq);
        self.db.reqs.insert(self.db.req_seq, req.clone());
        if let Some(m) = self.db.master.clone() {
            self.snd(&m, req);
        }
    }

    fn global_req_del(&mut self, id: &str) {
        if let Some(seq) = self.db.req_ids.remove(id) {
            self.db.reqs.remove(&seq);
        }
    }

    /// A query to the master; `cb` gets the `g_reply` payload.
    fn global_call(&mut self, mut req: Msg, cb: ReplyCallback) {
        let id = crate::id::PortNames::next_counter(&mut self.db.res_counter);
        self.db.res.insert(id.clone(), cb);
        req.push(Value::from(&id));
        self.global_req_add(id, req);
    }

    /// Asks the master for a whole family; `cb` gets it (empty if unknown).
    pub fn db_family(&mut self, family: &str, cb: impl FnOnce(&mut Node, DbFamily) + 'static) {
        self.global_call(
            vec![Value::from("g_db_family"), Value::from(family)],
            Box::new(move |n, v| cb(n, map_entries(&v).into_iter().collect())),
        );
    }

    /// Asks the master for the subkeys of a family.
    pub fn db_keys(&mut self, family: &str, cb: impl FnOnce(&mut Node, Vec<Str>) + 'static) {
        self.global_call(
            vec![Value::from("g_db_keys"), Value::from(family)],
            Box::new(move |n, v| cb(n, key_list(Some(&v)))),
        );
    }

    /// Asks the master for the values of a family.
    pub fn db_values(&mut self, family: &str, cb: impl FnOnce(&mut Node, Vec<Value>) + 'static) {
        self.global_call(
            vec![Value::from("g_db_values"), Value::from(family)],
            Box::new(move |n, v| cb(n, v.as_array().map(<[Value]>::to_vec).unwrap_or_default())),
        );
    }

    /// Finds the listener addresses of a node through the master (`g_find`).
    pub(super) fn g_find(&mut self, node: &str) {
        let id = crate::value::str(&format!("g_find {node}"));
        self.global_req_add(id, vec![Value::from("g_find"), Value::from(node)]);
    }

    // --------------------------------------------------------------- db_mon

    /// Monitors `family`: `cb` is called with the family's mirror and the
    /// added/changed/deleted subkeys, first with everything present (even if
    /// the family is empty), then on every change. Dropping the guard ends
    /// the subscription.
    pub fn db_mon(
        &mut self,
        family: &str,
        cb: impl FnMut(&mut Node, &DbChange<'_>) + 'static,
    ) -> Guard {
        let f = crate::value::str(family);
        let id = self.fresh_id();
        let cb: DbMonCallback = Rc::new(RefCell::new(cb));
        self.db.mon_family.insert(id, f.clone());
        if self.db.mons.contains_key(&f) {
            // Already mirrored: report the current state from the run queue.
            let f2 = f.clone();
            self.db
                .mons
                .get_mut(&f)
                .expect("checked")
                .push((id, cb.clone()));
            self.queue
                .push_back(Job::Call(Box::new(move |n: &mut Node| {
                    if !n.db.mon_family.contains_key(&id) {
                        return; // guard already dropped
                    }
                    let db = n.db.mirrors.remove(&f2).unwrap_or_default();
                    let keys: Vec<Str> = db.keys().cloned().collect();
                    let change = DbChange {
                        family: &f2,
                        db: &db,
                        added: &keys,
                        changed: &[],
                        deleted: &[],
                    };
                    (cb.borrow_mut())(n, &change);
                    if n.db.mons.contains_key(&f2) {
                        n.db.mirrors.entry(f2.clone()).or_insert(db);
                    }
                })));
        } else {
            self.db.mons.insert(f.clone(), vec![(id, cb)]);
            self.db.mirrors.insert(f.clone(), DbFamily::new());
            let rid = crate::value::str(&format!("mon1 {f}"));
            self.global_req_add(rid, vec![Value::from("g_mon1"), Value::from(&f)]);
        }
        Guard::new(&self.guards, GuardAction::DbUnmon(id))
    }

    pub(super) fn db_guard_unmon(&mut self, id: u64) {
        let Some(f) = self.db.mon_family.remove(&id) else {
            return;
        };
        let empty = match self.db.mons.get_mut(&f) {
            Some(v) => {
                v.retain(|(i, _)| *i != id);
                v.is_empty()
            }
            None => false,
        };
        if empty {
            self.db.mons.remove(&f);
            self.db.mirrors.remove(&f);
            self.global_req_del(&format!("mon1 {f}"));
            if let Some(m) = self.db.master.clone() {
                self.snd(&m, vec![Value::from("g_mon0"), Value::from(&f)]);
            }
        }
    }

    /// Calls every monitor of `family` with one change.
    fn db_notify(&mut self, family: &Str, added: Vec<Str>, changed: Vec<Str>, deleted: Vec<Str>) {
        let cbs: Vec<DbMonCallback> = match self.db.mons.get(family) {
            Some(v) => v.iter().map(|(_, cb)| cb.clone()).collect(),
            None => return,
        };
        let db = self.db.mirrors.remove(family).unwrap_or_default();
        for cb in cbs {
            let change = DbChange {
                family,
                db: &db,
                added: &added,
                changed: &changed,
                deleted: &deleted,
            };
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                (cb.borrow_mut())(self, &change)
            }));
            if let Err(p) = r {
                tracing::error!(
                    "db_mon callback for {family} panicked: {}",
                    super::panic_text(&p)
                );
            }
        }
        if self.db.mons.contains_key(family) {
            self.db.mirrors.entry(family.clone()).or_insert(db);
        }
    }

    // ------------------------------------------------------ master selection

    /// The global node this node is attached to.
    pub fn master(&self) -> Option<&str> {
        self.db.master.as_deref()
    }

    /// Makes `m` our master: send it our whole local database and every
    /// pending request.
    pub(super) fn master_set(&mut self, m: &str) {
        tracing::info!("new master node: {m}");
        self.db.master = Some(crate::value::str(m));
        let db = db_value(&self.db.local);
        self.snd(m, vec![Value::from("g_slave"), db]);
        let reqs: Vec<Msg> = self.db.reqs.values().cloned().collect();
        for r in reqs {
            self.snd(m, r);
        }
        self.publish_route();
        if self.untrusted_self {
            // Packets that waited for a master go out through it now.
            let waiting: Vec<Str> = self.peers_waiting();
            for n in waiting {
                if n.as_str() != m {
                    self.route_up(&n, m);
                }
            }
        }
    }

    /// Picks the first connected seed node as master (if we have none).
    pub(super) fn master_search(&mut self) {
        if self.db.master.is_some() || !self.is_configured() {
            return;
        }
        let found = self
            .seeds
            .list
            .iter()
            .filter(|s| !s.is_self)
            .filter_map(|s| s.node.clone())
            .find(|n| self.peer_is_up(n));
        if let Some(m) = found {
            self.master_set(&m);
        }
    }

    /// Node up/down as the database sees it.
    pub(super) fn db_node_event(&mut self, node: &str, up: bool) {
        if !up {
            self.db.globals.remove(node);
            if self.db.master.as_deref() == Some(node) {
                tracing::info!("lost master node {node}");
                self.db.master = None;
            }
        }
        if self.global.is_some() {
            self.global_node_event(node, up);
        }
        self.master_search();
    }

    // ------------------------------------------------- client-side requests

    /// `g_global`, `g_reply`, `g_found`, `g_chg1`, `g_chg2` (and the
    /// global-side requests, when this node is global).
    pub(super) fn db_request(&mut self, tag: &str, msg: Msg) {
        let src = crate::value::str(self.src_node());
        match tag {
            "g_global" => {
                if self.global.is_some() {
                    self.global_request(tag, msg);
                } else {
                    self.db.globals.insert(src, ());
                }
            }
            "g_reply" => {
                let Some(id) = msg.first().and_then(Value::as_str).map(crate::value::str) else {
                    return;
                };
                self.global_req_del(&id);
                if let Some(cb) = self.db.res.remove(&id) {
                    cb(self, msg.get(1).cloned().unwrap_or_default());
                }
            }
            "g_found" => {
                let Some(node) = msg.first().and_then(Value::as_str).map(crate::value::str) else {
                    return;
                };
                self.global_req_del(&format!("g_find {node}"));
                let addrs = key_list(msg.get(1)).iter().map(|s| s.to_string()).collect();
                // Extension: a third argument names the route node of a bind-less node.
                let route = msg.get(2).and_then(Value::as_str).map(crate::value::str);
                self.found_addresses(&node, addrs, route);
            }
            "g_chg1" | "g_chg2" => {
                if self.db.master.as_deref() != Some(src.as_str()) {
                    return; // only our master's view counts
                }
                let Some(f) = msg.first().and_then(Value::as_str).map(crate::value::str) else {
                    return;
                };
                if !self.db.mirrors.contains_key(&f) {
                    return;
                }
                let set = msg.get(1).map(map_entries).unwrap_or_default();
                let mirror = self.db.mirrors.get_mut(&f).expect("checked");
                let (mut added, mut changed, mut deleted) = (Vec::new(), Vec::new(), Vec::new());
                let new_keys: Vec<Str> = set.iter().map(|(k, _)| k.clone()).collect();
                for (k, v) in set {
                    if mirror.insert(k.clone(), v).is_some() {
                        changed.push(k);
                    } else {
                        added.push(k);
                    }
                }
                if tag == "g_chg1" {
                    let gone: Vec<Str> = mirror
                        .keys()
                        .filter(|k| !new_keys.contains(k))
                        .cloned()
                        .collect();
                    for k in gone {
                        mirror.remove(&k);
                        deleted.push(k);
                    }
                } else {
                    for k in key_list(msg.get(2)) {
                        mirror.remove(&k);
                        deleted.push(k);
                    }
                }
                self.db_notify(&f, added, changed, deleted);
            }
            _ => self.global_request(tag, msg),
        }
    }
}
