//! Helpers shared by the native integration tests: a temporary HOME/rc
//! file to run the `aemp` tool against, `aemp run` child processes
//! (started, their endpoints read from stdout, killed on drop) and a port
//! that forwards what it receives to a channel.
#![allow(dead_code)] // each test file uses a different subset

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

use aemp::core::Value;
use aemp::NodeRuntime;

/// A temporary HOME with its own rc file, and how to run `aemp` in it.
pub struct Env {
    pub dir: tempfile::TempDir,
}

/// What one `aemp` run did.
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Env {
    pub fn new() -> Env {
        Env {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// The rc file (`$PERL_ANYEVENT_MP_RC`) of this environment.
    pub fn rc_path(&self) -> PathBuf {
        self.dir.path().join("rc")
    }

    /// `aemp args…` with this HOME and rc file.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_aemp"));
        c.args(args)
            .env("HOME", self.dir.path())
            .env("PERL_ANYEVENT_MP_RC", self.rc_path())
            .env_remove("AEMP_LOG");
        c
    }

    /// Runs `aemp args…` to completion.
    pub fn aemp(&self, args: &[&str]) -> Out {
        let o = self.cmd(args).output().expect("run aemp");
        Out {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    /// Runs and expects success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.aemp(args);
        assert_eq!(o.code, 0, "aemp {args:?}: {}", o.stderr);
        o.stdout
    }

    /// The rc file, parsed (it must be plain JSON).
    pub fn rc(&self) -> serde_json::Value {
        let text = std::fs::read_to_string(self.rc_path()).expect("rc file");
        serde_json::from_str(&text).expect("rc file is plain JSON")
    }
}

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
