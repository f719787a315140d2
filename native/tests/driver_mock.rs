//! Tests of the driver's I/O plumbing with a tiny mock kernel (no AEMP):
//! TCP and WebSocket accept, protocol sniffing, HTTP, outgoing connects,
//! close-after-flush, and the write-queue bound.

use std::time::Duration;

use aemp::core::config::{Config, JsonMap};
use aemp::core::Time;
use aemp::{Action, ConnId, Kernel, NodeRuntime, Transmit, Transport};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

/// Greets every accepted connection, echoes data, and obeys a few
/// commands: `flood` (queue 64 MiB), `bye` (say goodbye and close).
#[derive(Default)]
struct Mock {
    next: u64,
    actions: Vec<Action>,
    transmits: Vec<Transmit>,
    closed: Vec<(u64, String)>,
    connected: Vec<(u64, Transport)>,
    outgoing: Vec<u64>,
    received: Vec<(u64, Vec<u8>)>,
}

impl Mock {
    fn tx(&mut self, conn: ConnId, data: &[u8], text: bool) {
        self.transmits.push(Transmit {
            conn,
            data: data.to_vec(),
            text,
        });
    }

    fn connect(&mut self, addr: &str) -> u64 {
        self.next += 1;
        self.outgoing.push(self.next);
        self.actions.push(Action::Connect {
            conn: ConnId(self.next),
            addr: addr.into(),
        });
        self.next
    }
}

impl Kernel for Mock {
    fn create(_seed: [u8; 32]) -> Self {
        Mock::default()
    }
    fn set_now(&mut self, _now: Time) {}
    fn configure(&mut self, _cfg: &Config, _hostname: &str) -> Result<(), String> {
        Ok(())
    }
    fn node_id(&self) -> String {
        "mock".into()
    }
    fn handle_accept(&mut self, _now: Time, _t: Transport, _peer: Option<String>) -> ConnId {
        self.next += 1;
        let c = ConnId(self.next);
        self.tx(c, b"hello\n", true);
        c
    }
    fn handle_connected(&mut self, _now: Time, conn: ConnId, t: Transport) {
        self.connected.push((conn.0, t));
    }
    fn handle_data(&mut self, _now: Time, conn: ConnId, data: &[u8]) {
        if self.outgoing.contains(&conn.0) {
            self.received.push((conn.0, data.to_vec()));
        } else if data == b"flood" {
            for _ in 0..64 {
                self.tx(conn, &vec![b'x'; 1 << 20], false);
            }
        } else if data == b"bye" {
            self.tx(conn, b"goodbye\n", false);
            self.actions.push(Action::Close { conn });
        } else {
            self.tx(conn, data, false);
        }
    }
    fn handle_closed(&mut self, _now: Time, conn: ConnId, error: &str) {
        self.closed.push((conn.0, error.into()));
    }
    fn set_listeners(&mut self, _addrs: Vec<String>) {}
    fn poll(&mut self, _now: Time) -> bool {
        false
    }
    fn poll_timeout(&mut self) -> Option<Time> {
        None
    }
    fn poll_action(&mut self) -> Option<Action> {
        (!self.actions.is_empty()).then(|| self.actions.remove(0))
    }
    fn poll_transmit(&mut self) -> Option<Transmit> {
        (!self.transmits.is_empty()).then(|| self.transmits.remove(0))
    }
}

fn start(max_queue: Option<u64>) -> NodeRuntime<Mock> {
    let mut m = JsonMap::new();
    m.insert("binds".into(), json!(["127.0.0.1:0"]));
    if let Some(q) = max_queue {
        m.insert("max_queue".into(), json!(q));
    }
    NodeRuntime::<Mock>::start(Config::new("mock", m), "localhost".into()).unwrap()
}

/// Waits (polling the node) until `f` returns `Some`, or panics after 10 s.
fn wait_for<T>(
    rt: &NodeRuntime<Mock>,
    what: &str,
    f: impl Fn(&mut Mock) -> Option<T> + Send + Clone + 'static,
) -> T
where
    T: Send + 'static,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = rt.handle().call(f.clone()).unwrap() {
            return v;
        }
        if std::time::Instant::now() > deadline {
            let st = rt
                .handle()
                .call(|k| {
                    format!(
                        "{:?} {:?} {:?} {:?}",
                        k.connected, k.received, k.closed, k.outgoing
                    )
                })
                .unwrap();
            panic!("timed out waiting for {what}: {st}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

async fn read_exactly(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut b = vec![0; n];
    tokio::time::timeout(Duration::from_secs(10), s.read_exact(&mut b))
        .await
        .expect("read timed out")
        .unwrap();
    b
}

#[tokio::test]
async fn tcp_greeting_echo_and_close_after_flush() {
    let rt = start(None);
    let mut s = TcpStream::connect(rt.addr()).await.unwrap();
    s.write_all(b"aemp;1;x").await.unwrap();
    assert_eq!(read_exactly(&mut s, 6).await, b"hello\n");
    assert_eq!(read_exactly(&mut s, 8).await, b"aemp;1;x");
    s.write_all(b"bye").await.unwrap();
    assert_eq!(read_exactly(&mut s, 8).await, b"goodbye\n");
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut rest))
        .await
        .unwrap()
        .unwrap();
    assert!(rest.is_empty());
    // The kernel asked for the close: it is not reported back.
    let h = rt.handle();
    let closed = tokio::task::spawn_blocking(move || h.call(|k| k.closed.clone()).unwrap())
        .await
        .unwrap();
    assert!(closed.is_empty(), "{closed:?}");
}

#[tokio::test]
async fn peer_eof_is_reported() {
    let rt = start(None);
    let mut s = TcpStream::connect(rt.addr()).await.unwrap();
    s.write_all(b"x").await.unwrap();
    assert_eq!(read_exactly(&mut s, 7).await, b"hello\nx");
    drop(s);
    tokio::task::spawn_blocking(move || {
        let why = wait_for(&rt, "close report", |k| k.closed.first().cloned());
        assert_eq!(why.1, "eof");
    })
    .await
    .unwrap();
}

async fn http_get(addr: std::net::SocketAddr, req: &str) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_string(&mut out))
        .await
        .unwrap()
        .unwrap();
    out
}

#[tokio::test]
async fn http_on_the_same_port() {
    // Without pages (`www_root ""`): `/` names the node.
    let mut m = JsonMap::new();
    m.insert("binds".into(), json!(["127.0.0.1:0"]));
    m.insert("www_root".into(), json!(""));
    let rt = NodeRuntime::<Mock>::start(Config::new("mock", m), "localhost".into()).unwrap();
    for (path, status, body) in [("/", "200", "aemp node mock\n"), ("/nope", "404", "")] {
        let out = http_get(
            rt.addr(),
            &format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n"),
        )
        .await;
        assert!(out.starts_with(&format!("HTTP/1.1 {status} ")), "{out}");
        assert!(out.ends_with(body), "{out}");
    }
}

#[tokio::test]
async fn http_serves_the_pages_and_the_page_config() {
    // Default: the workspace's www/, and a generated web secret.
    let rt = start(None);
    let out = http_get(rt.addr(), "GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
    assert!(out.contains("Content-Type: text/html"), "{out}");
    assert!(out.contains("<title>aemp chat</title>"), "{out}");
    let out = http_get(rt.addr(), "HEAD /net.html HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(
        out.starts_with("HTTP/1.1 200 OK\r\n") && out.ends_with("\r\n\r\n"),
        "{out}"
    );
    let out = http_get(
        rt.addr(),
        "GET /aemp-config.json HTTP/1.1\r\nHost: 127.0.0.1:9999\r\n\r\n",
    )
    .await;
    let body = out.split("\r\n\r\n").nth(1).unwrap();
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(v["seeds"], json!(["ws://127.0.0.1:9999/"]));
    assert_eq!(v["nodeid"], "web/%u");
    assert_eq!(v["untrusted"], true);
    assert_eq!(v["secret"].as_str().unwrap().len(), 32);
    // Traversal and junk never reach outside the page directory, never panic.
    for req in [
        "GET /../Cargo.toml HTTP/1.1\r\n\r\n",
        "GET /%2e%2e/Cargo.toml HTTP/1.1\r\n\r\n",
        "GET /pkg/../../Cargo.toml HTTP/1.1\r\n\r\n",
        "GET //etc/passwd HTTP/1.1\r\n\r\n",
        "GET http://x/../Cargo.toml HTTP/1.1\r\n\r\n",
    ] {
        let out = http_get(rt.addr(), req).await;
        assert!(out.starts_with("HTTP/1.1 404 "), "{req}: {out}");
    }
    for junk in [
        "GET \0\0 HTTP/1.1\r\n\r\n",
        "GET / HTTP/9\r\nHost: \u{1}\r\n\r\n",
    ] {
        // Closed (perhaps with a reset): only the server's survival matters.
        let mut s = TcpStream::connect(rt.addr()).await.unwrap();
        let _ = s.write_all(junk.as_bytes()).await;
        let mut out = Vec::new();
        let r = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out)).await;
        assert!(r.is_ok(), "{junk:?}: not closed");
    }
    let out = http_get(rt.addr(), "GET /style.css HTTP/1.1\r\n\r\n").await;
    assert!(out.contains("Content-Type: text/css"), "{out}");
}

#[tokio::test]
async fn websocket_on_the_same_port() {
    let rt = start(None);
    let s = TcpStream::connect(rt.addr()).await.unwrap();
    let url = format!("ws://{}/", rt.addr());
    let (mut ws, _) = tokio_tungstenite::client_async(url, s).await.unwrap();
    let first = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(first, Message::text("hello\n"));
    ws.send(Message::binary(b"abc".to_vec())).await.unwrap();
    let echo = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(echo, Message::binary(b"abc".to_vec()));
}

#[tokio::test]
async fn write_queue_overflow_closes_and_reports() {
    let rt = start(Some(4 << 20));
    let mut s = TcpStream::connect(rt.addr()).await.unwrap();
    s.write_all(b"flood").await.unwrap();
    // Never read: the queue passes 4 MiB while 64 MiB are transmitted.
    tokio::task::spawn_blocking(move || {
        let why = wait_for(&rt, "overflow", |k| k.closed.first().cloned());
        assert_eq!(why.1, "write queue overflow");
    })
    .await
    .unwrap();
    drop(s);
}

#[test]
fn outgoing_tcp_and_websocket_connects() {
    let server = start(None);
    let client = start(None);
    let tcp = server.addr().to_string();
    let ws = format!("ws://{}/", server.addr());
    let (a, b) = client
        .handle()
        .call(move |k| (k.connect(&tcp), k.connect(&ws)))
        .unwrap();
    let mut got = wait_for(&client, "both connected and greeted", |k| {
        (k.connected.len() == 2 && k.received.len() == 2)
            .then(|| (k.connected.clone(), k.received.clone()))
    });
    got.0.sort_by_key(|c| c.0);
    got.1.sort();
    assert_eq!(got.0, vec![(a, Transport::Tcp), (b, Transport::WebSocket)]);
    assert_eq!(
        got.1,
        vec![(a, b"hello\n".to_vec()), (b, b"hello\n".to_vec())]
    );
    // A refused connect is reported with the OS error.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let c = client.handle().call(move |k| k.connect(&dead)).unwrap();
    let why = wait_for(&client, "refused", move |k| {
        k.closed.iter().find(|x| x.0 == c).cloned()
    });
    assert!(why.1.to_lowercase().contains("refused"), "{why:?}");
}
