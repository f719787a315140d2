//! The event loop of a browser node: one `Node`, WebSockets, one timer.
//!
//! Every entry point (a WebSocket event, the timer, an API call from
//! JavaScript) feeds the kernel, then *pumps*: `poll`, carry out all
//! actions and transmits, and re-arm the single `setTimeout` for
//! `poll_timeout`. JavaScript callbacks run inside `poll`, while the node is
//! borrowed; API calls they make reach the node through [`Inner::cur`], a
//! pointer derived from the `&mut Node` the kernel handed to the callback.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::{Rc, Weak};

use aemp_core::{Action, ConnId, Node, Time, Transmit, Transport};
use js_sys::{ArrayBuffer, Function, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{BinaryType, CloseEvent, MessageEvent, WebSocket};

use crate::helpers::{delay_ms, time_from_ms, ws_url};

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(cb: &Function, ms: f64) -> JsValue;
    #[wasm_bindgen(js_name = clearTimeout)]
    fn clear_timeout(id: &JsValue);
    #[wasm_bindgen(js_name = String, catch)]
    fn js_string(v: &JsValue) -> Result<String, JsValue>;
    #[wasm_bindgen(js_namespace = console, js_name = error)]
    pub(crate) fn console_error(s: &str);
}

/// The current time: `performance.timeOrigin + performance.now()` (works in
/// windows, workers and Node), else `Date.now()`.
pub fn now() -> Time {
    thread_local! {
        static PERF: Option<web_sys::Performance> = Reflect::get(&js_sys::global(), &"performance".into())
            .ok()
            .and_then(|p| p.dyn_into::<web_sys::Performance>().ok());
    }
    let ms = PERF.with(|p| match p {
        Some(p) => p.time_origin() + p.now(),
        None => js_sys::Date::now(),
    });
    time_from_ms(ms)
}

/// A human-readable rendering of a thrown JavaScript value.
pub fn describe(e: &JsValue) -> String {
    if let Some(err) = e.dyn_ref::<js_sys::Error>() {
        return String::from(err.message());
    }
    if let Some(s) = e.as_string() {
        return s;
    }
    js_string(e).unwrap_or_else(|_| "exception".into())
}

/// One open (or opening) WebSocket and its event handlers.
struct Sock {
    ws: WebSocket,
    _handlers: Vec<Closure<dyn FnMut(JsValue)>>,
}

impl Sock {
    /// Detaches the handlers (no more events reach the kernel).
    fn detach(&self) {
        self.ws.set_onopen(None);
        self.ws.set_onmessage(None);
        self.ws.set_onerror(None);
        self.ws.set_onclose(None);
    }
}

/// The armed timer: its `setTimeout` handle and deadline.
struct Armed {
    handle: JsValue,
    at: Time,
}

/// The shared state of one browser node.
pub struct Inner {
    node: RefCell<Node>,
    /// While a JavaScript callback runs: the node it was given.
    cur: Cell<*mut Node>,
    socks: RefCell<HashMap<ConnId, Sock>>,
    /// Handlers of closed sockets, dropped by the next timer callback
    /// (never while one of them may still be running).
    graveyard: RefCell<Vec<Sock>>,
    timer: RefCell<Option<Armed>>,
    timer_cb: RefCell<Option<Closure<dyn FnMut()>>>,
    pumping: Cell<bool>,
    shut: Cell<bool>,
    max_queue: f64,
    me: Weak<Inner>,
}

impl Inner {
    /// Wraps a configured node and starts its loop.
    pub fn start(node: Node, max_queue: usize) -> Rc<Inner> {
        let inner = Rc::new_cyclic(|me: &Weak<Inner>| Inner {
            node: RefCell::new(node),
            cur: Cell::new(std::ptr::null_mut()),
            socks: RefCell::new(HashMap::new()),
            graveyard: RefCell::new(Vec::new()),
            timer: RefCell::new(None),
            timer_cb: RefCell::new(None),
            pumping: Cell::new(false),
            shut: Cell::new(false),
            max_queue: max_queue as f64,
            me: me.clone(),
        });
        let me = inner.me.clone();
        *inner.timer_cb.borrow_mut() = Some(Closure::new(move || {
            if let Some(inner) = me.upgrade() {
                inner.timer.borrow_mut().take();
                // Never one of the closures being dropped is running here.
                inner.graveyard.borrow_mut().clear();
                inner.pump();
            }
        }));
        inner.pump();
        inner
    }

    /// True after [`Inner::shutdown`].
    pub fn is_shut(&self) -> bool {
        self.shut.get()
    }

    /// Runs `f` on the node: inside a callback on the node that callback
    /// got, else on the node itself, and then schedules a pump.
    pub fn with_node<R>(&self, f: impl FnOnce(&mut Node) -> R) -> Result<R, String> {
        if self.shut.get() {
            return Err("this node is shut down".into());
        }
        let p = self.cur.get();
        if !p.is_null() {
            // SAFETY: `p` was derived from the `&mut Node` the kernel passed
            // to the callback that is running right now (see `call_js`);
            // that reference is not used until the callback returns, and
            // this borrow ends before `f` returns.
            return Ok(f(unsafe { &mut *p }));
        }
        let r = {
            let mut node = self
                .node
                .try_borrow_mut()
                .map_err(|_| "node busy (re-entrant call)".to_string())?;
            node.set_now(now());
            f(&mut node)
        };
        // Like Perl's, API calls never run callbacks synchronously: the
        // work they queued runs on the next turn of the event loop.
        self.schedule();
        Ok(r)
    }

    /// Makes sure a pump runs soon (a 0 ms timer), unless one is due anyway.
    pub fn schedule(&self) {
        if self.shut.get() || !self.cur.get().is_null() {
            return;
        }
        let t = now();
        let due = self
            .timer
            .try_borrow()
            .map(|a| a.as_ref().is_some_and(|a| a.at <= t))
            .unwrap_or(true);
        if !due {
            self.arm(Some((t, t)));
        }
    }

    /// Read-only access, usable inside and outside callbacks.
    pub fn read<R>(&self, f: impl FnOnce(&Node) -> R) -> Result<R, String> {
        let p = self.cur.get();
        if !p.is_null() {
            // SAFETY: as in `with_node`.
            return Ok(f(unsafe { &*p }));
        }
        let node = self
            .node
            .try_borrow()
            .map_err(|_| "node busy (re-entrant call)".to_string())?;
        Ok(f(&node))
    }

    /// Calls a JavaScript function from a kernel callback: API calls the
    /// function makes go to `node`. Exceptions come back as `Err`.
    pub fn call_js(
        &self,
        node: &mut Node,
        f: &Function,
        args: &js_sys::Array,
    ) -> Result<JsValue, JsValue> {
        let prev = self.cur.replace(node as *mut Node);
        let r = f.apply(&JsValue::UNDEFINED, args);
        self.cur.set(prev);
        r
    }

    /// Feeds one network event to the kernel, then pumps.
    fn event(&self, f: impl FnOnce(&mut Node, Time)) {
        if self.shut.get() {
            return;
        }
        match self.node.try_borrow_mut() {
            Ok(mut node) => f(&mut node, now()),
            Err(_) => {
                console_error("aemp-web: network event while the node is busy, dropped");
                return;
            }
        }
        self.pump();
    }

    /// poll, carry out actions and transmits, re-arm the timer.
    pub fn pump(&self) {
        if self.shut.get() || self.pumping.get() || !self.cur.get().is_null() {
            return;
        }
        self.pumping.set(true);
        let next = match self.node.try_borrow_mut() {
            Ok(mut node) => {
                let t = now();
                node.poll(t);
                while !self.shut.get() {
                    let mut did = false;
                    while let Some(a) = node.poll_action() {
                        did = true;
                        self.action(&mut node, a);
                    }
                    while let Some(t) = node.poll_transmit() {
                        did = true;
                        self.transmit(&mut node, t);
                    }
                    if !did {
                        break;
                    }
                }
                let mut at = node.poll_timeout();
                if !self.graveyard.borrow().is_empty() {
                    // Come back soon to drop the handlers of closed sockets.
                    at = Some(at.map_or(t, |a| a.min(t)));
                }
                at.map(|at| (t, at))
            }
            Err(_) => None,
        };
        self.pumping.set(false);
        if !self.shut.get() {
            self.arm(next);
        }
    }

    fn arm(&self, next: Option<(Time, Time)>) {
        let mut timer = self.timer.borrow_mut();
        match (next, timer.as_ref()) {
            (Some((_, at)), Some(armed)) if armed.at == at => return,
            _ => {}
        }
        if let Some(old) = timer.take() {
            clear_timeout(&old.handle);
        }
        if let Some((now, at)) = next {
            if let Some(cb) = self.timer_cb.borrow().as_ref() {
                let handle = set_timeout(cb.as_ref().unchecked_ref(), delay_ms(now, at));
                *timer = Some(Armed { handle, at });
            }
        }
    }

    fn action(&self, node: &mut Node, a: Action) {
        match a {
            Action::Connect { conn, addr } => {
                if let Err(e) = self.connect(conn, &addr) {
                    node.handle_closed(now(), conn, &e);
                }
            }
            Action::Close { conn } => {
                if let Some(s) = self.socks.borrow_mut().remove(&conn) {
                    s.detach();
                    let _ = s.ws.close();
                    self.graveyard.borrow_mut().push(s);
                }
            }
        }
    }

    fn transmit(&self, node: &mut Node, t: Transmit) {
        let result = {
            let socks = self.socks.borrow();
            let Some(s) = socks.get(&t.conn) else {
                return;
            };
            let sent = match (t.text, std::str::from_utf8(&t.data)) {
                (true, Ok(text)) => s.ws.send_with_str(text),
                _ => s.ws.send_with_u8_array(&t.data),
            };
            match sent {
                Err(e) => Err(format!("websocket send failed: {}", describe(&e))),
                Ok(()) if f64::from(s.ws.buffered_amount()) > self.max_queue => {
                    Err("write queue overflow".to_string())
                }
                Ok(()) => Ok(()),
            }
        };
        if let Err(e) = result {
            self.drop_sock(t.conn, true);
            node.handle_closed(now(), t.conn, &e);
        }
    }

    fn drop_sock(&self, conn: ConnId, close: bool) {
        if let Some(s) = self.socks.borrow_mut().remove(&conn) {
            s.detach();
            if close {
                let _ = s.ws.close();
            }
            self.graveyard.borrow_mut().push(s);
        }
    }

    fn connect(&self, conn: ConnId, addr: &str) -> Result<(), String> {
        let url = ws_url(addr);
        let ws = WebSocket::new(&url).map_err(|e| format!("{url}: {}", describe(&e)))?;
        ws.set_binary_type(BinaryType::Arraybuffer);
        let mut handlers: Vec<Closure<dyn FnMut(JsValue)>> = Vec::with_capacity(4);

        let me = self.me.clone();
        let onopen = Closure::new(move |_: JsValue| {
            if let Some(inner) = me.upgrade() {
                inner.event(|n, t| n.handle_connected(t, conn, Transport::WebSocket));
            }
        });
        ws.set_onopen(Some(onopen.as_ref().unchecked_ref()));
        handlers.push(onopen);

        let me = self.me.clone();
        let onmessage = Closure::new(move |ev: JsValue| {
            let Some(inner) = me.upgrade() else { return };
            let Some(ev) = ev.dyn_ref::<MessageEvent>() else {
                return;
            };
            let data = ev.data();
            if let Some(s) = data.as_string() {
                inner.event(|n, t| n.handle_data(t, conn, s.as_bytes()));
            } else if let Some(buf) = data.dyn_ref::<ArrayBuffer>() {
                let bytes = Uint8Array::new(buf).to_vec();
                inner.event(|n, t| n.handle_data(t, conn, &bytes));
            } else {
                inner.drop_sock(conn, true);
                inner.event(|n, t| n.handle_closed(t, conn, "unexpected websocket message type"));
            }
        });
        ws.set_onmessage(Some(onmessage.as_ref().unchecked_ref()));
        handlers.push(onmessage);

        // A WebSocket `error` event is a plain `Event` without details; a
        // refused connection fires `error`, then `close`. Report the first.
        let me = self.me.clone();
        let onerror = Closure::new(move |_: JsValue| {
            if let Some(inner) = me.upgrade() {
                inner.drop_sock(conn, false);
                inner.event(|n, t| {
                    n.handle_closed(t, conn, "websocket error (connection refused or lost)")
                });
            }
        });
        ws.set_onerror(Some(onerror.as_ref().unchecked_ref()));
        handlers.push(onerror);

        let me = self.me.clone();
        let onclose = Closure::new(move |ev: JsValue| {
            let Some(inner) = me.upgrade() else { return };
            let why = match ev.dyn_ref::<CloseEvent>() {
                Some(c) if c.reason().is_empty() => format!("websocket closed (code {})", c.code()),
                Some(c) => format!("websocket closed (code {}: {})", c.code(), c.reason()),
                None => "websocket closed".to_string(),
            };
            inner.drop_sock(conn, false);
            inner.event(|n, t| n.handle_closed(t, conn, &why));
        });
        ws.set_onclose(Some(onclose.as_ref().unchecked_ref()));
        handlers.push(onclose);

        self.socks.borrow_mut().insert(
            conn,
            Sock {
                ws,
                _handlers: handlers,
            },
        );
        Ok(())
    }

    /// Closes every socket and stops the timer; later API calls fail.
    /// The kernel (and the JavaScript callbacks it holds) is released when
    /// possible, i.e. unless this is called from inside a callback.
    pub fn shutdown(&self) {
        if self.shut.replace(true) {
            return;
        }
        self.close_all();
        if let Ok(mut node) = self.node.try_borrow_mut() {
            *node = Node::new([0; 32]);
        }
    }

    fn close_all(&self) {
        if let Ok(mut timer) = self.timer.try_borrow_mut() {
            if let Some(old) = timer.take() {
                clear_timeout(&old.handle);
            }
        }
        if let Ok(mut socks) = self.socks.try_borrow_mut() {
            for (_, s) in socks.drain() {
                s.detach();
                let _ = s.ws.close();
                if let Ok(mut g) = self.graveyard.try_borrow_mut() {
                    g.push(s);
                }
            }
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.close_all();
    }
}
