//! TLS (spec §5.3) between two real nodes over TCP on 127.0.0.1: a shared
//! certificate connects with `tls_sha3_512`, a foreign one is refused, and
//! WebSocket links stay without TLS.

use std::sync::mpsc::channel;
use std::time::{Duration, Instant};

use aemp::core::config::{effective_config, JsonMap};
use aemp::core::msg;
use aemp::NodeRuntime;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(20);

/// A self-signed certificate as `gencert` stores it: certificate PEM, then
/// key PEM.
fn gencert() -> String {
    let c = rcgen::generate_simple_self_signed(vec!["AnyEvent::MP".to_string()]).unwrap();
    format!("{}{}", c.cert.pem(), c.signing_key.serialize_pem())
}

fn node(id: &str, secret: &str, cert: &str) -> NodeRuntime {
    let mut m = JsonMap::new();
    m.insert("nodeid".into(), json!(id));
    m.insert("binds".into(), json!(["127.0.0.1:0"]));
    m.insert("secret".into(), json!(secret));
    m.insert("cert".into(), json!(cert));
    let cfg = effective_config(Some(id), &m, None, "localhost").unwrap();
    aemp::start_config(cfg, "localhost".into()).unwrap()
}

/// Has `a` reach `b` at `addr`, sends one message, and returns how `a`
/// authenticated `b` (auth method, TLS) — or the monitor's reason if the
/// connection failed.
fn talk(a: &NodeRuntime, b: &NodeRuntime, addr: String) -> Result<(String, bool), String> {
    let (tx, rx) = channel();
    let port = b
        .handle()
        .call(move |n| {
            let p = n.port();
            n.rcv_tag(&p, "hello", move |_, m| {
                let _ = tx.send(m);
                Ok(())
            })
            .unwrap();
            p.to_string()
        })
        .unwrap();
    let (mtx, mrx) = channel();
    let bid = b.node_id().to_string();
    a.handle().exec(move |n| {
        n.add_node_addresses(&bid, vec![addr]);
        n.mon(&port, move |_, r| {
            let _ = mtx.send(r.to_string());
        })
        .forget();
        n.snd(&port, msg!["hello", 42]);
    });
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(m) = rx.try_recv() {
            assert_eq!(m, msg![42]);
            let bid = b.node_id().to_string();
            return Ok(a
                .handle()
                .call(move |n| {
                    let m = n.peer_auth_method(&bid).unwrap_or("").to_string();
                    (m, n.peer_uses_tls(&bid))
                })
                .unwrap());
        }
        if let Ok(r) = mrx.try_recv() {
            return Err(r);
        }
        assert!(Instant::now() < deadline, "neither message nor monitor");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn shared_certificate_talks_tls_over_tcp() {
    let pem = gencert();
    let b = node("tlsB", "s3cret", &pem);
    let a = node("tlsA", "s3cret", &pem);
    let r = talk(&a, &b, b.addr().to_string());
    assert_eq!(r, Ok(("tls_sha3_512".to_string(), true)));
}

#[test]
fn foreign_certificate_is_refused() {
    let b = node("certB", "s3cret", &gencert());
    let a = node("certA", "s3cret", &gencert());
    let r = talk(&a, &b, b.addr().to_string()).unwrap_err();
    assert!(
        r.starts_with("transport_error => certB, TLS handshake failed: "),
        "{r}"
    );
}

#[test]
fn websocket_links_do_not_use_tls() {
    let pem = gencert();
    let b = node("wsTlsB", "s3cret", &pem);
    let a = node("wsTlsA", "s3cret", &pem);
    let r = talk(&a, &b, format!("ws://{}/", b.addr()));
    assert_eq!(r, Ok(("hmac_sha3_512".to_string(), false)));
}
