//! The protocol commands (spec §10.2): `snd`, `cal`, `mon`, `eval`,
//! `trace`, `db`. Each runs a temporary node — profile `aemp`, node ID
//! `aemp/%n/%u`, configured from the rc file like Perl's (secret, seeds) —
//! bound to `127.0.0.1:0` unless the `aemp` profile says otherwise, waits
//! until its master (a seed) is attached, then does its work.

use std::process::ExitCode;
use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use aemp::core::config::{effective_config, JsonMap, RcFile};
use aemp::core::id::node_of;
use aemp::core::value::json;
use aemp::core::{Msg, Node, Reason, Value};
use aemp::NodeRuntime;
use serde_json::json;

use super::{CliError, Session};

/// The default seed when none is configured: what `aemp run` without
/// arguments listens on.
const LOCAL_SEED: &str = "127.0.0.1:4040";

/// How long to wait for the first seed connection at least.
const MIN_CONNECT_WAIT: Duration = Duration::from_secs(5);

/// True if profile `name` or one of its parents (not the global level)
/// sets `key`.
fn profile_sets(rc: &RcFile, name: &str, key: &str) -> bool {
    let mut cur = Some(name.to_string());
    for _ in 0..64 {
        let Some(n) = cur else { return false };
        let Some(p) = rc.profile(&n) else {
            return false;
        };
        if p.get(key).is_some_and(|v| !v.is_null()) {
            return true;
        }
        cur = p.get("parent").and_then(|v| v.as_str()).map(String::from);
    }
    false
}

/// A running temporary node.
struct Client {
    rt: NodeRuntime,
    timeout: Duration,
    seeds: Vec<String>,
}

impl Client {
    /// Starts the node (it connects to its seeds at once).
    fn start(sess: &mut Session) -> Result<Client, CliError> {
        let host = aemp::hostname();
        let rc = sess.rc.get()?.clone();
        let mut args = JsonMap::new();
        args.insert("nodeid".into(), json!("aemp/%n/%u"));
        let mut cfg = effective_config(Some("aemp"), &args, Some(&rc), &host)
            .map_err(|e| CliError::runtime(format!("configuration: {e}")))?;
        // The global level is meant for the nodes this machine runs: the
        // temporary node keeps its own ID, listens on loopback only and
        // runs no services (it must not become global), unless the `aemp`
        // profile says otherwise.
        if !profile_sets(&rc, "aemp", "nodeid") {
            cfg.set("nodeid", json!("aemp/%n/%u"));
        }
        if !profile_sets(&rc, "aemp", "binds") {
            cfg.set("binds", json!(["127.0.0.1:0"]));
        }
        cfg.set("services", json!([]));
        let seeds = cfg
            .seeds(&host)
            .map_err(|e| CliError::runtime(format!("configuration: {e}")))?;
        let mut seeds: Vec<String> = seeds.iter().map(ToString::to_string).collect();
        if seeds.is_empty() {
            tracing::info!("no seeds configured, trying the local seed {LOCAL_SEED}");
            cfg.set("seeds", json!([LOCAL_SEED]));
            seeds.push(LOCAL_SEED.into());
        }
        if matches!(cfg.secret(), Ok(None)) && cfg.cert().ok().flatten().is_none() {
            tracing::warn!(
                "no secret configured: authentication will fail (`aemp gensecret`, or \
                 `aemp setsecret <the network's secret>`)"
            );
        }
        cfg.validate(&host)
            .map_err(|e| CliError::runtime(format!("configuration: {e}")))?;
        let rt = aemp::start_config(cfg, host).map_err(|e| CliError::runtime(e.to_string()))?;
        Ok(Client {
            rt,
            timeout: sess.opts.timeout(),
            seeds,
        })
    }

    /// Waits until a master is attached; returns its node ID.
    fn wait_master(&self) -> Result<String, CliError> {
        let wait = self.timeout.max(MIN_CONNECT_WAIT);
        let deadline = Instant::now() + wait;
        loop {
            let m = self
                .rt
                .handle()
                .call(|n| n.master().map(String::from))
                .ok_or_else(|| CliError::runtime("the temporary node stopped"))?;
            if let Some(m) = m {
                tracing::debug!("attached to master {m}");
                return Ok(m);
            }
            if Instant::now() >= deadline {
                return Err(CliError::runtime(format!(
                    "no seed reachable within {:.0} s (seeds: {}). Is a node running there, \
                     and do both use the same secret? (`aemp showconfig aemp`)",
                    wait.as_secs_f64(),
                    self.seeds.join(", ")
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Runs `f` on the node with a sender, and waits for what it sends.
    fn ask<R: Send + 'static>(
        &self,
        what: &str,
        timeout: Option<Duration>,
        f: impl FnOnce(&mut Node, Sender<R>) + Send + 'static,
    ) -> Result<R, CliError> {
        let (tx, rx) = channel();
        self.rt.handle().exec(move |n| f(n, tx));
        let r = match timeout {
            Some(t) => rx.recv_timeout(t),
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        r.map_err(|e| match e {
            RecvTimeoutError::Timeout => CliError::runtime(format!(
                "{what}: no reply within {:.1} s",
                timeout.unwrap_or_default().as_secs_f64()
            )),
            RecvTimeoutError::Disconnected => {
                CliError::runtime(format!("{what}: the temporary node stopped"))
            }
        })
    }
}

/// A string argument (port or node ID).
fn id_arg(cmd: &str, what: &str, v: Option<&serde_json::Value>) -> Result<String, CliError> {
    match v {
        Some(serde_json::Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(other) => Err(CliError::usage(format!("{cmd}: {other} is not a {what}"))),
        None => Err(CliError::usage(format!("{cmd}: missing {what}"))),
    }
}

/// Converts decoded arguments into message values.
fn to_msg(args: &[serde_json::Value]) -> Result<Msg, CliError> {
    args.iter()
        .map(|a| {
            serde_json::from_value::<Value>(a.clone())
                .map_err(|e| CliError::usage(format!("{a}: {e}")))
        })
        .collect()
}

/// Reply values JSON-encoded, comma-separated (a JSON array without its
/// brackets), as Perl's `aemp cal` prints them.
fn json_list(m: &[Value]) -> String {
    let s = String::from_utf8_lossy(&json::to_vec(&Value::Array(m.to_vec()))).into_owned();
    s.strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or(&s)
        .to_string()
}

/// Values as text: strings as they are, the rest JSON, space-separated.
fn plain_list(m: &[Value]) -> String {
    m.iter()
        .map(|v| match v.as_str() {
            Some(s) => s.to_string(),
            None => String::from_utf8_lossy(&json::to_vec(v)).into_owned(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn json_text(v: &Value) -> String {
    String::from_utf8_lossy(&json::to_vec(v)).into_owned()
}

/// Runs one protocol command (canonical name from the table).
pub fn command(
    sess: &mut Session,
    name: &str,
    args: Vec<serde_json::Value>,
) -> Result<ExitCode, CliError> {
    // Check the arguments before starting a node.
    match name {
        "snd" | "cal" => {
            id_arg(name, "port ID", args.first())?;
            to_msg(&args[1..])?;
        }
        "mon" => {
            id_arg(name, "port ID", args.first())?;
        }
        "eval" => {
            id_arg(name, "node ID", args.first())?;
            if args.len() < 2 {
                return Err(CliError::usage("eval: missing expression"));
            }
        }
        "trace" => {
            if args.len() > 1 {
                return Err(CliError::usage("trace: at most one node ID"));
            }
            if !args.is_empty() {
                id_arg(name, "node ID", args.first())?;
            }
        }
        "db" => {
            db_args(&args)?;
        }
        _ => return Err(CliError::usage(format!("{name}: no such aemp command"))),
    }
    let client = Client::start(sess)?;
    client.wait_master()?;
    let timeout = client.timeout;
    match name {
        "snd" => snd(&client, &args, timeout),
        "cal" => cal(&client, &args, timeout),
        "mon" => mon(&client, &args, sess.opts.timeout),
        "eval" => eval(&client, &args, timeout),
        "trace" => trace(&client, args.first(), timeout),
        _ => db(&client, &args, timeout, sess.opts.timeout),
    }
}

fn snd(c: &Client, args: &[serde_json::Value], timeout: Duration) -> Result<ExitCode, CliError> {
    let port = id_arg("snd", "port ID", args.first())?;
    let msg = to_msg(&args[1..])?;
    let p = port.clone();
    let r = c.ask("snd", Some(timeout), move |n, tx| {
        n.snd(&p, msg);
        let tx2 = tx.clone();
        let reply = n.port_with(move |_, m| {
            let _ = tx.send(Ok(m));
            Ok(())
        });
        n.mon(&p, move |_, r| {
            let _ = tx2.send(Err(r));
        })
        .forget();
        let node = node_of(&p).to_string();
        n.snd_on(
            &node,
            &reply,
            vec![Value::from("message sent successfully")],
        );
    })?;
    match r {
        Ok(m) => {
            println!("{}", plain_list(&m));
            Ok(ExitCode::SUCCESS)
        }
        Err(reason) => {
            println!("{reason}");
            Err(CliError::runtime(format!("snd: {port} died: {reason}")))
        }
    }
}

fn cal(c: &Client, args: &[serde_json::Value], timeout: Duration) -> Result<ExitCode, CliError> {
    let port = id_arg("cal", "port ID", args.first())?;
    let msg = to_msg(&args[1..])?;
    let p = port.clone();
    let r = c.ask(
        "cal",
        Some(timeout + Duration::from_secs(1)),
        move |n, tx| {
            n.cal(&p, msg, Some(timeout), move |_, r| {
                let _ = tx.send(r);
            });
        },
    )?;
    match r {
        Ok(m) => {
            println!("{}", json_list(&m));
            Ok(ExitCode::SUCCESS)
        }
        Err(aemp::core::CalError::Timeout) => Err(CliError::runtime(format!(
            "cal: no reply from {port} within {:.1} s",
            timeout.as_secs_f64()
        ))),
        Err(aemp::core::CalError::Died(reason)) => {
            Err(CliError::runtime(format!("cal: {port} died: {reason}")))
        }
    }
}

enum MonEvent {
    Confirmed(bool),
    Died(Reason),
}

fn mon(
    c: &Client,
    args: &[serde_json::Value],
    limit: Option<Duration>,
) -> Result<ExitCode, CliError> {
    let port = id_arg("mon", "port ID", args.first())?;
    let (tx, rx) = channel();
    let p = port.clone();
    let timeout = c.timeout;
    c.rt.handle().exec(move |n| {
        let tx2 = tx.clone();
        n.mon(&p, move |_, r| {
            let _ = tx.send(MonEvent::Died(r));
        })
        .forget();
        // A round trip to the port's node after the monitor request proves
        // the monitor is in place (requests are processed in order).
        let node_port = format!("{}#", node_of(&p));
        n.cal(
            &node_port,
            vec![Value::from("time")],
            Some(timeout),
            move |_, r| {
                let _ = tx2.send(MonEvent::Confirmed(r.is_ok()));
            },
        );
    });
    let deadline = limit.map(|l| Instant::now() + l);
    loop {
        let ev = match deadline {
            Some(d) => rx.recv_timeout(d.saturating_duration_since(Instant::now())),
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match ev {
            Ok(MonEvent::Confirmed(true)) => eprintln!("monitoring {port}"),
            Ok(MonEvent::Confirmed(false)) => {
                tracing::warn!("{}: no answer yet, still waiting", node_of(&port))
            }
            Ok(MonEvent::Died(reason)) => {
                println!("{reason}");
                return Ok(ExitCode::SUCCESS);
            }
            Err(RecvTimeoutError::Timeout) => {
                return Err(CliError::runtime(format!(
                    "mon: {port} still alive after {:.1} s",
                    limit.unwrap_or_default().as_secs_f64()
                )))
            }
            Err(RecvTimeoutError::Disconnected) => {
                return Err(CliError::runtime("mon: the temporary node stopped"))
            }
        }
    }
}

fn eval(c: &Client, args: &[serde_json::Value], timeout: Duration) -> Result<ExitCode, CliError> {
    let node = id_arg("eval", "node ID", args.first())?;
    let expr = args[1..]
        .iter()
        .map(|a| match a {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ");
    let nd = node.clone();
    let r = c.ask("eval", Some(timeout), move |n, tx| {
        let tx2 = tx.clone();
        let reply = n.port_with(move |_, m| {
            let _ = tx.send(Ok(m));
            Ok(())
        });
        let node_port = format!("{}#", node_of(&nd));
        n.mon(&node_port, move |_, r| {
            let _ = tx2.send(Err(r));
        })
        .forget();
        n.snd(
            &node_port,
            vec![Value::from("eval"), Value::from(expr), Value::from(&reply)],
        );
    })?;
    match r {
        Ok(m) => {
            let err = m.first().and_then(Value::as_str).unwrap_or("");
            if !err.is_empty() {
                return Err(CliError::runtime(format!("eval: {}", err.trim_end())));
            }
            println!("{}", json_list(m.get(1..).unwrap_or(&[])));
            Ok(ExitCode::SUCCESS)
        }
        Err(reason) => Err(CliError::runtime(format!("eval: {node}: {reason}"))),
    }
}

fn trace(
    c: &Client,
    node: Option<&serde_json::Value>,
    timeout: Duration,
) -> Result<ExitCode, CliError> {
    if let Some(node) = node {
        let node = id_arg("trace", "node ID", Some(node))?;
        let np = format!("{}#", node_of(&node));
        let start = Instant::now();
        let r = c.ask(
            "trace",
            Some(timeout + Duration::from_secs(1)),
            move |n, tx| {
                n.cal(
                    &np,
                    vec![Value::from("time")],
                    Some(timeout),
                    move |_, r| {
                        let _ = tx.send(r);
                    },
                );
            },
        )?;
        match r {
            Ok(_) => println!(
                "{node}: answers, round trip {:.1} ms",
                start.elapsed().as_secs_f64() * 1000.0
            ),
            Err(e) => return Err(CliError::runtime(format!("trace: {node}: {e}"))),
        }
    }
    let (me, master, l, g) = c.ask("trace", Some(timeout), move |n, tx| {
        let me = n.node_id().to_string();
        let master = n.master().unwrap_or("").to_string();
        n.db_family("'l", move |n, l| {
            n.db_family("'g", move |_, g| {
                let _ = tx.send((me, master, l, g));
            });
        });
    })?;
    let mut nodes: Vec<&str> = l.keys().chain(g.keys()).map(|k| k.as_str()).collect();
    nodes.sort_unstable();
    nodes.dedup();
    for id in nodes.into_iter().filter(|id| *id != me) {
        let addrs = match l.get(id) {
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| v.as_str().map_or_else(|| json_text(v), String::from))
                .collect::<Vec<_>>()
                .join(","),
            Some(other) => json_text(other),
            None => "-".into(),
        };
        let role = if g.contains_key(id) { "global" } else { "node" };
        let mark = if id == master { " (master)" } else { "" };
        println!("{id} {role} {addrs}{mark}");
    }
    Ok(ExitCode::SUCCESS)
}

/// `db` arguments: `[--follow|-f] <family> [--follow|-f]`.
fn db_args(args: &[serde_json::Value]) -> Result<(String, bool), CliError> {
    let mut follow = false;
    let mut family = None;
    for a in args {
        match a.as_str() {
            Some("--follow" | "-f") => follow = true,
            Some(f) if family.is_none() => family = Some(f.to_string()),
            _ => {
                return Err(CliError::usage(format!(
                    "db: unexpected argument {a} (aemp db [--follow] <family>)"
                )))
            }
        }
    }
    let family = family.ok_or_else(|| CliError::usage("db: missing family name"))?;
    Ok((family, follow))
}

fn db(
    c: &Client,
    args: &[serde_json::Value],
    timeout: Duration,
    limit: Option<Duration>,
) -> Result<ExitCode, CliError> {
    let (family, follow) = db_args(args)?;
    if !follow {
        let f = family.clone();
        let fam = c.ask("db", Some(timeout), move |n, tx| {
            n.db_family(&f, move |_, fam| {
                let _ = tx.send(fam);
            });
        })?;
        for (k, v) in &fam {
            println!("{k} {}", json_text(v));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let (tx, rx) = channel::<()>();
    c.rt.handle().exec(move |n| {
        n.db_mon(&family, move |_, ch| {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            for k in ch.added {
                let v = ch.db.get(k).map(json_text).unwrap_or_default();
                let _ = writeln!(out, "added {k} {v}");
            }
            for k in ch.changed {
                let v = ch.db.get(k).map(json_text).unwrap_or_default();
                let _ = writeln!(out, "changed {k} {v}");
            }
            for k in ch.deleted {
                let _ = writeln!(out, "deleted {k}");
            }
            let _ = out.flush();
        })
        .forget();
        // Keep the sender alive as long as the node runs.
        std::mem::forget(tx);
    });
    match limit {
        Some(l) => {
            let _ = rx.recv_timeout(l);
        }
        None => {
            let _ = rx.recv();
        }
    }
    Ok(ExitCode::SUCCESS)
}
