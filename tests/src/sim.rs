//! A deterministic simulation of a network of AEMP nodes in one process.
//!
//! [`Sim`] is a driver for [`aemp_core::Node`] (see `docs/driver-api.md`)
//! that replaces sockets and the clock with a model:
//!
//! * **Virtual time.** Every event has a [`Time`]; the clock jumps from one
//!   event to the next. Nothing reads the wall clock, nothing sleeps, and
//!   there are no threads.
//! * **Determinism.** Events are ordered by `(time, sequence number)` and
//!   all randomness (latency jitter, chunk sizes, node seeds) comes from one
//!   ChaCha generator seeded by the test, so a seed replays a run exactly.
//! * **Addresses.** Node `i` "listens" on the fake address `10.0.0.<i+1>:4040`
//!   (never a real socket). `Action::Connect` to an address is resolved to
//!   the node listening there; an unknown address, a dead node or a
//!   partition answers `handle_closed(conn, "connection refused")` after one
//!   latency. A connect to a *black-holed* node gets no answer at all until
//!   the simulated OS gives up ([`SimConfig::connect_timeout`]).
//! * **Links.** An established connection is a pair of [`ConnId`]s, one per
//!   node. Bytes from `poll_transmit` reach the other side's `handle_data`
//!   after the link latency (base + jitter + extra delay), in order (TCP),
//!   possibly split into several reads to exercise incremental decoding.
//!   `Action::Close` ends the connection after the bytes already written:
//!   the other side then sees `handle_closed(.., "eof")`.
//! * **Faults.** [`Sim::cut_link`], [`Sim::partition`] / [`Sim::heal`],
//!   [`Sim::delay`], [`Sim::kill`] (with [`Kill::Reset`]: peers see
//!   `"connection reset"`; with [`Kill::BlackHole`]: nothing is reported and
//!   bytes vanish, so only heartbeats can notice) and [`Sim::restart`]
//!   (a fresh `Node` under the same address and configuration).
//!
//! Each node is driven exactly like a real driver does it: after every
//! `handle_*` call and every `poll`, `poll_action` and `poll_transmit` are
//! drained, and `poll_timeout` is honoured by scheduling a wake-up. User
//! code reaches a node through [`Sim::node`], which also schedules a poll
//! of that node at the current time so that calls like `snd` take effect.
//!
//! ```
//! use aemp_tests::sim::{Kill, Sim, SimConfig};
//! use std::time::Duration;
//! let mut sim = Sim::new(42, SimConfig::default());
//! let a = sim.add_node(serde_json::json!({"nodeid": "a", "secret": "s"}));
//! let b = sim.add_node(serde_json::json!({"nodeid": "b", "secret": "s", "seeds": [sim.addr(a)]}));
//! sim.run_for(Duration::from_millis(100));
//! assert!(sim.is_up(a, "b") && sim.is_up(b, "a"));
//! let port = sim.node(a).port_with(|_, _| Ok(()));
//! let fired = std::rc::Rc::new(std::cell::Cell::new(false));
//! let f = fired.clone();
//! sim.node(b).mon(&port, move |_, _reason| f.set(true)).forget();
//! sim.run_for(Duration::from_millis(100));
//! sim.kill(a, Kill::Reset);
//! sim.run_for(Duration::from_millis(100));
//! assert!(fired.get());
//! ```

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::fmt;
use std::time::Duration;

use aemp_core::config::{effective_config, JsonMap};
use aemp_core::kernel::{Action, ConnId, Transport};
use aemp_core::{Node, Time};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

/// Index of a node in a [`Sim`] (the order of [`Sim::add_node`] calls).
pub type NodeIdx = usize;

/// Tunable parameters of the network model.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Base one-way latency of every link (default 1 ms).
    pub latency: Duration,
    /// Random extra latency, uniform in `0..=jitter`, per write (default 0.5 ms).
    /// Ordering within a connection is kept regardless (TCP).
    pub jitter: Duration,
    /// Probability that one write is delivered as several reads (default 0.3).
    pub split_probability: f64,
    /// At most this many reads per split write (default 4).
    pub max_chunks: usize,
    /// When a connect gets no answer (black-holed target), report
    /// `"connection timed out"` after this long; `None` = never
    /// (default 20 s, a short OS SYN timeout).
    pub connect_timeout: Option<Duration>,
    /// Print every event on stderr (for replaying a failing seed).
    pub trace: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            latency: Duration::from_millis(1),
            jitter: Duration::from_micros(500),
            split_probability: 0.3,
            max_chunks: 4,
            connect_timeout: Some(Duration::from_secs(20)),
            trace: std::env::var_os("AEMP_SIM_TRACE").is_some(),
        }
    }
}

/// How [`Sim::kill`] kills a node.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Kill {
    /// The process dies and the OS resets its connections: every peer gets
    /// `handle_closed(.., "connection reset")` after one latency; connects
    /// to its address are refused.
    Reset,
    /// The host vanishes: bytes sent to it are lost, connects to it get no
    /// answer, and nobody is told anything. Only heartbeats can detect it.
    BlackHole,
}

/// Counters of what happened in a run (to prove tests are not vacuous).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SimStats {
    /// Events processed.
    pub events: u64,
    /// Connections established.
    pub connects: u64,
    /// Connects refused (unknown address, dead node, partition).
    pub refused: u64,
    /// Connects that timed out (black-holed target).
    pub connect_timeouts: u64,
    /// Connections closed by a node (`Action::Close`).
    pub closes: u64,
    /// Connections cut by a fault (cut_link, partition, reset kill).
    pub cuts: u64,
    /// `handle_data` calls.
    pub reads: u64,
    /// Bytes delivered.
    pub bytes: u64,
    /// Bytes lost (sent into a cut link or a black hole).
    pub bytes_lost: u64,
    /// Node kills.
    pub kills: u64,
    /// Node restarts.
    pub restarts: u64,
}

/// One simulated host.
struct Host {
    /// The running node; `None` while dead.
    node: Option<Node>,
    /// Its fake listener address.
    addr: String,
    /// The `configure` arguments (with `binds` set to `addr`).
    args: JsonMap,
    /// The host name passed to `configure`.
    hostname: String,
    /// Bumped at every restart: events for an older incarnation are stale.
    incarnation: u32,
    /// No listener: nobody can connect to it (see [`Sim::add_bindless_node`]).
    bindless: bool,
    /// Dead and silent (connects get no answer).
    black_hole: bool,
    /// The pending wake-up: (time, event sequence number).
    wake: Option<(Time, u64)>,
}

/// One end of a link.
#[derive(Clone, Debug)]
struct End {
    node: NodeIdx,
    incarnation: u32,
    conn: ConnId,
    /// The node still knows this connection (it has not closed it and has
    /// not been told it is closed).
    live: bool,
}

/// An established connection between two nodes.
struct Link {
    ends: [End; 2],
    /// False once cut or closed: no more data flows.
    open: bool,
    /// Per receiving side: the latest scheduled delivery time, so that
    /// bytes of one direction arrive in order despite jitter.
    last_at: [Time; 2],
    /// Once `Action::Close` came from one side, data from it is done.
    closing: [bool; 2],
}

/// A connect in flight.
struct Pending {
    node: NodeIdx,
    incarnation: u32,
    conn: ConnId,
    addr: String,
    /// Cancelled by `Action::Close` before it completed.
    cancelled: bool,
}

enum Ev {
    /// Call `poll` on a node (its `poll_timeout` came, or user code touched it).
    Wake { node: NodeIdx },
    /// A connect reaches its target address.
    ConnectArrive { pending: u64 },
    /// A connect that got no answer times out.
    ConnectTimeout { pending: u64 },
    /// Bytes arrive at side `to` of a link.
    Data {
        link: u64,
        to: usize,
        bytes: Vec<u8>,
    },
    /// The connection at side `to` is reported closed with `error`.
    Closed {
        link: u64,
        to: usize,
        error: &'static str,
    },
}

/// The simulator. See the [module docs](self).
pub struct Sim {
    cfg: SimConfig,
    now: Time,
    rng: ChaCha20Rng,
    seq: u64,
    heap: BinaryHeap<Reverse<(Time, u64)>>,
    events: HashMap<u64, Ev>,
    hosts: Vec<Host>,
    by_addr: HashMap<String, NodeIdx>,
    links: BTreeMap<u64, Link>,
    /// (node, incarnation, conn) → (link, side).
    conn_index: HashMap<(NodeIdx, u32, ConnId), (u64, usize)>,
    pending: BTreeMap<u64, Pending>,
    next_id: u64,
    partition: Option<(Vec<NodeIdx>, Vec<NodeIdx>)>,
    /// Extra latency between two nodes (key: ordered pair).
    delays: HashMap<(NodeIdx, NodeIdx), Duration>,
    stats: SimStats,
}

impl fmt::Debug for Sim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sim")
            .field("now", &self.now)
            .field("nodes", &self.hosts.len())
            .field("links", &self.links.len())
            .field("stats", &self.stats)
            .finish()
    }
}

/// The simulation's start time: 2020-01-01 (a realistic epoch time, so
/// that nothing treats `Time::ZERO` specially).
pub const START: Time = Time::from_nanos(1_577_836_800_000_000_000);

fn pair(a: NodeIdx, b: NodeIdx) -> (NodeIdx, NodeIdx) {
    (a.min(b), a.max(b))
}

impl Sim {
    /// A new, empty simulation; `seed` determines every random choice.
    pub fn new(seed: u64, cfg: SimConfig) -> Sim {
        Sim {
            cfg,
            now: START,
            rng: ChaCha20Rng::seed_from_u64(seed),
            seq: 0,
            heap: BinaryHeap::new(),
            events: HashMap::new(),
            hosts: Vec::new(),
            by_addr: HashMap::new(),
            links: BTreeMap::new(),
            conn_index: HashMap::new(),
            pending: BTreeMap::new(),
            next_id: 1,
            partition: None,
            delays: HashMap::new(),
            stats: SimStats::default(),
        }
    }

    // ------------------------------------------------------------ accessors

    /// The current virtual time.
    pub fn now(&self) -> Time {
        self.now
    }

    /// Virtual time elapsed since [`START`].
    pub fn elapsed(&self) -> Duration {
        self.now - START
    }

    /// The simulation's random generator (tests may draw fault schedules
    /// from it; the run stays reproducible).
    pub fn rng(&mut self) -> &mut ChaCha20Rng {
        &mut self.rng
    }

    /// A uniform random number in `0..n` (`n > 0`) from [`Sim::rng`].
    pub fn rand_below(&mut self, n: u64) -> u64 {
        self.rng.next_u64() % n.max(1)
    }

    /// A random duration uniform in `lo..=hi`.
    pub fn rand_duration(&mut self, lo: Duration, hi: Duration) -> Duration {
        let span = hi.saturating_sub(lo).as_nanos() as u64;
        lo + Duration::from_nanos(self.rng.next_u64() % (span + 1))
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }

    /// The counters.
    pub fn stats(&self) -> &SimStats {
        &self.stats
    }

    /// Number of nodes (alive or not).
    pub fn len(&self) -> usize {
        self.hosts.len()
    }

    /// True if no node was added.
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }

    /// The fake listener address of node `i`.
    pub fn addr(&self, i: NodeIdx) -> String {
        self.hosts[i].addr.clone()
    }

    /// True if node `i` was added with [`Sim::add_bindless_node`].
    pub fn is_bindless(&self, i: NodeIdx) -> bool {
        self.hosts[i].bindless
    }

    /// True if node `i` is running.
    pub fn is_alive(&self, i: NodeIdx) -> bool {
        self.hosts[i].node.is_some()
    }

    /// How many times node `i` was restarted.
    pub fn incarnation(&self, i: NodeIdx) -> u32 {
        self.hosts[i].incarnation
    }

    /// Number of open links between `a` and `b` (either direction).
    pub fn links_between(&self, a: NodeIdx, b: NodeIdx) -> usize {
        self.links
            .values()
            .filter(|l| {
                l.open && pair(l.ends[0].node, l.ends[1].node) == pair(a, b) && self.current(l)
            })
            .count()
    }

    /// Both ends belong to running incarnations.
    fn current(&self, l: &Link) -> bool {
        l.ends.iter().all(|e| {
            let h = &self.hosts[e.node];
            h.node.is_some() && h.incarnation == e.incarnation
        })
    }

    /// Node `i`, for calls like `snd`, `port`, `mon`. Its clock is set to
    /// now, and a poll is scheduled at the current time so that whatever
    /// the caller does takes effect (as the driver API requires).
    ///
    /// Panics if the node is dead.
    pub fn node(&mut self, i: NodeIdx) -> &mut Node {
        assert!(self.is_alive(i), "node {i} is dead");
        self.schedule_wake(i, self.now);
        let now = self.now;
        let n = self.hosts[i].node.as_mut().expect("alive");
        n.set_now(now);
        n
    }

    /// Node `i` if it is running (see [`Sim::node`]).
    pub fn try_node(&mut self, i: NodeIdx) -> Option<&mut Node> {
        if self.is_alive(i) {
            Some(self.node(i))
        } else {
            None
        }
    }

    /// Node `i` for inspection only (no poll is scheduled); `None` while dead.
    pub fn node_ref(&self, i: NodeIdx) -> Option<&Node> {
        self.hosts[i].node.as_ref()
    }

    /// True if node `i` is running and its kernel has a connection up to
    /// the node with ID `node` (`Node::node_is_up`).
    pub fn is_up(&self, i: NodeIdx, node: &str) -> bool {
        self.node_ref(i)
            .is_some_and(|n| n.node_is_up(node) == Some(true))
    }

    /// The node ID of node `i` (empty while dead).
    pub fn node_id(&self, i: NodeIdx) -> String {
        self.hosts[i]
            .node
            .as_ref()
            .map_or_else(String::new, |n| n.node_id().to_string())
    }

    // ------------------------------------------------------------ nodes

    /// Adds and starts a node. `args` are `configure` arguments (a JSON
    /// object such as `{"nodeid": "a", "secret": "s", "seeds": [..]}`);
    /// `binds` is replaced by the node's fake address. Returns its index.
    pub fn add_node(&mut self, args: serde_json::Value) -> NodeIdx {
        let i = self.hosts.len();
        let addr = format!("10.0.{}.{}:4040", i / 250, i % 250 + 1);
        let mut args = match args {
            serde_json::Value::Object(m) => m,
            serde_json::Value::Null => JsonMap::new(),
            other => panic!("add_node: arguments must be a JSON object, got {other}"),
        };
        args.insert("binds".into(), serde_json::json!([addr.clone()]));
        self.by_addr.insert(addr.clone(), i);
        self.hosts.push(Host {
            node: None,
            addr,
            args,
            hostname: format!("simhost{i}"),
            incarnation: 0,
            bindless: false,
            black_hole: false,
            wake: None,
        });
        self.start(i);
        i
    }

    /// Adds and starts a *bind-less* node (no listener, `binds` set to
    /// `[]`, like a browser page or a native node with empty `binds`): it
    /// can only connect out, and others reach it through its master (see
    /// `docs/routing.md`). Its [`Sim::addr`] is a fake peer address that
    /// nobody can connect to.
    pub fn add_bindless_node(&mut self, args: serde_json::Value) -> NodeIdx {
        let i = self.hosts.len();
        let addr = format!("10.1.{}.{}:0", i / 250, i % 250 + 1);
        let mut args = match args {
            serde_json::Value::Object(m) => m,
            serde_json::Value::Null => JsonMap::new(),
            other => panic!("add_bindless_node: arguments must be a JSON object, got {other}"),
        };
        args.insert("binds".into(), serde_json::json!([]));
        self.hosts.push(Host {
            node: None,
            addr,
            args,
            hostname: format!("simhost{i}"),
            incarnation: 0,
            bindless: true,
            black_hole: false,
            wake: None,
        });
        self.start(i);
        i
    }

    fn start(&mut self, i: NodeIdx) {
        let mut seed = [0u8; 32];
        self.rng.fill_bytes(&mut seed);
        let host = &mut self.hosts[i];
        let cfg = effective_config(None, &host.args, None, &host.hostname)
            .unwrap_or_else(|e| panic!("node {i}: bad configuration: {e}"));
        let mut node = Node::new(seed);
        node.set_now(self.now);
        node.configure(&cfg, &host.hostname)
            .unwrap_or_else(|e| panic!("node {i}: configure failed: {e}"));
        if !host.bindless {
            node.set_listeners(vec![host.addr.clone()]);
        }
        host.node = Some(node);
        host.black_hole = false;
        host.wake = None;
        self.trace(format_args!("start node {i} ({})", self.node_id(i)));
        self.drive(i);
    }

    /// Kills node `i` (see [`Kill`]). Its `Node` is dropped.
    pub fn kill(&mut self, i: NodeIdx, how: Kill) {
        if !self.is_alive(i) {
            return;
        }
        self.trace(format_args!("kill node {i} ({how:?})"));
        self.stats.kills += 1;
        let inc = self.hosts[i].incarnation;
        self.hosts[i].node = None;
        self.hosts[i].wake = None;
        self.hosts[i].black_hole = how == Kill::BlackHole;
        // Our own connects in flight die with us.
        for p in self.pending.values_mut() {
            if p.node == i {
                p.cancelled = true;
            }
        }
        let ids: Vec<u64> = self
            .links
            .iter()
            .filter(|(_, l)| l.ends.iter().any(|e| e.node == i && e.incarnation == inc))
            .map(|(&id, _)| id)
            .collect();
        for id in ids {
            let side = {
                let l = &self.links[&id];
                usize::from(!(l.ends[0].node == i && l.ends[0].incarnation == inc))
            };
            let link = self.links.get_mut(&id).expect("listed");
            link.ends[side].live = false;
            match how {
                Kill::Reset => {
                    if link.open {
                        link.open = false;
                        self.stats.cuts += 1;
                        let lat = self.latency(i, self.links[&id].ends[1 - side].node);
                        self.push(
                            self.now + lat,
                            Ev::Closed {
                                link: id,
                                to: 1 - side,
                                error: "connection reset",
                            },
                        );
                    }
                }
                // The link stays "open" for the peer: what it writes vanishes.
                Kill::BlackHole => {}
            }
        }
    }

    /// Starts a fresh `Node` (new random seed, same address and
    /// configuration) in place of node `i`. A running node is first killed
    /// with [`Kill::Reset`].
    pub fn restart(&mut self, i: NodeIdx) {
        if self.is_alive(i) {
            self.kill(i, Kill::Reset);
        }
        self.stats.restarts += 1;
        self.hosts[i].incarnation += 1;
        self.start(i);
    }

    // ------------------------------------------------------------ faults

    /// Cuts every open link between `a` and `b`: both ends get
    /// `handle_closed(.., "connection reset")`; bytes in flight are lost.
    pub fn cut_link(&mut self, a: NodeIdx, b: NodeIdx) {
        let ids: Vec<u64> = self
            .links
            .iter()
            .filter(|(_, l)| l.open && pair(l.ends[0].node, l.ends[1].node) == pair(a, b))
            .map(|(&id, _)| id)
            .collect();
        self.trace(format_args!("cut {a}-{b}: {} link(s)", ids.len()));
        for id in ids {
            self.cut(id);
        }
    }

    fn cut(&mut self, id: u64) {
        let link = self.links.get_mut(&id).expect("link");
        if !link.open {
            return;
        }
        link.open = false;
        self.stats.cuts += 1;
        for side in 0..2 {
            self.push(
                self.now,
                Ev::Closed {
                    link: id,
                    to: side,
                    error: "connection reset",
                },
            );
        }
    }

    /// Splits the network: connects between a node of `a` and a node of
    /// `b` are refused, and the links between them are cut. Nodes in
    /// neither set talk to everybody. Replaces an earlier partition.
    pub fn partition(&mut self, a: &[NodeIdx], b: &[NodeIdx]) {
        self.trace(format_args!("partition {a:?} | {b:?}"));
        self.partition = Some((a.to_vec(), b.to_vec()));
        for &x in a {
            for &y in b {
                self.cut_link(x, y);
            }
        }
    }

    /// Ends the partition.
    pub fn heal(&mut self) {
        self.trace(format_args!("heal"));
        self.partition = None;
    }

    fn partitioned(&self, x: NodeIdx, y: NodeIdx) -> bool {
        match &self.partition {
            None => false,
            Some((a, b)) => {
                (a.contains(&x) && b.contains(&y)) || (a.contains(&y) && b.contains(&x))
            }
        }
    }

    /// Sets the extra one-way latency between `a` and `b` (both
    /// directions; `Duration::ZERO` removes it). Bytes already in flight
    /// are not affected; order within a connection is always kept.
    pub fn delay(&mut self, a: NodeIdx, b: NodeIdx, extra: Duration) {
        self.trace(format_args!("delay {a}-{b} += {extra:?}"));
        if extra.is_zero() {
            self.delays.remove(&pair(a, b));
        } else {
            self.delays.insert(pair(a, b), extra);
        }
    }

    fn latency(&mut self, a: NodeIdx, b: NodeIdx) -> Duration {
        let jitter = self.rand_duration(Duration::ZERO, self.cfg.jitter);
        self.cfg.latency
            + jitter
            + self
                .delays
                .get(&pair(a, b))
                .copied()
                .unwrap_or(Duration::ZERO)
    }

    // ------------------------------------------------------------ running

    /// Processes every event up to and including `t`, then sets the clock
    /// to `t`.
    pub fn run_until(&mut self, t: Time) {
        while let Some(&Reverse((at, _))) = self.heap.peek() {
            if at > t {
                break;
            }
            self.step();
        }
        self.now = self.now.max(t);
    }

    /// Runs for `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) {
        self.run_until(self.now + d);
    }

    /// Runs until `cond` holds (checked before the first and after every
    /// event) or `deadline` passes. Returns whether `cond` held; on
    /// success the clock stays at the time of the event that made it true.
    pub fn run_until_cond(
        &mut self,
        mut cond: impl FnMut(&mut Sim) -> bool,
        deadline: Time,
    ) -> bool {
        loop {
            if cond(self) {
                return true;
            }
            match self.heap.peek() {
                Some(&Reverse((at, _))) if at <= deadline => {
                    self.step();
                }
                _ => {
                    self.now = self.now.max(deadline);
                    return cond(self);
                }
            }
        }
    }

    /// Processes the next event. Returns false if there is none.
    pub fn step(&mut self) -> bool {
        let Some(Reverse((at, seq))) = self.heap.pop() else {
            return false;
        };
        self.now = self.now.max(at);
        let ev = self.events.remove(&seq).expect("event stored");
        self.stats.events += 1;
        match ev {
            Ev::Wake { node } => {
                if self.hosts[node].wake.map(|(_, s)| s) == Some(seq) {
                    self.hosts[node].wake = None;
                    self.drive(node);
                }
            }
            Ev::ConnectArrive { pending } => self.connect_arrive(pending),
            Ev::ConnectTimeout { pending } => {
                if let Some(p) = self.pending.remove(&pending) {
                    self.stats.connect_timeouts += 1;
                    if !p.cancelled {
                        self.trace(format_args!(
                            "node {}: connect {} timed out",
                            p.node, p.addr
                        ));
                        self.report_closed(p.node, p.incarnation, p.conn, "connection timed out");
                    }
                }
            }
            Ev::Data { link, to, bytes } => self.deliver(link, to, bytes),
            Ev::Closed { link, to, error } => {
                let Some(l) = self.links.get_mut(&link) else {
                    return true;
                };
                l.open = false;
                let end = l.ends[to].clone();
                if end.live {
                    l.ends[to].live = false;
                    self.conn_index
                        .remove(&(end.node, end.incarnation, end.conn));
                    self.report_closed(end.node, end.incarnation, end.conn, error);
                }
                self.gc_link(link);
            }
        }
        true
    }

    fn gc_link(&mut self, id: u64) {
        if let Some(l) = self.links.get(&id) {
            if !l.open && !l.ends[0].live && !l.ends[1].live {
                self.links.remove(&id);
            }
        }
    }

    fn push(&mut self, at: Time, ev: Ev) -> u64 {
        self.seq += 1;
        let seq = self.seq;
        let at = at.max(self.now);
        self.heap.push(Reverse((at, seq)));
        self.events.insert(seq, ev);
        seq
    }

    fn schedule_wake(&mut self, i: NodeIdx, at: Time) {
        let at = at.max(self.now);
        if let Some((t, _)) = self.hosts[i].wake {
            if t <= at {
                return;
            }
        }
        let seq = self.push(at, Ev::Wake { node: i });
        self.hosts[i].wake = Some((at, seq));
    }

    fn trace(&self, args: fmt::Arguments<'_>) {
        if self.cfg.trace {
            eprintln!("[sim {:>12.6}] {args}", self.elapsed().as_secs_f64());
        }
    }

    /// Tells node `i` (if still that incarnation) that `conn` closed.
    fn report_closed(&mut self, i: NodeIdx, inc: u32, conn: ConnId, error: &str) {
        if self.hosts[i].incarnation != inc {
            return;
        }
        let now = self.now;
        if self.hosts[i].node.is_none() {
            return;
        }
        self.trace(format_args!("node {i}: {conn:?} closed: {error}"));
        let n = self.hosts[i].node.as_mut().expect("alive");
        n.handle_closed(now, conn, error);
        self.drive(i);
    }

    /// Polls node `i` and carries out what it asks for.
    fn drive(&mut self, i: NodeIdx) {
        let now = self.now;
        let inc = self.hosts[i].incarnation;
        let Some(n) = self.hosts[i].node.as_mut() else {
            return;
        };
        let more = n.poll(now);
        let mut actions = Vec::new();
        while let Some(a) = n.poll_action() {
            actions.push(a);
        }
        let mut transmits = Vec::new();
        while let Some(t) = n.poll_transmit() {
            transmits.push(t);
        }
        let next = if more { Some(now) } else { n.poll_timeout() };
        // Connects first, then the writes, then closes: a close takes
        // effect after everything written on that connection.
        let mut closes = Vec::new();
        for a in actions {
            match a {
                Action::Connect { conn, addr } => self.start_connect(i, inc, conn, addr),
                Action::Close { conn } => closes.push(conn),
            }
        }
        for t in transmits {
            self.write(i, inc, t.conn, t.data);
        }
        for conn in closes {
            self.close(i, inc, conn);
        }
        if let Some(t) = next {
            self.schedule_wake(i, t);
        }
    }

    fn start_connect(&mut self, i: NodeIdx, inc: u32, conn: ConnId, addr: String) {
        self.trace(format_args!("node {i}: {conn:?} connect {addr}"));
        let id = self.next_id;
        self.next_id += 1;
        let target = self.by_addr.get(&addr).copied();
        let lat = self.latency(i, target.unwrap_or(i));
        self.pending.insert(
            id,
            Pending {
                node: i,
                incarnation: inc,
                conn,
                addr,
                cancelled: false,
            },
        );
        self.push(self.now + lat, Ev::ConnectArrive { pending: id });
    }

    fn connect_arrive(&mut self, id: u64) {
        let Some(p) = self.pending.get(&id) else {
            return;
        };
        if p.cancelled {
            self.pending.remove(&id);
            return;
        }
        let (client, cinc, cconn) = (p.node, p.incarnation, p.conn);
        let target = self.by_addr.get(&p.addr).copied();
        let client_alive =
            self.hosts[client].node.is_some() && self.hosts[client].incarnation == cinc;
        if !client_alive {
            self.pending.remove(&id);
            return;
        }
        let refuse = match target {
            None => true,
            Some(t) => {
                if self.hosts[t].black_hole {
                    // No answer: the SYN vanishes.
                    if let Some(to) = self.cfg.connect_timeout {
                        self.push(self.now + to, Ev::ConnectTimeout { pending: id });
                    } else {
                        self.pending.remove(&id);
                    }
                    return;
                }
                self.hosts[t].node.is_none() || self.partitioned(client, t)
            }
        };
        let p = self.pending.remove(&id).expect("checked");
        if refuse {
            self.stats.refused += 1;
            // The refusal travels back.
            let lat = self.latency(client, target.unwrap_or(client));
            let link = self.new_link(
                End {
                    node: client,
                    incarnation: cinc,
                    conn: cconn,
                    live: true,
                },
                None,
            );
            self.links.get_mut(&link).expect("new").open = false;
            self.push(
                self.now + lat,
                Ev::Closed {
                    link,
                    to: 0,
                    error: "connection refused",
                },
            );
            self.trace(format_args!("node {client}: connect {} refused", p.addr));
            return;
        }
        let t = target.expect("not refused");
        let now = self.now;
        let caddr = self.hosts[client].addr.clone();
        let tinc = self.hosts[t].incarnation;
        let tconn = self.hosts[t].node.as_mut().expect("alive").handle_accept(
            now,
            Transport::Tcp,
            Some(caddr),
        );
        let link = self.new_link(
            End {
                node: client,
                incarnation: cinc,
                conn: cconn,
                live: true,
            },
            Some(End {
                node: t,
                incarnation: tinc,
                conn: tconn,
                live: true,
            }),
        );
        self.stats.connects += 1;
        self.trace(format_args!(
            "link {link}: node {client} {cconn:?} -> node {t} {tconn:?}"
        ));
        self.drive(t);
        if self.hosts[client].incarnation == cinc {
            if let Some(n) = self.hosts[client].node.as_mut() {
                n.handle_connected(now, cconn, Transport::Tcp);
                self.drive(client);
            }
        }
    }

    /// Registers a link. A refused connect gets a one-sided pseudo link so
    /// that its `Closed` event has somewhere to go.
    fn new_link(&mut self, a: End, b: Option<End>) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.conn_index
            .insert((a.node, a.incarnation, a.conn), (id, 0));
        let b = match b {
            Some(b) => {
                self.conn_index
                    .insert((b.node, b.incarnation, b.conn), (id, 1));
                b
            }
            None => End {
                live: false,
                ..a.clone()
            },
        };
        self.links.insert(
            id,
            Link {
                ends: [a, b],
                open: true,
                last_at: [self.now; 2],
                closing: [false; 2],
            },
        );
        id
    }

    fn write(&mut self, i: NodeIdx, inc: u32, conn: ConnId, data: Vec<u8>) {
        if data.is_empty() {
            return;
        }
        let Some(&(id, side)) = self.conn_index.get(&(i, inc, conn)) else {
            // Not connected (yet/any more): the bytes go nowhere.
            self.stats.bytes_lost += data.len() as u64;
            return;
        };
        let to = 1 - side;
        let (open, closing, peer) = {
            let l = &self.links[&id];
            (l.open, l.closing[side], l.ends[to].node)
        };
        if !open || closing {
            self.stats.bytes_lost += data.len() as u64;
            return;
        }
        let lat = self.latency(i, peer);
        let l = self.links.get_mut(&id).expect("link");
        let at = (self.now + lat).max(l.last_at[to]);
        l.last_at[to] = at;
        let chunks =
            if self.cfg.max_chunks > 1 && data.len() > 1 && self.chance(self.cfg.split_probability)
            {
                2 + self.rand_below(self.cfg.max_chunks as u64 - 1) as usize
            } else {
                1
            };
        let mut rest = data;
        for k in (1..=chunks).rev() {
            if k == 1 || rest.len() <= 1 {
                self.push(
                    at,
                    Ev::Data {
                        link: id,
                        to,
                        bytes: rest,
                    },
                );
                break;
            }
            // About rest/k bytes, varying from 1 to twice that.
            let max = (2 * rest.len() / k).clamp(1, rest.len() - 1);
            let cut = 1 + self.rand_below(max as u64) as usize;
            let tail = rest.split_off(cut);
            self.push(
                at,
                Ev::Data {
                    link: id,
                    to,
                    bytes: rest,
                },
            );
            rest = tail;
        }
    }

    fn deliver(&mut self, id: u64, to: usize, bytes: Vec<u8>) {
        let Some(l) = self.links.get(&id) else {
            self.stats.bytes_lost += bytes.len() as u64;
            return;
        };
        let end = l.ends[to].clone();
        let alive = self.hosts[end.node].incarnation == end.incarnation
            && self.hosts[end.node].node.is_some();
        if !l.open || !end.live || !alive {
            self.stats.bytes_lost += bytes.len() as u64;
            return;
        }
        self.stats.reads += 1;
        self.stats.bytes += bytes.len() as u64;
        let now = self.now;
        let n = self.hosts[end.node].node.as_mut().expect("alive");
        n.handle_data(now, end.conn, &bytes);
        self.drive(end.node);
    }

    fn close(&mut self, i: NodeIdx, inc: u32, conn: ConnId) {
        // A connect still in flight is abandoned.
        for p in self.pending.values_mut() {
            if p.node == i && p.incarnation == inc && p.conn == conn {
                p.cancelled = true;
            }
        }
        let Some((id, side)) = self.conn_index.remove(&(i, inc, conn)) else {
            return;
        };
        self.trace(format_args!("node {i}: close {conn:?} (link {id})"));
        let to = 1 - side;
        let peer = self.links[&id].ends[to].node;
        let lat = self.latency(i, peer);
        let l = self.links.get_mut(&id).expect("indexed");
        l.ends[side].live = false;
        if l.open && !l.closing[side] {
            l.closing[side] = true;
            self.stats.closes += 1;
            let at = (self.now + lat).max(l.last_at[to]);
            l.last_at[to] = at;
            self.push(
                at,
                Ev::Closed {
                    link: id,
                    to,
                    error: "eof",
                },
            );
        }
        self.gc_link(id);
    }
}

/// The seeds a property test runs: `range` is a slice of the default
/// `total` seeds (tests split one set between them), scaled to
/// `AEMP_SIM_SEEDS` seeds in all when that is set; `AEMP_SIM_SEED=n` runs
/// just seed `n` (in the test whose range starts at 0), to replay a failure.
///
/// ```
/// assert_eq!(aemp_tests::sim::seed_list(0..3, 100).len(), 3);
/// ```
pub fn seed_list(range: std::ops::Range<u64>, total: u64) -> Vec<u64> {
    if let Ok(one) = std::env::var("AEMP_SIM_SEED") {
        let one: u64 = one.parse().expect("AEMP_SIM_SEED must be a number");
        return if range.start == 0 { vec![one] } else { vec![] };
    }
    let n: u64 = std::env::var("AEMP_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(total);
    let scale = |x: u64| x * n / total.max(1);
    (scale(range.start)..scale(range.end)).collect()
}
