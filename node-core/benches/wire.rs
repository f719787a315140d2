//! CPU cost of the remote hot path without sockets: two kernels wired
//! together in memory (handshake included), one streaming small messages
//! `["msg", i, "payload"]` to a counting port on the other. Prints the
//! nanoseconds per message spent in the sending kernel (snd + encoding +
//! `poll_transmit`) and in the receiving kernel (`handle_data` + decoding +
//! delivery), best of three runs. Time is the thread's CPU time (on Linux),
//! so a busy machine disturbs the figures less. A deterministic companion
//! to the two-process `aemp-bench` for judging hot-path changes.
//!
//! Run: `cargo bench -p aemp-core --bench wire`.

use std::cell::Cell;
use std::hint::black_box;
use std::rc::Rc;
use std::time::Duration;

use aemp_core::config::{effective_config, JsonMap};
use aemp_core::{Action, Node, Time, Value};

const BATCH: u64 = 1000;

/// CPU time of the calling thread (wall-clock time where unsupported).
#[cfg(target_os = "linux")]
fn cpu_now() -> Duration {
    #[repr(C)]
    struct Timespec {
        sec: i64,
        nsec: i64,
    }
    extern "C" {
        fn clock_gettime(clock: i32, ts: *mut Timespec) -> i32;
    }
    const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
    let mut ts = Timespec { sec: 0, nsec: 0 };
    // SAFETY: clock_gettime writes one timespec into the valid pointer.
    let r = unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(r, 0, "clock_gettime");
    Duration::new(ts.sec as u64, ts.nsec as u32)
}

#[cfg(not(target_os = "linux"))]
fn cpu_now() -> Duration {
    use std::sync::OnceLock;
    static T0: OnceLock<std::time::Instant> = OnceLock::new();
    T0.get_or_init(std::time::Instant::now).elapsed()
}

fn node(id: &str, seed: u8) -> Node {
    let mut m = JsonMap::new();
    m.insert("nodeid".into(), id.into());
    m.insert("secret".into(), "wire-bench".into());
    m.insert("binds".into(), serde_json::json!([format!("{id}:1")]));
    let cfg = effective_config(None, &m, None, "localhost").expect("configuration");
    let mut n = Node::new([seed; 32]);
    n.configure(&cfg, "localhost").expect("configure");
    n.set_listeners(vec![format!("{id}:1")]);
    n
}

/// Moves everything `from` transmits on `conn` to `to` as data on `to_conn`.
fn pump(from: &mut Node, to: &mut Node, to_conn: aemp_core::ConnId, now: Time) -> usize {
    let mut n = 0;
    while let Some(t) = from.poll_transmit() {
        n += t.data.len();
        to.handle_data(now, to_conn, &t.data);
    }
    n
}

fn run(total: u64) -> (f64, f64) {
    let now = Time::from_secs_f64(1.0);
    let mut a = node("wa", 1);
    let mut b = node("wb", 2);
    let got = Rc::new(Cell::new(0u64));
    let g = got.clone();
    let sink = b.port();
    b.rcv_tag(&sink, "msg", move |_, m| {
        black_box(&m);
        g.set(g.get() + 1);
        Ok(())
    })
    .expect("local port");
    a.add_node_addresses("wb", vec!["wb:1".into()]);
    a.snd(&sink, vec![Value::from("msg")]); // brings the connection up
    a.poll(now);
    let Some(Action::Connect { conn: ca, .. }) = a.poll_action() else {
        panic!("no connect");
    };
    let cb = b.handle_accept(now, aemp_core::Transport::Tcp, None);
    a.handle_connected(now, ca, aemp_core::Transport::Tcp);
    for _ in 0..10 {
        pump(&mut a, &mut b, cb, now);
        pump(&mut b, &mut a, ca, now);
        a.poll(now);
        b.poll(now);
    }
    assert_eq!(a.node_is_up("wb"), Some(true), "handshake");
    let (mut ta, mut tb) = (Duration::ZERO, Duration::ZERO);
    let mut sent = 0;
    while sent < total {
        let t0 = cpu_now();
        for i in 0..BATCH {
            a.snd(
                &sink,
                vec![
                    Value::from("msg"),
                    Value::from(sent + i),
                    Value::Bytes(b"payload".to_vec()),
                ],
            );
        }
        a.poll(now);
        let mut data = Vec::new();
        while let Some(t) = a.poll_transmit() {
            data.push(t.data);
        }
        let t1 = cpu_now();
        for d in data {
            b.handle_data(now, cb, &d);
        }
        while b.poll(now) {}
        let t2 = cpu_now();
        ta += t1 - t0;
        tb += t2 - t1;
        sent += BATCH;
        pump(&mut b, &mut a, ca, now);
    }
    assert_eq!(got.get(), total + 1);
    let per = |d: Duration| d.as_nanos() as f64 / total as f64;
    (per(ta), per(tb))
}

fn main() {
    run(100_000); // warm-up
    let (mut sa, mut rb) = (f64::MAX, f64::MAX);
    for _ in 0..3 {
        let (s, r) = run(1_000_000);
        sa = sa.min(s);
        rb = rb.min(r);
    }
    println!("wire_send_ns_per_msg {sa:.1}");
    println!("wire_recv_ns_per_msg {rb:.1}");
}
