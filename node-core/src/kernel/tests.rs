//! Unit tests of the kernel's local semantics (spec §2, §6.1, §8).

use super::*;
use crate::msg;
use std::cell::{Cell, RefCell};
use std::rc::Rc;

type Log = Rc<RefCell<Vec<String>>>;

fn node() -> Node {
    let mut n = Node::new([9; 32]);
    n.set_node_id("test/node", false).unwrap();
    n
}

fn run(n: &mut Node) {
    let mut guard = 0;
    while n.poll(n.now()) {
        guard += 1;
        assert!(guard < 100_000, "poll never settles");
    }
}

fn log() -> Log {
    Rc::new(RefCell::new(Vec::new()))
}

fn recorder(l: &Log, prefix: &str) -> impl FnMut(&mut Node, Msg) -> CbResult + 'static {
    let l = l.clone();
    let p = prefix.to_string();
    move |_, m| {
        l.borrow_mut()
            .push(format!("{p}{}", crate::value::msg_to_string(&m)));
        Ok(())
    }
}

fn mon_recorder(l: &Log, prefix: &str) -> impl FnOnce(&mut Node, Reason) + 'static {
    let l = l.clone();
    let p = prefix.to_string();
    move |_, r| {
        l.borrow_mut()
            .push(format!("{p}{}", crate::value::msg_to_string(&r.0)))
    }
}

#[test]
fn port_ids_are_local_and_unique() {
    let mut n = node();
    let a = n.port();
    let b = n.port();
    assert_ne!(a, b);
    assert!(a.starts_with("test/node#"));
    assert!(n.port_is_local(&a));
    assert!(!n.port_is_local("other#x"));
}

#[test]
fn default_port_dies_with_unhandled_message() {
    let mut n = node();
    let l = log();
    let p = n.port();
    n.mon(&p, mon_recorder(&l, "")).forget();
    n.snd(&p, msg!["strange\ttag", 1]);
    run(&mut n);
    assert_eq!(
        *l.borrow(),
        vec![r#"["unhandled_message","no callback found for message 'strange.tag'"]"#]
    );
    assert!(!n.port_exists(&p));
}

#[test]
fn tag_dispatch_strips_tag_and_default_gets_whole_message() {
    let mut n = node();
    let l = log();
    let p = n.port();
    n.rcv_tag(&p, "a", recorder(&l, "a:")).unwrap();
    n.rcv(&p, recorder(&l, "default:")).unwrap();
    n.snd(&p, msg!["a", 1, 2]);
    n.snd(&p, msg!["b", 3]);
    n.snd(&p, vec![Value::Bytes(b"a".to_vec()), Value::Int(4)]);
    n.snd(&p, vec![Value::Int(5)]);
    run(&mut n);
    assert_eq!(
        *l.borrow(),
        vec!["a:[1,2]", r#"default:["b",3]"#, "a:[4]", "default:[5]"]
    );
}

#[test]
fn rcv_replaces_and_removes_tag_callbacks() {
    let mut n = node();
    let l = log();
    let p = n.port_with(recorder(&l, "d:"));
    n.rcv_tag(&p, "t", recorder(&l, "one:")).unwrap();
    n.snd(&p, msg!["t", 1]);
    run(&mut n);
    n.rcv_tag(&p, "t", recorder(&l, "two:")).unwrap();
    n.snd(&p, msg!["t", 2]);
    run(&mut n);
    n.unrcv_tag(&p, "t").unwrap();
    n.snd(&p, msg!["t", 3]);
    run(&mut n);
    assert_eq!(*l.borrow(), vec!["one:[1]", "two:[2]", r#"d:["t",3]"#]);
}

#[test]
fn callback_may_replace_itself_while_running() {
    let mut n = node();
    let l = log();
    let p = n.port();
    let l2 = l.clone();
    n.rcv_tag(&p, "t", move |n, _| {
        l2.borrow_mut().push("first".into());
        let me = n.self_port().unwrap();
        let l3 = l2.clone();
        n.rcv_tag(&me, "t", move |_, _| {
            l3.borrow_mut().push("second".into());
            Ok(())
        })?;
        Ok(())
    })
    .unwrap();
    for _ in 0..3 {
        n.snd(&p, msg!["t"]);
    }
    run(&mut n);
    assert_eq!(*l.borrow(), vec!["first", "second", "second"]);
}

#[test]
fn rcv_refuses_remote_and_node_ports() {
    let mut n = node();
    assert!(matches!(
        n.rcv("other#p", |_, _| Ok(())),
        Err(Error::NotLocal(_))
    ));
    assert!(matches!(
        n.rcv("test/node#", |_, _| Ok(())),
        Err(Error::NodePort(_))
    ));
}

#[test]
fn fifo_per_sender_and_port() {
    let mut n = node();
    let got = Rc::new(RefCell::new(Vec::new()));
    let g = got.clone();
    let p = n.port_with(move |_, m| {
        g.borrow_mut().push(m[0].as_i64().unwrap());
        Ok(())
    });
    for i in 0..10_000 {
        n.snd(&p, msg![i]);
    }
    run(&mut n);
    assert_eq!(*got.borrow(), (0..10_000).collect::<Vec<_>>());
}

#[test]
fn self_send_does_not_recurse() {
    let mut n = node();
    let count = Rc::new(Cell::new(0u32));
    let c = count.clone();
    let depth = Rc::new(Cell::new(0u32));
    let d = depth.clone();
    let p = n.port_with(move |n, m| {
        d.set(d.get() + 1);
        assert_eq!(d.get(), 1, "callbacks must not nest");
        let k = m[0].as_i64().unwrap();
        c.set(c.get() + 1);
        if k > 0 {
            let me = n.self_port().unwrap();
            n.snd(&me, msg![k - 1]);
        }
        d.set(d.get() - 1);
        Ok(())
    });
    n.snd(&p, msg![100_000]);
    run(&mut n);
    assert_eq!(count.get(), 100_001);
}

#[test]
fn kill_is_deferred_and_ordered_after_messages() {
    let mut n = node();
    let l = log();
    let p = n.port_with(recorder(&l, "msg:"));
    n.mon(&p, mon_recorder(&l, "mon:")).forget();
    n.snd(&p, msg![1]);
    n.kil(&p, msg!["custom", "why"]).unwrap();
    n.snd(&p, msg![2]); // after the kill: dropped
    assert!(l.borrow().is_empty(), "nothing runs inside snd/kil");
    assert!(n.port_exists(&p), "kil is deferred");
    run(&mut n);
    assert_eq!(*l.borrow(), vec!["msg:[1]", r#"mon:["custom","why"]"#]);
}

#[test]
fn killing_missing_port_is_noop_and_node_port_refused() {
    let mut n = node();
    assert!(n.kil("test/node#nosuch", vec![]).is_ok());
    run(&mut n);
    assert!(matches!(
        n.kil("test/node#", vec![]),
        Err(Error::NodePort(_))
    ));
    assert!(matches!(
        n.kil("test/node", vec![]),
        Err(Error::NodePort(_))
    ));
}

#[test]
fn normal_kill_fires_callback_monitor_with_empty_reason() {
    let mut n = node();
    let l = log();
    let p = n.port();
    n.mon(&p, mon_recorder(&l, "")).forget();
    n.kil(&p, vec![]).unwrap();
    run(&mut n);
    assert_eq!(*l.borrow(), vec!["[]"]);
}

#[test]
fn monitors_are_one_shot() {
    let mut n = node();
    let count = Rc::new(Cell::new(0));
    let p = n.port();
    let c = count.clone();
    n.mon(&p, move |_, _| c.set(c.get() + 1)).forget();
    n.kil(&p, msg!["x"]).unwrap();
    n.kil(&p, msg!["y"]).unwrap();
    run(&mut n);
    assert_eq!(count.get(), 1);
}

#[test]
fn mon_missing_port_fires_no_such_port() {
    let mut n = node();
    let l = log();
    n.mon("test/node#gone", mon_recorder(&l, "")).forget();
    run(&mut n);
    assert_eq!(
        *l.borrow(),
        vec![r#"["no_such_port","cannot monitor nonexistent port","test/node#gone"]"#]
    );
}

#[test]
fn mon_after_kill_in_same_batch_sees_no_such_port() {
    let mut n = node();
    let l = log();
    let p = n.port();
    n.kil(&p, vec![]).unwrap();
    n.mon(&p, mon_recorder(&l, "")).forget();
    run(&mut n);
    assert_eq!(l.borrow().len(), 1);
    assert!(l.borrow()[0].contains("no_such_port"));
}

#[test]
fn link_kills_on_error_only() {
    let mut n = node();
    let a = n.port();
    let b = n.port();
    n.mon_link(&a, &b).forget();
    n.kil(&a, vec![]).unwrap();
    run(&mut n);
    assert!(n.port_exists(&b), "normal kill does not propagate");

    let c = n.port();
    let l = log();
    n.mon_link(&c, &b).forget();
    n.mon(&b, mon_recorder(&l, "b:")).forget();
    n.kil(&c, msg!["crash", "x"]).unwrap();
    run(&mut n);
    assert!(!n.port_exists(&b));
    assert_eq!(*l.borrow(), vec![r#"b:["crash","x"]"#]);
}

#[test]
fn mon_self_links_current_port() {
    let mut n = node();
    let victim = n.port();
    let v = victim.clone();
    let watcher = n.port_with(move |n, _| {
        n.mon_self(&v)?.forget();
        Ok(())
    });
    assert!(matches!(n.mon_self(&victim), Err(Error::NoSelf(_))));
    n.snd(&watcher, msg!["go"]);
    run(&mut n);
    n.kil(&victim, msg!["boom"]).unwrap();
    run(&mut n);
    assert!(!n.port_exists(&watcher));
}

#[test]
fn mon_snd_appends_reason() {
    let mut n = node();
    let l = log();
    let a = n.port();
    let sink = n.port_with(recorder(&l, ""));
    n.mon_snd(&a, &sink, msg!["died", 7]).forget();
    n.kil(&a, msg!["why", "text"]).unwrap();
    run(&mut n);
    assert_eq!(*l.borrow(), vec![r#"["died",7,"why","text"]"#]);
}

#[test]
fn dropping_guard_unregisters_even_before_registration_ran() {
    let mut n = node();
    let fired = Rc::new(Cell::new(false));
    let p = n.port();
    let f = fired.clone();
    let g = n.mon(&p, move |_, _| f.set(true));
    drop(g); // registration job still queued
    n.kil(&p, msg!["x"]).unwrap();
    run(&mut n);
    assert!(!fired.get());

    let q = n.port();
    let f = fired.clone();
    let g = n.mon(&q, move |_, _| f.set(true));
    run(&mut n); // registered
    drop(g);
    n.kil(&q, msg!["x"]).unwrap();
    run(&mut n);
    assert!(!fired.get());
}

#[test]
fn monitor_registered_after_send_fires_after_delivery() {
    let mut n = node();
    let l = log();
    let p = n.port_with(recorder(&l, "msg:"));
    let l2 = l.clone();
    n.snd(&p, msg![1]);
    n.mon(&p, move |_, r| l2.borrow_mut().push(format!("mon:{}", r)))
        .forget();
    n.snd(&p, msg![2]);
    n.kil(&p, vec![]).unwrap();
    run(&mut n);
    assert_eq!(*l.borrow(), vec!["msg:[1]", "msg:[2]", "mon:normal"]);
}

#[test]
fn callback_error_kills_port_with_die() {
    let mut n = node();
    let l = log();
    let p = n.port_with(|_, _| Err("it broke\n".into()));
    n.mon(&p, mon_recorder(&l, "")).forget();
    n.snd(&p, msg![1]);
    run(&mut n);
    assert_eq!(*l.borrow(), vec![r#"["die","it broke"]"#]);
}

#[test]
fn callback_panic_kills_port_with_die() {
    let mut n = node();
    let l = log();
    let p = n.port_with(|_, _| panic!("kaboom"));
    n.mon(&p, mon_recorder(&l, "")).forget();
    n.snd(&p, msg![1]);
    run(&mut n);
    assert_eq!(*l.borrow(), vec![r#"["die","panic: kaboom"]"#]);
}

#[test]
fn self_port_is_set_only_inside_callbacks() {
    let mut n = node();
    let seen = Rc::new(RefCell::new(None));
    let s = seen.clone();
    let p = n.port_with(move |n, _| {
        *s.borrow_mut() = n.self_port();
        Ok(())
    });
    assert_eq!(n.self_port(), None);
    n.snd(&p, msg![]);
    run(&mut n);
    assert_eq!(seen.borrow().as_deref(), Some(p.as_str()));
    assert_eq!(n.self_port(), None);
}

#[test]
fn spawn_runs_init_after_return_with_self_port() {
    let mut n = node();
    let l = log();
    let l2 = l.clone();
    n.register("myapp::worker", move |n, args| {
        let me = n.self_port().unwrap();
        l2.borrow_mut()
            .push(format!("init {}", crate::value::msg_to_string(&args)));
        let l3 = l2.clone();
        n.rcv_tag(&me, "work", move |_, m| {
            l3.borrow_mut()
                .push(format!("work {}", crate::value::msg_to_string(&m)));
            Ok(())
        })?;
        Ok(())
    })
    .unwrap();
    let p = n.spawn("test/node", "myapp::worker", msg!["x", 1]).unwrap();
    assert!(l.borrow().is_empty(), "init must not run inside spawn");
    assert!(p.starts_with("test/node#"));
    n.snd(&p, msg!["work", 42]);
    run(&mut n);
    assert_eq!(*l.borrow(), vec![r#"init ["x",1]"#, "work [42]"]);
}

#[test]
fn spawn_validates_function_name_and_unknown_init_leaves_no_port() {
    let mut n = node();
    assert!(matches!(
        n.spawn("test/node", "noqualifier", vec![]),
        Err(Error::BadFunctionName(_))
    ));
    let l = log();
    let p = n.spawn("test/node", "nope::missing", vec![]).unwrap();
    n.mon(&p, mon_recorder(&l, "")).forget();
    run(&mut n);
    assert!(l.borrow()[0].contains("no_such_port"));
}

#[test]
fn spawn_init_error_kills_spawned_port() {
    let mut n = node();
    n.register("app::bad", |n, _| {
        let me = n.self_port().unwrap();
        n.rcv(&me, |_, _| Ok(()))?;
        Err("init failed".into())
    })
    .unwrap();
    let l = log();
    let p = n.spawn("test/node", "app::bad", vec![]).unwrap();
    run(&mut n);
    // The port existed (rcv created it) and was killed by the failure.
    assert!(!n.port_exists(&p));
    n.mon(&p, mon_recorder(&l, "")).forget();
    run(&mut n);
    assert!(l.borrow()[0].contains("no_such_port"));
}

#[test]
fn spawned_and_local_names_never_collide() {
    let mut n = node();
    n.register("a::b", |n, _| {
        let me = n.self_port().unwrap();
        n.rcv(&me, |_, _| Ok(()))?;
        Ok(())
    })
    .unwrap();
    let mut seen = std::collections::HashSet::new();
    for i in 0..500 {
        let p = if i % 2 == 0 {
            n.port()
        } else {
            n.spawn("test/node", "a::b", vec![]).unwrap()
        };
        assert!(seen.insert(p));
    }
}

fn echo(n: &mut Node) -> PortId {
    n.port_with(|n, mut m| {
        let reply = m.pop().expect("reply port");
        n.snd(reply.as_str().expect("port id"), m);
        Ok(())
    })
}

#[test]
fn cal_replies_exactly_once_even_if_target_dies_later() {
    let mut n = node();
    let target = echo(&mut n);
    let calls = Rc::new(RefCell::new(Vec::new()));
    let c = calls.clone();
    let reply_port = n.cal(&target, msg!["hi"], None, move |_, r| {
        c.borrow_mut().push(r)
    });
    run(&mut n);
    n.kil(&target, msg!["later"]).unwrap();
    run(&mut n);
    assert_eq!(*calls.borrow(), vec![Ok(msg!["hi"])]);
    assert!(!n.port_exists(&reply_port), "reply port is cleaned up");
}

#[test]
fn cal_timeout_calls_once_with_timeout() {
    let mut n = node();
    let silent = n.port_with(|_, _| Ok(()));
    let calls = Rc::new(RefCell::new(Vec::new()));
    let c = calls.clone();
    n.cal(
        &silent,
        msg!["q"],
        Some(Duration::from_secs(2)),
        move |_, r| c.borrow_mut().push(r),
    );
    n.poll(Time::from_secs_f64(1.0));
    assert!(calls.borrow().is_empty());
    assert_eq!(n.poll_timeout(), Some(Time::from_secs_f64(2.0)));
    n.poll(Time::from_secs_f64(2.5));
    run(&mut n);
    n.snd(&silent, msg!["late"]);
    run(&mut n);
    assert_eq!(*calls.borrow(), vec![Err(CalError::Timeout)]);
}

#[test]
fn cal_to_dead_target_reports_death() {
    let mut n = node();
    let calls = Rc::new(RefCell::new(Vec::new()));
    let c = calls.clone();
    n.cal(
        "test/node#nobody",
        msg!["q"],
        Some(Duration::from_secs(5)),
        move |_, r| c.borrow_mut().push(r),
    );
    run(&mut n);
    n.poll(Time::from_secs_f64(10.0));
    assert_eq!(calls.borrow().len(), 1);
    assert!(
        matches!(&calls.borrow()[0], Err(CalError::Died(r)) if r.kind() == Some("no_such_port"))
    );
}

#[test]
fn after_fires_once_and_guard_cancels() {
    let mut n = node();
    let count = Rc::new(Cell::new(0));
    let c = count.clone();
    n.after(Duration::from_millis(100), move |_| c.set(c.get() + 1))
        .forget();
    let c = count.clone();
    let g = n.after(Duration::from_millis(100), move |_| c.set(c.get() + 10));
    drop(g);
    let l = log();
    let p = n.port_with(recorder(&l, ""));
    n.after_snd(Duration::from_millis(200), &p, msg!["tick"])
        .forget();
    n.poll(Time::from_nanos(50_000_000));
    assert_eq!(count.get(), 0);
    n.poll(Time::from_nanos(150_000_000));
    assert_eq!(count.get(), 1);
    n.poll(Time::from_nanos(250_000_000));
    run(&mut n);
    assert_eq!(count.get(), 1);
    assert_eq!(*l.borrow(), vec![r#"["tick"]"#]);
    assert_eq!(n.poll_timeout(), None);
}

#[test]
fn node_request_time_and_can() {
    let mut n = node();
    n.register("app::f", |_, _| Ok(())).unwrap();
    let l = log();
    let sink = n.port_with(recorder(&l, ""));
    n.set_now(Time::from_secs_f64(1234.5));
    n.snd("test/node#", msg!["time", &sink, "t"]);
    n.snd("test/node", msg!["can", "time", &sink, "c1"]);
    n.snd("test/node", msg!["can", "app::f", &sink, "c2"]);
    n.snd("test/node", msg!["can", "no::such", &sink, "c3"]);
    n.snd("test/node", msg!["devnull", 1, 2]);
    n.snd("test/node", msg![]);
    n.snd("test/node", msg![""]);
    run(&mut n);
    assert_eq!(
        *l.borrow(),
        vec![
            r#"["t",1234.5]"#,
            r#"["c1","1"]"#,
            r#"["c2","1"]"#,
            r#"["c3",""]"#
        ]
    );
}

#[test]
fn node_request_snd_relays_and_functions_are_called() {
    let mut n = node();
    let l = log();
    let sink = n.port_with(recorder(&l, ""));
    let l2 = l.clone();
    n.register("app::note", move |n, args| {
        l2.borrow_mut().push(format!(
            "note from {} {}",
            n.src_node(),
            crate::value::msg_to_string(&args)
        ));
        Ok(())
    })
    .unwrap();
    n.snd("test/node", msg!["snd", &sink, "relayed", 1]);
    n.snd_to_func("test/node", "app::note", msg![5]).unwrap();
    n.snd("test/node", msg!["unknown::func", 1]); // logged, no crash
    n.snd("test/node", vec![Value::Int(3)]); // non-string tag: logged
    run(&mut n);
    // The relay takes one more trip through the run queue than the call.
    assert_eq!(
        *l.borrow(),
        vec!["note from test/node [5]", r#"["relayed",1]"#]
    );
    assert!(n.snd_to_func("test/node", "nocolons", vec![]).is_err());
}

#[test]
fn eval_is_refused_with_an_error_reply() {
    let mut n = node();
    let l = log();
    let sink = n.port_with(recorder(&l, ""));
    n.eval_on("test/node", "1+1", msg![&sink, "r"]);
    run(&mut n);
    assert_eq!(
        *l.borrow(),
        vec![r#"["r","eval is not supported by aemp-rs nodes\n"]"#]
    );
}

/// Delivers a message to the node port as if it came from `src`.
fn from_remote(n: &mut Node, src: &str, msg: Msg) {
    n.enqueue_local(Str::default(), msg, Some(crate::value::str(src)));
}

#[test]
fn secure_mode_refuses_remote_execution_but_allows_local() {
    let mut n = node();
    let count = Rc::new(Cell::new(0));
    let c = count.clone();
    n.register("app::f", move |_, _| {
        c.set(c.get() + 1);
        Ok(())
    })
    .unwrap();
    n.set_secure(true);
    from_remote(&mut n, "evil", msg!["app::f"]);
    from_remote(
        &mut n,
        "evil",
        msg!["AnyEvent::MP::_spawn", "Xyz", "app::f"],
    );
    run(&mut n);
    assert_eq!(count.get(), 0);
    n.snd_to_func("test/node", "app::f", vec![]).unwrap();
    n.spawn("test/node", "app::f", vec![]).unwrap();
    run(&mut n);
    assert_eq!(count.get(), 2);
}

#[test]
fn remote_spawn_request_runs_init_with_src_node() {
    let mut n = node();
    let l = log();
    let l2 = l.clone();
    n.register("app::w", move |n, args| {
        l2.borrow_mut().push(format!(
            "{} {} {}",
            n.self_port().unwrap(),
            n.src_node(),
            crate::value::msg_to_string(&args)
        ));
        Ok(())
    })
    .unwrap();
    // As Perl sends it: byte strings.
    let b = |s: &str| Value::Bytes(s.as_bytes().to_vec());
    from_remote(
        &mut n,
        "seedA",
        vec![
            b("AnyEvent::MP::_spawn"),
            b("HRMO6lJGERe"),
            b("app::w"),
            b("seedA#Qiih9grsBd"),
        ],
    );
    run(&mut n);
    assert_eq!(
        *l.borrow(),
        vec![r#"test/node#HRMO6lJGERe seedA ["seedA#Qiih9grsBd"]"#]
    );
}

#[test]
fn kil1_from_remote_kills_local_port() {
    let mut n = node();
    let l = log();
    let p = n.port();
    n.mon(&p, mon_recorder(&l, "")).forget();
    let name = split_port(&p).1.to_string();
    from_remote(
        &mut n,
        "peer",
        msg!["kil1", name.as_str(), "killed_by_A", "bye"],
    );
    run(&mut n);
    assert_eq!(*l.borrow(), vec![r#"["killed_by_A","bye"]"#]);
}

#[test]
fn remote_send_on_unconfigured_node_fires_monitors_with_transport_error() {
    let mut n = node();
    let l = log();
    n.mon("far/node#p", mon_recorder(&l, "port:")).forget();
    n.mon("far/node", mon_recorder(&l, "node:")).forget();
    n.snd("far/node#p", msg!["hello"]);
    assert!(
        l.borrow().is_empty(),
        "failure is never reported inside snd/mon"
    );
    run(&mut n);
    let mut got = l.borrow().clone();
    got.sort();
    assert_eq!(
        got,
        vec![
            r#"node:["transport_error","far/node","node not configured"]"#,
            r#"port:["transport_error","far/node","node not configured"]"#
        ]
    );
    assert_eq!(n.queued_for("far/node"), 0);
}

#[test]
fn local_queue_overflow_kills_target_so_loss_is_not_silent() {
    let mut n = node();
    n.set_limits(Limits {
        local_queue: 10,
        poll_budget: 4096,
    });
    let l = log();
    let got = Rc::new(Cell::new(0));
    let g = got.clone();
    let p = n.port_with(move |_, _| {
        g.set(g.get() + 1);
        Ok(())
    });
    n.mon(&p, mon_recorder(&l, "")).forget();
    run(&mut n);
    for i in 0..20 {
        n.snd(&p, msg![i]);
    }
    run(&mut n);
    assert_eq!(got.get(), 10);
    assert_eq!(l.borrow().len(), 1);
    assert!(l.borrow()[0].contains("queue_overflow"));
}

#[test]
fn ports_created_before_configure_work_locally() {
    let mut n = Node::new([1; 32]);
    assert_eq!(n.node_id(), "");
    let l = log();
    let p = n.port_with(recorder(&l, ""));
    assert!(p.starts_with('#'));
    n.snd(&p, msg![1]);
    run(&mut n);
    assert_eq!(*l.borrow(), vec!["[1]"]);
    n.set_node_id("now/configured", false).unwrap();
    n.snd(&p, msg![2]); // empty node part: dropped with a log line
    run(&mut n);
    assert_eq!(l.borrow().len(), 1);
}

#[test]
fn peval_runs_in_port_context_and_kills_on_error() {
    let mut n = node();
    let p = n.port();
    let seen = Rc::new(RefCell::new(None));
    let s = seen.clone();
    n.peval(&p, move |n| {
        *s.borrow_mut() = n.self_port();
        Err("bad".into())
    })
    .unwrap();
    run(&mut n);
    assert_eq!(seen.borrow().as_deref(), Some(p.as_str()));
    assert!(!n.port_exists(&p));
}

#[test]
fn job_stays_small() {
    // Every message passes through the run queue: keep its entries compact.
    assert!(
        std::mem::size_of::<Job>() <= 56,
        "Job is {} bytes",
        std::mem::size_of::<Job>()
    );
}
