//! The `aemp` command line (spec §10): global flags, the table-driven
//! dispatcher for Perl-style chained commands, and the help.
//!
//! `aemp [-v|-q] [--timeout S] <command> <args…> [<command> <args…>]…`:
//! arguments are decoded once as in Perl (§10.1), then each command
//! consumes its arguments and the rest is parsed again. Configuration
//! commands edit the rc file, which is saved when the chain ends (or
//! before a protocol command or `run` starts, so they see the changes).

mod cert;
mod config;
mod proto;
mod rcio;
mod run;
mod services;
mod table;

use std::process::ExitCode;
use std::time::Duration;

use aemp::core::config::{decode_cli_args, Target};
use serde_json::Value;

pub use rcio::RcState;

/// A failure with its exit code: 2 for usage errors, 1 for everything else.
#[derive(Debug)]
pub struct CliError {
    /// The process exit code.
    pub code: u8,
    /// What to print (without the `aemp:` prefix).
    pub msg: String,
}

impl CliError {
    /// A usage error (exit 2).
    pub fn usage(msg: impl Into<String>) -> Self {
        CliError {
            code: 2,
            msg: msg.into(),
        }
    }

    /// A runtime failure or timeout (exit 1).
    pub fn runtime(msg: impl Into<String>) -> Self {
        CliError {
            code: 1,
            msg: msg.into(),
        }
    }
}

/// Flags given before the first command.
#[derive(Clone, Debug, Default)]
pub struct GlobalOpts {
    /// `-v` count minus `-q` count.
    pub verbosity: i32,
    /// `--timeout`: reply timeout of protocol commands (default 5 s).
    pub timeout: Option<Duration>,
}

impl GlobalOpts {
    /// The reply timeout of protocol commands.
    pub fn timeout(&self) -> Duration {
        self.timeout.unwrap_or(Duration::from_secs(5))
    }
}

/// State shared by the commands of one chain.
pub struct Session {
    /// The rc file.
    pub rc: RcState,
    /// The level configuration commands edit.
    pub target: Target,
    /// Global flags.
    pub opts: GlobalOpts,
}

/// Runs the command line (without the program name).
pub fn main(argv: Vec<String>) -> ExitCode {
    match main_inner(argv) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("aemp: {}", e.msg);
            if e.code == 2 {
                eprintln!("(`aemp --help` lists the commands)");
            }
            ExitCode::from(e.code)
        }
    }
}

fn main_inner(argv: Vec<String>) -> Result<ExitCode, CliError> {
    let mut opts = GlobalOpts::default();
    let mut i = 0;
    while i < argv.len() {
        let a = argv[i].as_str();
        match a {
            "-h" | "--help" => {
                help::print_main();
                return Ok(ExitCode::SUCCESS);
            }
            "-V" | "--version" => {
                println!("aemp {}", env!("CARGO_PKG_VERSION"));
                return Ok(ExitCode::SUCCESS);
            }
            "-q" | "--quiet" => opts.verbosity -= 1,
            "--timeout" | "-t" => {
                i += 1;
                let v = argv
                    .get(i)
                    .ok_or_else(|| CliError::usage("--timeout needs a number of seconds"))?;
                opts.timeout = Some(parse_secs(v)?);
            }
            _ if a.starts_with("--timeout=") => {
                opts.timeout = Some(parse_secs(&a["--timeout=".len()..])?);
            }
            "--verbose" => opts.verbosity += 1,
            _ if a.len() > 1 && a.starts_with('-') && a[1..].chars().all(|c| c == 'v') => {
                opts.verbosity += (a.len() - 1) as i32;
            }
            _ if a.starts_with('-') && !a.starts_with("-[") => {
                return Err(CliError::usage(format!("{a}: unknown option")));
            }
            _ => break,
        }
        i += 1;
    }
    let argv = &argv[i..];
    let Some(first) = argv.first() else {
        return Err(CliError::usage("no command given"));
    };
    // `aemp help [cmd]`, `aemp <cmd> --help`.
    if first == "help" {
        return help::print_command(argv.get(1).map(String::as_str)).map(|_| ExitCode::SUCCESS);
    }
    if matches!(argv.get(1).map(String::as_str), Some("--help" | "-h")) {
        return help::print_command(Some(first)).map(|_| ExitCode::SUCCESS);
    }
    let level = match (first.as_str(), opts.verbosity) {
        ("run", v) => ["error", "warn", "info", "debug", "trace"][(v + 2).clamp(0, 4) as usize],
        (_, v) => ["off", "error", "warn", "info", "debug", "trace"][(v + 2).clamp(0, 5) as usize],
    };
    init_logging(level, opts.verbosity != 0);
    let values = decode_cli_args(argv).map_err(|e| CliError::usage(e.to_string()))?;
    let mut sess = Session {
        rc: RcState::new(),
        target: Target::Global,
        opts,
    };
    let code = dispatch(&mut sess, values)?;
    sess.rc.save()?;
    Ok(code)
}

fn parse_secs(s: &str) -> Result<Duration, CliError> {
    s.parse::<f64>()
        .ok()
        .filter(|x| x.is_finite() && *x > 0.0 && *x < 1e9)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| CliError::usage(format!("--timeout {s}: not a positive number of seconds")))
}

/// Logging to stderr: `level` unless the `-v`/`-q` flags were not given
/// and `AEMP_LOG` is set.
fn init_logging(level: &str, flags: bool) {
    let filter = if flags {
        None
    } else {
        tracing_subscriber::EnvFilter::try_from_env("AEMP_LOG").ok()
    };
    let filter = filter.unwrap_or_else(|| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// Renders a command-position value for messages.
fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Runs the chain of commands.
fn dispatch(sess: &mut Session, values: Vec<Value>) -> Result<ExitCode, CliError> {
    let mut rest = values.into_iter();
    let mut code = ExitCode::SUCCESS;
    while let Some(cmd) = rest.next() {
        let name = match &cmd {
            Value::String(s) => s.clone(),
            other => return Err(CliError::usage(format!("{other}: no such aemp command"))),
        };
        let spec = table::find(&name)
            .ok_or_else(|| CliError::usage(format!("{name}: no such aemp command")))?;
        let args: Vec<Value> = match spec.arity {
            table::Arity::Exact(n) => {
                let a: Vec<Value> = rest.by_ref().take(n).collect();
                if a.len() < n {
                    return Err(CliError::usage(format!(
                        "{name}: needs {n} argument{}: aemp {} {}",
                        if n == 1 { "" } else { "s" },
                        spec.name,
                        spec.args
                    )));
                }
                a
            }
            table::Arity::Rest => rest.by_ref().collect(),
        };
        match spec.section {
            table::Section::Protocol | table::Section::Run => {
                sess.rc.save()?;
                code = if spec.section == table::Section::Run {
                    run::run(sess, &args)?
                } else {
                    proto::command(sess, spec.name, args)?
                };
            }
            table::Section::Help => {
                let arg = args.first().map(show);
                help::print_command(arg.as_deref())?;
            }
            _ => config::command(sess, spec.name, args)?,
        }
    }
    Ok(code)
}

/// The help texts, generated from the command table with clap.
mod help {
    use super::table::{self, Section};
    use super::CliError;

    const ABOUT: &str = "aemp: configure, run and talk to AnyEvent::MP nodes (aemp-rs)";

    const AFTER: &str = "\
Commands can be chained; each consumes its arguments and the rest is parsed again:
  aemp profile seed setbinds '*:4040' setseeds host:4040 gensecret
Arguments starting with [, { or \" are decoded as JSON; a first argument starting with [ is a
JSON array that replaces all arguments. Every set<key> command also exists as <key>
(`aemp seeds …` = `aemp setseeds …`). Configuration commands edit the rc file
($PERL_ANYEVENT_MP_RC, else ~/.perl-anyevent-mp): its global level, or the profile selected by
a preceding `profile <name>`.

A first network:
  aemp run                              # a local seed on 127.0.0.1:4040 (stores a secret)
  aemp cal <node-id-it-printed> time    # ask it the time
  aemp db \"'l\"                          # every node and its listeners

Exit codes: 0 ok, 1 failure or timeout, 2 usage error. Log level: -v/-q or AEMP_LOG.";

    /// The clap command describing everything (used for rendering help).
    fn clap_command() -> clap::Command {
        let mut listing = String::new();
        let specs = table::all();
        for (section, heading) in Section::ALL {
            listing.push_str(heading);
            listing.push('\n');
            for s in specs.iter().filter(|s| s.section == *section) {
                if s.section == Section::LowLevel && s.name.starts_with("del") {
                    continue;
                }
                let name = if s.section == Section::LowLevel {
                    format!("[set|del]{} {}", &s.name[3..], s.args)
                } else {
                    format!("{} {}", s.name, s.args)
                };
                listing.push_str(&format!("  {:<38} {}\n", name.trim_end(), s.help));
            }
            listing.push('\n');
        }
        let mut cmd = clap::Command::new("aemp")
            .about(ABOUT)
            .version(env!("CARGO_PKG_VERSION"))
            .override_usage("aemp [OPTIONS] <COMMAND> [ARGS…] [<COMMAND> [ARGS…]]…")
            .disable_help_subcommand(true)
            .after_help(format!("{listing}{AFTER}"))
            .arg(
                clap::Arg::new("verbose")
                    .short('v')
                    .long("verbose")
                    .action(clap::ArgAction::Count)
                    .help("more log output (repeatable)"),
            )
            .arg(
                clap::Arg::new("quiet")
                    .short('q')
                    .long("quiet")
                    .action(clap::ArgAction::Count)
                    .help("less log output"),
            )
            .arg(
                clap::Arg::new("timeout")
                    .short('t')
                    .long("timeout")
                    .value_name("SECONDS")
                    .help("reply timeout of protocol commands (default 5)"),
            );
        for s in specs {
            let about = if s.help.is_empty() {
                format!(
                    "remove {} from the selected level (inherit it again)",
                    &s.name[3..]
                )
            } else {
                s.help.to_string()
            };
            let mut sub = clap::Command::new(s.name)
                .about(about)
                .override_usage(format!("aemp {} {}", s.name, s.args))
                .hide(true);
            if !s.long.is_empty() {
                sub = sub.long_about(format!("{}\n\n{}", s.help, s.long));
            }
            cmd = cmd.subcommand(sub);
        }
        cmd
    }

    /// `aemp --help`.
    pub fn print_main() {
        let _ = clap_command().print_help();
    }

    /// `aemp help [<command>]`, `aemp <command> --help`.
    pub fn print_command(name: Option<&str>) -> Result<(), CliError> {
        let Some(name) = name else {
            print_main();
            return Ok(());
        };
        let spec = table::find(name)
            .ok_or_else(|| CliError::usage(format!("{name}: no such aemp command")))?;
        let mut cmd = clap_command();
        let sub = cmd
            .find_subcommand_mut(spec.name)
            .expect("every table entry is a subcommand");
        let _ = sub.print_long_help();
        Ok(())
    }
}
