//! The `aemp` protocol commands against a real network: an `aemp run`
//! seed started here on `127.0.0.1:0` with a known secret, and a second
//! node built with the `aemp` library (spec §10.2).

use std::process::Stdio;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use aemp::core::config::{effective_config, JsonMap};
use aemp::core::{msg, Value};
use aemp::NodeRuntime;
use serde_json::json;

mod common;
use common::{lines, sink, Env, Proc};

const WAIT: Duration = Duration::from_secs(20);
const SECRET: &str = "cli-s3cret";

/// A running `aemp run` seed (see `common::Proc`).
type Seed = Proc;

/// Starts `aemp run args…` against the environment's rc file.
fn start_seed(env: &Env, args: &[&str]) -> Seed {
    let mut cmd = env.cmd(&[&["run"], args].concat());
    cmd.env("AEMP_LOG", "warn");
    Proc::spawn(cmd).unwrap_or_else(|e| panic!("{e}"))
}

/// Waits for a line satisfying `f`.
fn wait_line(rx: &Receiver<String>, what: &str, f: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) if f(&l) => return l,
            Ok(_) => {}
            Err(e) => panic!("waiting for {what}: {e}"),
        }
    }
}

/// A seed with the echo and log services, and an rc file pointing to it.
fn network() -> (Env, Seed) {
    let env = Env::new();
    let seed = start_seed(
        &env,
        &[
            "nodeid",
            "seedT",
            "binds",
            "127.0.0.1:0",
            "secret",
            SECRET,
            "services",
            r#"["aemp::echo","aemp::log"]"#,
        ],
    );
    env.ok(&["setsecret", SECRET, "setseeds", &seed.tcp]);
    (env, seed)
}

/// A second node, built with the library, attached to the seed.
fn library_node(seed: &Seed) -> NodeRuntime {
    let mut m = JsonMap::new();
    m.insert("nodeid".into(), json!("libnode"));
    m.insert("binds".into(), json!(["127.0.0.1:0"]));
    m.insert("seeds".into(), json!([seed.tcp]));
    m.insert("secret".into(), json!(SECRET));
    let cfg = effective_config(Some("lib"), &m, None, "localhost").unwrap();
    aemp::start_config(cfg, "localhost".into()).unwrap()
}

#[test]
fn cal_time_echo_and_trace() {
    let (env, seed) = network();
    let out = env.ok(&["cal", &seed.node, "time"]);
    let t: f64 = out.trim().parse().expect("a number");
    assert!(t > 0.0, "{out}");
    // the echo service: its port is printed by `aemp run` and in the db
    let echo = wait_line(&seed.out, "echo service", |l| {
        l.starts_with("service aemp::echo ")
    })["service aemp::echo ".len()..]
        .to_string();
    let out = env.ok(&["cal", &echo, "echo", "hi", r#"{"a":[1,2]}"#]);
    assert_eq!(out.trim(), r#""hi",{"a":[1,2]}"#);
    let out = env.ok(&["cal", &seed.node, "aemp::echo", "x", "2"]);
    assert_eq!(out.trim(), r#""x","2""#);
    let out = env.ok(&["db", "aemp_echo"]);
    assert!(out.contains(&format!("{echo} \"seedT\"")), "{out}");
    // trace: the seed is global and listed with its address
    let out = env.ok(&["trace", &seed.node]);
    assert!(out.contains("seedT: answers"), "{out}");
    assert!(
        out.contains(&format!("seedT global {} (master)", seed.tcp)),
        "{out}"
    );
    // eval is refused by Rust nodes: the error, exit 1
    let o = env.aemp(&["eval", &seed.node, "1", "+", "1"]);
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("eval is not supported"), "{}", o.stderr);
}

#[test]
fn snd_confirms_delivery_to_a_second_node() {
    let (env, seed) = network();
    let lib = library_node(&seed);
    let (port, rx) = sink(&lib);
    let out = env.ok(&["snd", &port, "hello", "[1,2]"]);
    assert_eq!(out.trim(), "message sent successfully");
    // the confirmation came after the delivery
    let m = rx.try_recv().expect("delivered before the confirmation");
    assert_eq!(m, msg!["hello", Value::Array(vec![1.into(), 2.into()])]);
    // the log service prints what it gets
    let log = wait_line(&seed.out, "log service", |l| {
        l.starts_with("service aemp::log ")
    })["service aemp::log ".len()..]
        .to_string();
    env.ok(&["snd", &log, "note", "1"]);
    wait_line(&seed.out, "log line", |l| l == r#"log ["note","1"]"#);
}

#[test]
fn mon_prints_the_kill_reason() {
    let (env, seed) = network();
    let lib = library_node(&seed);
    let (port, _rx) = sink(&lib);
    let mut child = env
        .cmd(&["mon", &port])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = lines(child.stdout.take().unwrap());
    let err = lines(child.stderr.take().unwrap());
    wait_line(&err, "monitor confirmation", |l| {
        l == format!("monitoring {port}")
    });
    let p = port.clone();
    lib.handle()
        .exec(move |n| n.kil(&p, msg!["bye", "test"]).unwrap());
    let line = wait_line(&out, "reason", |_| true);
    assert_eq!(line, "bye => test");
    assert!(child.wait().unwrap().success());
}

#[test]
fn db_shows_an_entry_of_another_node() {
    let (env, seed) = network();
    let lib = library_node(&seed);
    let (port, _rx) = sink(&lib);
    let p = port.clone();
    lib.handle().exec(move |n| {
        n.db_reg("cli_test", &p, Value::from("v1")).forget();
    });
    // eventually consistent: ask until the master has it
    let deadline = Instant::now() + WAIT;
    loop {
        let out = env.ok(&["db", "cli_test"]);
        if out.contains(&format!("{port} \"v1\"")) {
            break;
        }
        assert!(Instant::now() < deadline, "entry never showed up: {out}");
    }
    // --follow: the current entries as `added`, then changes as they come
    let mut child = env
        .cmd(&["db", "--follow", "cli_test"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let out = lines(child.stdout.take().unwrap());
    wait_line(&out, "added line", |l| l == format!("added {port} \"v1\""));
    let p = port.clone();
    lib.handle().exec(move |n| n.kil(&p, vec![]).unwrap());
    wait_line(&out, "deleted line", |l| l == format!("deleted {port}"));
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn cal_to_a_silent_port_times_out() {
    let (env, seed) = network();
    let lib = library_node(&seed);
    let (port, _rx) = sink(&lib);
    let start = Instant::now();
    let o = env.aemp(&["--timeout", "1", "cal", &port, "anyone?"]);
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("no reply"), "{}", o.stderr);
    assert!(start.elapsed() < WAIT);
}

#[test]
fn unreachable_seed_is_a_clear_error() {
    let env = Env::new();
    // a port nobody listens on (bound, then closed)
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    env.ok(&["setsecret", SECRET, "setseeds", &addr.to_string()]);
    let o = env.aemp(&["-t", "1", "cal", "nobody", "time"]);
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("no seed reachable"), "{}", o.stderr);
}

#[test]
fn first_run_stores_a_secret() {
    let env = Env::new();
    assert!(!env.rc_path().exists());
    let seed = start_seed(&env, &["nodeid", "first", "binds", "127.0.0.1:0"]);
    let rc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(env.rc_path()).unwrap()).unwrap();
    let secret = rc["secret"].as_str().expect("a secret was stored");
    assert!(secret.len() >= 32);
    // and the tools use it
    env.ok(&["setseeds", &seed.tcp]);
    let out = env.ok(&["cal", "first", "time"]);
    assert!(out.trim().parse::<f64>().is_ok(), "{out}");
}
