//! Helpers shared by the native integration tests: `aemp run` child
//! processes (started, their endpoints read from stdout, killed on drop)
//! and a port that forwards what it receives to a channel.
#![allow(dead_code)] // each test file uses a different subset

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

use aemp::core::Value;
use aemp::NodeRuntime;

/// How long a child may take to print its endpoints.
pub const START_WAIT: Duration = Duration::from_secs(30);

/// The lines a reader produces, on a channel (read by a thread).
pub fn lines(r: impl std::io::Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// A running `aemp run`, SIGKILLed on drop.
pub struct Proc {
    pub child: Child,
    /// Its node ID (the `node …` line).
    pub node: String,
    /// Its TCP endpoint (the `listen tcp …` line).
    pub tcp: String,
    /// The rest of its stdout.
    pub out: Receiver<String>,
}

impl Proc {
    /// Spawns `cmd` (an `aemp run …` command line) with stdout piped, and
    /// waits for its `node` and `listen tcp` lines; `Err` if it exits or
    /// stays silent first (e.g. its port was taken).
    pub fn spawn(mut cmd: Command) -> Result<Proc, String> {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("spawn aemp: {e}"))?;
        let out = lines(child.stdout.take().expect("piped"));
        let (mut node, mut tcp) = (None, None);
        let deadline = Instant::now() + START_WAIT;
        while node.is_none() || tcp.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            match out.recv_timeout(left) {
                Ok(line) => {
                    if let Some(n) = line.strip_prefix("node ") {
                        node = Some(n.to_string());
                    } else if let Some(a) = line.strip_prefix("listen tcp ") {
                        tcp = Some(a.to_string());
                    }
                }
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!("aemp run: no endpoints printed ({e:?})"));
                }
            }
        }
        Ok(Proc {
            child,
            node: node.expect("read"),
            tcp: tcp.expect("read"),
            out,
        })
    }

    /// `aemp run args…` without an rc file, logging warnings only.
    pub fn try_start(args: &[&str]) -> Result<Proc, String> {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_aemp"));
        cmd.arg("run")
            .args(args)
            .env("PERL_ANYEVENT_MP_RC", "/nonexistent/aemp-test-rc")
            .env("AEMP_LOG", "warn");
        Self::spawn(cmd)
    }

    /// As [`Proc::try_start`], panicking on failure.
    pub fn start(args: &[&str]) -> Proc {
        Self::try_start(args).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Sends a signal (`STOP`, `CONT`, …) with kill(1).
    pub fn signal(&self, sig: &str) {
        let st = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill(1)");
        assert!(st.success(), "kill -{sig} failed");
    }

    /// SIGKILL, and reap.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A port on `rt` that forwards every message it gets to the channel.
pub fn sink(rt: &NodeRuntime) -> (String, Receiver<Vec<Value>>) {
    let (tx, rx) = channel();
    let p = rt
        .handle()
        .call(move |n| {
            n.port_with(move |_, m| {
                let _ = tx.send(m);
                Ok(())
            })
            .to_string()
        })
        .expect("node running");
    (p, rx)
}
