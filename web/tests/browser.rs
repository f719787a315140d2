//! Browser-only tests (`wasm-pack test --headless --chrome web`). They need
//! no server: a real WebSocket to a closed port must surface as a
//! `transport_error` through the kernel, never as a trap.
#![cfg(target_arch = "wasm32")]

use aemp_web::AempNode;
use js_sys::{Function, Promise, JSON};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

/// Runs `body` as an async JavaScript function of `node`; `sleep(ms)` is
/// available inside.
async fn run_js(node: JsValue, body: &str) -> Result<JsValue, JsValue> {
    let src = format!(
        "const sleep = (ms) => new Promise((r) => setTimeout(r, ms));\n\
         return (async () => {{ {body} }})();"
    );
    let f = Function::new_with_args("node", &src);
    let p: Promise = f.call1(&JsValue::NULL, &node)?.dyn_into()?;
    JsFuture::from(p).await
}

fn stringify(v: &JsValue) -> String {
    JSON::stringify(v).map(String::from).unwrap_or_default()
}

#[wasm_bindgen_test]
async fn local_messaging_in_the_browser() {
    let n = AempNode::new(Some(JSON::parse(r#"{"nodeid": "tab/%u"}"#).unwrap())).unwrap();
    assert!(n.node_id().unwrap().starts_with("tab/"));
    let r = run_js(
        n.into(),
        r#"
        const echo = node.port((...m) => { const r = m.pop(); node.snd(r, ...m); });
        const reply = await node.cal(echo, ["hi", new Uint8Array([1, 255])], 1000);
        const t0 = performance.now();
        await new Promise((res) => node.after(30, res));
        const waited = performance.now() - t0;
        return [reply[0], reply[1] instanceof Uint8Array, waited >= 25 && waited < 1000];
        "#,
    )
    .await
    .unwrap();
    assert_eq!(stringify(&r), r#"["hi",true,true]"#);
}

#[wasm_bindgen_test]
async fn refused_websocket_is_reported_and_retried() {
    // Count the driver's WebSockets and their events: the generated glue
    // looks `WebSocket` up on the global object at each construction.
    run_js(
        JsValue::NULL,
        r#"
        const log = globalThis.__wsLog = [];
        const Real = globalThis.__RealWebSocket ??= WebSocket;
        globalThis.WebSocket = class extends Real {
            constructor(url) {
                super(url);
                const entry = [url];
                log.push(entry);
                this.addEventListener("error", () => entry.push("error"));
                this.addEventListener("close", () => entry.push("close"));
            }
        };
        "#,
    )
    .await
    .unwrap();
    // Port 9 (discard) is closed here: each attempt fails with `error`,
    // then `close`; the kernel gets the failure and retries the seed after
    // its back-off (1.2–2.4 s for the first round).
    let cfg = r#"{"nodeid": "tab/%u", "seeds": ["ws://127.0.0.1:9/"], "monitorTimeout": 1}"#;
    let n = AempNode::new(Some(JSON::parse(cfg).unwrap())).unwrap();
    let r = run_js(
        n.into(),
        r#"
        const log = globalThis.__wsLog;
        for (let i = 0; i < 100 && log.length < 2; i++) await sleep(50);
        // A monitor on a port of a node nobody knows fires with transport_error.
        const reason = await new Promise((res) => node.mon("ghost#port", (...r) => res(r)));
        // The node still works after the failures.
        const [ok] = await node.cal(node.port((r) => node.snd(r, "alive")), [], 1000);
        node.shutdown();
        globalThis.WebSocket = globalThis.__RealWebSocket;
        return [log.slice(0, 2), reason.slice(0, 2), ok, node.isShutdown];
        "#,
    )
    .await
    .unwrap();
    assert_eq!(
        stringify(&r),
        r#"[[["ws://127.0.0.1:9/","error","close"],["ws://127.0.0.1:9/","error","close"]],["transport_error","ghost"],"alive",true]"#
    );
}

// ---------------------------------------------------------------------
// Against a real native seed: tests/e2e/browser-test.sh starts `aemp run`
// (with a known web secret) and `web_peer test-peer` (a native node
// that registers `control`, `echo` and `victim` ports in the DB family
// `aemp_test`), and passes the seed to this test at compile time.

const SEED_WS: Option<&str> = option_env!("AEMP_TEST_SEED_WS");
const WEB_SECRET: Option<&str> = option_env!("AEMP_TEST_WEB_SECRET");

/// An untrusted browser node joining the test seed with the web secret.
fn seed_node() -> AempNode {
    let (Some(seed), Some(secret)) = (SEED_WS, WEB_SECRET) else {
        panic!(
            "AEMP_TEST_SEED_WS / AEMP_TEST_WEB_SECRET were not set at compile time: \
             run this suite through tests/e2e/browser-test.sh"
        );
    };
    let cfg = serde_json::json!({
        "nodeid": "web/%u", "seeds": [seed], "secret": secret, "untrusted": true,
    });
    AempNode::new(Some(JSON::parse(&cfg.to_string()).unwrap())).unwrap()
}

#[wasm_bindgen_test]
async fn untrusted_page_against_a_native_seed() {
    let node = seed_node();
    assert!(node.node_id().unwrap().starts_with("web/"));
    let r = run_js(
        node.into(),
        r#"
        const within = (p, ms, what) => Promise.race([p, new Promise((_, rej) =>
            setTimeout(() => rej(new Error("timed out: " + what)), ms))]);
        const out = {};

        // The native peer's ports, found through the database (db_reg on
        // the native node, dbMon here).
        const peers = await within(new Promise((res) => {
            const g = node.dbMon("aemp_test", (db) => {
                const by = {};
                for (const [port, role] of Object.entries(db)) by[role] = port;
                if (by.control && by.echo && by.victim) { g.cancel(); res(by); }
            });
        }), 30000, "the native ports in family aemp_test");
        out.master = node.master;
        out.peerNode = peers.control.split('#')[0];

        // Our own registration reaches the native node's db_mon.
        const inbox = [];
        let wake = () => {};
        const me = node.port((...m) => { inbox.push(m); wake(); });
        node.dbReg("aemp_test_web", me, "browser-test");
        const [seen] = await within(node.cal(peers.control, ["seen", me]), 30000, "native sees our dbReg");
        out.seen = seen;

        // The rest of the database API through the master.
        const until = async (f, what) => {
            const t = performance.now();
            for (;;) {
                const v = await f();
                if (v) return v;
                if (performance.now() - t > 30000) throw new Error("timed out: " + what);
                await sleep(20);
            }
        };
        node.dbSet("aemp_test_kv", "k1", { a: [1, "x"] });
        const k2 = node.dbSet("aemp_test_kv", "k2");
        out.family = await until(async () => {
            const f = await within(node.dbFamily("aemp_test_kv"), 30000, "dbFamily");
            return Object.keys(f).length === 2 && f;
        }, "both keys in dbFamily");
        out.values = await within(node.dbValues("aemp_test_kv"), 30000, "dbValues");
        k2.cancel();
        node.dbDel("aemp_test_kv", "k1");
        out.keysAfterDel = await until(async () => {
            const k = await within(node.dbKeys("aemp_test_kv"), 30000, "dbKeys");
            return k.length === 0 && k;
        }, "keys deleted");

        // A message from the native node (3 messages, then "done").
        node.snd(peers.control, "flood", me, 3);
        const next = (pred, what) => within(new Promise((res) => {
            const look = () => { const i = inbox.findIndex(pred); if (i >= 0) res(inbox.splice(0, i + 1)); };
            wake = look; look();
        }), 30000, what);
        const first = await next((m) => m[0] === "done", "3 native messages");
        out.small = first;

        // A monitor on a native port, killed by the native side on request.
        const died = within(new Promise((res) => node.mon(peers.victim, (...r) => res(r))), 30000, "victim monitor");
        node.snd(peers.control, "kill_victim");
        out.victim = await died;

        // Throughput: N messages native → browser (routed through the seed).
        const N = 20000;
        let count = 0, t0 = performance.now(), tFirst = 0, tDone = 0;
        await within(new Promise((res) => {
            node.rcv(me, "n", () => { if (count++ === 0) tFirst = performance.now(); });
            node.rcv(me, "done", () => { tDone = performance.now(); res(); });
            node.snd(peers.control, "flood", me, N);
        }), 120000, N + " native messages");
        out.count = count;
        const msgsPerSec = Math.round(N / ((tDone - t0) / 1000));

        // Round trips browser → native echo → browser, sequential.
        const R = 200;
        await node.cal(peers.echo, ["warm-up"], 10000);
        const r0 = performance.now();
        for (let i = 0; i < R; i++) {
            const [v] = await node.cal(peers.echo, [i], 10000);
            if (v !== i) throw new Error(`echo ${i} answered ${v}`);
        }
        const rttMs = (performance.now() - r0) / R;
        const report = `browser: native->browser ${msgsPerSec} msgs/s (${N} msgs in ${Math.round(tDone - t0)} ms, first after ${Math.round(tFirst - t0)} ms); browser<->native cal round trip ${rttMs.toFixed(3)} ms (mean of ${R} sequential)`;
        // The native peer prints it (the test runner hides our console).
        await node.cal(peers.control, ["report", report], 10000);
        node.shutdown();
        return out;
        "#,
    )
    .await
    .unwrap();
    let s = stringify(&r);
    assert!(s.contains(r#""seen":"browser-test""#), "{s}");
    assert!(
        s.contains(r#""small":[["n",0],["n",1],["n",2],["done",3]]"#),
        "{s}"
    );
    assert!(s.contains(r#""victim":["die","killed on request"]"#), "{s}");
    assert!(s.contains(r#""count":20000"#), "{s}");
    assert!(
        s.contains(r#""family":{"k1":{"a":[1,"x"]},"k2":null}"#),
        "{s}"
    );
    assert!(s.contains(r#""keysAfterDel":[]"#), "{s}");
    assert!(s.contains(r#""values":["#), "{s}");
    assert!(s.contains(r#""master":"aemp-test-seed""#), "{s}");
    assert!(s.contains(r#""peerNode":"native-peer/"#), "{s}");
}
