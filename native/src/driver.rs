//! The single-threaded I/O loop: owns the kernel, carries out its actions,
//! hands its transmits to per-connection writers, and sleeps until the next
//! timer or I/O event (docs/driver-api.md, "The loop").
//!
//! Everything here runs on one thread inside a tokio `LocalSet`. Reader
//! tasks borrow the kernel directly (`Rc<RefCell<K>>`) to feed it data,
//! then wake the loop, which polls and drains. No borrow is ever held
//! across an `.await`.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::time::Duration;

use tokio::sync::Notify;

use crate::clock::Clock;
use crate::kernel::{Action, ConnId, Kernel, Transmit, Transport};

/// Tunables of the driver, taken from the configuration.
#[derive(Clone, Debug)]
pub struct DriverOptions {
    /// Bytes allowed to wait for writing on one connection before it is
    /// closed with "write queue overflow" (config `max_queue`).
    pub max_queue: usize,
    /// Set TCP_NODELAY on every TCP socket (config `nodelay`).
    pub nodelay: bool,
    /// How long an accepted socket may take to show what it speaks, and
    /// how long an outgoing connect may take (config `monitor_timeout`).
    pub handshake_timeout: Duration,
}

impl Default for DriverOptions {
    fn default() -> Self {
        DriverOptions {
            max_queue: 64 << 20,
            nodelay: true,
            handshake_timeout: Duration::from_secs(30),
        }
    }
}

/// The write side of one connection: buffers waiting to be written.
pub(crate) struct OutQueue {
    inner: RefCell<OutInner>,
    notify: Notify,
}

#[derive(Default)]
struct OutInner {
    bufs: VecDeque<(Vec<u8>, bool)>,
    bytes: usize,
    closing: bool,
    dead: bool,
}

/// What the writer task should do next.
pub(crate) enum Next {
    /// Write this buffer (text flag for WebSocket).
    Write(Vec<u8>, bool),
    /// Everything is written and the connection is to be closed.
    Close,
    /// The connection was torn down: stop without flushing.
    Stop,
}

impl OutQueue {
    fn new() -> Rc<OutQueue> {
        Rc::new(OutQueue {
            inner: RefCell::new(OutInner::default()),
            notify: Notify::new(),
        })
    }

    /// Queues a buffer; false if that would exceed `max` waiting bytes.
    fn push(&self, data: Vec<u8>, text: bool, max: usize) -> bool {
        let mut q = self.inner.borrow_mut();
        if q.dead || q.closing {
            return true;
        }
        if q.bytes.saturating_add(data.len()) > max {
            return false;
        }
        q.bytes += data.len();
        q.bufs.push_back((data, text));
        drop(q);
        self.notify.notify_one();
        true
    }

    fn close(&self) {
        self.inner.borrow_mut().closing = true;
        self.notify.notify_one();
    }

    fn kill(&self) {
        let mut q = self.inner.borrow_mut();
        q.dead = true;
        q.bufs.clear();
        q.bytes = 0;
        drop(q);
        self.notify.notify_one();
    }

    /// Waits for the next thing to do.
    pub(crate) async fn next(&self) -> Next {
        loop {
            {
                let mut q = self.inner.borrow_mut();
                if q.dead {
                    return Next::Stop;
                }
                if let Some((b, t)) = q.bufs.pop_front() {
                    return Next::Write(b, t);
                }
                if q.closing {
                    return Next::Close;
                }
            }
            self.notify.notified().await;
        }
    }

    /// Marks `n` bytes as written.
    pub(crate) fn written(&self, n: usize) {
        let mut q = self.inner.borrow_mut();
        q.bytes = q.bytes.saturating_sub(n);
    }
}

/// One live connection as the driver tracks it.
struct ConnEntry {
    out: Rc<OutQueue>,
    reader: Option<tokio::task::AbortHandle>,
}

/// State shared by the loop and its tasks (all on one thread).
pub(crate) struct Shared<K> {
    pub(crate) node: RefCell<K>,
    conns: RefCell<HashMap<ConnId, ConnEntry>>,
    /// Wakes the loop after a task fed the kernel.
    pub(crate) wake: Notify,
    pub(crate) clock: Clock,
    pub(crate) opts: DriverOptions,
    /// Set when the loop should stop.
    pub(crate) stop: Cell<bool>,
}

impl<K: Kernel> Shared<K> {
    pub(crate) fn new(node: K, clock: Clock, opts: DriverOptions) -> Rc<Shared<K>> {
        Rc::new(Shared {
            node: RefCell::new(node),
            conns: RefCell::new(HashMap::new()),
            wake: Notify::new(),
            clock,
            opts,
            stop: Cell::new(false),
        })
    }

    /// Registers a connection (before the kernel can transmit on it) and
    /// returns its write queue.
    pub(crate) fn register(&self, conn: ConnId) -> Rc<OutQueue> {
        let out = OutQueue::new();
        self.conns.borrow_mut().insert(
            conn,
            ConnEntry {
                out: out.clone(),
                reader: None,
            },
        );
        out
    }

    /// Remembers the reader task of a connection (aborted on teardown).
    pub(crate) fn set_reader(&self, conn: ConnId, h: tokio::task::AbortHandle) {
        match self.conns.borrow_mut().get_mut(&conn) {
            Some(e) => e.reader = Some(h),
            None => h.abort(),
        }
    }

    /// True while the kernel still knows the connection.
    pub(crate) fn is_live(&self, conn: ConnId) -> bool {
        self.conns.borrow().contains_key(&conn)
    }

    /// Tears a connection down without telling the kernel; true if it was
    /// still registered.
    fn forget(&self, conn: ConnId) -> bool {
        let e = self.conns.borrow_mut().remove(&conn);
        match e {
            Some(e) => {
                e.out.kill();
                if let Some(r) = e.reader {
                    r.abort();
                }
                true
            }
            None => false,
        }
    }

    /// The connection broke (or failed to open): tear it down and report it
    /// to the kernel, once. Must not be called while the kernel is borrowed.
    pub(crate) fn failed(&self, conn: ConnId, reason: &str) {
        if self.forget(conn) {
            tracing::debug!("connection {conn:?} closed: {reason}");
            let now = self.clock.now();
            self.node.borrow_mut().handle_closed(now, conn, reason);
            self.wake.notify_one();
        }
    }

    /// Reports an accepted connection (TCP, or WebSocket after the upgrade)
    /// and queues what the kernel sends first (its greeting) at once.
    /// Returns the connection and its write queue.
    pub(crate) fn accepted(
        self: &Rc<Self>,
        transport: Transport,
        peer: Option<String>,
    ) -> (ConnId, Rc<OutQueue>) {
        let now = self.clock.now();
        let mut node = self.node.borrow_mut();
        let conn = node.handle_accept(now, transport, peer);
        let out = self.register(conn);
        drain(self, &mut node, now);
        drop(node);
        self.wake.notify_one();
        (conn, out)
    }

    /// Reports an outgoing connection open and queues the kernel's first
    /// bytes (its greeting) at once, before anything is read.
    pub(crate) fn connected(self: &Rc<Self>, conn: ConnId, transport: Transport) {
        let now = self.clock.now();
        let mut node = self.node.borrow_mut();
        node.handle_connected(now, conn, transport);
        drain(self, &mut node, now);
        drop(node);
        self.wake.notify_one();
    }

    /// Runs a user closure on the kernel, its clock advanced first.
    fn exec(&self, f: Box<dyn FnOnce(&mut K) + Send>) {
        let now = self.clock.now();
        let mut node = self.node.borrow_mut();
        node.set_now(now);
        f(&mut node);
    }

    /// Feeds received bytes to the kernel and wakes the loop; false if the
    /// kernel no longer knows the connection (the bytes are dropped).
    ///
    /// What the kernel transmits in response is handed to the writers at
    /// once, before the next read is processed: replies go out without a
    /// trip through the loop, and the bytes a handshake produced are queued
    /// before a later read can make the kernel fail and close the
    /// connection.
    pub(crate) fn data(self: &Rc<Self>, conn: ConnId, data: &[u8]) -> bool {
        if !self.is_live(conn) {
            return false;
        }
        let now = self.clock.now();
        let mut node = self.node.borrow_mut();
        node.handle_data(now, conn, data);
        drain(self, &mut node, now);
        drop(node);
        self.wake.notify_one();
        true
    }
}

/// Polls the kernel once and carries out everything it asks for. Returns
/// true if the kernel has more work queued.
pub(crate) fn drive<K: Kernel>(sh: &Rc<Shared<K>>) -> bool {
    let now = sh.clock.now();
    let mut node = sh.node.borrow_mut();
    let more = node.poll(now);
    drain(sh, &mut node, now);
    more
}

/// Carries out the kernel's pending actions and hands its transmits to the
/// writers, until it has none left.
fn drain<K: Kernel>(sh: &Rc<Shared<K>>, node: &mut K, now: aemp_core::Time) {
    let mut overflowed: Vec<ConnId> = Vec::new();
    let mut closing: Vec<ConnId> = Vec::new();
    loop {
        let mut any = false;
        while let Some(a) = node.poll_action() {
            any = true;
            tracing::trace!("action {a:?}");
            match a {
                Action::Connect { conn, addr } => {
                    let out = sh.register(conn);
                    tokio::task::spawn_local(crate::conn::connect(sh.clone(), conn, addr, out));
                }
                // Closed after this round's transmits are queued.
                Action::Close { conn } => closing.push(conn),
            }
        }
        while let Some(Transmit { conn, data, text }) = node.poll_transmit() {
            any = true;
            tracing::trace!("{conn:?}: transmit {} bytes (text: {text})", data.len());
            let out = sh.conns.borrow().get(&conn).map(|e| e.out.clone());
            match out {
                Some(out) => {
                    if !out.push(data, text, sh.opts.max_queue) {
                        overflowed.push(conn);
                    }
                }
                None => tracing::trace!("transmit for unknown connection {conn:?} dropped"),
            }
        }
        for conn in closing.drain(..) {
            let e = sh.conns.borrow_mut().remove(&conn);
            if let Some(e) = e {
                // The writer flushes what is queued, then shuts down; the
                // reader drains (and discards) input meanwhile.
                e.out.close();
            }
        }
        for conn in overflowed.drain(..) {
            if sh.forget(conn) {
                tracing::warn!(
                    "connection {conn:?}: more than {} bytes waiting to be written, closing",
                    sh.opts.max_queue
                );
                node.handle_closed(now, conn, "write queue overflow");
                any = true;
            }
        }
        if !any {
            break;
        }
    }
}

/// Commands posted to the node thread by handles.
pub(crate) enum Cmd<K> {
    /// Run a closure on the kernel.
    Exec(Box<dyn FnOnce(&mut K) + Send>),
    /// Stop the loop.
    Shutdown,
}

/// Runs the loop until shutdown.
pub(crate) async fn run_loop<K: Kernel>(
    sh: Rc<Shared<K>>,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<Cmd<K>>,
) {
    let mut rx_open = true;
    loop {
        if sh.stop.get() {
            return;
        }
        if rx_open {
            loop {
                match rx.try_recv() {
                    Ok(Cmd::Exec(f)) => sh.exec(f),
                    Ok(Cmd::Shutdown) => return,
                    Err(tokio::sync::mpsc::error::TryRecvError::Empty) => break,
                    Err(tokio::sync::mpsc::error::TryRecvError::Disconnected) => {
                        rx_open = false;
                        break;
                    }
                }
            }
        }
        if drive(&sh) {
            // More queued work: let the I/O tasks run first, then continue.
            tokio::task::yield_now().await;
            continue;
        }
        let deadline = sh.node.borrow_mut().poll_timeout();
        let sleep = deadline.map(|t| tokio::time::Instant::from_std(sh.clock.instant(t)));
        tokio::select! {
            biased;
            cmd = rx.recv(), if rx_open => match cmd {
                Some(Cmd::Exec(f)) => sh.exec(f),
                Some(Cmd::Shutdown) => return,
                None => rx_open = false,
            },
            _ = sh.wake.notified() => {}
            _ = async { tokio::time::sleep_until(sleep.expect("guarded")).await }, if sleep.is_some() => {}
        }
    }
}
