//! # aemp: the native node of aemp-rs
//!
//! The tokio driver for the sans-IO kernel of [`aemp_core`], and the
//! library behind the `aemp` command-line tool.
//!
//! A node runs on one thread (the kernel is `!Send`) in a tokio
//! current-thread runtime. It listens on every configured bind address;
//! each port speaks AEMP over TCP, AEMP over WebSocket and plain HTTP,
//! told apart by the first bytes of a connection. Other threads talk to
//! the node through a [`NodeHandle`], which posts closures into the node
//! thread.
//!
//! * [`NodeRuntime`] — start a node on its own thread from `configure`
//!   arguments or a [`Config`](aemp_core::config::Config).
//! * [`NodeHandle`] — `exec`/`call` closures on the node, `shutdown`.
//! * [`Kernel`] — what the driver needs from a kernel (the driver API).
//!
//! Module map: [`kernel`] (driver API), [`clock`], `driver` (the loop),
//! `conn` (per-connection I/O), `listen` (listeners, protocol sniffing),
//! [`http`] (the HTTP responses), [`www`] (the browser pages),
//! [`runtime`] (start-up, handles).

pub mod clock;
mod conn;
mod driver;
pub mod http;
pub mod kernel;
mod listen;
pub mod runtime;
pub mod www;

pub use aemp_core as core;
pub use driver::DriverOptions;
pub use kernel::{Action, ConnId, Kernel, Transmit, Transport};
pub use listen::interface_addrs;
pub use runtime::{
    generate_secret, hostname, load_config, node_channel, rc_path, read_rc, run_here, start,
    start_config, NodeHandle, NodeReceiver, NodeRuntime, StartError, StartInfo,
};
