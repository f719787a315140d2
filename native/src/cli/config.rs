//! The configuration commands (spec §10.3): edit the rc file's global level
//! or the selected profile.

use aemp::core::config::{configure_args, effective_config, Target};
use serde_json::Value;

use super::{CliError, Session};

/// A string argument (numbers and booleans are stringified like Perl).
fn string_arg(cmd: &str, v: &Value) -> Result<String, CliError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        other => Err(CliError::usage(format!(
            "{cmd}: expected a string, got {other}"
        ))),
    }
}

fn bad(cmd: &str, e: impl std::fmt::Display) -> CliError {
    CliError::usage(format!("{cmd}: {e}"))
}

/// The profile a command needs (`setparent`, `delparent`).
fn selected_profile(sess: &Session, cmd: &str) -> Result<String, CliError> {
    match &sess.target {
        Target::Profile(p) => Ok(p.clone()),
        Target::Global => Err(CliError::usage(format!(
            "{cmd}: no profile selected (use `aemp profile <name> {cmd} …`)"
        ))),
    }
}

/// Runs one configuration command (canonical name from the table).
pub fn command(sess: &mut Session, name: &str, args: Vec<Value>) -> Result<(), CliError> {
    let t = sess.target.clone();
    let arg = args.first();
    // list commands: key and operation
    let list_op = |n: &str| -> Option<(&'static str, &'static str)> {
        Some(match n {
            "setseeds" => ("seeds", "set"),
            "addseed" => ("seeds", "add"),
            "delseed" => ("seeds", "remove"),
            "delseeds" => ("seeds", "del"),
            "setbinds" => ("binds", "set"),
            "addbind" => ("binds", "add"),
            "delbind" => ("binds", "remove"),
            "delbinds" => ("binds", "del"),
            "setservices" => ("services", "set"),
            "addservice" => ("services", "append"),
            "delservice" => ("services", "remove"),
            "delservices" => ("services", "del"),
            _ => return None,
        })
    };
    if let Some((key, op)) = list_op(name) {
        let rc = sess.rc.get_mut()?;
        match (op, arg) {
            ("set", Some(v)) => rc.set_list(&t, key, v).map_err(|e| bad(name, e))?,
            ("add", Some(v)) => rc
                .add_unique(&t, key, v.clone())
                .map_err(|e| bad(name, e))?,
            ("append", Some(v)) => rc.add_entry(&t, key, v.clone()).map_err(|e| bad(name, e))?,
            ("remove", Some(v)) => {
                if !rc.remove_first(&t, key, v).map_err(|e| bad(name, e))? {
                    tracing::warn!("{name}: {v} is not in the {key} list");
                }
            }
            _ => {
                rc.delete(&t, key);
            }
        }
        return Ok(());
    }
    match name {
        "setnodeid" | "setsecret" => {
            let key = &name[3..];
            let v = arg.expect("arity 1").clone();
            if name == "setnodeid" {
                let s = string_arg(name, &v)?;
                if s.is_empty() || s.contains('#') {
                    return Err(bad(name, format!("'{s}' is not a usable node ID")));
                }
            }
            sess.rc.get_mut()?.set(&t, key, v);
        }
        "gensecret" => {
            let s = aemp::generate_secret();
            sess.rc.get_mut()?.set(&t, "secret", Value::String(s));
        }
        "gencert" => {
            let pem = super::cert::generate().map_err(CliError::runtime)?;
            sess.rc.get_mut()?.set(&t, "cert", Value::String(pem));
        }
        "setcert" => {
            let file = string_arg(name, arg.expect("arity 1"))?;
            let text = std::fs::read_to_string(&file)
                .map_err(|e| CliError::runtime(format!("setcert: {file}: {e}")))?;
            if !text.contains("-----BEGIN") {
                return Err(CliError::runtime(format!(
                    "setcert: {file}: no PEM data (expected key + certificate)"
                )));
            }
            sess.rc.get_mut()?.set(&t, "cert", Value::String(text));
        }
        "profile" => {
            let p = string_arg(name, arg.expect("arity 1"))?;
            if p.is_empty() {
                return Err(bad(name, "empty profile name"));
            }
            sess.rc.get_mut()?.ensure_profile(&p);
            sess.target = Target::Profile(p);
        }
        "delprofile" => {
            let p = string_arg(name, arg.expect("arity 1"))?;
            if !sess.rc.get_mut()?.del_profile(&p) {
                tracing::warn!("delprofile: no profile '{p}'");
            }
            if sess.target == Target::Profile(p) {
                sess.target = Target::Global;
            }
        }
        "setparent" => {
            let p = selected_profile(sess, name)?;
            let parent = string_arg(name, arg.expect("arity 1"))?;
            sess.rc
                .get_mut()?
                .set_parent(&p, &parent)
                .map_err(|e| bad(name, e))?;
        }
        "delparent" => {
            let p = selected_profile(sess, name)?;
            sess.rc.get_mut()?.del_parent(&p);
        }
        "showprofile" => {
            let p = string_arg(name, arg.expect("arity 1"))?;
            println!("{}", sess.rc.get()?.show_profile(&p));
        }
        "showconfig" => {
            let host = aemp::hostname();
            let (profile, kv) = match args.split_first() {
                None => (None, Default::default()),
                Some((p, kv)) => {
                    if kv.len() % 2 == 1 {
                        return Err(bad(name, "key/value arguments must come in pairs"));
                    }
                    let (_, map) = configure_args(kv).map_err(|e| bad(name, e))?;
                    (Some(string_arg(name, p)?), map)
                }
            };
            let rc = sess.rc.get()?;
            let cfg = effective_config(profile.as_deref(), &kv, Some(rc), &host)
                .map_err(|e| CliError::runtime(format!("showconfig: {e}")))?;
            println!("{}", cfg.showconfig_pretty());
        }
        _ if name.starts_with("set") => {
            let v = arg.expect("arity 1").clone();
            sess.rc.get_mut()?.set(&t, &name[3..], v);
        }
        _ if name.starts_with("del") => {
            sess.rc.get_mut()?.delete(&t, &name[3..]);
        }
        _ => return Err(CliError::usage(format!("{name}: no such aemp command"))),
    }
    Ok(())
}
