//! Routing to bind-less nodes (an aemp-rs extension; see `docs/routing.md`).
//!
//! A bind-less node (a browser page, or a native node with no `binds`)
//! cannot be connected to. It publishes `'r → { node: master }` in the
//! database, and other nodes reach it *through* that master: they send
//! `["", "aemp_route", target, port, msg…]` to the route node, which passes
//! it on as `["", "aemp_routed", source, port, msg…]` over its own
//! connection to the target, stamping the authenticated source. The target
//! answers along the same path (it learns the route from the first routed
//! packet), so both directions share one fate: when the path breaks, the
//! route node sends `["", "aemp_unroute", node, reason]` to the nodes at
//! both ends, and each fires its monitors for the other (no silent gap).
//!
//! Perl nodes never see these requests unless they act as route nodes,
//! which they cannot: routing needs an aemp-rs global node as master. Perl
//! globals store and replicate the `'r` family like any other and answer
//! `g_find` without the route (so a Perl-only network simply does not reach
//! bind-less nodes, as in Perl).

use std::collections::{BTreeMap, BTreeSet};

use super::Node;
use crate::value::{Msg, Str, Value};

/// What a route node remembers: who routes to whom through it.
#[derive(Default)]
pub(crate) struct Routes {
    /// target → sources that reached it through us.
    by_target: BTreeMap<Str, BTreeSet<Str>>,
}

impl Node {
    /// The route node published for a bind-less node (`'r` family), as a
    /// global node sees it.
    pub(super) fn global_route(&self, node: &str) -> Option<Str> {
        let r = self.global.as_ref()?.db.get("'r")?.get(node)?;
        r.as_str().map(crate::value::str)
    }

    /// Publishes where this node can be reached, if it has no listeners.
    pub(super) fn publish_route(&mut self) {
        if !self.listeners.is_empty() || !self.is_configured() {
            return;
        }
        if let Some(m) = self.db.master.clone() {
            if m != self.id {
                let me = self.id.clone();
                self.db_set("'r", &me, Value::from(&m)).forget();
            }
        }
    }

    /// Sends one packet to `node` through its route node.
    pub(super) fn send_routed(&mut self, via: &str, node: &str, port: &str, msg: Msg) {
        if via == self.id.as_str() {
            // We are the route node ourselves: deliver over our own connection.
            self.route_forward(&self.id.clone(), node, port, msg);
            return;
        }
        let mut m = Vec::with_capacity(msg.len() + 3);
        m.push(Value::from("aemp_route"));
        m.push(Value::from(node));
        m.push(Value::from(port));
        m.extend(msg);
        self.send_remote(via, "", m);
    }

    /// As route node: pass a packet from `src` on to `target`.
    fn route_forward(&mut self, src: &Str, target: &str, port: &str, msg: Msg) {
        if target == self.id.as_str() {
            self.enqueue_local(crate::value::str(port), msg, Some(src.clone()));
            return;
        }
        let t = crate::value::str(target);
        self.routes
            .by_target
            .entry(t.clone())
            .or_default()
            .insert(src.clone());
        self.routes
            .by_target
            .entry(src.clone())
            .or_default()
            .insert(t);
        let mut m = Vec::with_capacity(msg.len() + 3);
        m.push(Value::from("aemp_routed"));
        m.push(Value::from(src));
        m.push(Value::from(port));
        m.extend(msg);
        match self.peer_conn(target) {
            Some(conn) => self.conn_send(conn, "", &m),
            // Not connected: connect on demand like any send; if that fails,
            // the transport error tells `src` (see `route_node_down`).
            None => self.send_remote(target, "", m),
        }
    }

    /// `aemp_route`, `aemp_routed`, `aemp_unroute`.
    pub(super) fn route_request(&mut self, tag: &str, mut msg: Msg) {
        let src = crate::value::str(self.src_node());
        let (Some(a), Some(b)) = (
            msg.first().and_then(Value::as_str).map(crate::value::str),
            msg.get(1).and_then(Value::as_str).map(crate::value::str),
        ) else {
            tracing::warn!("error processing node message from {src}: malformed {tag}");
            return;
        };
        match tag {
            "aemp_route" => {
                let rest = msg.split_off(2);
                self.route_forward(&src, &a, &b, rest);
            }
            "aemp_routed" => {
                if !self.peer_trusted(&src) {
                    tracing::warn!("{src} may not relay for other nodes, aemp_routed refused");
                    return;
                }
                // The original sender reaches us through `src`: answer the same way.
                self.learn_route(&a, &src);
                let rest = msg.split_off(2);
                self.enqueue_local(b, rest, Some(a));
            }
            // Any route node that carried our traffic with `a` may tell us
            // the path broke (the two directions may use different ones).
            "aemp_unroute" if self.is_routed(&a) && self.peer_trusted(&src) => {
                self.transport_error(&a, &b);
            }
            _ => {}
        }
    }

    /// As route node: `node` went down; tell everyone who routed to or
    /// from it through us.
    pub(super) fn route_node_down(&mut self, node: &str, reason: &str) {
        let Some(others) = self.routes.by_target.remove(node) else {
            return;
        };
        for o in others {
            if let Some(set) = self.routes.by_target.get_mut(&o) {
                set.remove(node);
                if set.is_empty() {
                    self.routes.by_target.remove(&o);
                }
            }
            if self.peer_is_up(&o) {
                let text = format!("route lost: {reason}");
                self.send_remote(
                    &o,
                    "",
                    vec![
                        Value::from("aemp_unroute"),
                        Value::from(node),
                        Value::from(text),
                    ],
                );
            }
        }
    }
}
