//! Tests of the JavaScript-facing API in Node.js (`wasm-pack test --node web`).
//!
//! Some tests call the exported Rust methods directly with `JsValue`
//! arguments; those that need callbacks which call back into the node run
//! small async JavaScript functions against the node object, exactly as a
//! JavaScript user would.
#![cfg(target_arch = "wasm32")]

use aemp_core::Value;
use aemp_web::convert::{from_js, to_js};
use aemp_web::AempNode;
use js_sys::{Array, Function, Map, Promise, Reflect, Uint8Array, JSON};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

fn json(s: &str) -> JsValue {
    JSON::parse(s).expect("test JSON")
}

fn node(cfg: &str) -> AempNode {
    AempNode::new(Some(json(cfg))).unwrap_or_else(|_| panic!("config {cfg} refused"))
}

/// Runs `body` as the body of an async JavaScript function of `node` and
/// awaits its result. `sleep(ms)` is available inside.
async fn run_js(node: JsValue, body: &str) -> Result<JsValue, JsValue> {
    let src = format!(
        "const sleep = (ms) => new Promise((r) => setTimeout(r, ms));\n\
         return (async () => {{ {body} }})();"
    );
    let f = Function::new_with_args("node", &src);
    let p: Promise = f.call1(&JsValue::NULL, &node)?.dyn_into()?;
    JsFuture::from(p).await
}

async fn sleep(ms: i32) {
    let p = Promise::new(&mut |res, _| {
        let g = js_sys::global();
        let st: Function = Reflect::get(&g, &"setTimeout".into())
            .unwrap()
            .unchecked_into();
        st.call2(&JsValue::NULL, &res, &ms.into()).unwrap();
    });
    JsFuture::from(p).await.unwrap();
}

fn js_eq(a: &JsValue, expected_json: &str) {
    let got = JSON::stringify(a).map(String::from).unwrap_or_default();
    let want = JSON::stringify(&json(expected_json))
        .map(String::from)
        .unwrap();
    assert_eq!(got, want);
}

fn msg_error(e: JsValue) -> String {
    e.dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .unwrap_or_else(|| format!("{e:?}"))
}

// ------------------------------------------------------------------ values

#[wasm_bindgen_test]
fn values_from_js() {
    assert_eq!(from_js(&JsValue::NULL), Ok(Value::Null));
    assert_eq!(from_js(&JsValue::UNDEFINED), Ok(Value::Null));
    assert_eq!(from_js(&JsValue::TRUE), Ok(Value::Bool(true)));
    assert_eq!(from_js(&3.0.into()), Ok(Value::Int(3)));
    assert_eq!(from_js(&(-0.5).into()), Ok(Value::Float(-0.5)));
    assert_eq!(from_js(&9.1e15.into()), Ok(Value::Float(9.1e15)));
    assert_eq!(from_js(&"hé".into()), Ok(Value::from("hé")));
    assert_eq!(
        from_js(&JsValue::from(1i128 << 60)),
        Ok(Value::Int(1i128 << 60))
    );
    assert!(from_js(&JsValue::from(1i128 << 70))
        .unwrap_err()
        .contains("BigInt out of range"));
    let bytes = Uint8Array::from(&[0u8, 255, 7][..]);
    assert_eq!(from_js(&bytes.into()), Ok(Value::Bytes(vec![0, 255, 7])));
    assert_eq!(
        from_js(&json(r#"[1, "a", {"k": [null, 2.5]}]"#)),
        Ok(Value::Array(vec![
            Value::Int(1),
            Value::from("a"),
            Value::Map(vec![(
                Value::from("k"),
                Value::Array(vec![Value::Null, Value::Float(2.5)])
            )]),
        ]))
    );
    let m = Map::new();
    m.set(&1.into(), &"one".into());
    assert_eq!(
        from_js(&m.into()),
        Ok(Value::Map(vec![(Value::Int(1), Value::from("one"))]))
    );
}

#[wasm_bindgen_test]
fn values_from_js_refused() {
    let f = Function::new_no_args("return 1");
    assert!(from_js(&f.into()).unwrap_err().contains("function"));
    assert!(from_js(&js_sys::Date::new_0().into())
        .unwrap_err()
        .contains("Date"));
    assert!(from_js(&js_sys::Symbol::for_("s").into()).is_err());
    // A cycle is refused, not a stack overflow.
    let a = Array::new();
    a.push(&a);
    assert!(from_js(&a.into()).unwrap_err().contains("nested deeper"));
}

#[wasm_bindgen_test]
fn values_to_js() {
    assert!(to_js(&Value::Null).is_null());
    assert_eq!(to_js(&Value::Int(-7)).as_f64(), Some(-7.0));
    let big = to_js(&Value::Int(1i128 << 60));
    assert!(big.is_bigint());
    assert_eq!(i128::try_from(big).unwrap(), 1i128 << 60);
    assert_eq!(to_js(&Value::Float(0.25)).as_f64(), Some(0.25));
    // Perl sends strings as byte strings: valid UTF-8 arrives as a string.
    assert_eq!(
        to_js(&Value::Bytes(b"from perl".to_vec())).as_string(),
        Some("from perl".into())
    );
    let raw = to_js(&Value::Bytes(vec![0xff, 0]));
    assert_eq!(raw.dyn_ref::<Uint8Array>().unwrap().to_vec(), vec![0xff, 0]);
    // Maps with string keys become plain objects, even with "__proto__".
    let obj = to_js(&Value::Map(vec![
        (Value::from("__proto__"), Value::Int(1)),
        (Value::Bytes(b"b".to_vec()), Value::Bool(false)),
    ]));
    js_eq(&obj, r#"{"__proto__": 1, "b": false}"#);
    assert_eq!(
        from_js(&obj).unwrap().get("__proto__"),
        Some(&Value::Int(1))
    );
    // Other keys give a Map.
    let m = to_js(&Value::Map(vec![(Value::Int(1), Value::Null)]));
    assert!(m.is_instance_of::<Map>());
    // Round trip through the exported helper.
    let v = json(r#"{"a": [1, 2.5, "x", true, null]}"#);
    js_eq(
        &aemp_web::round_trip(v).unwrap(),
        r#"{"a": [1, 2.5, "x", true, null]}"#,
    );
}

// ----------------------------------------------------------- configuration

#[wasm_bindgen_test]
fn config_and_identity() {
    let n = node(r#"{"nodeid": "test/%n/%u", "hostname": "tab"}"#);
    let id = n.node_id().unwrap();
    assert!(id.starts_with("test/tab/"), "{id}");
    assert_eq!(n.node_is_up(&id).unwrap(), Some(true));
    assert_eq!(n.node_is_up("nobody").unwrap(), None);
    assert!(n.up_nodes().unwrap().is_empty());
    assert_eq!(AempNode::node_of(&format!("{id}#abc")), id);
    assert!(n.self_port().is_none());

    let default = AempNode::new(None).unwrap();
    assert!(default.node_id().unwrap().starts_with("browser/"));

    for (cfg, needle) in [
        (r#"{"binds": ["*:4040"]}"#, "cannot listen"),
        (r#"{"nodeid": "a#b"}"#, "nodeid"),
        (r#"{"heartbeatInterval": "soon"}"#, "heartbeat_interval"),
        (r#"[1]"#, "must be an object"),
    ] {
        let e = AempNode::new(Some(json(cfg))).err().expect(cfg);
        let text = msg_error(e.into());
        assert!(text.contains(needle), "{cfg}: {text}");
    }
}

// ------------------------------------------------------- local messaging

#[wasm_bindgen_test]
async fn snd_is_deferred_and_rcv_dispatches_tags() {
    let n = node(r#"{"nodeid": "t1/"}"#);
    let log = Array::new();
    let rec = Function::new_with_args("log", "return (...m) => { log.push(m) }")
        .call1(&JsValue::NULL, &log)
        .unwrap();
    let port = n.port(Some(rec.clone())).unwrap();
    n.snd(&port, Array::of2(&"hello".into(), &1.into()))
        .unwrap();
    assert_eq!(
        log.length(),
        0,
        "snd must not run the callback synchronously"
    );
    // A tag callback registered after the snd still sees the message:
    // delivery happens on the next turn of the event loop.
    n.snd(&port, Array::of2(&"tag".into(), &2.5.into()))
        .unwrap();
    n.rcv(&port, "tag".into(), Some(rec)).unwrap();
    sleep(20).await;
    js_eq(&log, r#"[["hello", 1], [2.5]]"#);
    // Removing the tag callback sends "tag" messages to the default callback.
    n.unrcv(&port, "tag").unwrap();
    n.snd(&port, Array::of1(&"tag".into())).unwrap();
    sleep(20).await;
    js_eq(&log, r#"[["hello", 1], [2.5], ["tag"]]"#);
    // rcv on a remote port is an error, not a trap.
    let e = n
        .rcv("elsewhere#p", Function::new_no_args("").into(), None)
        .err()
        .unwrap();
    assert!(msg_error(e.into()).contains("only be called on local ports"));
}

#[wasm_bindgen_test]
async fn callbacks_reenter_the_node() {
    let n = node(r#"{"nodeid": "t2/"}"#);
    let r = run_js(
        n.into(),
        r#"
        const log = [];
        const b = node.port((...m) => log.push(["b", node.selfPort === b, ...m]));
        const a = node.port((x) => {
            // API calls from inside a callback: port, snd, kil, mon.
            const c = node.port();
            node.mon(c, (...reason) => log.push(["c died", ...reason]));
            node.snd(b, "from a", x + 1);
            node.kil(c, "custom", "bye");
        });
        node.snd(a, 41);
        await sleep(30);
        return log;
        "#,
    )
    .await
    .unwrap();
    js_eq(
        &r,
        r#"[["b", true, "from a", 42], ["c died", "custom", "bye"]]"#,
    );
}

#[wasm_bindgen_test]
async fn kil_and_mon() {
    let n = node(r#"{"nodeid": "t3/"}"#);
    let r = run_js(
        n.into(),
        r##"
        const log = [];
        const p1 = node.port(() => {}), p2 = node.port(), p3 = node.port(() => {});
        node.mon(p1, (...r) => log.push(["p1", ...r]));
        node.mon(p2, (...r) => log.push(["p2", ...r]));
        const g = node.mon(p3, (...r) => log.push(["p3", ...r]));
        node.kil(p1);                      // normal kill: empty reason
        node.snd(p2, "stray");             // no callback: unhandled_message
        g.cancel();                        // cancelled monitor never fires
        if (g.active) throw new Error("guard still active");
        node.kil(p3, "x");
        node.mon(node.nodeId + "#nope", (...r) => log.push(["nope", ...r]));
        await sleep(30);
        let threw = "";
        try { node.kil(node.nodeId + "#"); } catch (e) { threw = e.message; }
        log.push(threw);
        return log;
        "##,
    )
    .await
    .unwrap();
    let id = js_sys::JSON::stringify(&r).map(String::from).unwrap();
    assert!(id.contains(r#"["p1"]"#), "{id}");
    assert!(
        id.contains(r#"["p2","unhandled_message","no callback found for message 'stray'"]"#),
        "{id}"
    );
    assert!(!id.contains(r#""p3""#), "{id}");
    assert!(
        id.contains(r#"["nope","no_such_port","cannot monitor nonexistent port""#),
        "{id}"
    );
    assert!(id.contains("killing a node port is not allowed"), "{id}");
}

#[wasm_bindgen_test]
async fn throwing_callback_dies() {
    let n = node(r#"{"nodeid": "t4/"}"#);
    let r = run_js(
        n.into(),
        r#"
        const log = [];
        const p = node.port(() => { throw new Error("kaput"); });
        const q = node.port(() => { throw "plain string"; });
        node.mon(p, (...r) => log.push(r));
        node.mon(q, (...r) => log.push(r));
        // A throwing monitor callback is logged, not fatal.
        node.mon(p, () => { throw new Error("ignored"); });
        node.snd(p, "go");
        node.snd(q, "go");
        node.snd(p, "again");              // p is dead: dropped
        await sleep(30);
        return log;
        "#,
    )
    .await
    .unwrap();
    js_eq(&r, r#"[["die", "kaput"], ["die", "plain string"]]"#);
}

#[wasm_bindgen_test]
async fn links_and_mon_snd() {
    let n = node(r#"{"nodeid": "t5/"}"#);
    let r = run_js(
        n.into(),
        r#"
        const log = [];
        const watcher = node.port((...m) => log.push(m));
        const a = node.port(), linked = node.port(() => {});
        node.monLink(a, linked);
        node.mon(linked, (...r) => log.push(["linked died", ...r]));
        node.monSnd(a, watcher, "a died:");
        node.kil(a, "boom", 1);
        await sleep(30);
        return log;
        "#,
    )
    .await
    .unwrap();
    let s = js_sys::JSON::stringify(&r).map(String::from).unwrap();
    assert!(s.contains(r#"["linked died","boom",1]"#), "{s}");
    assert!(s.contains(r#"["a died:","boom",1]"#), "{s}");
}

#[wasm_bindgen_test]
async fn cal_resolves_and_rejects() {
    let n = node(r#"{"nodeid": "t6/"}"#);
    let r = run_js(
        n.into(),
        r#"
        const echo = node.port((...m) => { const reply = m.pop(); node.snd(reply, "re", ...m); });
        const ok = await node.cal(echo, ["ping", 1, {k: [true]}]);
        const silent = node.port(() => {});
        let timeout, died;
        try { await node.cal(silent, ["x"], 20); } catch (e) { timeout = [e.message, e.code]; }
        const dying = node.port(() => { throw new Error("no"); });
        try { await node.cal(dying, ["x"]); } catch (e) { died = [e.message, e.code, e.reason]; }
        let bad;
        try { node.cal(echo, [() => 1]); } catch (e) { bad = e.message; }
        return [ok, timeout, died, bad];
        "#,
    )
    .await
    .unwrap();
    js_eq(
        &r,
        r#"[["re", "ping", 1, {"k": [true]}],
            ["timeout", "timeout"],
            ["target died: die => no", "died", ["die", "no"]],
            "cal: cannot send function as an AEMP value"]"#,
    );
}

#[wasm_bindgen_test]
async fn spawn_register_after() {
    let n = node(r#"{"nodeid": "t7/"}"#);
    let r = run_js(
        n.into(),
        r#"
        const log = [];
        node.register("Test::counter", (start) => {
            let count = start;
            node.rcv(node.selfPort, "inc", (by) => { count += by; });
            node.rcv(node.selfPort, "get", (reply) => node.snd(reply, count));
        });
        const c = node.spawn(node.nodeId, "Test::counter", 10);
        node.snd(c, "inc", 5);
        const [count] = await node.cal(c, ["get"]);
        log.push(count);
        let bad;
        try { node.spawn(node.nodeId, "nocolons"); } catch (e) { bad = e.message; }
        log.push(bad);
        node.after(10, () => log.push("after"));
        const g = node.after(5, () => log.push("cancelled"));
        g.cancel();
        try { node.after(-1, () => {}); } catch (e) { log.push(e.message); }
        await sleep(40);
        return log;
        "#,
    )
    .await
    .unwrap();
    js_eq(
        &r,
        r#"[15, "nocolons: function name must be fully qualified (contain '::')",
            "after: ms must be a non-negative finite number", "after"]"#,
    );
}

#[wasm_bindgen_test]
async fn unreachable_seed_and_shutdown() {
    // Node.js 20 has no global WebSocket: the connect fails cleanly (an
    // error reported to the kernel, not a trap) and the node keeps working.
    let n = node(r#"{"nodeid": "t8/", "seeds": ["ws://127.0.0.1:9/"], "monitorTimeout": 0.2}"#);
    let js: JsValue = n.into();
    let r = run_js(
        js.clone(),
        r#"
        const log = [];
        node.monNodes((id, up, ...r) => log.push([id, up, ...r]));
        const p = node.port((...m) => log.push(m));
        node.snd(p, "still works");
        await sleep(50);
        node.shutdown();
        let threw;
        try { node.snd(p, "late"); } catch (e) { threw = e.message; }
        log.push(threw, node.isShutdown);
        return log;
        "#,
    )
    .await
    .unwrap();
    js_eq(&r, r#"[["still works"], "this node is shut down", true]"#);
}
