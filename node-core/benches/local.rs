//! Local `snd` → `rcv` throughput of the kernel: a small message (a tag and
//! two scalars) sent to a port with a tag callback, in batches, as a driver
//! would interleave sends and `poll`. Prints `local_send_msgs_per_s`.
//!
//! Run: `cargo bench -p aemp-core --bench local`.

use std::cell::Cell;
use std::hint::black_box;
use std::rc::Rc;
use std::time::Instant;

use aemp_core::{msg, Node, Time};

fn run(total: u64) -> f64 {
    let mut node = Node::new([42; 32]);
    node.set_node_id("bench/local", false).expect("valid id");
    let got = Rc::new(Cell::new(0u64));
    let g = got.clone();
    let port = node.port();
    node.rcv_tag(&port, "msg", move |_, m| {
        black_box(&m);
        g.set(g.get() + 1);
        Ok(())
    })
    .expect("local port");
    let t0 = Instant::now();
    let mut sent = 0;
    while sent < total {
        for i in 0..1000 {
            node.snd(&port, msg!["msg", i, 2.5]);
        }
        sent += 1000;
        while node.poll(Time::ZERO) {}
    }
    let dt = t0.elapsed().as_secs_f64();
    assert_eq!(got.get(), total);
    total as f64 / dt
}

fn main() {
    run(200_000); // warm-up
    let mut best: f64 = 0.0;
    for _ in 0..3 {
        best = best.max(run(5_000_000));
    }
    println!("local_send_msgs_per_s {best:.1}");
}
