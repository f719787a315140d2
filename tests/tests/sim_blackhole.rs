//! Black-hole detection: a peer that vanishes without closing anything
//! (host gone, cable pulled) is noticed only by heartbeats. With a small
//! `heartbeat_interval`/`heartbeat_timeout` the survivor must declare it
//! down within about `heartbeat_timeout` of virtual time, and fire its
//! monitors with `transport_error`; an idle but healthy link must *not* be
//! declared down.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use aemp_core::{msg, Reason, Time};
use aemp_tests::sim::{Kill, NodeIdx, Sim, SimConfig};
use serde_json::json;

const INTERVAL: f64 = 0.2;
const TIMEOUT: f64 = 1.0;

fn args(nodeid: &str, seeds: serde_json::Value) -> serde_json::Value {
    json!({
        "nodeid": nodeid,
        "secret": "blackhole",
        "seeds": seeds,
        "heartbeat_interval": INTERVAL,
        "heartbeat_timeout": TIMEOUT,
    })
}

type Fired = Rc<RefCell<Vec<(Time, Reason)>>>;

fn watcher(sim: &mut Sim, on: NodeIdx, target: &str) -> Fired {
    let f: Fired = Rc::new(RefCell::new(Vec::new()));
    let f2 = f.clone();
    sim.node(on)
        .mon(target, move |n, r| f2.borrow_mut().push((n.now(), r)))
        .forget();
    f
}

/// `a` and `b` connected (b seeds a), `b` with a live port `pb`; returns
/// (sim, a, b, pb).
fn connected(seed: u64) -> (Sim, NodeIdx, NodeIdx, String) {
    let mut sim = Sim::new(seed, SimConfig::default());
    let a = sim.add_node(args("a", json!([])));
    let b = sim.add_node(args("b", json!([sim.addr(a)])));
    let got = Rc::new(RefCell::new(0));
    let g = got.clone();
    let pa = sim
        .node(a)
        .port_with(move |_, _| {
            *g.borrow_mut() += 1;
            Ok(())
        })
        .to_string();
    let pb = sim.node(b).port_with(|_, _| Ok(())).to_string();
    let d = sim.now() + Duration::from_secs(1);
    assert!(sim.run_until_cond(|s| s.is_up(a, "b") && s.is_up(b, "a"), d));
    sim.node(b).snd(&pa, msg!["hi"]);
    let d = sim.now() + Duration::from_secs(2);
    assert!(
        sim.run_until_cond(|_| *got.borrow() == 1, d),
        "no connection"
    );
    (sim, a, b, pb)
}

#[test]
fn idle_healthy_link_stays_up() {
    let (mut sim, a, b, pb) = connected(11);
    let node = watcher(&mut sim, a, "b");
    let port = watcher(&mut sim, a, &pb);
    let back = watcher(&mut sim, b, "a");
    // Thirty heartbeat timeouts of silence at the application level.
    sim.run_for(Duration::from_secs_f64(30.0 * TIMEOUT));
    assert!(node.borrow().is_empty(), "{:?}", node.borrow());
    assert!(port.borrow().is_empty(), "{:?}", port.borrow());
    assert!(back.borrow().is_empty(), "{:?}", back.borrow());
    assert_eq!(sim.links_between(a, b), 1);
    // Heartbeats are what kept it alive: bytes did flow.
    assert!(sim.stats().reads > 20, "{:?}", sim.stats());
}

fn check_detection(fired: &Fired, killed_at: Time, what: &str) {
    let f = fired.borrow();
    assert_eq!(f.len(), 1, "{what}: {f:?}");
    let (t, r) = &f[0];
    assert_eq!(r.kind(), Some("transport_error"), "{what}: {r}");
    let after = (*t - killed_at).as_secs_f64();
    // Nothing was heard since at most one interval before the kill, so the
    // timeout cannot expire before TIMEOUT - INTERVAL; it must expire
    // within TIMEOUT plus one check interval (and some latency).
    assert!(
        (TIMEOUT - INTERVAL - 0.01..=TIMEOUT + INTERVAL + 0.05).contains(&after),
        "{what}: detected {after:.3}s after the black hole (timeout {TIMEOUT}s): {r}"
    );
}

#[test]
fn black_holed_peer_is_declared_down_within_heartbeat_timeout() {
    for seed in 20..30 {
        let (mut sim, a, b, pb) = connected(seed);
        // Let the link settle for a random while.
        let wait = sim.rand_duration(Duration::from_millis(0), Duration::from_millis(700));
        sim.run_for(wait);
        let node = watcher(&mut sim, a, "b");
        let port = watcher(&mut sim, a, &pb);
        sim.run_for(Duration::from_millis(50)); // mon1 reaches b
        let killed_at = sim.now();
        sim.kill(b, Kill::BlackHole);
        // a keeps talking into the void; nothing comes back.
        for i in 0..20 {
            sim.node(a).snd(&pb, msg!["lost", i]);
            sim.run_for(Duration::from_millis(10));
        }
        sim.run_until(killed_at + Duration::from_secs_f64(TIMEOUT * 3.0));
        check_detection(&node, killed_at, &format!("seed {seed}: node monitor"));
        check_detection(&port, killed_at, &format!("seed {seed}: port monitor"));
        assert_eq!(node.borrow()[0].0, port.borrow()[0].0, "seed {seed}");
        assert_eq!(
            node.borrow()[0].1.values()[1].as_str(),
            Some("b"),
            "seed {seed}"
        );
        assert!(sim.stats().bytes_lost > 0, "seed {seed}: {:?}", sim.stats());
        // a dropped the dead link.
        assert_eq!(sim.links_between(a, b), 0, "seed {seed}");
    }
}

#[test]
fn black_holed_side_is_detected_from_both_ends_after_restart() {
    // b vanishes, then comes back as a fresh process under the same
    // address and node ID: a must notice the old b is gone, and the new b
    // must be reachable again through its seed connection.
    let (mut sim, a, b, pb) = connected(31);
    let port = watcher(&mut sim, a, &pb);
    sim.run_for(Duration::from_millis(50));
    let killed_at = sim.now();
    sim.kill(b, Kill::BlackHole);
    sim.run_for(Duration::from_secs_f64(TIMEOUT * 2.0));
    check_detection(&port, killed_at, "port monitor");

    sim.restart(b);
    let got = Rc::new(RefCell::new(Vec::new()));
    let g = got.clone();
    let pb2 = sim
        .node(b)
        .port_with(move |_, m| {
            g.borrow_mut().push(m);
            Ok(())
        })
        .to_string();
    assert_ne!(pb, pb2);
    // The new b connects to its seed a; then a can reach the new port.
    sim.run_for(Duration::from_secs(5));
    sim.node(a).snd(&pb2, msg!["welcome back"]);
    let d = sim.now() + Duration::from_secs(2);
    assert!(sim.run_until_cond(|_| !got.borrow().is_empty(), d));
    assert_eq!(*got.borrow(), vec![msg!["welcome back"]]);
    // The old port is gone for good: monitoring it now fires no_such_port.
    let old = watcher(&mut sim, a, &pb);
    sim.run_for(Duration::from_secs(1));
    assert_eq!(old.borrow().len(), 1);
    assert_eq!(old.borrow()[0].1.kind(), Some("no_such_port"));
}
