//! Starting a node: configuration (rc file, host name), the node thread
//! with its tokio current-thread runtime, and [`NodeHandle`], the `Send +
//! Clone` way for other threads to run code on the node.

use std::fmt;
use std::net::SocketAddr;
use std::rc::Rc;
use std::thread::JoinHandle;

use aemp_core::config::{effective_config, Config, JsonMap, RcFile};
use aemp_core::Node;
use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};

use crate::clock::Clock;
use crate::driver::{run_loop, Cmd, DriverOptions, Shared};
use crate::kernel::Kernel;

/// Why a node could not start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StartError {
    /// The rc file exists but cannot be read or parsed.
    Rc(String),
    /// The configuration is invalid (bad key, bad address, bad node ID).
    Config(String),
    /// A listener could not be bound.
    Bind(String),
    /// The node thread or its runtime could not be started.
    Runtime(String),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Rc(m) => write!(f, "rc file: {m}"),
            StartError::Config(m) => write!(f, "configuration: {m}"),
            StartError::Bind(m) => write!(f, "listen: {m}"),
            StartError::Runtime(m) => write!(f, "runtime: {m}"),
        }
    }
}

impl std::error::Error for StartError {}

/// This machine's host name (the `%n` of node-ID templates and the default
/// profile name).
pub fn hostname() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}

/// The rc file path: `$PERL_ANYEVENT_MP_RC`, else `$HOME/.perl-anyevent-mp`.
pub fn rc_path() -> Option<std::path::PathBuf> {
    if let Some(p) = std::env::var_os("PERL_ANYEVENT_MP_RC") {
        return Some(p.into());
    }
    std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".perl-anyevent-mp"))
}

/// Reads and parses the rc file. A missing (or empty) file is no rc file;
/// an unreadable or unparsable one is an error naming the path.
pub fn read_rc() -> Result<Option<RcFile>, StartError> {
    let Some(path) = rc_path() else {
        return Ok(None);
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StartError::Rc(format!("{}: {e}", path.display()))),
    };
    match RcFile::parse(&text) {
        Ok(rc) => Ok(Some(rc)),
        Err(aemp_core::config::ConfigError::RcEmpty) => Ok(None),
        Err(e) => Err(StartError::Rc(format!("{}: {e}", path.display()))),
    }
}

/// The effective configuration for `configure` arguments (`profile` and
/// key/values), merged with the rc file as Perl does, and validated.
pub fn load_config(
    profile: Option<&str>,
    args: &JsonMap,
    hostname: &str,
) -> Result<Config, StartError> {
    let rc = read_rc()?;
    let cfg = effective_config(profile, args, rc.as_ref(), hostname)
        .map_err(|e| StartError::Config(e.to_string()))?;
    cfg.validate(hostname)
        .map_err(|e| StartError::Config(e.to_string()))?;
    Ok(cfg)
}

/// A random secret of 32 alphanumeric characters (for `aemp run` without
/// a configured secret).
pub fn generate_secret() -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(32);
    while out.len() < 32 {
        let mut b = [0u8; 64];
        random_bytes(&mut b);
        for x in b {
            // 248 = 4 * 62: reject the rest to stay unbiased.
            if x < 248 && out.len() < 32 {
                out.push(CHARS[(x % 62) as usize] as char);
            }
        }
    }
    out
}

fn random_bytes(buf: &mut [u8]) {
    if getrandom::fill(buf).is_err() {
        // No OS randomness: fall back to hashing time and addresses.
        use std::hash::{BuildHasher, Hasher};
        for (i, b) in buf.iter_mut().enumerate() {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_usize(i);
            *b = h.finish() as u8;
        }
    }
}

/// What a started node serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StartInfo {
    /// The node ID.
    pub node_id: String,
    /// The bound listener addresses (ephemeral ports resolved). Each serves
    /// AEMP over TCP, AEMP over WebSocket and HTTP.
    pub listeners: Vec<SocketAddr>,
}

impl StartInfo {
    /// The lines `aemp run` prints: `node <id>`, then for every listener
    /// `listen tcp H:P`, `listen ws ws://H:P/`, `listen http http://H:P/`.
    pub fn lines(&self) -> Vec<String> {
        let mut v = vec![format!("node {}", self.node_id)];
        for l in &self.listeners {
            v.push(format!("listen tcp {l}"));
            v.push(format!("listen ws ws://{l}/"));
            v.push(format!("listen http http://{l}/"));
        }
        v
    }
}

/// A `Send + Clone` handle to a running node: posts closures into the node
/// thread. Every closure is followed by the driver's poll/drain step, so
/// what it sends goes out at once.
pub struct NodeHandle<K = Node> {
    tx: UnboundedSender<Cmd<K>>,
}

impl<K> Clone for NodeHandle<K> {
    fn clone(&self) -> Self {
        NodeHandle {
            tx: self.tx.clone(),
        }
    }
}

impl<K: Kernel> NodeHandle<K> {
    /// Runs `f` on the node thread, without waiting. Returns false if the
    /// node has stopped.
    pub fn exec(&self, f: impl FnOnce(&mut K) + Send + 'static) -> bool {
        self.tx.send(Cmd::Exec(Box::new(f))).is_ok()
    }

    /// Runs `f` on the node thread and waits for its result (blocking the
    /// calling thread). `None` if the node has stopped. Do not call it from
    /// the node thread itself.
    pub fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut K) -> R + Send + 'static,
    ) -> Option<R> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        if !self.exec(move |k| {
            let _ = tx.send(f(k));
        }) {
            return None;
        }
        rx.recv().ok()
    }

    /// [`call`](NodeHandle::call) for async callers.
    pub async fn call_async<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut K) -> R + Send + 'static,
    ) -> Option<R> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if !self.exec(move |k| {
            let _ = tx.send(f(k));
        }) {
            return None;
        }
        rx.await.ok()
    }

    /// Asks the node to stop (its connections are dropped).
    pub fn shutdown(&self) {
        let _ = self.tx.send(Cmd::Shutdown);
    }

    /// True once the node has stopped.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

/// A node running on its own thread. Dropping it shuts the node down and
/// joins the thread.
pub struct NodeRuntime<K: Kernel = Node> {
    handle: NodeHandle<K>,
    info: StartInfo,
    thread: Option<JoinHandle<()>>,
}

impl<K: Kernel> NodeRuntime<K> {
    /// Starts a node for `configure`-style arguments (`profile`, key/values),
    /// reading the rc file and the host name. Returns once the listeners
    /// are bound.
    pub fn start_args(profile: Option<&str>, args: &JsonMap) -> Result<Self, StartError> {
        let host = hostname();
        let cfg = load_config(profile, args, &host)?;
        Self::start(cfg, host)
    }

    /// Starts a node for an effective configuration on a new thread and
    /// returns once it is configured and its listeners are bound.
    pub fn start(cfg: Config, hostname: String) -> Result<Self, StartError> {
        let (tx, rx) = unbounded_channel();
        let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel(1);
        let thread = std::thread::Builder::new()
            .name("aemp-node".into())
            .spawn(move || {
                let r = node_main::<K>(cfg, hostname, rx, |info| {
                    let _ = ready_tx.send(Ok(info.clone()));
                });
                if let Err(e) = r {
                    let _ = ready_tx.send(Err(e));
                }
            })
            .map_err(|e| StartError::Runtime(e.to_string()))?;
        let info = match ready_rx.recv() {
            Ok(Ok(info)) => info,
            Ok(Err(e)) => {
                let _ = thread.join();
                return Err(e);
            }
            Err(_) => {
                let _ = thread.join();
                return Err(StartError::Runtime("node thread died".into()));
            }
        };
        Ok(NodeRuntime {
            handle: NodeHandle { tx },
            info,
            thread: Some(thread),
        })
    }

    /// A handle for posting work to the node.
    pub fn handle(&self) -> NodeHandle<K> {
        self.handle.clone()
    }

    /// What the node serves.
    pub fn info(&self) -> &StartInfo {
        &self.info
    }

    /// The node ID.
    pub fn node_id(&self) -> &str {
        &self.info.node_id
    }

    /// The first listener address (convenient for tests and seeds).
    ///
    /// # Panics
    ///
    /// If the node is bind-less (`binds []`); see [`NodeRuntime::try_addr`].
    pub fn addr(&self) -> SocketAddr {
        self.try_addr()
            .expect("this node has no listener (bind-less); use try_addr")
    }

    /// The first listener's address, or `None` for a bind-less node
    /// (`binds []`).
    pub fn try_addr(&self) -> Option<SocketAddr> {
        self.info.listeners.first().copied()
    }

    /// Waits until the node stops (after a [`NodeHandle::shutdown`]).
    pub fn join(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    /// Stops the node and waits for its thread.
    pub fn shutdown(self) {
        // Drop does it.
    }
}

impl<K: Kernel> Drop for NodeRuntime<K> {
    fn drop(&mut self) {
        self.handle.shutdown();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Runs a node on the **current** thread until a handle shuts it down.
/// `on_start` is called once the listeners are bound; `rx` comes from the
/// handles (see [`node_channel`]).
pub fn run_here<K: Kernel>(
    cfg: Config,
    hostname: String,
    rx: NodeReceiver<K>,
    on_start: impl FnOnce(&StartInfo),
) -> Result<(), StartError> {
    node_main::<K>(cfg, hostname, rx.0, on_start)
}

/// The receiving end of a node's command channel (see [`node_channel`]).
pub struct NodeReceiver<K>(tokio::sync::mpsc::UnboundedReceiver<Cmd<K>>);

/// A handle and the receiver to pass to [`run_here`].
pub fn node_channel<K: Kernel>() -> (NodeHandle<K>, NodeReceiver<K>) {
    let (tx, rx) = unbounded_channel();
    (NodeHandle { tx }, NodeReceiver(rx))
}

/// The web secret of a node with listeners: a configured non-empty
/// `web_secret` is kept; without one, a node that listens on loopback only
/// gets a random one for this run (so browser pages served by this node can
/// join as untrusted nodes, see docs/trust.md), while a node reachable from
/// other hosts does not (opening it to pages must be a decision: set
/// `web_secret`); an empty `web_secret` (`""`) disables it.
pub fn ensure_web_secret(cfg: &mut Config, has_listeners: bool, loopback_only: bool) {
    match cfg.get("web_secret") {
        Some(serde_json::Value::String(s)) if s.is_empty() => {
            cfg.set("web_secret", serde_json::Value::Null)
        }
        None if has_listeners && loopback_only => cfg.set("web_secret", generate_secret().into()),
        None if has_listeners => tracing::info!(
            "browser pages cannot join: this node listens beyond loopback and has no \
             web_secret (set one to let untrusted pages in; see docs/trust.md)"
        ),
        _ => {}
    }
}

/// True if every bind address is a loopback host (127.0.0.0/8, ::1, localhost).
fn loopback_only(binds: &[aemp_core::config::Addr]) -> bool {
    binds.iter().all(|a| match a {
        aemp_core::config::Addr::Tcp { host, .. } => {
            host == "localhost"
                || host
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        aemp_core::config::Addr::Url(_) => false,
    })
}

fn node_main<K: Kernel>(
    mut cfg: Config,
    hostname: String,
    rx: tokio::sync::mpsc::UnboundedReceiver<Cmd<K>>,
    on_start: impl FnOnce(&StartInfo),
) -> Result<(), StartError> {
    let bad = |e: aemp_core::config::ConfigError| StartError::Config(e.to_string());
    let opts = DriverOptions {
        max_queue: cfg.max_queue().map_err(bad)?,
        nodelay: cfg.nodelay(),
        handshake_timeout: cfg.monitor_timeout().map_err(bad)?,
    };
    let binds = cfg.binds(&hostname).map_err(bad)?;
    ensure_web_secret(&mut cfg, !binds.is_empty(), loopback_only(&binds));
    let site = std::sync::Arc::new(crate::www::Site::from_config(&cfg));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| StartError::Runtime(e.to_string()))?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        let mut seed = [0u8; 32];
        random_bytes(&mut seed);
        let clock = Clock::new();
        let mut node = K::create(seed);
        node.set_now(clock.now());
        node.configure(&cfg, &hostname)
            .map_err(StartError::Config)?;
        let listeners = crate::listen::bind_all(&binds)
            .await
            .map_err(StartError::Bind)?;
        let addrs: Vec<SocketAddr> = listeners
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect();
        node.set_listeners(addrs.iter().map(crate::listen::host_port).collect());
        let info = StartInfo {
            node_id: node.node_id(),
            listeners: addrs,
        };
        let sh = Shared::new(node, clock, opts);
        for l in listeners {
            tokio::task::spawn_local(crate::listen::accept_loop(sh.clone(), l, site.clone()));
        }
        on_start(&info);
        run_loop(Rc::clone(&sh), rx).await;
        Ok(())
    })
}

/// Starts an [`aemp_core::Node`] on its own thread for `configure`-style
/// arguments (see [`NodeRuntime::start_args`]).
///
/// ```no_run
/// use aemp_core::msg;
/// let mut args = aemp::core::config::JsonMap::new();
/// args.insert("binds".into(), "127.0.0.1:0".into());
/// args.insert("secret".into(), "s3cret".into());
/// let rt = aemp::start(None, &args).unwrap();
/// let port = rt.handle().call(|node| {
///     let p = node.port();
///     node.rcv_tag(&p, "hi", |_, m| { println!("got {m:?}"); Ok(()) }).unwrap();
///     p
/// }).unwrap();
/// rt.handle().exec(move |node| node.snd(&port, msg!["hi", 1]));
/// ```
pub fn start(profile: Option<&str>, args: &JsonMap) -> Result<NodeRuntime, StartError> {
    NodeRuntime::start_args(profile, args)
}

/// Starts an [`aemp_core::Node`] on its own thread for an effective
/// configuration (see [`NodeRuntime::start`]).
pub fn start_config(cfg: Config, hostname: String) -> Result<NodeRuntime, StartError> {
    NodeRuntime::start(cfg, hostname)
}
