//! `aemp run [<profile>] [<key> <value>…]`: run a node until killed.

use std::io::Write;
use std::process::ExitCode;

use aemp::core::config::{configure_args, JsonMap, Target};
use serde_json::{json, Value};

use super::{CliError, Session};

/// Runs a node. Without arguments: a local seed on 127.0.0.1:4040. A
/// missing secret is generated and stored in the rc file.
pub fn run(sess: &mut Session, argv: &[Value]) -> Result<ExitCode, CliError> {
    let defaults = argv.is_empty();
    let (profile, args) = if defaults {
        let mut m = JsonMap::new();
        m.insert("binds".into(), json!(["127.0.0.1:4040"]));
        m.insert("seeds".into(), json!(["127.0.0.1:4040"]));
        (None, m)
    } else {
        configure_args(argv).map_err(|e| CliError::usage(format!("run: {e}")))?
    };
    let host = aemp::hostname();
    // Reads the rc file; an unreadable one is an error here.
    sess.rc.get()?;
    let mut cfg = aemp::load_config(profile.as_deref(), &args, &host)
        .map_err(|e| CliError::usage(format!("run: {e}")))?;
    // A node without a secret (and without a certificate) cannot
    // authenticate anything: generate the network's secret into the rc
    // file's global level, where every later node and `aemp` command finds it.
    if matches!(cfg.secret(), Ok(None)) && matches!(cfg.cert(), Ok(None)) {
        let s = aemp::generate_secret();
        let stored = sess
            .rc
            .get_mut()
            .map(|rc| rc.set(&Target::Global, "secret", Value::String(s.clone())))
            .and_then(|()| sess.rc.save());
        match stored {
            Ok(()) => eprintln!(
                "aemp run: no secret was configured; generated one and stored it in {} \
                 (nodes elsewhere need the same secret: `aemp setsecret {s}`)",
                sess.rc
                    .path()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            ),
            Err(e) => eprintln!(
                "aemp run: no secret configured; using the generated secret {s} for this \
                 run only ({}; other nodes need `secret {s}`)",
                e.msg
            ),
        }
        cfg.set("secret", json!(s));
    }
    let services = cfg
        .services()
        .map_err(|e| CliError::usage(format!("run: {e}")))?;
    let rt = aemp::start_config(cfg, host).map_err(|e| CliError::runtime(format!("run: {e}")))?;
    let started = rt
        .handle()
        .call(move |n| super::services::start(n, &services))
        .unwrap_or_default();
    let mut out = std::io::stdout().lock();
    for line in rt.info().lines() {
        let _ = writeln!(out, "{line}");
    }
    for (name, port) in started {
        let _ = writeln!(out, "service {name} {port}");
    }
    let _ = out.flush();
    drop(out);
    rt.join();
    Ok(ExitCode::SUCCESS)
}
