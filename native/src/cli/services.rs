//! The services compiled into `aemp run`, started from the `services`
//! configuration list (spec §3.3).
//!
//! | name | what |
//! |---|---|
//! | `AnyEvent::MP::Global::` | makes the node global (done by the core's `configure`) |
//! | `aemp::echo` | a port answering `["echo", args…, reply]` with `args…` to `reply`, registered in db family `aemp_echo`; also the node function `aemp::echo` (`aemp cal <node> aemp::echo a b`) |
//! | `aemp::log` | a port printing every message it receives (`log <json>` on stdout), registered in db family `aemp_log` |

use aemp::core::config::Service;
use aemp::core::value::msg_to_string;
use aemp::core::{Msg, Node, Value};

/// Names of the services this binary knows, for messages.
pub const KNOWN: &[&str] = &["AnyEvent::MP::Global::", "aemp::echo", "aemp::log"];

/// Sends `m`'s leading values to its last value (the reply port).
fn echo_reply(n: &mut Node, mut m: Msg) {
    match m.pop() {
        Some(r) => match r.as_str() {
            Some(reply) if !reply.is_empty() => {
                let reply = reply.to_string();
                n.snd(&reply, m)
            }
            _ => tracing::warn!("aemp::echo: reply port {r} is not a port ID"),
        },
        None => tracing::warn!("aemp::echo: message without reply port"),
    }
}

/// Starts the configured services on the node; unknown ones are reported
/// with a warning. Returns the ports created (name, port ID).
pub fn start(n: &mut Node, services: &[Service]) -> Vec<(String, String)> {
    let mut started = Vec::new();
    for s in services {
        let name = match s {
            Service::Module(m) => m.as_str(),
            Service::Call(f) | Service::CallWithArgs(f, _) => f.as_str(),
        };
        match name.trim_end_matches("::") {
            "AnyEvent::MP::Global" => {} // the core's configure did it
            "aemp::echo" => {
                let p = n.port_with(|n, mut m| {
                    if m.first().and_then(Value::as_str) == Some("echo") {
                        m.remove(0);
                        echo_reply(n, m);
                    } else {
                        tracing::warn!("aemp::echo: ignoring {}", msg_to_string(&m));
                    }
                    Ok(())
                });
                let _ = n.register("aemp::echo", |n, m| {
                    echo_reply(n, m);
                    Ok(())
                });
                let me = n.node_id().to_string();
                n.db_reg("aemp_echo", &p, Value::from(me)).forget();
                started.push(("aemp::echo".to_string(), p.to_string()));
            }
            "aemp::log" => {
                let p = n.port_with(|_, m| {
                    println!("log {}", msg_to_string(&m));
                    Ok(())
                });
                let me = n.node_id().to_string();
                n.db_reg("aemp_log", &p, Value::from(me)).forget();
                started.push(("aemp::log".to_string(), p.to_string()));
            }
            _ => tracing::warn!(
                "service {name}: unknown to this aemp (it knows {}), not started",
                KNOWN.join(", ")
            ),
        }
    }
    started
}
