//! Basic two-node behaviour over the simulated network: remote `snd` both
//! ways, remote monitors firing on `kil` with the reason, a `cal` round
//! trip, and node-down monitors when a link is cut.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use aemp_core::{msg, CalError, Msg, Reason, Value};
use aemp_tests::sim::{NodeIdx, Sim, SimConfig};
use serde_json::json;

const SECRET: &str = "sim-test-secret";

/// Two nodes `a` and `b`; `b` has `a` as its seed. Returns once both see
/// the connection up (a sends to `b` only over a connection `b` opened: it
/// knows no address of `b`).
fn two_nodes(seed: u64) -> (Sim, NodeIdx, NodeIdx) {
    two_nodes_with(seed, SimConfig::default())
}

fn two_nodes_with(seed: u64, cfg: SimConfig) -> (Sim, NodeIdx, NodeIdx) {
    let mut sim = Sim::new(seed, cfg);
    let a = sim.add_node(json!({"nodeid": "a", "secret": SECRET}));
    let b = sim.add_node(json!({"nodeid": "b", "secret": SECRET, "seeds": [sim.addr(a)]}));
    assert!(!sim.is_up(a, "b") && !sim.is_up(b, "a"));
    let d = deadline(&sim, 1.0);
    assert!(
        sim.run_until_cond(|s| s.is_up(a, "b") && s.is_up(b, "a"), d),
        "seed connection never came up: {sim:?}"
    );
    (sim, a, b)
}

type Log<T> = Rc<RefCell<Vec<T>>>;

fn log<T>() -> Log<T> {
    Rc::new(RefCell::new(Vec::new()))
}

/// A port on node `i` that records (source node, message) of every message.
fn recording_port(sim: &mut Sim, i: NodeIdx, log: &Log<(String, Msg)>) -> String {
    let l = log.clone();
    sim.node(i)
        .port_with(move |n, m| {
            l.borrow_mut().push((n.src_node().to_string(), m));
            Ok(())
        })
        .to_string()
}

fn deadline(sim: &Sim, secs: f64) -> aemp_core::Time {
    sim.now() + Duration::from_secs_f64(secs)
}

#[test]
fn messages_flow_both_ways() {
    let (mut sim, a, b) = two_nodes(1);
    let at_a = log();
    let at_b = log();
    let pa = recording_port(&mut sim, a, &at_a);
    let pb = recording_port(&mut sim, b, &at_b);

    // b knows a from its seed list.
    sim.node(b).snd(&pa, msg!["hello", 1, "from b"]);
    let d = deadline(&sim, 2.0);
    assert!(
        sim.run_until_cond(|_| !at_a.borrow().is_empty(), d),
        "b -> a never arrived; {sim:?}"
    );
    assert_eq!(
        *at_a.borrow(),
        vec![("b".to_string(), msg!["hello", 1, "from b"])]
    );

    // a answers over the connection b opened.
    sim.node(a).snd(&pb, msg!["world", 2]);
    sim.node(a).snd(&pb, msg!["world", 3]);
    let d = deadline(&sim, 2.0);
    assert!(sim.run_until_cond(|_| at_b.borrow().len() == 2, d));
    assert_eq!(
        *at_b.borrow(),
        vec![
            ("a".to_string(), msg!["world", 2]),
            ("a".to_string(), msg!["world", 3])
        ]
    );
    // Nothing else happens afterwards (no duplicates, no stray kills).
    sim.run_for(Duration::from_secs(5));
    assert_eq!(at_a.borrow().len(), 1);
    assert_eq!(at_b.borrow().len(), 2);
    assert!(sim.stats().connects >= 1 && sim.stats().bytes > 0);
}

#[test]
fn large_stream_arrives_in_order_through_split_reads() {
    // Every write is split into up to 64 reads.
    let cfg = SimConfig {
        split_probability: 1.0,
        max_chunks: 64,
        ..SimConfig::default()
    };
    let (mut sim, a, b) = two_nodes_with(2, cfg);
    let at_a = log();
    let pa = recording_port(&mut sim, a, &at_a);
    let blob = "x".repeat(3000);
    for i in 0..500 {
        sim.node(b).snd(&pa, msg!["n", i, blob.as_str()]);
        if i % 10 == 9 {
            sim.run_for(Duration::from_micros(300));
        }
    }
    let d = deadline(&sim, 5.0);
    assert!(sim.run_until_cond(|_| at_a.borrow().len() == 500, d));
    let got: Vec<i64> = at_a
        .borrow()
        .iter()
        .map(|(_, m)| m[1].as_i64().unwrap())
        .collect();
    assert_eq!(got, (0..500).collect::<Vec<_>>());
    // Incremental decoding really was exercised.
    assert!(sim.stats().reads > 1000, "{:?}", sim.stats());
}

#[test]
fn remote_monitor_fires_on_kil_with_reason() {
    let (mut sim, a, b) = two_nodes(3);
    let at_a = log();
    let pa = recording_port(&mut sim, a, &at_a);
    // Get the connection up first.
    sim.node(b).snd(&pa, msg!["up"]);
    let d = deadline(&sim, 2.0);
    assert!(sim.run_until_cond(|_| !at_a.borrow().is_empty(), d));

    // 1. b kills its own port: a's monitor gets the reason via kil0.
    let pb = sim.node(b).port_with(|_, _| Ok(())).to_string();
    let fired: Log<Reason> = log();
    let f = fired.clone();
    sim.node(a)
        .mon(&pb, move |_, r| f.borrow_mut().push(r))
        .forget();
    sim.run_for(Duration::from_millis(100)); // mon1 reaches b
    assert!(
        fired.borrow().is_empty(),
        "fired early: {:?}",
        fired.borrow()
    );
    sim.node(b)
        .kil(&pb, msg!["custom_error", "it broke", 7])
        .unwrap();
    let d = deadline(&sim, 2.0);
    assert!(sim.run_until_cond(|_| !fired.borrow().is_empty(), d));
    assert_eq!(
        *fired.borrow(),
        vec![Reason(msg!["custom_error", "it broke", 7])]
    );

    // 2. a kills a port of b remotely (kil1) right after monitoring it:
    //    mon1 and kil1 travel in order, so the monitor sees the reason.
    let pb2 = sim.node(b).port_with(|_, _| Ok(())).to_string();
    let fired2: Log<Reason> = log();
    let f2 = fired2.clone();
    sim.node(a)
        .mon(&pb2, move |_, r| f2.borrow_mut().push(r))
        .forget();
    sim.node(a).kil(&pb2, msg!["stop", "by a"]).unwrap();
    let d = deadline(&sim, 2.0);
    assert!(sim.run_until_cond(|_| !fired2.borrow().is_empty(), d));
    assert_eq!(*fired2.borrow(), vec![Reason(msg!["stop", "by a"])]);
    assert!(!sim.node(b).port_exists(&pb2));

    // 3. A normal remote kill gives an empty reason; monitoring a port that
    //    does not exist gives no_such_port.
    let pb3 = sim.node(b).port_with(|_, _| Ok(())).to_string();
    let fired3: Log<Reason> = log();
    let f3 = fired3.clone();
    sim.node(a)
        .mon(&pb3, move |_, r| f3.borrow_mut().push(r))
        .forget();
    sim.node(a).kil(&pb3, msg![]).unwrap();
    let f4 = fired3.clone();
    sim.node(a)
        .mon(&pb, move |_, r| f4.borrow_mut().push(r))
        .forget();
    let d = deadline(&sim, 2.0);
    assert!(sim.run_until_cond(|_| fired3.borrow().len() == 2, d));
    let got = fired3.borrow();
    assert_eq!(got[0], Reason::normal());
    assert_eq!(got[1].kind(), Some("no_such_port"), "{}", got[1]);

    // No monitor fired twice.
    sim.run_for(Duration::from_secs(3));
    assert_eq!(fired.borrow().len(), 1);
    assert_eq!(fired2.borrow().len(), 1);
    assert_eq!(fired3.borrow().len(), 2);
}

#[test]
fn cal_round_trip() {
    let (mut sim, a, b) = two_nodes(4);
    // An adder on b.
    let adder = sim
        .node(b)
        .port_with(|n, mut m| {
            let reply = m.pop().and_then(|v| v.as_str().map(str::to_string));
            let sum: i64 = m.iter().filter_map(Value::as_i64).sum();
            if let Some(r) = reply {
                n.snd(&r, msg!["sum", sum]);
            }
            Ok(())
        })
        .to_string();
    // b -> a first so that a knows b (b has a as its seed).
    let out: Log<Result<Msg, CalError>> = log();
    let o = out.clone();
    let pa = sim.node(a).port_with(|_, _| Ok(())).to_string();
    sim.node(b).snd(&pa, msg!["hi"]);
    sim.run_for(Duration::from_millis(200));
    let start = sim.now();
    sim.node(a).cal(
        &adder,
        msg![1, 2, 39],
        Some(Duration::from_secs(2)),
        move |_, r| o.borrow_mut().push(r),
    );
    let d = deadline(&sim, 3.0);
    assert!(sim.run_until_cond(|_| !out.borrow().is_empty(), d));
    assert_eq!(*out.borrow(), vec![Ok(msg!["sum", 42])]);
    // A round trip is a few link latencies, not a timeout.
    assert!(sim.now() - start < Duration::from_millis(100));
    // Exactly once: the timeout later does not call again.
    sim.run_for(Duration::from_secs(3));
    assert_eq!(out.borrow().len(), 1);

    // A cal to a port that dies: the callback reports the death.
    let doomed = sim.node(b).port_with(|_, _| Ok(())).to_string();
    let out2: Log<Result<Msg, CalError>> = log();
    let o2 = out2.clone();
    sim.node(a).cal(&doomed, msg!["x"], None, move |_, r| {
        o2.borrow_mut().push(r)
    });
    sim.run_for(Duration::from_millis(100));
    sim.node(b).kil(&doomed, msg!["gone"]).unwrap();
    let d = deadline(&sim, 2.0);
    assert!(sim.run_until_cond(|_| !out2.borrow().is_empty(), d));
    assert_eq!(
        *out2.borrow(),
        vec![Err(CalError::Died(Reason(msg!["gone"])))]
    );
}

#[test]
fn cut_link_fires_node_and_port_monitors_with_transport_error() {
    let (mut sim, a, b) = two_nodes(5);
    let at_a = log();
    let pa = recording_port(&mut sim, a, &at_a);
    let pb = sim.node(b).port_with(|_, _| Ok(())).to_string();
    sim.node(b).snd(&pa, msg!["up"]);
    let d = deadline(&sim, 2.0);
    assert!(sim.run_until_cond(|_| !at_a.borrow().is_empty(), d));

    let node_down: Log<Reason> = log();
    let port_down: Log<Reason> = log();
    let (n1, p1) = (node_down.clone(), port_down.clone());
    sim.node(a)
        .mon("b", move |_, r| n1.borrow_mut().push(r))
        .forget();
    sim.node(a)
        .mon(&pb, move |_, r| p1.borrow_mut().push(r))
        .forget();
    sim.run_for(Duration::from_secs(1));
    assert!(node_down.borrow().is_empty() && port_down.borrow().is_empty());
    assert_eq!(sim.links_between(a, b), 1);

    sim.cut_link(a, b);
    let d = deadline(&sim, 1.0);
    assert!(sim.run_until_cond(
        |_| !node_down.borrow().is_empty() && !port_down.borrow().is_empty(),
        d
    ));
    for r in [&node_down.borrow()[0], &port_down.borrow()[0]] {
        assert_eq!(r.kind(), Some("transport_error"), "{r}");
        assert_eq!(r.values()[1].as_str(), Some("b"), "{r}");
    }
    assert_eq!(sim.stats().cuts, 1);

    // b reconnects to its seed; messages flow again.
    let before = at_a.borrow().len();
    sim.run_for(Duration::from_secs(10));
    sim.node(b).snd(&pa, msg!["again"]);
    let d = deadline(&sim, 2.0);
    assert!(sim.run_until_cond(|_| at_a.borrow().len() > before, d));
    assert_eq!(at_a.borrow().last().unwrap().1, msg!["again"]);
    // One-shot: the monitors fired once.
    assert_eq!(node_down.borrow().len(), 1);
    assert_eq!(port_down.borrow().len(), 1);
}

#[test]
fn same_seed_same_run() {
    fn run(seed: u64) -> (Vec<(String, Msg)>, aemp_tests::sim::SimStats) {
        let (mut sim, a, b) = two_nodes(seed);
        let at_a = log();
        let pa = recording_port(&mut sim, a, &at_a);
        for i in 0..50 {
            sim.node(b).snd(&pa, msg!["n", i]);
            sim.run_for(Duration::from_millis(3));
        }
        sim.cut_link(a, b);
        sim.run_for(Duration::from_secs(5));
        let v = at_a.borrow().clone();
        (v, sim.stats().clone())
    }
    let x = run(77);
    assert_eq!(x, run(77));
    assert!(!x.0.is_empty());
}

#[test]
fn partition_refuses_until_healed_and_delay_slows_round_trips() {
    let (mut sim, a, b) = two_nodes(6);
    let echo = sim
        .node(a)
        .port_with(|n, mut m| {
            if let Some(r) = m.pop().and_then(|v| v.as_str().map(str::to_string)) {
                n.snd(&r, m);
            }
            Ok(())
        })
        .to_string();
    let round_trip = |sim: &mut Sim| -> Option<Duration> {
        let out: Log<Result<Msg, CalError>> = log();
        let o = out.clone();
        let start = sim.now();
        sim.node(b).cal(
            &echo,
            msg!["ping"],
            Some(Duration::from_secs(3)),
            move |_, r| o.borrow_mut().push(r),
        );
        let d = deadline(sim, 4.0);
        assert!(sim.run_until_cond(|_| !out.borrow().is_empty(), d));
        let r = out.borrow()[0].clone();
        r.ok().map(|m| {
            assert_eq!(m, msg!["ping"]);
            sim.now() - start
        })
    };
    let fast = round_trip(&mut sim).expect("reply");
    assert!(fast < Duration::from_millis(10), "{fast:?}");

    sim.delay(a, b, Duration::from_millis(200));
    let slow = round_trip(&mut sim).expect("reply");
    assert!(slow >= Duration::from_millis(400), "{slow:?}");
    sim.delay(a, b, Duration::ZERO);

    // Partition: the link is cut, b's node monitor fires, and b's seed
    // reconnects are refused while it lasts.
    let down: Log<Reason> = log();
    let d2 = down.clone();
    sim.node(b)
        .mon("a", move |_, r| d2.borrow_mut().push(r))
        .forget();
    sim.run_for(Duration::from_millis(10));
    let refused_before = sim.stats().refused;
    sim.partition(&[a], &[b]);
    sim.run_for(Duration::from_secs(10));
    assert_eq!(down.borrow().len(), 1);
    assert_eq!(down.borrow()[0].kind(), Some("transport_error"));
    assert!(sim.stats().refused > refused_before, "{:?}", sim.stats());
    assert_eq!(sim.links_between(a, b), 0);
    assert!(!sim.is_up(b, "a"));
    // A cal across the partition fails (no reply), rather than hanging.
    assert_eq!(round_trip(&mut sim), None);

    sim.heal();
    let d = deadline(&sim, 10.0);
    assert!(sim.run_until_cond(|s| s.is_up(b, "a"), d), "{sim:?}");
    assert!(round_trip(&mut sim).is_some());
}
