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
