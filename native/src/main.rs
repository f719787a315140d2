//! The `aemp` command-line tool. For now one command: `aemp run
//! [<configure args…>]` runs a node until it is killed (spec §10.2).

use std::io::Write;
use std::process::ExitCode;

use aemp::core::config::{parse_run_args, JsonMap};
use clap::{Parser, Subcommand};
use serde_json::json;

/// aemp: run and talk to AnyEvent::MP nodes.
#[derive(Parser)]
#[command(name = "aemp", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a node. Arguments are Perl `configure` key/value pairs with an
    /// optional leading profile name, e.g. `aemp run nodeid seedA binds
    /// 127.0.0.1:4040 seeds 127.0.0.1:4040 secret s3cret`; JSON values
    /// (`'["*:4040"]'`) are decoded. Without arguments: a local seed node
    /// on 127.0.0.1:4040.
    Run {
        /// `[profile] key value …`
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("AEMP_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    match cli.command {
        Command::Run { args } => run(&args),
    }
}

fn run(argv: &[String]) -> ExitCode {
    let defaults = argv.is_empty();
    let (profile, args) = if defaults {
        let mut m = JsonMap::new();
        m.insert("binds".into(), json!(["127.0.0.1:4040"]));
        m.insert("seeds".into(), json!(["127.0.0.1:4040"]));
        (None, m)
    } else {
        match parse_run_args(argv) {
            Ok(x) => x,
            Err(e) => {
                eprintln!("aemp run: {e}");
                return ExitCode::from(2);
            }
        }
    };
    let host = aemp::hostname();
    let mut cfg = match aemp::load_config(profile.as_deref(), &args, &host) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("aemp run: {e}");
            return ExitCode::from(2);
        }
    };
    if matches!(cfg.secret(), Ok(None)) {
        if defaults {
            let s = aemp::generate_secret();
            eprintln!(
                "aemp run: no secret configured; using the generated secret {s} for this run \
                 (other nodes need `secret {s}`)"
            );
            cfg.set("secret", json!(s));
        } else {
            tracing::warn!("no secret configured: no connection can authenticate");
        }
    }
    let rt = match aemp::start_config(cfg, host) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("aemp run: {e}");
            return ExitCode::from(1);
        }
    };
    let mut out = std::io::stdout().lock();
    for line in rt.info().lines() {
        let _ = writeln!(out, "{line}");
    }
    let _ = out.flush();
    drop(out);
    rt.join();
    ExitCode::SUCCESS
}
