//! The node kernel: ports, `rcv`, `snd`, `kil`, `mon`, `spawn`, `cal`, `after`.
//!
//! One [`Node`] is one AEMP node. It is single-threaded and sans-IO: the
//! driver feeds it time and network events and runs [`Node::poll`]; user
//! code talks to it through the methods here, either from outside (the
//! driver's API) or from inside callbacks, which receive `&mut Node`.
//!
//! # Delivery and ordering
//!
//! Every local effect — delivering a message, killing a port, registering a
//! monitor, running a spawned port's init function — is a job in one FIFO
//! run queue, processed by [`Node::poll`]. That gives the guarantees of spec
//! §8 by construction:
//!
//! * messages from one sender to one port arrive in the order sent;
//! * `kil` and monitor registrations stay ordered with messages (`snd; kil`
//!   delivers the message first; a monitor set after a `snd` fires after
//!   that message was delivered);
//! * no callback ever runs inside `snd`, `kil`, `mon` or `spawn`, so a
//!   callback that sends to its own port cannot recurse.
//!
//! The run queue is bounded ([`Limits::local_queue`]). A local message that
//! would overflow it is dropped and its target port is killed with
//! `queue_overflow => …`, so the loss is never silent: monitors fire.
//!
//! # Port context
//!
//! While a callback runs, [`Node::self_port`] is its port (Perl's `$SELF`).
//! A callback that returns an error kills its port with `die => <error>`.
//! On native targets a panicking callback is caught and treated the same.
//! On wasm32 there is no unwinding: a panic aborts the module, so the browser
//! driver turns JavaScript exceptions into errors before they reach Rust.
//!
//! ```
//! use aemp_core::{msg, Node, Time};
//! use std::{cell::RefCell, rc::Rc};
//!
//! let mut node = Node::new([7; 32]);
//! let got = Rc::new(RefCell::new(Vec::new()));
//! let g = got.clone();
//! let port = node.port();
//! node.rcv_tag(&port, "add", move |_node, m| {
//!     let sum = m[0].as_i64().unwrap_or(0) + m[1].as_i64().unwrap_or(0);
//!     g.borrow_mut().push(sum);
//!     Ok(())
//! }).unwrap();
//! node.snd(&port, msg!["add", 1, 2]);
//! node.poll(Time::ZERO);
//! assert_eq!(*got.borrow(), vec![3]);
//! ```

mod configure;
mod conn;
mod db;
mod error;
mod global;
mod guard;
mod monitor;
mod reason;
mod registry;
mod remote;
mod request;
mod route;
mod seeds;
mod timer;
mod tls;
pub(crate) mod trust;

pub use conn::{Action, ConnId, Transmit, Transport};
pub use db::{DbChange, DbFamily};
pub use error::Error;
pub use guard::Guard;
pub use reason::Reason;
pub use registry::NodeFn;
pub use trust::{is_untrusted_id, UNTRUSTED_PREFIX};

use std::any::Any;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::time::Duration;

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use rustc_hash::{FxHashMap, FxHashSet};

use crate::id::{split_port, PortNames};
use crate::time::Time;
use crate::value::{Msg, Str, Value};
use guard::{GuardAction, GuardQueue};
use monitor::{MonAction, MonLoc, MonTable};
use registry::Registry;
use remote::Peers;
use timer::Timers;

/// A port ID: `nodeid#portname`.
pub type PortId = Str;

/// What a port callback returns: `Err` kills the port with `die => error`.
pub type CbResult = Result<(), Box<dyn std::error::Error>>;

/// A port callback. Shared, so that a running callback may be replaced or
/// removed (even by itself) without a take/restore dance: the call holds its
/// own reference until it returns. Callbacks never nest, so the `RefCell`
/// borrow cannot conflict.
type Callback = Rc<RefCell<dyn FnMut(&mut Node, Msg) -> CbResult>>;

/// The callback of a `cal`.
type CalCallback = Box<dyn FnOnce(&mut Node, Result<Msg, CalError>)>;

/// Why a `cal` produced no reply.
#[derive(Clone, Debug, PartialEq)]
pub enum CalError {
    /// The timeout passed first.
    Timeout,
    /// The target port died (or its node became unreachable) first.
    Died(Reason),
}

impl std::fmt::Display for CalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CalError::Timeout => f.write_str("timeout"),
            CalError::Died(r) => write!(f, "target died: {r}"),
        }
    }
}

impl std::error::Error for CalError {}

/// Bounds on the kernel's queues. See the crate docs for the full list.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Maximum number of jobs in the local run queue (default 1,000,000).
    pub local_queue: usize,
    /// Maximum number of jobs one `poll` call runs before it returns so the
    /// driver can do I/O (default 4,096).
    pub poll_budget: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            local_queue: 1_000_000,
            poll_budget: 4096,
        }
    }
}

/// The default callback of a port.
enum DefaultCb {
    /// `port` without callback: kill with `unhandled_message` (spec §2.6).
    KillUnhandled,
    /// A user callback.
    Custom(Callback),
}

/// A local port: its callbacks.
struct Port {
    default: DefaultCb,
    /// Per-tag callbacks.
    tags: FxHashMap<Str, Callback>,
}

/// One unit of deferred local work. Kept small (56 bytes): every message
/// passes through the queue, rare kinds are boxed.
enum Job {
    /// Deliver a message to a local port (by name; `""` is the node port).
    Deliver { port: Str, msg: Msg },
    /// The same for a message that came from node `.2` over the network.
    DeliverFrom(Box<(Str, Msg, Str)>),
    /// Kill a local port.
    Kill { port: Str, reason: Reason },
    /// Register a monitor on a local port.
    Mon(Box<(Str, u64, MonAction)>),
    /// Run a spawned port's init function (port, function, args, source).
    Spawn(Box<(Str, Str, Msg, Option<Str>)>),
    /// Run a closure (used for `after` callbacks and internal work).
    Call(Box<dyn FnOnce(&mut Node)>),
}

/// What a timer does when it fires.
enum TimerAction {
    Call(Box<dyn FnOnce(&mut Node)>),
    Snd(Str, Msg),
    Net(remote::NetTimer),
}

/// One AEMP node: the kernel. See the [module docs](self).
pub struct Node {
    id: Str,
    names: PortNames,
    ports: FxHashMap<Str, Port>,
    queue: VecDeque<Job>,
    overflowed: FxHashSet<Str>,
    monitors: MonTable,
    mon_index: FxHashMap<u64, MonLoc>,
    cancelled_pending: FxHashSet<u64>,
    timers: Timers<TimerAction>,
    guards: GuardQueue,
    registry: Registry,
    peers: Peers,
    rng: ChaCha20Rng,
    now: Time,
    next_id: u64,
    current: Option<Str>,
    src: Option<Str>,
    secure: bool,
    /// Print every message sent and received (`PERL_ANYEVENT_MP_TRACE`).
    trace: bool,
    /// This node is an untrusted (web) node.
    untrusted_self: bool,
    limits: Limits,
    net: Option<conn::NetConfig>,
    conns: FxHashMap<ConnId, conn::Conn>,
    next_conn: u64,
    actions: VecDeque<Action>,
    dirty: Vec<ConnId>,
    final_out: Vec<Transmit>,
    tick_armed: bool,
    seeds: seeds::Seeds,
    listeners: Vec<String>,
    db: db::Db,
    global: Option<global::Global>,
    routes: route::Routes,
}

/// Renders a caught panic payload.
pub(crate) fn panic_text(p: &Box<dyn Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic".to_string()
    }
}

impl Node {
    /// A new, unconfigured node (node ID `""`: local messaging works,
    /// networking does not). `seed` seeds the node's random generator
    /// (port-name prefixes, nonces); drivers pass fresh OS randomness,
    /// simulations a fixed seed.
    pub fn new(seed: [u8; 32]) -> Node {
        let mut rng = ChaCha20Rng::from_seed(seed);
        let names = PortNames::random(&mut rng);
        Node {
            id: Str::default(),
            names,
            ports: FxHashMap::default(),
            queue: VecDeque::new(),
            overflowed: FxHashSet::default(),
            monitors: MonTable::default(),
            mon_index: FxHashMap::default(),
            cancelled_pending: FxHashSet::default(),
            timers: Timers::default(),
            guards: Rc::new(RefCell::new(Vec::new())),
            registry: Registry::default(),
            peers: Peers::default(),
            rng,
            now: Time::ZERO,
            next_id: 1,
            current: None,
            src: None,
            secure: false,
            trace: false,
            untrusted_self: false,
            limits: Limits::default(),
            net: None,
            conns: FxHashMap::default(),
            next_conn: 0,
            actions: VecDeque::new(),
            dirty: Vec::new(),
            final_out: Vec::new(),
            tick_armed: false,
            seeds: seeds::Seeds::default(),
            listeners: Vec::new(),
            db: db::Db::default(),
            global: None,
            routes: route::Routes::default(),
        }
    }

    // ----------------------------------------------------------------- identity

    /// This node's ID (Perl's `$NODE`); empty before configuration.
    pub fn node_id(&self) -> &str {
        &self.id
    }

    /// Sets the node ID. `randomised` says the ID already contains a random
    /// part, so local port names need no random prefix (spec §1.2).
    /// Called by configuration; ports created before keep their old IDs.
    pub fn set_node_id(&mut self, id: &str, randomised: bool) -> Result<(), Error> {
        crate::id::validate_node_id(id).map_err(Error::BadId)?;
        self.id = crate::value::str(id);
        if randomised {
            self.names.set_uniq("");
        }
        Ok(())
    }

    /// The spawned-port prefix, also used to randomise node-ID templates.
    pub fn runiq(&self) -> &str {
        self.names.runiq()
    }

    /// True if `port` belongs to this node (`port_is_local`).
    pub fn port_is_local(&self, port: &str) -> bool {
        split_port(port).0 == self.id.as_str()
    }

    /// The current port while a callback runs (Perl's `$SELF`).
    pub fn self_port(&self) -> Option<PortId> {
        self.current.as_ref().map(|n| self.full_id(n))
    }

    /// The node that sent the message being processed (Perl's `$SRCNODE`);
    /// this node's ID for local messages.
    pub fn src_node(&self) -> &str {
        self.src.as_deref().unwrap_or(&self.id)
    }

    /// Secure mode: refuse remote execution (spec §3.4).
    pub fn set_secure(&mut self, secure: bool) {
        self.secure = secure;
    }

    /// Message tracing, as Perl's `PERL_ANYEVENT_MP_TRACE=1`: every message
    /// handed to `snd` is logged as `SND <node> <- [port, …]`, every
    /// delivery as `RCV <source node> -> [port, …]` (JSON, at `info` level,
    /// target `aemp::trace`). Drivers switch it on from the environment.
    pub fn set_trace(&mut self, on: bool) {
        self.trace = on;
    }

    #[cold]
    #[inline(never)]
    fn trace_msg(&self, what: &str, node: &str, arrow: &str, port: &str, msg: &[Value]) {
        let mut packet = Vec::with_capacity(msg.len() + 1);
        packet.push(Value::from(port));
        packet.extend_from_slice(msg);
        let json = String::from_utf8_lossy(&crate::value::json::to_vec(&Value::Array(packet)))
            .into_owned();
        tracing::info!(target: "aemp::trace", "{what} {node} {arrow} {json}");
    }

    /// True in secure mode.
    pub fn is_secure(&self) -> bool {
        self.secure
    }

    /// Replaces the queue bounds.
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// The kernel's current time (the latest `now` it was given).
    pub fn now(&self) -> Time {
        self.now
    }

    /// Advances the kernel's clock without running anything (for drivers
    /// that call API methods outside `poll`).
    pub fn set_now(&mut self, now: Time) {
        self.now = self.now.max(now);
    }

    /// Fills `buf` with random bytes from the node's generator.
    pub fn random_bytes(&mut self, buf: &mut [u8]) {
        self.rng.fill_bytes(buf);
    }

    fn full_id(&self, name: &str) -> PortId {
        let mut s = String::with_capacity(self.id.len() + 1 + name.len());
        s.push_str(&self.id);
        s.push('#');
        s.push_str(name);
        Str::from(s)
    }

    fn fresh_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    // -------------------------------------------------------------------- ports

    fn new_port(&mut self, default: DefaultCb) -> PortId {
        let name = self.names.next_local();
        self.ports.insert(
            name.clone(),
            Port {
                default,
                tags: FxHashMap::default(),
            },
        );
        self.full_id(&name)
    }

    /// Creates a port whose default callback kills it with
    /// `unhandled_message` (spec §2.6). Add callbacks with [`Node::rcv`] and
    /// [`Node::rcv_tag`].
    pub fn port(&mut self) -> PortId {
        self.new_port(DefaultCb::KillUnhandled)
    }

    /// Creates a port with a default callback (`port { … }`).
    pub fn port_with(&mut self, cb: impl FnMut(&mut Node, Msg) -> CbResult + 'static) -> PortId {
        self.new_port(DefaultCb::Custom(Rc::new(RefCell::new(cb))))
    }

    /// Checks that `port` is local and returns its name. A local port that
    /// does not exist yet is created (as Perl's `rcv` does; this is how a
    /// spawned port's init function brings its port to life).
    fn local_port_mut(&mut self, port: &str) -> Result<&mut Port, Error> {
        let (node, name) = split_port(port);
        if node != self.id.as_str() {
            return Err(Error::NotLocal(port.to_string()));
        }
        if name.is_empty() {
            return Err(Error::NodePort(port.to_string()));
        }
        Ok(self
            .ports
            .entry(crate::value::str(name))
            .or_insert_with(|| Port {
                default: DefaultCb::KillUnhandled,
                tags: FxHashMap::default(),
            }))
    }

    /// Sets the default callback of a local port: it receives every message
    /// whose first element matches no registered tag, whole.
    pub fn rcv(
        &mut self,
        port: &str,
        cb: impl FnMut(&mut Node, Msg) -> CbResult + 'static,
    ) -> Result<(), Error> {
        self.local_port_mut(port)?.default = DefaultCb::Custom(Rc::new(RefCell::new(cb)));
        Ok(())
    }

    /// Registers (or replaces) the callback for messages whose first element
    /// is the string `tag` (text or UTF-8 bytes). The callback gets the
    /// message without the tag.
    pub fn rcv_tag(
        &mut self,
        port: &str,
        tag: &str,
        cb: impl FnMut(&mut Node, Msg) -> CbResult + 'static,
    ) -> Result<(), Error> {
        self.local_port_mut(port)?
            .tags
            .insert(crate::value::str(tag), Rc::new(RefCell::new(cb)));
        Ok(())
    }

    /// Removes the callback for `tag` (Perl's `rcv $port, tag => undef`).
    pub fn unrcv_tag(&mut self, port: &str, tag: &str) -> Result<(), Error> {
        self.local_port_mut(port)?.tags.remove(tag);
        Ok(())
    }

    /// True if the local port exists (has not been killed).
    pub fn port_exists(&self, port: &str) -> bool {
        let (node, name) = split_port(port);
        node == self.id.as_str() && (name.is_empty() || self.ports.contains_key(name))
    }

    /// Number of live local ports (without the node port).
    pub fn port_count(&self) -> usize {
        self.ports.len()
    }

    // ---------------------------------------------------------------------- snd

    /// Sends `msg` to `port`, local or remote. Never blocks and never runs a
    /// callback: local messages are queued for [`Node::poll`], remote ones
    /// are queued on the connection (which is set up on demand). A message
    /// to a port that does not exist is dropped, as in Perl.
    pub fn snd(&mut self, port: &str, msg: Msg) {
        let (node, name) = split_port(port);
        if self.trace {
            self.trace_msg("SND", node, "<-", name, &msg);
        }
        if node == self.id.as_str() {
            self.enqueue_local(crate::value::str(name), msg, None);
        } else if node.is_empty() {
            tracing::warn!(
                "snd to {port}: empty node part (port created before configure?), message dropped"
            );
        } else {
            self.send_remote(node, name, msg);
        }
    }

    /// Queues a local delivery, enforcing the run-queue bound.
    #[inline]
    fn enqueue_local(&mut self, port: Str, msg: Msg, src: Option<Str>) {
        if self.queue.len() >= self.limits.local_queue && !port.is_empty() {
            self.local_overflow(port);
            return;
        }
        match src {
            None => self.queue.push_back(Job::Deliver { port, msg }),
            Some(src) => self
                .queue
                .push_back(Job::DeliverFrom(Box::new((port, msg, src)))),
        }
    }

    /// The run queue is full: drop the message and kill its target (once).
    #[cold]
    #[inline(never)]
    fn local_overflow(&mut self, port: Str) {
        if self.overflowed.insert(port.clone()) {
            let n = self.queue.len();
            tracing::error!(
                "local run queue full ({n} jobs): message to {port} dropped, killing the port"
            );
            let reason = Reason(vec![
                Value::from("queue_overflow"),
                Value::from(format!("local run queue full ({n} jobs), message lost")),
            ]);
            self.queue.push_back(Job::Kill { port, reason });
        }
    }

    /// Sends `["", "snd", port, msg…]` to `node`'s node port: that node
    /// relays the message (`snd_on`).
    pub fn snd_on(&mut self, node: &str, port: &str, msg: Msg) {
        let mut m = Vec::with_capacity(msg.len() + 2);
        m.push(Value::from("snd"));
        m.push(Value::from(port));
        m.extend(msg);
        self.snd(crate::id::node_of(node), m);
    }

    /// Calls a named function on `node` (`snd_to_func`): sends
    /// `["", func, args…]` to its node port.
    pub fn snd_to_func(&mut self, node: &str, func: &str, args: Msg) -> Result<(), Error> {
        if !func.contains("::") {
            return Err(Error::BadFunctionName(func.to_string()));
        }
        let mut m = Vec::with_capacity(args.len() + 1);
        m.push(Value::from(func));
        m.extend(args);
        self.snd(crate::id::node_of(node), m);
        Ok(())
    }

    /// Asks `node` to evaluate Perl code (`eval_on`): sends
    /// `["", "eval", code, reply…]`. Only Perl nodes evaluate it; with a
    /// non-empty `reply` (a port, then extra values) the node answers
    /// `[reply…, "$@", results…]` — the error string first, empty on success.
    /// aemp-rs nodes answer with an error ("eval is not supported …").
    pub fn eval_on(&mut self, node: &str, code: &str, reply: Msg) {
        let mut m = Vec::with_capacity(reply.len() + 2);
        m.push(Value::from("eval"));
        m.push(Value::from(code));
        m.extend(reply);
        self.snd(crate::id::node_of(node), m);
    }

    // ---------------------------------------------------------------------- kil

    /// Kills `port` with `reason` (empty = normal kill). Always deferred: no
    /// monitor runs inside `kil`. Killing a port that does not exist is a
    /// no-op; killing a node port is refused. Remote ports get `kil1`.
    pub fn kil(&mut self, port: &str, reason: Msg) -> Result<(), Error> {
        let (node, name) = split_port(port);
        if name.is_empty() {
            return Err(Error::NodePort(port.to_string()));
        }
        if node == self.id.as_str() {
            self.queue.push_back(Job::Kill {
                port: crate::value::str(name),
                reason: Reason(reason),
            });
        } else if node.is_empty() {
            return Err(Error::BadId(format!("{port}: empty node part")));
        } else {
            let mut m = Vec::with_capacity(reason.len() + 2);
            m.push(Value::from("kil1"));
            m.push(Value::from(name));
            m.extend(reason);
            self.send_remote(node, "", m);
        }
        Ok(())
    }

    /// Kills the current port (`kil $SELF, …`).
    pub fn kil_self(&mut self, reason: Msg) -> Result<(), Error> {
        let me = self.self_port().ok_or(Error::NoSelf("kil_self"))?;
        self.kil(&me, reason)
    }

    fn kill_now(&mut self, name: &Str, reason: Reason) {
        if self.ports.remove(name).is_none() {
            return;
        }
        let mons = self.monitors.take(name);
        if mons.is_empty() && !reason.is_normal() {
            tracing::error!(
                "unmonitored local port {} died with reason: {}",
                self.full_id(name),
                reason
            );
        }
        for (id, action) in mons {
            self.mon_index.remove(&id);
            action.fire(self, reason.clone());
        }
    }

    // ---------------------------------------------------------------------- mon

    fn mon_action(&mut self, port: &str, action: MonAction) -> Guard {
        let id = self.fresh_id();
        let (node, name) = split_port(port);
        if node == self.id.as_str() {
            self.mon_index.insert(id, MonLoc::Pending);
            self.queue
                .push_back(Job::Mon(Box::new((crate::value::str(name), id, action))));
        } else if node.is_empty() {
            // Not a valid remote node: fire at once, as a lost connection would.
            let r = Reason::transport_error(node, "invalid node ID");
            self.queue
                .push_back(Job::Call(Box::new(move |n| action.fire(n, r))));
        } else {
            self.mon_remote(node, name, id, action);
        }
        Guard::new(&self.guards, GuardAction::Unmon(id))
    }

    /// Monitors `port` with a callback (form 3): `cb` gets the kill reason
    /// (empty for a normal kill) once, when the port dies or its node
    /// becomes unreachable. A local port that does not exist fires at once
    /// with `no_such_port`. Monitoring a node ID (`nodeid` or `nodeid#`)
    /// fires only when the connection to that node fails.
    pub fn mon(&mut self, port: &str, cb: impl FnOnce(&mut Node, Reason) + 'static) -> Guard {
        self.mon_action(port, MonAction::Callback(Box::new(cb)))
    }

    /// Links `port` to `rcvport` (form 1): when `port` dies with an error
    /// reason, `rcvport` is killed with the same reason; normal kills do nothing.
    pub fn mon_link(&mut self, port: &str, rcvport: &str) -> Guard {
        self.mon_action(port, MonAction::Link(crate::value::str(rcvport)))
    }

    /// Links `port` to the current port (form 2, `mon $port`).
    pub fn mon_self(&mut self, port: &str) -> Result<Guard, Error> {
        let me = self.self_port().ok_or(Error::NoSelf("mon_self"))?;
        Ok(self.mon_link(port, &me))
    }

    /// When `port` dies, sends `msg` with the reason appended to `rcvport`
    /// (form 4).
    pub fn mon_snd(&mut self, port: &str, rcvport: &str, msg: Msg) -> Guard {
        self.mon_action(port, MonAction::Send(crate::value::str(rcvport), msg))
    }

    /// Unregisters a monitor by id (what dropping its guard does).
    pub fn unmon(&mut self, id: u64) {
        match self.mon_index.remove(&id) {
            Some(MonLoc::Pending) => {
                self.cancelled_pending.insert(id);
            }
            Some(MonLoc::Local(port)) => {
                self.monitors.remove(&port, id);
            }
            Some(MonLoc::Remote(node, port)) => self.unmon_remote(&node, &port, id),
            None => {}
        }
    }

    fn register_local_mon(&mut self, port: Str, id: u64, action: MonAction) {
        if self.cancelled_pending.remove(&id) {
            return;
        }
        if port.is_empty() || self.ports.contains_key(&port) {
            self.mon_index.insert(id, MonLoc::Local(port.clone()));
            self.monitors.add(port, id, action);
        } else {
            self.mon_index.remove(&id);
            let full = self.full_id(&port);
            action.fire(self, Reason::no_such_port(&full));
        }
    }

    // -------------------------------------------------------------------- spawn

    /// Registers a named function that remote nodes may call by name: as a
    /// spawned port's init function (`spawn`) or as a node request
    /// (`snd_to_func`). Names must contain `::`, like Perl's
    /// `Package::function`.
    pub fn register(
        &mut self,
        name: &str,
        f: impl Fn(&mut Node, Msg) -> CbResult + 'static,
    ) -> Result<(), Error> {
        if !name.contains("::") {
            return Err(Error::BadFunctionName(name.to_string()));
        }
        self.registry.insert(name, Rc::new(f));
        Ok(())
    }

    /// True if a function of that name is registered.
    pub fn is_registered(&self, name: &str) -> bool {
        self.registry.get(name).is_some()
    }

    /// Spawns a port on `node` (a node ID or any port ID of it) whose init
    /// function is the registered `func`, called with `args` in the new
    /// port's context; it should `rcv` on [`Node::self_port`]. Returns the
    /// new port ID at once; the init function runs later, even locally.
    pub fn spawn(&mut self, node: &str, func: &str, args: Msg) -> Result<PortId, Error> {
        if !func.contains("::") {
            return Err(Error::BadFunctionName(func.to_string()));
        }
        let node = crate::id::node_of(node);
        let name = self.names.next_spawned();
        if node == self.id.as_str() {
            self.queue.push_back(Job::Spawn(Box::new((
                name.clone(),
                crate::value::str(func),
                args,
                None,
            ))));
        } else if node.is_empty() {
            return Err(Error::BadId("spawn: empty node ID".into()));
        } else {
            let mut m = Vec::with_capacity(args.len() + 3);
            m.push(Value::from("AnyEvent::MP::_spawn"));
            m.push(Value::from(&name));
            m.push(Value::from(func));
            m.extend(args);
            self.send_remote(node, "", m);
        }
        let mut id = String::with_capacity(node.len() + 1 + name.len());
        id.push_str(node);
        id.push('#');
        id.push_str(&name);
        Ok(Str::from(id))
    }

    fn run_spawn(&mut self, port: Str, func: Str, args: Msg) {
        let Some(f) = self.registry.get(&func) else {
            tracing::warn!(
                "spawn of {}: unable to resolve function '{func}'",
                self.full_id(&port)
            );
            return;
        };
        let prev = self.current.replace(port.clone());
        let r = catch_unwind(AssertUnwindSafe(|| f(self, args)));
        self.current = prev;
        self.after_callback(&port, r);
    }

    /// Runs `f` in the context of `port` (Perl's `peval`): errors and panics
    /// kill the port with `die => …`.
    pub fn peval(
        &mut self,
        port: &str,
        f: impl FnOnce(&mut Node) -> CbResult,
    ) -> Result<(), Error> {
        let (node, name) = split_port(port);
        if node != self.id.as_str() {
            return Err(Error::NotLocal(port.to_string()));
        }
        let name = crate::value::str(name);
        let prev = self.current.replace(name.clone());
        let r = catch_unwind(AssertUnwindSafe(|| f(self)));
        self.current = prev;
        self.after_callback(&name, r);
        Ok(())
    }

    /// Turns a callback's failure into a `die` kill of its port.
    fn after_callback(&mut self, port: &Str, r: std::thread::Result<CbResult>) {
        let text = match r {
            Ok(Ok(())) => return,
            Ok(Err(e)) => e.to_string(),
            Err(p) => format!("panic: {}", panic_text(&p)),
        };
        self.queue.push_back(Job::Kill {
            port: port.clone(),
            reason: Reason::die(text),
        });
    }

    // ---------------------------------------------------------------------- cal

    /// Remote procedure call (spec §2.14): sends `msg` with a fresh reply
    /// port appended to `port`, and calls `cb` **exactly once**: with the
    /// reply, or with [`CalError::Timeout`] after `timeout`, or with
    /// [`CalError::Died`] when the target dies or becomes unreachable first.
    /// Returns the reply port.
    ///
    /// ```
    /// use aemp_core::{msg, Node, Time};
    /// use std::{cell::RefCell, rc::Rc};
    /// let mut node = Node::new([3; 32]);
    /// let echo = node.port_with(|n, mut m| {
    ///     let reply = m.pop().unwrap();
    ///     n.snd(reply.as_str().unwrap(), m);
    ///     Ok(())
    /// });
    /// let out = Rc::new(RefCell::new(None));
    /// let o = out.clone();
    /// node.cal(&echo, msg!["hi"], None, move |_, r| *o.borrow_mut() = Some(r));
    /// while node.poll(Time::ZERO) {}
    /// assert_eq!(*out.borrow(), Some(Ok(msg!["hi"])));
    /// ```
    pub fn cal(
        &mut self,
        port: &str,
        mut msg: Msg,
        timeout: Option<Duration>,
        cb: impl FnOnce(&mut Node, Result<Msg, CalError>) + 'static,
    ) -> PortId {
        struct CalState {
            cb: Option<CalCallback>,
            timer: Option<u64>,
            mon: Option<u64>,
            reply: PortId,
        }
        impl CalState {
            /// Takes the callback and tears the call down; `None` if it already finished.
            fn finish(st: &Rc<RefCell<CalState>>, node: &mut Node) -> Option<CalCallback> {
                let (cb, timer, mon, reply) = {
                    let mut s = st.borrow_mut();
                    let cb = s.cb.take()?;
                    (cb, s.timer.take(), s.mon.take(), s.reply.clone())
                };
                if let Some(t) = timer {
                    node.timers.cancel(t);
                }
                if let Some(m) = mon {
                    node.unmon(m);
                }
                let _ = node.kil(&reply, Vec::new());
                Some(cb)
            }
        }
        let st = Rc::new(RefCell::new(CalState {
            cb: Some(Box::new(cb)),
            timer: None,
            mon: None,
            reply: Str::default(),
        }));
        let s1 = st.clone();
        let reply = self.port_with(move |node, m| {
            if let Some(cb) = CalState::finish(&s1, node) {
                cb(node, Ok(m));
            }
            Ok(())
        });
        st.borrow_mut().reply = reply.clone();
        if let Some(t) = timeout {
            let s2 = st.clone();
            let id = self.fresh_id();
            let at = self.now + t;
            self.timers.insert(
                id,
                at,
                TimerAction::Call(Box::new(move |node| {
                    if let Some(cb) = CalState::finish(&s2, node) {
                        cb(node, Err(CalError::Timeout));
                    }
                })),
            );
            st.borrow_mut().timer = Some(id);
        }
        let s3 = st.clone();
        let g = self.mon(port, move |node, reason| {
            s3.borrow_mut().mon = None;
            if let Some(cb) = CalState::finish(&s3, node) {
                cb(node, Err(CalError::Died(reason)));
            }
        });
        st.borrow_mut().mon = g.monitor_id();
        g.forget();
        msg.push(Value::from(&reply));
        self.snd(port, msg);
        reply
    }

    // -------------------------------------------------------------------- after

    /// Calls `cb` once after `delay`. Dropping the guard cancels the timer.
    pub fn after(&mut self, delay: Duration, cb: impl FnOnce(&mut Node) + 'static) -> Guard {
        self.arm(delay, TimerAction::Call(Box::new(cb)))
    }

    /// Sends `msg` to `port` after `delay`. Dropping the guard cancels it.
    pub fn after_snd(&mut self, delay: Duration, port: &str, msg: Msg) -> Guard {
        self.arm(delay, TimerAction::Snd(crate::value::str(port), msg))
    }

    fn arm(&mut self, delay: Duration, action: TimerAction) -> Guard {
        let id = self.fresh_id();
        self.timers.insert(id, self.now + delay, action);
        Guard::new(&self.guards, GuardAction::CancelTimer(id))
    }

    // ---------------------------------------------------------------- the loop

    /// Runs due timers and queued jobs (at most [`Limits::poll_budget`]
    /// jobs). Returns true if work remains, i.e. the driver should call
    /// `poll` again soon (after doing its I/O).
    pub fn poll(&mut self, now: Time) -> bool {
        self.now = self.now.max(now);
        self.apply_guards();
        while let Some((_, action)) = self.timers.pop_due(self.now) {
            self.fire_timer(action);
        }
        for _ in 0..self.limits.poll_budget {
            if !self.guards.borrow().is_empty() {
                self.apply_guards();
            }
            let Some(job) = self.queue.pop_front() else {
                break;
            };
            self.run_job(job);
        }
        if self.queue.is_empty() {
            self.overflowed.clear();
            false
        } else {
            true
        }
    }

    /// When the driver must call [`Node::poll`] next: now if jobs are
    /// queued, else at the earliest timer, else never (wait for I/O).
    pub fn poll_timeout(&mut self) -> Option<Time> {
        if !self.queue.is_empty() || !self.guards.borrow().is_empty() {
            return Some(self.now);
        }
        self.timers.next_deadline()
    }

    /// Number of queued jobs (for diagnostics and tests).
    pub fn queued_jobs(&self) -> usize {
        self.queue.len()
    }

    fn apply_guards(&mut self) {
        let actions = std::mem::take(&mut *self.guards.borrow_mut());
        for a in actions {
            match a {
                GuardAction::Unmon(id) => self.unmon(id),
                GuardAction::CancelTimer(id) => {
                    self.timers.cancel(id);
                }
                GuardAction::MonNodes(id) => self.unmon_nodes(id),
                GuardAction::DbDel(family, key) => self.db_guard_del(&family, &key),
                GuardAction::DbUnmon(id) => self.db_guard_unmon(id),
            }
        }
    }

    fn fire_timer(&mut self, action: TimerAction) {
        match action {
            TimerAction::Call(f) => {
                if let Err(p) = catch_unwind(AssertUnwindSafe(|| f(self))) {
                    tracing::error!("timer callback panicked: {}", panic_text(&p));
                }
            }
            TimerAction::Snd(port, msg) => self.snd(&port, msg),
            TimerAction::Net(t) => self.net_timer(t),
        }
    }

    fn run_job(&mut self, job: Job) {
        match job {
            Job::Deliver { port, msg } => {
                if self.trace {
                    self.trace_msg("RCV", &self.id, "->", &port, &msg);
                }
                if port.is_empty() {
                    self.node_request(msg);
                } else {
                    self.deliver(port, msg);
                }
            }
            Job::DeliverFrom(b) => {
                let (port, msg, src) = *b;
                if self.trace {
                    self.trace_msg("RCV", &src, "->", &port, &msg);
                }
                self.src = Some(src);
                if port.is_empty() {
                    self.node_request(msg);
                } else {
                    self.deliver(port, msg);
                }
                self.src = None;
            }
            Job::Kill { port, reason } => self.kill_now(&port, reason),
            Job::Mon(b) => {
                let (port, id, action) = *b;
                self.register_local_mon(port, id, action);
            }
            Job::Spawn(b) => {
                let (port, func, args, src) = *b;
                self.src = src;
                self.run_spawn(port, func, args);
                self.src = None;
            }
            Job::Call(f) => {
                if let Err(p) = catch_unwind(AssertUnwindSafe(|| f(self))) {
                    tracing::error!("deferred callback panicked: {}", panic_text(&p));
                }
            }
        }
    }

    /// Dispatches one message to a local port (spec §2.7).
    fn deliver(&mut self, name: Str, mut msg: Msg) {
        let Some(port) = self.ports.get(&name) else {
            return; // dead port: dropped, as in Perl
        };
        if !port.tags.is_empty() {
            if let Some(cb) = msg
                .first()
                .and_then(Value::as_str)
                .and_then(|t| port.tags.get(t))
            {
                let cb = cb.clone();
                msg.remove(0);
                self.invoke(name, cb, msg);
                return;
            }
        }
        match &port.default {
            DefaultCb::KillUnhandled => {
                let reason = Reason::unhandled_message(msg.first());
                self.queue.push_back(Job::Kill { port: name, reason });
            }
            DefaultCb::Custom(cb) => {
                let cb = cb.clone();
                self.invoke(name, cb, msg);
            }
        }
    }

    /// Runs a port callback in port context.
    fn invoke(&mut self, name: Str, cb: Callback, msg: Msg) {
        let prev = self.current.replace(name);
        let r = catch_unwind(AssertUnwindSafe(|| (cb.borrow_mut())(self, msg)));
        let name = std::mem::replace(&mut self.current, prev).expect("set above");
        if !matches!(r, Ok(Ok(()))) {
            self.after_callback(&name, r);
        }
    }

    /// Sends a reply to a `@reply` list as node requests get it: the first
    /// element is the port, the rest is prepended to `extra`.
    fn reply_to(&mut self, reply: &[Value], extra: Msg) {
        let Some(port) = reply.first().and_then(Value::as_str) else {
            return;
        };
        let port = port.to_string();
        let mut m = reply[1..].to_vec();
        m.extend(extra);
        self.snd(&port, m);
    }
}

#[cfg(test)]
mod global_tests;
#[cfg(test)]
mod net_tests;
#[cfg(test)]
mod tests;
