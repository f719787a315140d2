//! Unit tests of the connection layer: two or three kernels wired together
//! in memory by a minimal driver (the full simulator lives in `tests/`).

use super::*;
use crate::config::{effective_config, JsonMap};
use crate::msg;
use std::collections::HashMap;

pub(super) type Log = Rc<RefCell<Vec<String>>>;

/// A minimal in-memory driver: instant delivery, optional black holes.
pub(super) struct Wire {
    pub nodes: Vec<Node>,
    listen: HashMap<String, usize>,
    links: HashMap<(usize, ConnId), (usize, ConnId)>,
    /// Bytes sent by these nodes vanish (a silently dead peer).
    pub black_holed: Vec<usize>,
    pub now: Time,
    /// Killed nodes: they no longer run.
    pub dead: Vec<usize>,
}

pub(super) fn cfg(pairs: &[(&str, &str)]) -> crate::config::Config {
    let mut args = JsonMap::new();
    for (k, v) in pairs {
        let val =
            serde_json::from_str(v).unwrap_or_else(|_| serde_json::Value::String(v.to_string()));
        args.insert(k.to_string(), val);
    }
    effective_config(None, &args, None, "testhost").unwrap()
}

impl Wire {
    pub fn new() -> Wire {
        Wire {
            nodes: vec![],
            listen: HashMap::new(),
            links: HashMap::new(),
            black_holed: vec![],
            now: Time::from_secs_f64(1000.0),
            dead: vec![],
        }
    }

    /// Adds a node listening on `addr`.
    pub fn add(&mut self, addr: &str, pairs: &[(&str, &str)]) -> usize {
        let i = self.nodes.len();
        let mut n = Node::new([i as u8 + 1; 32]);
        n.configure(&cfg(pairs), "testhost").unwrap();
        n.set_listeners(vec![addr.to_string()]);
        self.listen.insert(addr.to_string(), i);
        self.nodes.push(n);
        i
    }

    /// Adds a bind-less node (no listeners: only reachable by routing).
    pub fn add_bindless(&mut self, pairs: &[(&str, &str)]) -> usize {
        let i = self.nodes.len();
        let mut n = Node::new([i as u8 + 1; 32]);
        n.configure(&cfg(pairs), "testhost").unwrap();
        self.nodes.push(n);
        i
    }

    /// Runs until nothing moves (or `limit` rounds).
    pub fn pump(&mut self) {
        for _ in 0..10_000 {
            let mut moved = false;
            for i in 0..self.nodes.len() {
                if self.dead.contains(&i) {
                    continue;
                }
                let now = self.now;
                while self.nodes[i].poll(now) {}
                // Like TCP: what was written before a close arrives first.
                while let Some(t) = self.nodes[i].poll_transmit() {
                    moved = true;
                    if self.black_holed.contains(&i) {
                        continue;
                    }
                    if let Some(&(j, c2)) = self.links.get(&(i, t.conn)) {
                        self.nodes[j].handle_data(now, c2, &t.data);
                    }
                }
                while let Some(a) = self.nodes[i].poll_action() {
                    moved = true;
                    match a {
                        Action::Connect { conn, addr } => match self.listen.get(&addr).copied() {
                            Some(j) if !self.dead.contains(&j) => {
                                let c2 = self.nodes[j].handle_accept(
                                    now,
                                    Transport::Tcp,
                                    Some("peer".into()),
                                );
                                self.links.insert((i, conn), (j, c2));
                                self.links.insert((j, c2), (i, conn));
                                self.nodes[i].handle_connected(now, conn, Transport::Tcp);
                            }
                            _ => self.nodes[i].handle_closed(now, conn, "connection refused"),
                        },
                        Action::Close { conn } => {
                            if let Some((j, c2)) = self.links.remove(&(i, conn)) {
                                self.links.remove(&(j, c2));
                                self.nodes[j].handle_closed(now, c2, "eof");
                            }
                        }
                    }
                }
            }
            if !moved {
                return;
            }
        }
        panic!("network never settles");
    }

    /// Advances virtual time in steps, pumping.
    pub fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            self.now = (self.now + Duration::from_millis(100)).min(end);
            self.pump();
        }
    }
}

impl Wire {
    /// Kills node `i`: its connections break (peers see a reset).
    pub fn kill(&mut self, i: usize) {
        self.dead.push(i);
        let now = self.now;
        let mine: Vec<((usize, ConnId), (usize, ConnId))> = self
            .links
            .iter()
            .filter(|((a, _), _)| *a == i)
            .map(|(k, v)| (*k, *v))
            .collect();
        for (k, (j, c2)) in mine {
            self.links.remove(&k);
            self.links.remove(&(j, c2));
            self.nodes[j].handle_closed(now, c2, "connection reset by peer");
        }
        self.pump();
    }
}

pub(super) fn log() -> Log {
    Rc::new(RefCell::new(Vec::new()))
}

pub(super) fn sink(n: &mut Node, l: &Log) -> PortId {
    let l = l.clone();
    n.port_with(move |_, m| {
        l.borrow_mut().push(crate::value::msg_to_string(&m));
        Ok(())
    })
}

/// A (its own seed) and B (seeded with A), secret "s", plus extra keys.
fn pair_with(extra_a: &[(&str, &str)], extra_b: &[(&str, &str)]) -> Wire {
    let mut w = Wire::new();
    let mut a = vec![("nodeid", "A"), ("secret", "s"), ("seeds", "10.0.0.1:4040")];
    a.extend_from_slice(extra_a);
    let mut b = vec![("nodeid", "B"), ("secret", "s"), ("seeds", "10.0.0.1:4040")];
    b.extend_from_slice(extra_b);
    w.add("10.0.0.1:4040", &a);
    w.add("10.0.0.2:4040", &b);
    w.pump();
    w
}

fn pair(secret_b: &str) -> Wire {
    let mut w = Wire::new();
    w.add(
        "10.0.0.1:4040",
        &[
            ("nodeid", "A"),
            ("secret", "s3cret"),
            ("seeds", "10.0.0.1:4040"),
        ],
    );
    w.add(
        "10.0.0.2:4040",
        &[
            ("nodeid", "B"),
            ("secret", secret_b),
            ("seeds", "10.0.0.1:4040"),
        ],
    );
    w.pump();
    w
}

#[test]
fn seed_connection_comes_up_and_messages_flow_both_ways() {
    let mut w = pair("s3cret");
    assert_eq!(w.nodes[0].up_nodes(), vec![Str::from("B")]);
    assert_eq!(w.nodes[1].up_nodes(), vec![Str::from("A")]);
    assert!(w.nodes[0].is_own_seed());
    let (la, lb) = (log(), log());
    let pa = sink(&mut w.nodes[0], &la);
    let pb = sink(&mut w.nodes[1], &lb);
    w.nodes[0].snd(&pb, msg!["from A", 1]);
    w.nodes[1].snd(&pa, vec![Value::from("from B"), Value::Bytes(vec![0, 255])]);
    w.pump();
    assert_eq!(*lb.borrow(), vec![r#"["from A",1]"#]);
    assert_eq!(*la.borrow(), vec![r#"["from B",h'00ff']"#]);
}

#[test]
fn remote_monitor_fires_on_kill_with_reason() {
    let mut w = pair("s3cret");
    let l = log();
    let pb = w.nodes[1].port_with(|_, _| Ok(()));
    let l2 = l.clone();
    w.nodes[0]
        .mon(&pb, move |_, r| l2.borrow_mut().push(r.to_string()))
        .forget();
    w.pump();
    w.nodes[0].kil(&pb, msg!["killed_by_A", "bye"]).unwrap();
    w.pump();
    assert!(!w.nodes[1].port_exists(&pb));
    assert_eq!(*l.borrow(), vec!["killed_by_A => bye"]);
}

#[test]
fn remote_monitor_of_missing_port_gets_no_such_port() {
    let mut w = pair("s3cret");
    let l = log();
    let l2 = l.clone();
    w.nodes[0]
        .mon("B#nothere", move |_, r| l2.borrow_mut().push(r.to_string()))
        .forget();
    w.pump();
    assert_eq!(
        *l.borrow(),
        vec!["no_such_port => cannot monitor nonexistent port, B#nothere"]
    );
}

#[test]
fn remote_cal_spawn_and_time() {
    let mut w = pair("s3cret");
    w.nodes[1]
        .register("t::echo", |n, args| {
            let me = n.self_port().unwrap();
            let first = args.first().cloned().unwrap_or_default();
            n.rcv(&me, move |n, mut m| {
                let reply = m.pop().unwrap();
                m.insert(0, first.clone());
                n.snd(reply.as_str().unwrap(), m);
                Ok(())
            })?;
            Ok(())
        })
        .unwrap();
    let spawned = w.nodes[0].spawn("B", "t::echo", msg!["prefix"]).unwrap();
    assert!(spawned.starts_with("B#"));
    let out = log();
    let o = out.clone();
    w.nodes[0].cal(
        &spawned,
        msg!["x"],
        Some(Duration::from_secs(5)),
        move |_, r| {
            o.borrow_mut().push(format!("{r:?}"));
        },
    );
    let o = out.clone();
    w.nodes[0].cal(
        "B",
        msg!["time"],
        Some(Duration::from_secs(5)),
        move |_, r| {
            o.borrow_mut().push(format!(
                "time ok {}",
                r.unwrap()[0].as_f64().unwrap() > 999.0
            ));
        },
    );
    w.pump();
    assert_eq!(
        *out.borrow(),
        vec![r#"Ok([Text("prefix"), Text("x")])"#, "time ok true"]
    );
}

#[test]
fn wrong_secret_fails_with_perl_reason() {
    let mut w = pair("wrong");
    assert!(w.nodes[1].up_nodes().is_empty());
    let l = log();
    let l2 = l.clone();
    w.nodes[1]
        .mon("A#x", move |_, r| l2.borrow_mut().push(r.to_string()))
        .forget();
    w.pump();
    assert_eq!(
        *l.borrow(),
        vec!["transport_error => A, authentication failure/shared secret mismatch"]
    );
}

#[test]
fn unknown_node_fails_with_no_known_address() {
    let mut w = pair("s3cret");
    let l = log();
    let l2 = l.clone();
    w.nodes[0]
        .mon("Z#x", move |_, r| l2.borrow_mut().push(r.to_string()))
        .forget();
    w.pump();
    assert_eq!(*l.borrow(), vec!["transport_error => Z, no known address"]);
}

#[test]
fn messages_queued_while_connecting_arrive_in_order() {
    let mut w = Wire::new();
    w.add("10.0.0.1:4040", &[("nodeid", "A"), ("secret", "s")]);
    w.add("10.0.0.2:4040", &[("nodeid", "B"), ("secret", "s")]);
    w.pump();
    let l = log();
    let pb = sink(&mut w.nodes[1], &l);
    w.nodes[0].add_node_addresses("B", vec!["10.0.0.2:4040".into()]);
    for i in 0..100 {
        w.nodes[0].snd(&pb, msg![i]);
    }
    assert_eq!(w.nodes[0].queued_for("B"), 100);
    w.pump();
    let expect: Vec<String> = (0..100).map(|i| format!("[{i}]")).collect();
    assert_eq!(*l.borrow(), expect);
}

#[test]
fn connect_tries_addresses_in_turn() {
    let mut w = Wire::new();
    w.add("10.0.0.1:4040", &[("nodeid", "A"), ("secret", "s")]);
    w.add("10.0.0.2:4040", &[("nodeid", "B"), ("secret", "s")]);
    w.pump();
    let l = log();
    let pb = sink(&mut w.nodes[1], &l);
    w.nodes[0].add_node_addresses("B", vec!["10.9.9.9:1".into(), "10.0.0.2:4040".into()]);
    w.nodes[0].snd(&pb, msg!["hi"]);
    w.pump();
    assert_eq!(*l.borrow(), vec![r#"["hi"]"#]);
}

#[test]
fn killed_connection_fires_monitors_and_node_down() {
    let mut w = pair("s3cret");
    let l = log();
    let pb = w.nodes[1].port_with(|_, _| Ok(()));
    let l2 = l.clone();
    w.nodes[0]
        .mon(&pb, move |_, r| l2.borrow_mut().push(r.to_string()))
        .forget();
    let l3 = l.clone();
    w.nodes[0]
        .mon_nodes(move |_, n, up, r| l3.borrow_mut().push(format!("node {n} {up} {r}")))
        .forget();
    w.pump();
    // The driver reports the socket broke.
    let conn = w.nodes[0].peer_conn("B").unwrap();
    w.nodes[0].handle_closed(w.now, conn, "connection reset by peer");
    w.pump();
    assert_eq!(
        *l.borrow(),
        vec![
            "transport_error => B, connection reset by peer",
            "node B false transport_error => B, connection reset by peer"
        ]
    );
    assert_eq!(w.nodes[0].node_is_up("B"), None);
}

#[test]
fn heartbeats_keep_idle_links_up_and_detect_silent_death() {
    let hb = [("heartbeat_interval", "0.5"), ("heartbeat_timeout", "2")];
    let mut w = pair_with(&hb, &hb);
    w.advance(Duration::from_secs(10));
    assert_eq!(
        w.nodes[1].up_nodes(),
        vec![Str::from("A")],
        "idle link survives on heartbeats"
    );
    let l = log();
    let pa = w.nodes[0].port();
    let l2 = l.clone();
    w.nodes[1]
        .mon(&pa, move |_, r| l2.borrow_mut().push(r.to_string()))
        .forget();
    w.pump();
    w.black_holed.push(0); // A goes silent, nobody closes anything
    w.advance(Duration::from_secs(5));
    assert_eq!(l.borrow().len(), 1);
    assert!(
        l.borrow()[0].starts_with("transport_error => A, heartbeat timeout"),
        "{:?}",
        l.borrow()
    );
}

#[test]
fn oversize_packet_closes_connection_and_fires_monitors() {
    let mut w = pair_with(&[], &[("max_packet", "1000")]);
    let l = log();
    let pa = w.nodes[0].port_with(|_, _| Ok(()));
    let pb = w.nodes[1].port_with(|_, _| Ok(()));
    let l2 = l.clone();
    w.nodes[1]
        .mon(&pa, move |_, r| l2.borrow_mut().push(r.to_string()))
        .forget();
    w.pump();
    w.nodes[0].snd(&pb, msg!["x".repeat(5000)]);
    w.pump();
    assert_eq!(l.borrow().len(), 1);
    assert!(
        l.borrow()[0].starts_with("transport_error => A, "),
        "{:?}",
        l.borrow()
    );
}

#[test]
fn simultaneous_connects_settle_on_one_connection() {
    let mut w = Wire::new();
    w.add("10.0.0.1:4040", &[("nodeid", "A"), ("secret", "s")]);
    w.add("10.0.0.2:4040", &[("nodeid", "B"), ("secret", "s")]);
    w.pump();
    w.nodes[0].add_node_addresses("B", vec!["10.0.0.2:4040".into()]);
    w.nodes[1].add_node_addresses("A", vec!["10.0.0.1:4040".into()]);
    let (la, lb) = (log(), log());
    let pa = sink(&mut w.nodes[0], &la);
    let pb = sink(&mut w.nodes[1], &lb);
    w.nodes[0].snd(&pb, msg!["a"]);
    w.nodes[1].snd(&pa, msg!["b"]);
    w.pump();
    assert_eq!(w.nodes[0].conn_count(), 1);
    assert_eq!(w.nodes[1].conn_count(), 1);
    assert_eq!(*la.borrow(), vec![r#"["b"]"#]);
    assert_eq!(*lb.borrow(), vec![r#"["a"]"#]);
}

#[test]
fn snd_on_relays_through_the_other_node() {
    let mut w = pair("s3cret");
    let l = log();
    let pa = sink(&mut w.nodes[0], &l);
    w.nodes[0].snd_on("B", &pa, msg!["relayed"]);
    w.pump();
    assert_eq!(*l.borrow(), vec![r#"["relayed"]"#]);
}

#[test]
fn json_only_peer_talks_json() {
    let mut w = pair_with(&[], &[("framing_format", "[\"json\"]")]);
    let l = log();
    let pb = sink(&mut w.nodes[1], &l);
    w.nodes[0].snd(&pb, msg!["hello", 1.5]);
    w.pump();
    assert_eq!(*l.borrow(), vec![r#"["hello",1.5]"#]);
}

#[test]
fn garbage_instead_of_greeting_is_refused() {
    let mut w = Wire::new();
    w.add("10.0.0.1:4040", &[("nodeid", "A"), ("secret", "s")]);
    let now = w.now;
    let c = w.nodes[0].handle_accept(now, Transport::Tcp, None);
    w.nodes[0].handle_data(now, c, b"GET / HTTP/1.0\r\n\r\n");
    let mut closed = false;
    while let Some(a) = w.nodes[0].poll_action() {
        closed |= a == Action::Close { conn: c };
    }
    assert!(closed);
    assert_eq!(w.nodes[0].conn_count(), 0);
    // Oversize line.
    let c = w.nodes[0].handle_accept(now, Transport::Tcp, None);
    w.nodes[0].handle_data(now, c, &vec![b'a'; 5000]);
    assert_eq!(w.nodes[0].conn_count(), 0);
}

#[test]
fn handshake_timeout_closes_silent_connection() {
    let mut w = Wire::new();
    w.add(
        "10.0.0.1:4040",
        &[("nodeid", "A"), ("secret", "s"), ("monitor_timeout", "3")],
    );
    let now = w.now;
    w.nodes[0].handle_accept(now, Transport::Tcp, None);
    w.advance(Duration::from_secs(2));
    assert_eq!(w.nodes[0].conn_count(), 1);
    w.advance(Duration::from_secs(2));
    assert_eq!(w.nodes[0].conn_count(), 0);
}

#[test]
fn failing_handshake_still_sends_our_auth_line_first() {
    // The peer's greeting and (bad) auth line arrive in one read: we must
    // still send our auth line before closing, so the peer learns the reason.
    let mut w = Wire::new();
    w.add("10.0.0.1:4040", &[("nodeid", "A"), ("secret", "right")]);
    let now = w.now;
    let cfg_b = crate::wire::HandshakeConfig::new("B", Some(b"wrong"));
    let mut b = crate::wire::Handshake::new(&cfg_b, [7; 66], None);
    let c = w.nodes[0].handle_accept(now, Transport::Tcp, None);
    let greeting_a = w.nodes[0].poll_transmit().unwrap().data;
    let ev = b.receive(&greeting_a).unwrap();
    let auth_b = ev
        .iter()
        .find_map(|e| match e {
            crate::wire::HsEvent::Send(x) => Some(x.clone()),
            _ => None,
        })
        .unwrap();
    let mut both = b.greeting().to_vec();
    both.extend_from_slice(&auth_b);
    w.nodes[0].handle_data(now, c, &both);
    let t = w.nodes[0]
        .poll_transmit()
        .expect("our auth line goes out before the close");
    assert!(t.text);
    let err = b.receive(&t.data).unwrap_err();
    assert_eq!(
        err.to_string(),
        "authentication failure/shared secret mismatch"
    );
    assert_eq!(w.nodes[0].poll_action(), Some(Action::Close { conn: c }));
}
