//! Node-port requests: messages to port `""` (spec §6.1).
//!
//! Built-in requests are handled here; every other tag is a function name
//! resolved through the [registry](super::registry). Errors are logged and
//! never reported back, as in Perl. Remote execution (function calls,
//! `AnyEvent::MP::_spawn`) from other nodes is refused in secure mode, and
//! `eval` is always refused: a Rust node cannot evaluate Perl code (it
//! answers a reply port with the error, so a Perl `eval_on` caller does not
//! wait forever).

use super::Node;
use crate::value::{Msg, Str, Value};

/// The requests this kernel understands natively (for `can`).
pub(crate) const BUILTIN: &[&str] = &[
    "",
    "devnull",
    "time",
    "can",
    "snd",
    "eval",
    "mon1",
    "mon0",
    "kil0",
    "kil1",
    "AnyEvent::MP::_spawn",
];

impl Node {
    /// True if the request tag is known: built-in or a registered function.
    pub fn can(&self, tag: &str) -> bool {
        BUILTIN.contains(&tag) || self.is_registered(tag)
    }

    /// Handles one message to the node port.
    pub(super) fn node_request(&mut self, mut msg: Msg) {
        if msg.is_empty() {
            return; // keepalive
        }
        let Some(tag) = msg[0].as_str().map(Str::from) else {
            tracing::warn!(
                "error processing node message from {}: request tag is not a string: {}",
                self.src_node(),
                msg[0]
            );
            return;
        };
        msg.remove(0);
        if !self.request_allowed(&tag, &msg) {
            return;
        }
        match tag.as_str() {
            "" | "devnull" => {}
            "time" => {
                let t = Value::Float(self.now.as_secs_f64());
                self.reply_to(&msg, vec![t]);
            }
            "can" => {
                let known = msg
                    .first()
                    .and_then(Value::as_str)
                    .is_some_and(|t| self.can(t));
                let reply = msg.get(1..).unwrap_or(&[]).to_vec();
                // Perl answers with its booleans, "1" or "".
                self.reply_to(&reply, vec![Value::from(if known { "1" } else { "" })]);
            }
            "snd" => {
                if let Some(port) = msg.first().and_then(Value::as_str).map(str::to_string) {
                    msg.remove(0);
                    self.snd(&port, msg);
                }
            }
            "eval" => {
                tracing::warn!(
                    "error processing node message from {}: eval refused (an aemp-rs node cannot evaluate Perl code)",
                    self.src_node()
                );
                let reply = msg.get(1..).unwrap_or(&[]).to_vec();
                if !reply.is_empty() {
                    self.reply_to(
                        &reply,
                        vec![Value::from("eval is not supported by aemp-rs nodes\n")],
                    );
                }
            }
            "mon1" | "mon0" | "kil0" | "kil1" => self.monitor_request(&tag, msg),
            "aemp_route" | "aemp_routed" | "aemp_unroute" => self.route_request(&tag, msg),
            "AnyEvent::MP::_spawn" => {
                if self.refuse_remote_execution(&tag) {
                    return;
                }
                let port = msg.first().and_then(Value::as_str).map(Str::from);
                let func = msg.get(1).and_then(Value::as_str).map(Str::from);
                match (port, func) {
                    (Some(port), Some(func)) if !port.is_empty() => {
                        // Run the init function now, before the messages the
                        // spawner sent after the spawn request (they are
                        // already queued behind this one).
                        let args = msg.split_off(2);
                        self.run_spawn(port, func, args);
                    }
                    _ => tracing::warn!(
                        "error processing node message from {}: malformed spawn request",
                        self.src_node()
                    ),
                }
            }
            t if t.starts_with("g_") => self.db_request(&tag, msg),
            name => {
                if self.refuse_remote_execution(name) {
                    return;
                }
                match self.registry.get(name) {
                    Some(f) => {
                        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(self, msg)));
                        let err = match r {
                            Ok(Ok(())) => None,
                            Ok(Err(e)) => Some(e.to_string()),
                            Err(p) => Some(format!("panic: {}", super::panic_text(&p))),
                        };
                        if let Some(e) = err {
                            tracing::warn!("error processing node message from {}: {name}: {e}", self.src_node());
                        }
                    }
                    None => tracing::warn!(
                        "error processing node message from {}: unable to resolve function '{name}'",
                        self.src_node()
                    ),
                }
            }
        }
    }

    /// Secure mode: remote nodes may not run functions here. Local requests
    /// (the node talking to itself, e.g. a local `spawn`) are allowed.
    fn refuse_remote_execution(&self, what: &str) -> bool {
        let remote = self.src.as_ref().is_some_and(|s| *s != self.id);
        if remote && (self.secure || !self.peer_trusted(self.src_node())) {
            tracing::warn!(
                "error processing node message from {}: {what}: remote execution not allowed",
                self.src_node()
            );
            return true;
        }
        false
    }
}
