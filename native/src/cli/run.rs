//! `aemp run [<profile>] [<key> <value>…]`: run a node until killed.

use std::io::Write;
use std::process::ExitCode;

use aemp::core::config::{configure_args, JsonMap, Target};
use serde_json::{json, Value};

use super::{CliError, Session};

/// Runs a node. Without arguments: a local seed on 127.0.0.1:4040; a
/// missing secret is then generated and stored in the rc file (also when
/// there is no rc file at all).
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
    let rc_exists = sess.rc.exists()?;
    let mut cfg = aemp::load_config(profile.as_deref(), &args, &host)
        .map_err(|e| CliError::usage(format!("run: {e}")))?;
    if matches!(cfg.secret(), Ok(None)) {
        if defaults || !rc_exists {
            let s = aemp::generate_secret();
            sess.rc
                .get_mut()?
                .set(&Target::Global, "secret", Value::String(s.clone()));
            match sess.rc.save() {
                Ok(()) => eprintln!(
                    "aemp run: no secret was configured; generated one and stored it in {} \
                     (other nodes need the same secret: `aemp setsecret {s}`)",
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
        } else {
            tracing::warn!(
                "no secret configured: no connection can authenticate (`aemp gensecret`)"
            );
        }
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
