//! `aemp-bench`: the three figures of `shared/bench/erlang/run.sh`, for
//! aemp-rs, in the same format:
//!
//! * `remote_rtt_us` — mean round trip of 20,000 sequential ping-pongs
//!   (after 1,000 warm-up ones) between two nodes in two OS processes over
//!   TCP loopback (`--ws`: over WebSocket);
//! * `remote_stream_msgs_per_s` — 1,000,000 one-way `["msg", i, "payload"]`
//!   to a counting port in the other process, timed from the first send to
//!   its `["done", n]`;
//! * `local_send_msgs_per_s` — 5,000,000 local `snd` → `rcv` in one node.
//!
//! The second process is this binary run as `aemp-bench server`. The
//! stream sender keeps at most [`WINDOW`] messages unacknowledged (the
//! counting port acknowledges every [`ACK_EVERY`]): the sender's queues
//! stay bounded, as Erlang's distribution keeps them bounded by suspending
//! a sender on a busy connection.
//!
//! `--erlang` also runs the Erlang reference and prints its figures
//! (`erlang_<name>`) and the ratios (`ratio_<name>`, > 1 = aemp-rs faster).
//!
//! Run: `cargo run --release -p aemp --bin aemp-bench -- [--erlang] [--ws]`.

use std::cell::RefCell;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::rc::Rc;
use std::sync::mpsc::channel;
use std::time::{Duration, Instant};

use aemp::core::config::{effective_config, JsonMap};
use aemp::core::{Node, Value};
use aemp::NodeRuntime;
use serde_json::json;

const SECRET: &str = "aemp-bench-secret";
const WARMUP: u64 = 1_000;
const RTTS: u64 = 20_000;
const STREAM: u64 = 1_000_000;
const LOCAL: u64 = 5_000_000;
/// The counting port acknowledges every this many stream messages.
const ACK_EVERY: u64 = 8_192;
/// Most stream messages the sender has in flight (unacknowledged).
const WINDOW: u64 = 4 * ACK_EVERY;
/// Local sends per sender job.
const LOCAL_BATCH: u64 = 1_000;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut erlang = false;
    let mut ws = false;
    let mut server_mode = false;
    let mut only: Option<String> = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "server" => server_mode = true,
            "--erlang" => erlang = true,
            "--ws" => ws = true,
            "--only" => only = it.next().cloned(),
            "-h" | "--help" => {
                println!(
                    "usage: aemp-bench [--erlang] [--ws]   (aemp-bench server: the peer process)"
                );
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("aemp-bench: unknown argument {other}");
                return ExitCode::from(2);
            }
        }
    }
    if server_mode {
        server();
        return ExitCode::SUCCESS;
    }
    match client(erlang, ws, only.as_deref()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("aemp-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A node with its own ID listening on an ephemeral loopback port. The rc
/// file is ignored.
fn start_node(id: &str) -> NodeRuntime {
    let mut m = JsonMap::new();
    m.insert("nodeid".into(), json!(id));
    m.insert("binds".into(), json!(["127.0.0.1:0"]));
    m.insert("secret".into(), json!(SECRET));
    let cfg = effective_config(None, &m, None, "localhost").expect("bench configuration");
    aemp::start_config(cfg, "localhost".into()).expect("start node")
}

fn text(v: Option<&Value>) -> &str {
    v.and_then(Value::as_str).unwrap_or("")
}

fn int(v: Option<&Value>) -> u64 {
    v.and_then(Value::as_i64).unwrap_or(0) as u64
}

// ------------------------------------------------------------------ server

/// What the counting side of a stream knows.
#[derive(Default)]
struct Count {
    reply: String,
    expected: u64,
    got: u64,
}

/// The peer process: one port answering `ping` and counting `stream`s.
/// Prints `ready <node> <host:port> <port>`, runs until stdin closes.
fn server() {
    let rt = start_node(&format!("bench-srv-{}", std::process::id()));
    let port = rt
        .handle()
        .call(|n| {
            let p = n.port();
            // ["ping", reply, i] → reply ["pong", i]
            n.rcv_tag(&p, "ping", |n, m| {
                let i = m.get(1).cloned().unwrap_or_default();
                n.snd(text(m.first()), vec![Value::from("pong"), i]);
                Ok(())
            })
            .expect("local port");
            let st = Rc::new(RefCell::new(Count::default()));
            let s = st.clone();
            // ["stream", reply, count]: the count of "msg"s that follow.
            n.rcv_tag(&p, "stream", move |_, m| {
                *s.borrow_mut() = Count {
                    reply: text(m.first()).to_string(),
                    expected: int(m.get(1)),
                    got: 0,
                };
                Ok(())
            })
            .expect("local port");
            n.rcv_tag(&p, "msg", move |n, _| {
                let mut c = st.borrow_mut();
                c.got += 1;
                if c.got == c.expected {
                    n.snd(&c.reply, vec![Value::from("done"), Value::from(c.got)]);
                } else if c.got % ACK_EVERY == 0 {
                    n.snd(&c.reply, vec![Value::from("ack"), Value::from(c.got)]);
                }
                Ok(())
            })
            .expect("local port");
            p.to_string()
        })
        .expect("node runs");
    println!("ready {} {} {}", rt.node_id(), rt.addr(), port);
    let mut line = String::new();
    while std::io::stdin().read_line(&mut line).unwrap_or(0) > 0 {
        line.clear();
    }
}

// ------------------------------------------------------------------ client

fn client(erlang: bool, ws: bool, only: Option<&str>) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let mut child = Command::new(exe)
        .arg("server")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("spawn server: {e}"))?;
    let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
    let ready = loop {
        match lines.next() {
            Some(Ok(l)) if l.starts_with("ready ") => break l,
            Some(Ok(_)) => continue,
            _ => return Err("the server process did not start".into()),
        }
    };
    let f: Vec<&str> = ready.split_whitespace().collect();
    let (srv_node, srv_addr, echo) = (f[1].to_string(), f[2].to_string(), f[3].to_string());
    let addr = if ws {
        format!("ws://{srv_addr}/")
    } else {
        srv_addr
    };

    let rt = start_node(&format!("bench-cli-{}", std::process::id()));
    rt.handle()
        .exec(move |n| n.add_node_addresses(&srv_node, vec![addr]));

    // `--only` (for profiling) runs one figure; the warm-up ping-pongs
    // always run, they bring the connection up.
    let want = |k: &str| only.is_none_or(|o| o == k);
    let rtt = remote_rtt(&rt, &echo, if want("rtt") { RTTS } else { 0 });
    if want("rtt") {
        println!("remote_rtt_us {rtt:.2}");
    }
    let stream = if want("stream") {
        let s = remote_stream(&rt, &echo);
        println!("remote_stream_msgs_per_s {s:.1}");
        s
    } else {
        0.0
    };
    let local = if want("local") {
        let l = local_send(&rt);
        println!("local_send_msgs_per_s {l:.1}");
        l
    } else {
        0.0
    };

    drop(rt);
    drop(child.stdin.take());
    let _ = child.wait();

    if erlang && only.is_none() {
        let theirs = run_erlang()?;
        let get = |k: &str| {
            theirs
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| *v)
                .ok_or_else(|| format!("the Erlang benchmark printed no {k}"))
        };
        let (e_rtt, e_stream, e_local) = (
            get("remote_rtt_us")?,
            get("remote_stream_msgs_per_s")?,
            get("local_send_msgs_per_s")?,
        );
        println!("erlang_remote_rtt_us {e_rtt:.2}");
        println!("erlang_remote_stream_msgs_per_s {e_stream:.1}");
        println!("erlang_local_send_msgs_per_s {e_local:.1}");
        println!(
            "# ratio_*: > 1 means aemp-rs is faster (rtt: erlang/ours, throughput: ours/erlang)"
        );
        println!("ratio_remote_rtt_us {:.2}", e_rtt / rtt);
        println!("ratio_remote_stream_msgs_per_s {:.2}", stream / e_stream);
        println!("ratio_local_send_msgs_per_s {:.2}", local / e_local);
    }
    Ok(())
}

/// Waits for a figure from the node thread.
fn wait<T>(rx: std::sync::mpsc::Receiver<T>, what: &str) -> T {
    rx.recv_timeout(Duration::from_secs(300))
        .unwrap_or_else(|_| panic!("{what}: no result (is the server reachable?)"))
}

/// Sequential ping-pongs driven from a port on the client node: each pong
/// sends the next ping. Mean microseconds per round trip.
fn remote_rtt(rt: &NodeRuntime, echo: &str, rtts: u64) -> f64 {
    let (tx, rx) = channel();
    let echo = echo.to_string();
    rt.handle().exec(move |n| {
        let me = n.port();
        let t0 = Rc::new(RefCell::new(Instant::now()));
        let (e, m2) = (echo.clone(), me.to_string());
        n.rcv_tag(&me, "pong", move |n, m| {
            let i = int(m.first());
            if i == WARMUP {
                *t0.borrow_mut() = Instant::now();
            }
            if i == WARMUP + rtts {
                let _ = tx.send(t0.borrow().elapsed());
                return Ok(());
            }
            n.snd(&e, ping(&m2, i + 1));
            Ok(())
        })
        .expect("local port");
        n.snd(&echo, ping(&me, 1));
    });
    let dt = wait(rx, "remote_rtt_us");
    dt.as_secs_f64() * 1e6 / rtts.max(1) as f64
}

fn ping(me: &str, i: u64) -> Vec<Value> {
    vec![Value::from("ping"), Value::from(me), Value::from(i)]
}

/// The sending side of a stream.
struct StreamSender {
    echo: String,
    sent: u64,
    acked: u64,
}

impl StreamSender {
    /// Sends until [`WINDOW`] messages are unacknowledged or all are sent.
    fn fill(&mut self, n: &mut Node) {
        while self.sent < STREAM && self.sent - self.acked < WINDOW {
            self.sent += 1;
            n.snd(
                &self.echo,
                vec![
                    Value::from("msg"),
                    Value::from(self.sent),
                    Value::Bytes(b"payload".to_vec()),
                ],
            );
        }
    }
}

/// 1,000,000 one-way messages to the counting port. Messages per second.
fn remote_stream(rt: &NodeRuntime, echo: &str) -> f64 {
    let (tx, rx) = channel::<Duration>();
    let echo = echo.to_string();
    rt.handle().exec(move |n| {
        let me = n.port();
        let st = Rc::new(RefCell::new(StreamSender {
            echo: echo.clone(),
            sent: 0,
            acked: 0,
        }));
        let s = st.clone();
        n.rcv_tag(&me, "ack", move |n, m| {
            let mut s = s.borrow_mut();
            s.acked = s.acked.max(int(m.first()));
            s.fill(n);
            Ok(())
        })
        .expect("local port");
        let t0 = Instant::now();
        n.rcv_tag(&me, "done", move |_, _| {
            let _ = tx.send(t0.elapsed());
            Ok(())
        })
        .expect("local port");
        n.snd(
            &echo,
            vec![Value::from("stream"), Value::from(&me), Value::from(STREAM)],
        );
        st.borrow_mut().fill(n);
    });
    let dt = wait(rx, "remote_stream_msgs_per_s");
    STREAM as f64 / dt.as_secs_f64()
}

/// 5,000,000 local messages to a counting port, sent in batches by a port
/// that re-queues itself (so the run queue stays short). Messages per second.
fn local_send(rt: &NodeRuntime) -> f64 {
    let (tx, rx) = channel::<Duration>();
    rt.handle().exec(move |n| {
        let t0 = Instant::now();
        let sink = n.port();
        let mut got = 0u64;
        n.rcv_tag(&sink, "msg", move |_, m| {
            std::hint::black_box(&m);
            got += 1;
            if got == LOCAL {
                let _ = tx.send(t0.elapsed());
            }
            Ok(())
        })
        .expect("local port");
        let sender = n.port();
        let me = sender.clone();
        let mut sent = 0u64;
        n.rcv_tag(&sender, "more", move |n, _| {
            let end = (sent + LOCAL_BATCH).min(LOCAL);
            for i in sent..end {
                n.snd(
                    &sink,
                    vec![
                        Value::from("msg"),
                        Value::from(i),
                        Value::Bytes(b"payload".to_vec()),
                    ],
                );
            }
            sent = end;
            if sent < LOCAL {
                n.snd(&me, vec![Value::from("more")]);
            }
            Ok(())
        })
        .expect("local port");
        n.snd(&sender, vec![Value::from("more")]);
    });
    let dt = wait(rx, "local_send_msgs_per_s");
    LOCAL as f64 / dt.as_secs_f64()
}

// ------------------------------------------------------------------ erlang

/// `shared/bench/erlang/run.sh`, looked for in every ancestor of the
/// current directory and of this crate's source directory.
fn find_erlang_script() -> Option<PathBuf> {
    let rel = Path::new("shared/bench/erlang/run.sh");
    let starts = [
        std::env::current_dir().ok(),
        Some(PathBuf::from(env!("CARGO_MANIFEST_DIR"))),
    ];
    for start in starts.into_iter().flatten() {
        for dir in start.ancestors() {
            let p = dir.join(rel);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

/// Runs the Erlang reference; its `name value` lines.
fn run_erlang() -> Result<Vec<(String, f64)>, String> {
    let script = find_erlang_script().ok_or("shared/bench/erlang/run.sh not found")?;
    let out = Command::new("bash")
        .arg(&script)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("{}: {e}", script.display()))?;
    if !out.status.success() {
        return Err(format!("{} failed: {}", script.display(), out.status));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect())
}
