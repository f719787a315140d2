//! The `aemp` command-line tool (spec §10): run nodes, talk to them
//! (`snd`, `cal`, `mon`, `eval`, `trace`, `db`) and edit the rc file
//! (`setseeds`, `gensecret`, `profile <name> …`, `showconfig`, …).
//! `aemp --help` lists every command; the implementation lives in `cli/`.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut argv = Vec::new();
    for a in std::env::args_os().skip(1) {
        match a.into_string() {
            Ok(s) => argv.push(s),
            Err(a) => {
                eprintln!("aemp: argument {a:?} is not valid UTF-8");
                return ExitCode::from(2);
            }
        }
    }
    cli::main(argv)
}
