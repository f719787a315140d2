//! The JavaScript API: the `AempNode` class and its guards.

pub mod convert;
pub mod driver;

use std::rc::{Rc, Weak};

use aemp_core::config::JsonMap;
use aemp_core::{CalError, CbResult, Guard, Msg, Node, Reason};
use js_sys::{Array, Function, Promise, Reflect};
use wasm_bindgen::prelude::*;

use crate::helpers::{browser_config, config_key, duration_from_ms};
use convert::{from_js, json_from_js, msg_from_js, msg_to_js};
use driver::{console_error, describe, Inner};

#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &'static str = r#"
/**
 * A value that travels in AEMP messages. Numbers that are safe integers
 * travel as integers, other numbers as floats; `undefined` travels as `null`;
 * `Uint8Array`/`ArrayBuffer` as byte strings; plain objects and `Map`s as maps.
 */
export type AempValue =
  | null | undefined | boolean | number | bigint | string
  | Uint8Array | ArrayBuffer
  | AempValue[] | { [key: string]: AempValue } | Map<AempValue, AempValue>;

/**
 * A value as received: integers beyond 2^53 arrive as `bigint`; byte strings
 * that are valid UTF-8 (all strings from Perl peers) arrive as `string`,
 * others as `Uint8Array`; maps with non-string keys arrive as `Map`.
 */
export type AempReceived =
  | null | boolean | number | bigint | string | Uint8Array
  | AempReceived[] | { [key: string]: AempReceived } | Map<AempReceived, AempReceived>;

/** A port callback: gets the message (without the tag for tag callbacks). Throwing kills the port with `die => message`. */
export type AempCallback = (...msg: AempReceived[]) => void;

/**
 * Configuration of a browser node (the `configure` keys; camelCase keys are
 * mapped to snake_case, `framing` to `framing_format`). A browser node has
 * no listeners: `binds` must be absent or empty.
 */
export interface AempConfig {
  /** Node ID template (`%n` = hostname, `%u`/trailing `/` = random); default `"<profile>/"`. */
  nodeid?: string;
  /** Seeds to stay connected to: `ws://`/`wss://` URLs (a plain `host:port` is tried as `ws://host:port/`). */
  seeds?: string[] | string;
  /** The shared secret. Do not put a cluster's secret into code served to browsers. */
  secret?: string;
  /** Framings to offer, in preference order (`cbor`, `json`). */
  framing?: string[];
  /** Seconds between heartbeats (extension). */
  heartbeatInterval?: number;
  /** Seconds without traffic before a connection is dropped (extension). */
  heartbeatTimeout?: number;
  /** Seconds: handshake timeout and reconnect back-off cap. */
  monitorTimeout?: number;
  /** Seconds between connect attempts to successive addresses. */
  connectInterval?: number;
  /** Largest accepted packet in bytes. */
  maxPacket?: number;
  /** Largest per-connection write queue (WebSocket `bufferedAmount`) in bytes. */
  maxQueue?: number;
  authOffer?: string[];
  authAccept?: string[];
  /** Secure mode: refuse remote code execution. */
  secure?: boolean;
  /** Profile name (default: the hostname). */
  profile?: string;
  /** Host name for `%n` and the default profile; default `"browser"`. */
  hostname?: string;
  [key: string]: unknown;
  /** Kernel log lines on the console: "error", "warn" (default), "info", "debug", "trace". */
  log?: "error" | "warn" | "info" | "debug" | "trace";
}

/** A rejected `cal`: `code` is `"timeout"` or `"died"`; `reason` is the kill reason for `"died"`. */
export interface AempCalError extends Error {
  code: "timeout" | "died";
  reason?: AempReceived[];
}
"#;

/// Turns a kernel error or a message into a JavaScript `Error`.
fn err(e: impl std::fmt::Display) -> JsError {
    JsError::new(&e.to_string())
}

fn func(v: &JsValue, what: &str) -> Result<Function, JsError> {
    v.clone()
        .dyn_into::<Function>()
        .map_err(|_| err(format!("{what}: callback must be a function")))
}

fn msg_arg(a: &Array, what: &str) -> Result<Msg, JsError> {
    msg_from_js(a).map_err(|e| err(format!("{what}: {e}")))
}

/// A port callback that calls `f` with the message spread as arguments; an
/// exception becomes an error result, so the kernel kills the port with
/// `die => <message>`.
fn port_cb(me: Weak<Inner>, f: Function) -> impl FnMut(&mut Node, Msg) -> CbResult {
    move |node, msg| {
        let Some(inner) = me.upgrade() else {
            return Ok(());
        };
        inner
            .call_js(node, &f, &msg_to_js(&msg))
            .map(|_| ())
            .map_err(|e| describe(&e).into())
    }
}

/// Calls `f` for a monitor-like event; exceptions are logged (the spec says
/// these callbacks must not throw; they have no port to kill).
fn notify(me: &Weak<Inner>, node: &mut Node, f: &Function, args: &Array, what: &str) {
    if let Some(inner) = me.upgrade() {
        if let Err(e) = inner.call_js(node, f, args) {
            console_error(&format!(
                "aemp-web: {what} callback threw: {}",
                describe(&e)
            ));
        }
    }
}

/// A database value argument: `undefined`/absent is `null`.
fn db_value_arg(v: Option<JsValue>, what: &str) -> Result<aemp_core::Value, JsError> {
    match v {
        None => Ok(aemp_core::Value::Null),
        Some(v) => from_js(&v).map_err(|e| err(format!("{what}: {e}"))),
    }
}

/// A family as a plain object `{subkey: value}`.
fn family_to_js(f: &aemp_core::kernel::DbFamily) -> JsValue {
    let o = js_sys::Object::new();
    for (k, v) in f {
        let _ = Reflect::set(&o, &JsValue::from_str(k), &convert::to_js(v));
    }
    o.into()
}

/// Subkeys as an array of strings.
fn keys_to_js(keys: &[aemp_core::Str]) -> JsValue {
    keys.iter()
        .map(|k| JsValue::from_str(k))
        .collect::<Array>()
        .into()
}

/// A new promise and its resolve function.
fn resolver() -> Result<(Promise, Function), JsError> {
    let mut slot = None;
    let promise = Promise::new(&mut |res, _rej| slot = Some(res));
    let res = slot.ok_or_else(|| err("Promise executor did not run"))?;
    Ok((promise, res))
}

/// One AEMP node running in the browser (or Node.js), connected to its seeds
/// over WebSockets.
///
/// ```js
/// import init, { AempNode } from "aemp-web";
/// await init();
/// const node = new AempNode({ seeds: ["wss://example.org/aemp"], nodeid: "web/%u" });
/// const port = node.port((...msg) => console.log("got", msg));
/// node.snd(port, "hello", 1, 2.5, { a: [true, null] });
/// ```
#[wasm_bindgen]
pub struct AempNode {
    inner: Rc<Inner>,
}

/// Undoes a registration (`mon`, `monNodes`, `after`) with `cancel()`.
/// Freeing the guard without `cancel()` keeps the registration, like a
/// Perl guard used in void context.
#[wasm_bindgen]
pub struct AempGuard {
    guard: Option<Guard>,
    inner: Weak<Inner>,
}

#[wasm_bindgen]
impl AempGuard {
    /// Unregisters the monitor or cancels the timer (idempotent).
    pub fn cancel(&mut self) {
        if let Some(g) = self.guard.take() {
            drop(g);
            if let Some(inner) = self.inner.upgrade() {
                inner.schedule();
            }
        }
    }

    /// True until `cancel()` was called.
    #[wasm_bindgen(getter)]
    pub fn active(&self) -> bool {
        self.guard.is_some()
    }
}

impl Drop for AempGuard {
    fn drop(&mut self) {
        if let Some(g) = self.guard.take() {
            g.forget();
        }
    }
}

impl AempNode {
    fn guard(&self, g: Guard) -> AempGuard {
        AempGuard {
            guard: Some(g),
            inner: Rc::downgrade(&self.inner),
        }
    }

    fn me(&self) -> Weak<Inner> {
        Rc::downgrade(&self.inner)
    }

    fn with<R>(&self, f: impl FnOnce(&mut Node) -> R) -> Result<R, JsError> {
        self.inner.with_node(f).map_err(err)
    }
}

#[wasm_bindgen]
impl AempNode {
    /// Creates and configures a node and starts connecting to its seeds.
    /// Throws on a bad configuration (e.g. non-empty `binds`, a malformed
    /// seed, a bad `nodeid`).
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(unchecked_optional_param_type = "AempConfig | null")] config: Option<
            JsValue,
        >,
    ) -> Result<AempNode, JsError> {
        let mut args = JsonMap::new();
        if let Some(c) = config.filter(|c| !c.is_null() && !c.is_undefined()) {
            match json_from_js(&c).map_err(|e| err(format!("config: {e}")))? {
                serde_json::Value::Object(m) => {
                    for (k, v) in m {
                        args.insert(config_key(&k), v);
                    }
                }
                _ => return Err(err("config: must be an object")),
            }
        }
        init_console_log(args.get("log").and_then(|v| v.as_str()));
        let (cfg, hostname) = browser_config(args).map_err(|e| err(format!("config: {e}")))?;
        let max_queue = cfg.max_queue().map_err(err)?;
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| err(format!("no randomness: {e}")))?;
        let mut node = Node::new(seed);
        node.set_now(driver::now());
        node.configure(&cfg, &hostname).map_err(err)?;
        Ok(AempNode {
            inner: Inner::start(node, max_queue),
        })
    }

    /// This node's ID (`$NODE`).
    #[wasm_bindgen(getter = nodeId)]
    pub fn node_id(&self) -> Result<String, JsError> {
        self.inner.read(|n| n.node_id().to_string()).map_err(err)
    }

    /// The port whose callback is running (`$SELF`), else `undefined`.
    #[wasm_bindgen(getter = selfPort)]
    pub fn self_port(&self) -> Option<String> {
        self.inner
            .read(|n| n.self_port().map(|p| p.to_string()))
            .ok()
            .flatten()
    }

    /// The node that sent the message being handled (`$SRCNODE`).
    #[wasm_bindgen(getter = srcNode)]
    pub fn src_node(&self) -> Option<String> {
        self.inner.read(|n| n.src_node().to_string()).ok()
    }

    /// The node part of a port ID (`node_of`).
    #[wasm_bindgen(js_name = nodeOf)]
    pub fn node_of(port: &str) -> String {
        aemp_core::id::node_of(port).to_string()
    }

    /// Creates a local port. Without a callback, any message kills it with
    /// `unhandled_message`; with one, `cb(...msg)` is its default callback.
    pub fn port(
        &self,
        #[wasm_bindgen(unchecked_optional_param_type = "AempCallback | null")] cb: Option<JsValue>,
    ) -> Result<String, JsError> {
        match cb.filter(|c| !c.is_undefined() && !c.is_null()) {
            None => self.with(|n| n.port().to_string()),
            Some(cb) => {
                let f = port_cb(self.me(), func(&cb, "port")?);
                self.with(|n| n.port_with(f).to_string())
            }
        }
    }

    /// `rcv(port, cb)` sets the default callback of a local port;
    /// `rcv(port, tag, cb)` the callback for messages whose first element
    /// is `tag` (it gets the message without the tag); `rcv(port, tag, null)`
    /// removes it. Returns the port.
    pub fn rcv(
        &self,
        port: &str,
        #[wasm_bindgen(js_name = tagOrCb, unchecked_param_type = "string | AempCallback")]
        tag_or_cb: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "AempCallback | null")] cb: Option<JsValue>,
    ) -> Result<String, JsError> {
        if let Some(tag) = tag_or_cb.as_string() {
            return match cb.filter(|c| !c.is_undefined() && !c.is_null()) {
                Some(cb) => self.rcv_tag(port, &tag, cb),
                None => self.unrcv(port, &tag),
            };
        }
        let f = port_cb(self.me(), func(&tag_or_cb, "rcv")?);
        self.with(|n| n.rcv(port, f))?.map_err(err)?;
        Ok(port.to_string())
    }

    /// Sets the callback for messages tagged `tag` on a local port.
    #[wasm_bindgen(js_name = rcvTag)]
    pub fn rcv_tag(
        &self,
        port: &str,
        tag: &str,
        #[wasm_bindgen(unchecked_param_type = "AempCallback")] cb: JsValue,
    ) -> Result<String, JsError> {
        let f = port_cb(self.me(), func(&cb, "rcv")?);
        self.with(|n| n.rcv_tag(port, tag, f))?.map_err(err)?;
        Ok(port.to_string())
    }

    /// Removes the callback for `tag` (`rcv $port, tag => undef`).
    pub fn unrcv(&self, port: &str, tag: &str) -> Result<String, JsError> {
        self.with(|n| n.unrcv_tag(port, tag))?.map_err(err)?;
        Ok(port.to_string())
    }

    /// Sends a message to any port, local or remote. Never runs a callback
    /// synchronously; a message to a dead port is dropped.
    #[wasm_bindgen(variadic)]
    pub fn snd(
        &self,
        port: &str,
        #[wasm_bindgen(unchecked_param_type = "AempValue[]")] msg: Array,
    ) -> Result<(), JsError> {
        let msg = msg_arg(&msg, "snd")?;
        self.with(|n| n.snd(port, msg))
    }

    /// Kills a port; no reason is a normal kill, else an error kill
    /// (`kil(port, "die", "text")`). Deferred: monitors run later.
    #[wasm_bindgen(variadic)]
    pub fn kil(
        &self,
        port: &str,
        #[wasm_bindgen(unchecked_param_type = "AempValue[]")] reason: Array,
    ) -> Result<(), JsError> {
        let reason = msg_arg(&reason, "kil")?;
        self.with(|n| n.kil(port, reason))?.map_err(err)
    }

    /// Calls `cb(...reason)` once when `port` dies (no arguments for a
    /// normal kill) or its node becomes unreachable
    /// (`"transport_error", node, text`). Monitoring a missing local port
    /// fires at once with `"no_such_port", …`.
    pub fn mon(
        &self,
        port: &str,
        #[wasm_bindgen(unchecked_param_type = "(...reason: AempReceived[]) => void")] cb: JsValue,
    ) -> Result<AempGuard, JsError> {
        let f = func(&cb, "mon")?;
        let me = self.me();
        let g = self.with(|n| {
            n.mon(port, move |node, reason: Reason| {
                notify(&me, node, &f, &msg_to_js(reason.values()), "mon");
            })
        })?;
        Ok(self.guard(g))
    }

    /// Links `port` to `rcvport`: an error kill of `port` kills `rcvport`
    /// with the same reason.
    #[wasm_bindgen(js_name = monLink)]
    pub fn mon_link(&self, port: &str, rcvport: &str) -> Result<AempGuard, JsError> {
        let g = self.with(|n| n.mon_link(port, rcvport))?;
        Ok(self.guard(g))
    }

    /// When `port` dies, sends `msg` with the reason appended to `rcvport`.
    #[wasm_bindgen(js_name = monSnd, variadic)]
    pub fn mon_snd(
        &self,
        port: &str,
        rcvport: &str,
        #[wasm_bindgen(unchecked_param_type = "AempValue[]")] msg: Array,
    ) -> Result<AempGuard, JsError> {
        let msg = msg_arg(&msg, "monSnd")?;
        let g = self.with(|n| n.mon_snd(port, rcvport, msg))?;
        Ok(self.guard(g))
    }

    /// Remote procedure call: sends `[...args, replyPort]` to `port` and
    /// resolves with the reply message (an array). Rejects with an `Error`
    /// whose `code` is `"timeout"` (after `timeoutMs`, if given) or
    /// `"died"` (message `target died: …`, `reason` = the kill reason).
    #[wasm_bindgen(unchecked_return_type = "Promise<AempReceived[]>")]
    pub fn cal(
        &self,
        port: &str,
        #[wasm_bindgen(unchecked_param_type = "AempValue[]")] args: Array,
        #[wasm_bindgen(js_name = timeoutMs)] timeout_ms: Option<f64>,
    ) -> Result<Promise, JsError> {
        let msg = msg_arg(&args, "cal")?;
        let timeout = match timeout_ms {
            None => None,
            Some(ms) => Some(
                duration_from_ms(ms)
                    .ok_or_else(|| err("cal: timeoutMs must be a non-negative finite number"))?,
            ),
        };
        let mut slots = None;
        let promise = Promise::new(&mut |res, rej| slots = Some((res, rej)));
        let (res, rej) = slots.ok_or_else(|| err("cal: Promise executor did not run"))?;
        self.with(|n| {
            n.cal(port, msg, timeout, move |_node, r| {
                let outcome = match r {
                    Ok(reply) => res.call1(&JsValue::UNDEFINED, &msg_to_js(&reply)),
                    Err(e) => {
                        let error = js_sys::Error::new(&e.to_string());
                        let (code, reason) = match &e {
                            CalError::Timeout => ("timeout", JsValue::UNDEFINED),
                            CalError::Died(r) => ("died", msg_to_js(r.values()).into()),
                        };
                        let _ = Reflect::set(&error, &"code".into(), &code.into());
                        let _ = Reflect::set(&error, &"reason".into(), &reason);
                        rej.call1(&JsValue::UNDEFINED, &error)
                    }
                };
                if let Err(e) = outcome {
                    console_error(&format!("aemp-web: cal: {}", describe(&e)));
                }
            })
        })?;
        Ok(promise)
    }

    /// Registers a function that `spawn` (from this or another node) can
    /// run by name. `name` must contain `::`. The function gets the spawn
    /// arguments and runs in the new port's context (`selfPort`); it should
    /// `rcv(node.selfPort, …)`. Throwing kills the new port with `die`.
    pub fn register(
        &self,
        name: &str,
        #[wasm_bindgen(unchecked_param_type = "(...args: AempReceived[]) => void")] f: JsValue,
    ) -> Result<(), JsError> {
        let f = func(&f, "register")?;
        let me = self.me();
        let cb = move |node: &mut Node, args: Msg| -> CbResult {
            let Some(inner) = me.upgrade() else {
                return Ok(());
            };
            inner
                .call_js(node, &f, &msg_to_js(&args))
                .map(|_| ())
                .map_err(|e| describe(&e).into())
        };
        self.with(|n| n.register(name, cb))?.map_err(err)
    }

    /// Spawns a port on `node` (a node ID or any of its port IDs) running
    /// the registered function `func` with `args`; returns the new port ID
    /// at once.
    #[wasm_bindgen(variadic)]
    pub fn spawn(
        &self,
        node: &str,
        func: &str,
        #[wasm_bindgen(unchecked_param_type = "AempValue[]")] args: Array,
    ) -> Result<String, JsError> {
        let args = msg_arg(&args, "spawn")?;
        Ok(self
            .with(|n| n.spawn(node, func, args))?
            .map_err(err)?
            .to_string())
    }

    /// The IDs of all connected nodes (without this one).
    #[wasm_bindgen(js_name = upNodes)]
    pub fn up_nodes(&self) -> Result<Vec<String>, JsError> {
        self.inner
            .read(|n| n.up_nodes().iter().map(|s| s.to_string()).collect())
            .map_err(err)
    }

    /// `true` if connected to `node` (or it is this node), `false` if known
    /// but not connected, `undefined` if unknown.
    #[wasm_bindgen(js_name = nodeIsUp)]
    pub fn node_is_up(&self, node: &str) -> Result<Option<bool>, JsError> {
        self.inner.read(|n| n.node_is_up(node)).map_err(err)
    }

    /// Calls `cb(nodeId, isUp, ...reason)` whenever a connection to a node
    /// comes up or goes down.
    #[wasm_bindgen(js_name = monNodes)]
    pub fn mon_nodes(
        &self,
        #[wasm_bindgen(
            unchecked_param_type = "(nodeId: string, isUp: boolean, ...reason: AempReceived[]) => void"
        )]
        cb: JsValue,
    ) -> Result<AempGuard, JsError> {
        let f = func(&cb, "monNodes")?;
        let me = self.me();
        let g = self.with(|n| {
            n.mon_nodes(move |node, id, up, reason| {
                let args = Array::of2(&JsValue::from_str(id), &JsValue::from_bool(up));
                for v in reason.values() {
                    args.push(&convert::to_js(v));
                }
                notify(&me, node, &f, &args, "monNodes");
            })
        })?;
        Ok(self.guard(g))
    }

    /// Calls `cb()` once after `ms` milliseconds (on the node's clock).
    pub fn after(
        &self,
        ms: f64,
        #[wasm_bindgen(unchecked_param_type = "() => void")] cb: JsValue,
    ) -> Result<AempGuard, JsError> {
        let d = duration_from_ms(ms)
            .ok_or_else(|| err("after: ms must be a non-negative finite number"))?;
        let f = func(&cb, "after")?;
        let me = self.me();
        let g =
            self.with(|n| n.after(d, move |node| notify(&me, node, &f, &Array::new(), "after")))?;
        Ok(self.guard(g))
    }

    /// Sets `family`/`subkey` to `value` (default `null`) in this node's
    /// local database (`db_set`); the master replicates it. The guard's
    /// `cancel()` deletes the entry; freeing the guard keeps it.
    #[wasm_bindgen(js_name = dbSet)]
    pub fn db_set(
        &self,
        family: &str,
        subkey: &str,
        #[wasm_bindgen(unchecked_optional_param_type = "AempValue")] value: Option<JsValue>,
    ) -> Result<AempGuard, JsError> {
        let v = db_value_arg(value, "dbSet")?;
        let g = self.with(|n| n.db_set(family, subkey, v))?;
        Ok(self.guard(g))
    }

    /// Deletes subkeys of `family` from this node's local database (`db_del`).
    #[wasm_bindgen(js_name = dbDel, variadic)]
    pub fn db_del(
        &self,
        family: &str,
        #[wasm_bindgen(unchecked_param_type = "string[]")] subkeys: Array,
    ) -> Result<(), JsError> {
        let subkeys: Vec<String> = subkeys
            .iter()
            .map(|k| {
                k.as_string()
                    .ok_or_else(|| err("dbDel: subkeys must be strings"))
            })
            .collect::<Result<_, _>>()?;
        let keys: Vec<&str> = subkeys.iter().map(String::as_str).collect();
        self.with(|n| n.db_del(family, &keys))
    }

    /// Registers `port` in `family` with `value` (default `null`) until the
    /// port dies or the guard is cancelled (`db_reg`).
    #[wasm_bindgen(js_name = dbReg)]
    pub fn db_reg(
        &self,
        family: &str,
        port: &str,
        #[wasm_bindgen(unchecked_optional_param_type = "AempValue")] value: Option<JsValue>,
    ) -> Result<AempGuard, JsError> {
        let v = db_value_arg(value, "dbReg")?;
        let g = self.with(|n| n.db_reg(family, port, v))?;
        Ok(self.guard(g))
    }

    /// Monitors a database family (`db_mon`): `cb(db, added, changed,
    /// deleted)` with the whole family as an object `{subkey: value}` and
    /// arrays of subkeys; first with everything present, then on every
    /// change. `cancel()` ends the subscription.
    #[wasm_bindgen(js_name = dbMon)]
    pub fn db_mon(
        &self,
        family: &str,
        #[wasm_bindgen(
            unchecked_param_type = "(db: { [subkey: string]: AempReceived }, added: string[], changed: string[], deleted: string[]) => void"
        )]
        cb: JsValue,
    ) -> Result<AempGuard, JsError> {
        let f = func(&cb, "dbMon")?;
        let me = self.me();
        let g = self.with(|n| {
            n.db_mon(family, move |node, ch| {
                let args = Array::of4(
                    &family_to_js(ch.db),
                    &keys_to_js(ch.added),
                    &keys_to_js(ch.changed),
                    &keys_to_js(ch.deleted),
                );
                notify(&me, node, &f, &args, "dbMon");
            })
        })?;
        Ok(self.guard(g))
    }

    /// Asks the master for a whole family (`db_family`): resolves with
    /// `{subkey: value}` (empty if unknown). Waits while there is no master.
    #[wasm_bindgen(js_name = dbFamily, unchecked_return_type = "Promise<{ [subkey: string]: AempReceived }>")]
    pub fn db_family(&self, family: &str) -> Result<Promise, JsError> {
        let (promise, res) = resolver()?;
        self.with(|n| {
            n.db_family(family, move |_, fam| {
                let _ = res.call1(&JsValue::UNDEFINED, &family_to_js(&fam));
            })
        })?;
        Ok(promise)
    }

    /// Asks the master for the subkeys of a family (`db_keys`).
    #[wasm_bindgen(js_name = dbKeys, unchecked_return_type = "Promise<string[]>")]
    pub fn db_keys(&self, family: &str) -> Result<Promise, JsError> {
        let (promise, res) = resolver()?;
        self.with(|n| {
            n.db_keys(family, move |_, keys| {
                let _ = res.call1(&JsValue::UNDEFINED, &keys_to_js(&keys));
            })
        })?;
        Ok(promise)
    }

    /// Asks the master for the values of a family (`db_values`).
    #[wasm_bindgen(js_name = dbValues, unchecked_return_type = "Promise<AempReceived[]>")]
    pub fn db_values(&self, family: &str) -> Result<Promise, JsError> {
        let (promise, res) = resolver()?;
        self.with(|n| {
            n.db_values(family, move |_, vals| {
                let _ = res.call1(&JsValue::UNDEFINED, &msg_to_js(&vals));
            })
        })?;
        Ok(promise)
    }

    /// The global node this node is attached to (its database master), if any.
    #[wasm_bindgen(getter)]
    pub fn master(&self) -> Option<String> {
        self.inner
            .read(|n| n.master().map(str::to_string))
            .ok()
            .flatten()
    }

    /// Closes all connections and stops all timers. Further calls throw.
    pub fn shutdown(&self) {
        self.inner.shutdown();
    }

    /// True after `shutdown()`.
    #[wasm_bindgen(getter = isShutdown)]
    pub fn is_shutdown(&self) -> bool {
        self.inner.is_shut()
    }
}

/// Converts one JavaScript value as `snd` would and back, as received
/// (exposed for tests and for checking what a value becomes on the wire).
#[wasm_bindgen(js_name = roundTrip)]
pub fn round_trip(
    #[wasm_bindgen(unchecked_param_type = "AempValue")] v: JsValue,
) -> Result<JsValue, JsError> {
    Ok(convert::to_js(&from_js(&v).map_err(err)?))
}

/// Sends the kernel's log lines to the browser console, once per page, at
/// the level named by the config key `log` (`"error"`, `"warn"` — the
/// default —, `"info"`, `"debug"`, `"trace"`).
fn init_console_log(level: Option<&str>) {
    use std::sync::Once;
    static INIT: Once = Once::new();
    let level = match level.unwrap_or("warn") {
        "error" => tracing::Level::ERROR,
        "info" => tracing::Level::INFO,
        "debug" => tracing::Level::DEBUG,
        "trace" => tracing::Level::TRACE,
        _ => tracing::Level::WARN,
    };
    INIT.call_once(|| {
        let cfg = tracing_wasm::WASMLayerConfigBuilder::new()
            .set_max_level(level)
            .set_report_logs_in_timings(false)
            .build();
        tracing_wasm::set_as_global_default_with_config(cfg);
    });
}
