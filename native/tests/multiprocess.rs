//! Multi-process tests: real `aemp run` processes, a Rust test node and
//! raw (hostile and well-behaved) TCP clients talking to them.

use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

use aemp::core::config::{effective_config, JsonMap};
use aemp::core::wire::auth::hmac_sha3_512_hex;
use aemp::core::{msg, Reason, Value};
use aemp::NodeRuntime;
use serde_json::json;

mod common;
use common::{sink, Proc};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(20);
const SECRET: &str = "mp-s3cret";

fn test_node(id: &str, known: &[&Proc]) -> NodeRuntime {
    let mut m = JsonMap::new();
    m.insert("nodeid".into(), json!(id));
    m.insert("binds".into(), json!(["127.0.0.1:0"]));
    m.insert("secret".into(), json!(SECRET));
    let cfg = effective_config(Some(id), &m, None, "localhost").unwrap();
    let rt = aemp::start_config(cfg, "localhost".into()).unwrap();
    let known: Vec<(String, String)> = known
        .iter()
        .map(|p| (p.node.clone(), p.tcp.clone()))
        .collect();
    rt.handle().exec(move |n| {
        for (id, addr) in known {
            n.add_node_addresses(&id, vec![addr]);
        }
    });
    rt
}

/// Sends `msg` to `to` repeatedly (tagged with a counter) until something
/// arrives on `rx`; connections may still be coming up.
fn until_reply(
    rt: &NodeRuntime,
    rx: &Receiver<Vec<Value>>,
    send: impl Fn(&mut aemp::core::Node, i64) + Send + Clone + 'static,
) -> Vec<Value> {
    let deadline = Instant::now() + WAIT;
    let mut i = 0;
    loop {
        i += 1;
        let s = send.clone();
        rt.handle().exec(move |n| s(n, i));
        if let Ok(m) = rx.recv_timeout(Duration::from_millis(500)) {
            return m;
        }
        assert!(Instant::now() < deadline, "no reply");
    }
}

/// `time` node request to `node`: the reply proves the node serves.
fn ping(rt: &NodeRuntime, node: &str) {
    let (p, rx) = sink(rt);
    let target = format!("{node}#");
    let r = until_reply(rt, &rx, move |n, i| {
        n.snd(&target, msg!["time", p.as_str(), "pong", i])
    });
    assert_eq!(r[0], Value::from("pong"), "{r:?}");
}

#[test]
fn two_processes_relay_and_sigkill() {
    let p1 = Proc::start(&["nodeid", "mp1", "binds", "127.0.0.1:0", "secret", SECRET]);
    let seeds = format!(r#"["{}"]"#, p1.tcp);
    let mut p2 = Proc::start(&[
        "nodeid",
        "mp2",
        "binds",
        "127.0.0.1:0",
        "seeds",
        &seeds,
        "secret",
        SECRET,
    ]);
    let t = test_node("mptest", &[&p1, &p2]);
    ping(&t, "mp1");
    ping(&t, "mp2");

    // A message that travels test → mp2 → mp1 → test (relay requests):
    // mp2 reaches mp1 through its seed connection.
    let (p, rx) = sink(&t);
    let r = until_reply(&t, &rx, move |n, i| {
        n.snd("mp2#", msg!["snd", "mp1#", "snd", p.as_str(), "relayed", i])
    });
    assert_eq!(r[0], Value::from("relayed"));

    // SIGKILL mp2: the monitor on its node port fires with transport_error.
    let (tx, mon) = channel();
    t.handle().exec(move |n| {
        n.mon("mp2#", move |_, r| {
            let _ = tx.send(r);
        })
        .forget();
    });
    p2.kill();
    let r: Reason = mon.recv_timeout(WAIT).expect("monitor fired after SIGKILL");
    assert_eq!(r.kind(), Some("transport_error"), "{r}");
    assert_eq!(r.0[1], Value::from("mp2"));
    // mp1 is unaffected.
    ping(&t, "mp1");
}

// ------------------------------------------------------------- raw clients

/// Reads until the peer closes the connection; panics after the deadline.
async fn expect_closed(s: &mut TcpStream) {
    let mut buf = vec![0u8; 65536];
    let r = tokio::time::timeout(WAIT, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(r.is_ok(), "the node did not close the connection");
}

/// A raw client that completes the AEMP handshake (JSON framing) as node
/// `id` with `secret`; returns the stream after the node's auth line.
async fn handshake(addr: &str, id: &str, secret: &str) -> tokio::io::BufReader<TcpStream> {
    let s = TcpStream::connect(addr).await.unwrap();
    let mut s = tokio::io::BufReader::new(s);
    let l1 = format!("aemp;1;{id};hmac_sha3_512;json;provider=rawtest");
    let l2 = "cmF3bm9uY2U";
    s.get_mut()
        .write_all(format!("{l1}\n{l2}\n").as_bytes())
        .await
        .unwrap();
    let mut r1 = String::new();
    let mut r2 = String::new();
    tokio::time::timeout(WAIT, async {
        s.read_line(&mut r1).await.unwrap();
        s.read_line(&mut r2).await.unwrap();
    })
    .await
    .expect("greeting");
    let (r1, r2) = (r1.trim_end(), r2.trim_end());
    assert!(r1.starts_with("aemp;1;"), "{r1}");
    let t = format!("{l1}\n{l2}\n{r1}\n{r2}\n");
    let tok = hmac_sha3_512_hex(secret.as_bytes(), t.as_bytes());
    s.get_mut()
        .write_all(format!("hmac_sha3_512;{tok};json\n").as_bytes())
        .await
        .unwrap();
    s
}

/// The well-behaved client: handshake, `time` request, reply.
async fn good_client(addr: &str, id: &str) {
    let mut s = handshake(addr, id, SECRET).await;
    let mut auth = String::new();
    tokio::time::timeout(WAIT, s.read_line(&mut auth))
        .await
        .expect("auth line")
        .unwrap();
    assert!(auth.starts_with("hmac_sha3_512;"), "{auth}");
    let req = json!(["", "time", format!("{id}#p"), "pong"]).to_string();
    s.get_mut().write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let found = tokio::time::timeout(WAIT, async {
        let mut chunk = vec![0u8; 4096];
        loop {
            let n = s.read(&mut chunk).await.unwrap();
            assert!(n > 0, "closed before reply");
            buf.extend_from_slice(&chunk[..n]);
            let packets =
                serde_json::Deserializer::from_slice(&buf).into_iter::<serde_json::Value>();
            for p in packets.flatten() {
                if p.get(0) == Some(&json!("p")) && p.get(1) == Some(&json!("pong")) {
                    return true;
                }
            }
        }
    })
    .await;
    assert_eq!(found, Ok(true));
}

#[tokio::test]
async fn hostile_clients_are_dropped_and_node_keeps_serving() {
    let p = tokio::task::spawn_blocking(|| {
        Proc::start(&["nodeid", "target", "binds", "127.0.0.1:0", "secret", SECRET])
    })
    .await
    .unwrap();
    let addr = p.tcp.clone();
    good_client(&addr, "good0").await;

    // Garbage bytes.
    let mut s = TcpStream::connect(&addr).await.unwrap();
    s.write_all(b"\x00\xff\xfe garbage \x01\x02\n\n\x7f trash\n")
        .await
        .unwrap();
    expect_closed(&mut s).await;

    // An oversize greeting line (> 4 KiB, no newline).
    let mut s = TcpStream::connect(&addr).await.unwrap();
    let mut long = b"aemp;1;big;hmac_sha3_512;json;".to_vec();
    long.extend(std::iter::repeat_n(b'x', 6000));
    s.write_all(&long).await.unwrap();
    expect_closed(&mut s).await;

    // A wrong secret.
    let mut s = handshake(&addr, "evil", "not-the-secret").await;
    expect_closed(s.get_mut()).await;

    // A malformed packet after a good handshake.
    let mut s = handshake(&addr, "bad1", SECRET).await;
    s.get_mut()
        .write_all(b"[\"\", \"time\", }}}")
        .await
        .unwrap();
    expect_closed(s.get_mut()).await;

    // A truncated packet, then the write side closed.
    let mut s = handshake(&addr, "bad2", SECRET).await;
    s.get_mut().write_all(b"[\"\", \"ti").await.unwrap();
    s.get_mut().shutdown().await.unwrap();
    expect_closed(s.get_mut()).await;

    // An HTTP request with an oversized head.
    let mut s = TcpStream::connect(&addr).await.unwrap();
    let mut req = b"GET / HTTP/1.1\r\nX: ".to_vec();
    req.extend(std::iter::repeat_n(b'y', 20000));
    let _ = s.write_all(&req).await;
    expect_closed(&mut s).await;

    // Still serving.
    good_client(&addr, "good1").await;
    drop(p);
}
