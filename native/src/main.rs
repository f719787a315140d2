//! The `aemp` command-line tool.
fn main() {
    eprintln!("aemp: not yet implemented");
    std::process::exit(2);
}
