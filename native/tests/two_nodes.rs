//! Two real nodes on two driver threads, talking AEMP over real TCP and
//! WebSocket on 127.0.0.1: messages, remote monitors, authentication.

use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

use aemp::core::config::{effective_config, JsonMap};
use aemp::core::{msg, Reason, Value};
use aemp::NodeRuntime;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(20);

fn node(id: &str, secret: &str, seeds: &[String]) -> NodeRuntime {
    if let Ok(f) = std::env::var("AEMP_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(f))
            .with_test_writer()
            .try_init();
    }
    let mut m = JsonMap::new();
    m.insert("nodeid".into(), json!(id));
    m.insert("binds".into(), json!(["127.0.0.1:0"]));
    m.insert("secret".into(), json!(secret));
    m.insert("seeds".into(), json!(seeds));
    let cfg = effective_config(Some(id), &m, None, "localhost").unwrap();
    aemp::start_config(cfg, "localhost".into()).unwrap()
}

/// Waits until `a` reports `b` connected.
fn wait_up(a: &NodeRuntime, b: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        let b2 = b.to_string();
        if a.handle()
            .call(move |n| n.node_is_up(&b2) == Some(true))
            .unwrap()
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} never saw {b} up",
            a.node_id()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Creates a port on `rt` whose `tag` messages go to the returned channel.
fn sink_port(rt: &NodeRuntime, tag: &'static str) -> (String, Receiver<Vec<Value>>) {
    let (tx, rx) = channel();
    let port = rt
        .handle()
        .call(move |n| {
            let p = n.port();
            n.rcv_tag(&p, tag, move |_, m| {
                let _ = tx.send(m);
                Ok(())
            })
            .unwrap();
            p.to_string()
        })
        .unwrap();
    (port, rx)
}

/// Monitors `port` from `rt`; the reason arrives on the channel.
fn monitor(rt: &NodeRuntime, port: &str) -> Receiver<Reason> {
    let (tx, rx) = channel();
    let port = port.to_string();
    rt.handle().exec(move |n| {
        n.mon(&port, move |_, r| {
            let _ = tx.send(r);
        })
        .forget();
    });
    rx
}

fn message_and_monitor(b: &NodeRuntime, a: &NodeRuntime) {
    wait_up(a, b.node_id());
    let (port, rx) = sink_port(b, "hello");
    let p = port.clone();
    a.handle().exec(move |n| n.snd(&p, msg!["hello", 42, "x"]));
    let got = rx.recv_timeout(WAIT).expect("message from A to B");
    assert_eq!(got, msg![42, "x"]);

    let mon = monitor(a, &port);
    // The mon1 request reaches B before the kill (same connection, in order),
    // so make sure it is registered by a round trip first.
    let (p2, rx2) = sink_port(b, "ping");
    a.handle().exec(move |n| n.snd(&p2, msg!["ping"]));
    rx2.recv_timeout(WAIT).unwrap();
    let p = port.clone();
    b.handle()
        .exec(move |n| n.kil(&p, msg!["gone", "bye"]).unwrap());
    let r = mon.recv_timeout(WAIT).expect("monitor fired");
    assert_eq!(r, Reason(msg!["gone", "bye"]));
}

#[test]
fn tcp_message_and_remote_monitor() {
    let b = node("nodeB", "s3cret", &[]);
    let a = node("nodeA", "s3cret", &[b.addr().to_string()]);
    message_and_monitor(&b, &a);
}

#[test]
fn websocket_message_and_remote_monitor() {
    let b = node("wsB", "s3cret", &[]);
    let a = node("wsA", "s3cret", &[format!("ws://{}/", b.addr())]);
    message_and_monitor(&b, &a);
}

fn wrong_secret(seed: impl Fn(&NodeRuntime) -> String) {
    let b = node("authB", "right", &[]);
    let a = node("authA", "wrong", &[]);
    let (port, _rx) = sink_port(&b, "x");
    let addr = seed(&b);
    let p = port.clone();
    let (tx, rx) = channel();
    a.handle().exec(move |n| {
        n.add_node_addresses("authB", vec![addr]);
        n.mon(&p, move |_, r| {
            let _ = tx.send(r);
        })
        .forget();
    });
    let r = rx.recv_timeout(WAIT).expect("monitor fired");
    assert_eq!(r.kind(), Some("transport_error"), "{r}");
    assert_eq!(r.0[1], Value::from("authB"), "{r}");
    let text = r.0[2].as_str().unwrap_or("").to_string();
    assert!(
        text.contains("authentication failure/shared secret mismatch"),
        "{r}"
    );
}

#[test]
fn wrong_secret_fires_monitor_tcp() {
    wrong_secret(|b| b.addr().to_string());
}

#[test]
fn wrong_secret_fires_monitor_websocket() {
    wrong_secret(|b| format!("ws://{}/", b.addr()));
}
