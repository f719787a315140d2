//! A native node for the browser tests (`tests/e2e/`): it joins a seed
//! (`aemp run`) and serves the browser side of the tests.
//!
//! ```text
//! web_peer test-peer <seed host:port> <secret>
//!     Registers three ports in the database family `aemp_test`
//!     (value = role): `control`, `echo` and `victim`, and prints
//!     `peer <node id>` and `ready` when they are registered. Control
//!     requests (tag, args…):
//!       kill_victim           kill the victim port ("die", "killed on request")
//!       flood <port> <n>      send ["n", i] for i in 0..n to port, then ["done", n]
//!       seen <port> <reply>   reply [value] once `port` appears in family
//!                             `aemp_test_web` (as this node's db_mon sees it)
//!       report <text> <reply> print `report <text>` on stdout, then reply ["ok"]
//!     echo: any message [args…, reply] is answered with [args…].
//! web_peer chat-say <seed host:port> <secret> <min> <nick> <text>
//!     Waits until the family `chat` has at least <min> ports, sends each
//!     ["say", nick, text], prints `said <n>`, and keeps running.
//! ```
//! Runs until killed.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::Write;
use std::rc::Rc;

use aemp::core::config::JsonMap;
use aemp::core::{Msg, Node, Value};
use serde_json::json;

fn out(line: &str) {
    let mut o = std::io::stdout().lock();
    let _ = writeln!(o, "{line}");
    let _ = o.flush();
}

fn start(seed: &str, secret: &str, nodeid: &str) -> aemp::NodeRuntime {
    let mut args = JsonMap::new();
    args.insert("nodeid".into(), json!(nodeid));
    args.insert("binds".into(), json!(["127.0.0.1:0"]));
    args.insert("seeds".into(), json!([seed]));
    args.insert("secret".into(), json!(secret));
    args.insert("web_secret".into(), json!(""));
    args.insert("www_root".into(), json!(""));
    args.insert("norc".into(), json!(1));
    match aemp::start(None, &args) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("web_peer: {e}");
            std::process::exit(1);
        }
    }
}

fn s(v: &Value) -> String {
    v.as_str().map(str::to_string).unwrap_or_default()
}

fn arg(m: &Msg, i: usize) -> String {
    m.get(i).map(s).unwrap_or_default()
}

fn test_peer(node: &mut Node) {
    let victim = node.port().to_string();
    let echo = node
        .port_with(|n, mut m: Msg| {
            if let Some(reply) = m.pop() {
                n.snd(&s(&reply), m);
            }
            Ok(())
        })
        .to_string();
    let control = node.port().to_string();
    // Browser ports seen in `aemp_test_web`, and `seen` requests waiting for one.
    let web: Rc<RefCell<BTreeMap<String, Value>>> = Rc::default();
    let waiting: Rc<RefCell<Vec<(String, String)>>> = Rc::default();
    let answer = {
        let (web, waiting) = (web.clone(), waiting.clone());
        move |n: &mut Node| {
            let web = web.borrow();
            waiting
                .borrow_mut()
                .retain(|(port, reply)| match web.get(port) {
                    Some(v) => {
                        n.snd(reply, vec![v.clone()]);
                        false
                    }
                    None => true,
                });
        }
    };
    {
        let (web, answer) = (web.clone(), answer.clone());
        node.db_mon("aemp_test_web", move |n, ch| {
            *web.borrow_mut() = ch
                .db
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect();
            answer(n);
        })
        .forget();
    }
    let v2 = victim.clone();
    node.rcv_tag(&control, "kill_victim", move |n, _| {
        let _ = n.kil(&v2, vec!["die".into(), "killed on request".into()]);
        Ok(())
    })
    .expect("local port");
    node.rcv_tag(&control, "flood", |n, m| {
        let (port, count) = (arg(&m, 0), m.get(1).and_then(Value::as_i64).unwrap_or(0));
        for i in 0..count {
            n.snd(&port, vec!["n".into(), Value::Int(i.into())]);
        }
        n.snd(&port, vec!["done".into(), Value::Int(count.into())]);
        Ok(())
    })
    .expect("local port");
    node.rcv_tag(&control, "seen", move |n, m| {
        waiting.borrow_mut().push((arg(&m, 0), arg(&m, 1)));
        answer(n);
        Ok(())
    })
    .expect("local port");
    node.rcv_tag(&control, "report", |n, m| {
        out(&format!("report {}", arg(&m, 0)));
        if let Some(reply) = m.get(1) {
            n.snd(&s(reply), vec!["ok".into()]);
        }
        Ok(())
    })
    .expect("local port");
    node.db_reg("aemp_test", &control, "control".into())
        .forget();
    node.db_reg("aemp_test", &echo, "echo".into()).forget();
    node.db_reg("aemp_test", &victim, "victim".into()).forget();
    out(&format!("peer {}", node.node_id()));
    out(&format!(
        "ports control={control} echo={echo} victim={victim}"
    ));
}

fn chat_say(node: &mut Node, min: usize, nick: String, text: String) {
    let done = Rc::new(RefCell::new(false));
    node.db_mon("chat", move |n, ch| {
        if *done.borrow() || ch.db.len() < min {
            return;
        }
        *done.borrow_mut() = true;
        let ports: Vec<String> = ch.db.keys().map(|k| k.to_string()).collect();
        for p in &ports {
            n.snd(
                p,
                vec!["say".into(), nick.as_str().into(), text.as_str().into()],
            );
        }
        out(&format!("said {}", ports.len()));
    })
    .forget();
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = || -> ! {
        eprintln!(
            "usage: web_peer test-peer SEED SECRET | web_peer chat-say SEED SECRET MIN NICK TEXT"
        );
        std::process::exit(2)
    };
    if args.len() < 3 {
        usage();
    }
    let rt = start(&args[1], &args[2], "native-peer/%u");
    match args[0].as_str() {
        "test-peer" => {
            rt.handle().call(test_peer);
        }
        "chat-say" if args.len() == 6 => {
            let min: usize = args[3].parse().unwrap_or_else(|_| usage());
            let (nick, text) = (args[4].clone(), args[5].clone());
            rt.handle().call(move |n| chat_say(n, min, nick, text));
        }
        _ => usage(),
    }
    out("ready");
    rt.join(); // until killed
}
