//! Untrusted nodes: what a browser page may and may not do (extension).
//!
//! A page cannot keep the cluster secret, so a seed may accept pages with a
//! separate `web_secret` (see [`HandshakeConfig::web_secret`]). Such a node
//! is **untrusted**:
//!
//! * its node ID must start with [`UNTRUSTED_PREFIX`] (`web/`); a node that
//!   is not directly connected (its packets arrive through a route node) is
//!   judged by that prefix, so trust cannot be laundered through a relay,
//!   while a directly connected node is judged by its handshake (a trusted
//!   Perl node may be called `web/…` too);
//! * it may send to ports, monitor ports and nodes, register in and query the
//!   database, and use a route node (`aemp_route`);
//! * it may **not** spawn ports or call named functions, kill ports
//!   (`kil1`), have messages relayed to a node port (`snd` to `node#`, which
//!   would make the relaying node the sender of a node request), announce
//!   itself global (`g_global`, `g_set`), make a node global (`g_slave` to a
//!   non-global node), relay for others (`aemp_routed`, `aemp_unroute`), or
//!   write internal database families (`'l`, `'g`, `'r`) other than its own
//!   `'l`/`'r` entry.
//!
//! Refused requests are logged with the reason and otherwise ignored (as
//! Perl does with every failed node request).
//!
//! [`HandshakeConfig::web_secret`]: crate::wire::HandshakeConfig::web_secret

use super::Node;
use crate::value::{Msg, Value};

/// Node IDs of untrusted nodes start with this.
pub const UNTRUSTED_PREFIX: &str = "web/";

/// True if a node ID names an untrusted node.
///
/// ```
/// assert!(aemp_core::kernel::is_untrusted_id("web/Xy12"));
/// assert!(!aemp_core::kernel::is_untrusted_id("seed/web/1"));
/// ```
pub fn is_untrusted_id(node: &str) -> bool {
    node.starts_with(UNTRUSTED_PREFIX)
}

/// Node requests an untrusted node may make.
const UNTRUSTED_ALLOWED: &[&str] = &[
    "",
    "devnull",
    "time",
    "can",
    "snd",
    "mon1",
    "mon0",
    "kil0",
    "g_slave",
    "g_upd",
    "g_find",
    "g_db_family",
    "g_db_keys",
    "g_db_values",
    "g_mon1",
    "g_mon0",
    "g_reply",
    "g_chg1",
    "g_chg2",
    "g_found",
    "aemp_route",
];

impl Node {
    /// Whether `node` is trusted. Over a direct connection the handshake
    /// decides (cluster secret: trusted; web secret: untrusted), whatever the
    /// node ID — a Perl node may well be called `web/…` (its default ID is
    /// `<hostname>/…`). A node reached only through a route node is judged
    /// by its ID: `web/…` is untrusted.
    pub fn peer_trusted(&self, node: &str) -> bool {
        if node == self.id.as_str() {
            return true;
        }
        match self.peer_conn(node).and_then(|c| self.conns.get(&c)) {
            Some(c) => !c.untrusted,
            None => !is_untrusted_id(node),
        }
    }

    /// Checks a node request against the trust policy; logs refusals.
    pub(super) fn request_allowed(&self, tag: &str, msg: &Msg) -> bool {
        let src = self.src_node();
        if self.peer_trusted(src) {
            return true;
        }
        let refused = if !UNTRUSTED_ALLOWED.contains(&tag) {
            Some("not allowed for untrusted nodes")
        } else if tag == "snd"
            && msg
                .first()
                .and_then(Value::as_str)
                .is_none_or(|p| crate::id::split_port(p).1.is_empty())
        {
            Some("relaying to a node port is not allowed for untrusted nodes")
        } else if tag == "g_slave" && self.global.is_none() {
            Some("an untrusted node cannot start the global service")
        } else {
            None
        };
        if let Some(why) = refused {
            tracing::warn!("error processing node message from {src}: {tag}: {why}");
            return false;
        }
        true
    }

    /// Whether `src` may write `family` (and `key`, if given) in the global
    /// database. Internal families (`'…`) are open to untrusted nodes only
    /// for their own `'l` and `'r` entries.
    pub(super) fn may_write(&self, src: &str, family: &str, key: Option<&str>) -> bool {
        if self.peer_trusted(src) || !family.starts_with('\'') {
            return true;
        }
        matches!(family, "'l" | "'r") && key == Some(src)
    }

    /// Drops what an untrusted node may not write from a whole database.
    pub(super) fn filter_untrusted_db(&self, src: &str, db: &Value) -> Value {
        if self.peer_trusted(src) {
            return db.clone();
        }
        let Value::Map(fams) = db else {
            return Value::Map(Vec::new());
        };
        let mut out = Vec::new();
        for (f, fam) in fams {
            let Some(fname) = f.as_str() else { continue };
            if !fname.starts_with('\'') {
                out.push((f.clone(), fam.clone()));
                continue;
            }
            if let Value::Map(entries) = fam {
                let kept: Vec<(Value, Value)> = entries
                    .iter()
                    .filter(|(k, _)| {
                        k.as_str()
                            .is_some_and(|k| self.may_write(src, fname, Some(k)))
                    })
                    .cloned()
                    .collect();
                if !kept.is_empty() {
                    out.push((f.clone(), Value::Map(kept)));
                }
            }
        }
        Value::Map(out)
    }
}
