//! The command table: every `aemp` command with its arguments and one line
//! of help. The dispatcher ([`super::dispatch`]) and the help text
//! ([`super::help`]) are both driven by it.

/// How many arguments a command consumes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arity {
    /// Exactly this many.
    Exact(usize),
    /// Everything that follows (no further command can be chained).
    Rest,
}

/// What part of the help a command is listed under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    /// Talk to running nodes.
    Protocol,
    /// Run a node.
    Run,
    /// Node ID, secret, certificate.
    Identity,
    /// Seeds, binds, services.
    Lists,
    /// Profiles and showing the configuration.
    Profiles,
    /// Low-level keys stored verbatim.
    LowLevel,
    /// Help.
    Help,
}

impl Section {
    /// All sections in help order, with their headings.
    pub const ALL: &'static [(Section, &'static str)] = &[
        (
            Section::Protocol,
            "Talk to a running network (temporary node 'aemp/%n/%u', profile 'aemp'):",
        ),
        (Section::Run, "Run a node:"),
        (Section::Identity, "Configuration: node ID, authentication:"),
        (Section::Lists, "Configuration: seeds, binds, services:"),
        (Section::Profiles, "Configuration: profiles:"),
        (
            Section::LowLevel,
            "Configuration: low-level keys (stored verbatim):",
        ),
        (Section::Help, "Help:"),
    ];
}

/// One command.
#[derive(Clone, Debug)]
pub struct Spec {
    /// The name typed on the command line.
    pub name: &'static str,
    /// Argument synopsis for the help.
    pub args: &'static str,
    /// How many arguments it consumes.
    pub arity: Arity,
    /// Its help section.
    pub section: Section,
    /// One line of help.
    pub help: &'static str,
    /// Longer help for `aemp <command> --help` (may be empty).
    pub long: &'static str,
}

const fn spec(
    name: &'static str,
    args: &'static str,
    arity: Arity,
    section: Section,
    help: &'static str,
    long: &'static str,
) -> Spec {
    Spec {
        name,
        args,
        arity,
        section,
        help,
        long,
    }
}

use Arity::{Exact, Rest};
use Section::*;

/// The low-level keys with `set<key>`/`del<key>` commands (stored verbatim).
pub const LOW_LEVEL_KEYS: &[(&str, &str)] = &[
    (
        "monitor_timeout",
        "seconds: handshake timeout, reconnect back-off cap (default 30)",
    ),
    (
        "connect_interval",
        "seconds between trying a node's addresses (default 2)",
    ),
    (
        "framing_format",
        "framings in preference order (default [\"cbor\",\"json\",\"storable\"])",
    ),
    (
        "auth_offer",
        "auth methods we send (default [\"tls_sha3_512\",\"hmac_sha3_512\"])",
    ),
    (
        "auth_accept",
        "auth methods we accept (default: the above plus tls_anon, cleartext)",
    ),
    ("autocork", "batch writes (boolean, default off)"),
    ("nodelay", "TCP_NODELAY (boolean, default on)"),
    (
        "secure",
        "refuse remote code execution (boolean, default off)",
    ),
    (
        "heartbeat_interval",
        "aemp-rs: seconds between keepalives on idle connections (default 2)",
    ),
    (
        "heartbeat_timeout",
        "aemp-rs: seconds of silence before a connection is dead (default 10)",
    ),
    (
        "max_packet",
        "aemp-rs: largest packet in bytes (default 16 MiB)",
    ),
    (
        "max_queue",
        "aemp-rs: bytes queued per node while connecting (default 64 MiB)",
    ),
];

/// The commands with a fixed entry (the low-level `set<key>`/`del<key>`
/// pairs are generated from [`LOW_LEVEL_KEYS`] by [`all`]).
const FIXED: &[Spec] = &[
    spec(
        "snd",
        "<port> <args…>",
        Rest,
        Protocol,
        "send a message to a port and confirm its delivery",
        "Sends [args…] to <port>, then asks the port's node to relay a confirmation to us \
         (\"message sent successfully\"), which arrives only after the message was delivered. \
         If the port dies first (or does not exist), prints the monitor reason and exits 1.",
    ),
    spec(
        "cal",
        "<port> <args…>",
        Rest,
        Protocol,
        "call a port (a reply port is appended) and print the reply",
        "Sends [args…, replyport] to <port> and prints the reply values JSON-encoded, \
         comma-separated (a JSON array without brackets). A node ID as <port> addresses the \
         node port, e.g. `aemp cal mynode time`. Exits 1 after the timeout (5 s, see --timeout).",
    ),
    spec(
        "mon",
        "<port>",
        Exact(1),
        Protocol,
        "monitor a port, wait until it dies and print the reason",
        "Monitors <port>; prints `monitoring <port>` on stderr once the port's node confirmed \
         the monitor, then waits (without time limit unless --timeout is given) and prints the \
         kill reason (`normal` for a normal kill).",
    ),
    spec(
        "eval",
        "<node> <expr…>",
        Rest,
        Protocol,
        "evaluate Perl code on a Perl node (eval_on) and print the results",
        "Joins the arguments with spaces and sends them to <node> as an `eval` request. Prints \
         the results like `cal`, or the error (exit 1). aemp-rs nodes refuse eval.",
    ),
    spec(
        "trace",
        "[<node>]",
        Rest,
        Protocol,
        "list every node of the network, its addresses and whether it is global",
        "AEMP 2.x has no request for a node's connections, so trace asks the master for the \
         global database families 'l (node -> listener addresses) and 'g (global nodes) and \
         prints one line per node: `<node> global|node <addr>,…`. With <node>, it first checks \
         that this node answers (a `time` request) and prints its round trip.",
    ),
    spec(
        "db",
        "[--follow] <family>",
        Rest,
        Protocol,
        "print a database family (--follow: keep printing changes)",
        "Prints `<subkey> <json value>` for every entry of <family> as the master sees it. \
         With --follow (or -f), subscribes to the family instead and prints `added <key> <value>`, \
         `changed <key> <value>` and `deleted <key>` lines as they come, until interrupted.",
    ),
    spec(
        "run",
        "[<profile>] [<key> <value>…]",
        Rest,
        Run,
        "run a node (configure arguments; default: a local seed on 127.0.0.1:4040)",
        "Runs a node until killed. Arguments are Perl `configure` key/value pairs with an \
         optional leading profile name, e.g. `aemp run profile seed` or `aemp run nodeid x \
         binds '[\"*:4040\"]'`; the rc file's values for the profile win. Without arguments: a \
         local seed node on 127.0.0.1:4040; if no secret is configured, one is generated and \
         stored in the rc file. Services compiled in: AnyEvent::MP::Global::, aemp::echo \
         (port answering [\"echo\", args…, reply], registered in db family aemp_echo), \
         aemp::log (prints what it receives, registered in db family aemp_log).",
    ),
    spec(
        "setnodeid",
        "<id>",
        Exact(1),
        Identity,
        "set the node ID template (%n host, %u random)",
        "",
    ),
    spec(
        "delnodeid",
        "",
        Exact(0),
        Identity,
        "remove the node ID (default: <profile>/)",
        "",
    ),
    spec(
        "gensecret",
        "",
        Exact(0),
        Identity,
        "generate and store a random secret",
        "",
    ),
    spec(
        "setsecret",
        "<secret>",
        Exact(1),
        Identity,
        "set the shared secret",
        "",
    ),
    spec("delsecret", "", Exact(0), Identity, "remove the secret", ""),
    spec(
        "gencert",
        "",
        Exact(0),
        Identity,
        "generate a self-signed certificate and key (CN=AnyEvent::MP, 10 years)",
        "Stores the certificate PEM followed by the private key PEM (ECDSA P-256) as `cert`, \
         as Perl's aemp does with openssl.",
    ),
    spec(
        "setcert",
        "<file>",
        Exact(1),
        Identity,
        "store a PEM file (key + certificate + CA certs)",
        "",
    ),
    spec(
        "delcert",
        "",
        Exact(0),
        Identity,
        "remove the certificate",
        "",
    ),
    spec(
        "setseeds",
        "<host:port>,…",
        Exact(1),
        Lists,
        "set the seeds (comma list or JSON array)",
        "",
    ),
    spec(
        "addseed",
        "<host:port>",
        Exact(1),
        Lists,
        "add a seed (moved to the end if present)",
        "",
    ),
    spec(
        "delseed",
        "<host:port>",
        Exact(1),
        Lists,
        "remove a seed",
        "",
    ),
    spec("delseeds", "", Exact(0), Lists, "remove the seeds list", ""),
    spec(
        "setbinds",
        "<host:port>,…",
        Exact(1),
        Lists,
        "set the listen addresses (*, *:*, *:port, host:port)",
        "",
    ),
    spec(
        "addbind",
        "<host:port>",
        Exact(1),
        Lists,
        "add a listen address",
        "",
    ),
    spec(
        "delbind",
        "<host:port>",
        Exact(1),
        Lists,
        "remove a listen address",
        "",
    ),
    spec("delbinds", "", Exact(0), Lists, "remove the binds list", ""),
    spec(
        "setservices",
        "<svc>,…",
        Exact(1),
        Lists,
        "set the services (comma list or JSON array)",
        "",
    ),
    spec(
        "addservice",
        "<svc>",
        Exact(1),
        Lists,
        "append a service (duplicates allowed)",
        "",
    ),
    spec(
        "delservice",
        "<svc>",
        Exact(1),
        Lists,
        "remove the first equal service",
        "",
    ),
    spec(
        "delservices",
        "",
        Exact(0),
        Lists,
        "remove the services list",
        "",
    ),
    spec(
        "profile",
        "<name>",
        Exact(1),
        Profiles,
        "edit profile <name> with the following commands (created if needed)",
        "",
    ),
    spec(
        "delprofile",
        "<name>",
        Exact(1),
        Profiles,
        "delete a profile",
        "",
    ),
    spec(
        "setparent",
        "<name>",
        Exact(1),
        Profiles,
        "set the selected profile's parent profile",
        "",
    ),
    spec(
        "delparent",
        "",
        Exact(0),
        Profiles,
        "remove the selected profile's parent",
        "",
    ),
    spec(
        "showprofile",
        "<name>",
        Exact(1),
        Profiles,
        "print a profile's own values",
        "",
    ),
    spec(
        "showconfig",
        "[<name> [<key> <value>…]]",
        Rest,
        Profiles,
        "print the effective configuration of a profile (default: host name)",
        "Prints the configuration `configure` would compute for profile <name> with the given \
         extra key/values (they are defaults the rc file overrides), without the profile and \
         parent keys.",
    ),
    spec(
        "help",
        "[<command>]",
        Rest,
        Help,
        "this help, or a command's help",
        "",
    ),
];

/// Every command: the fixed ones and the low-level `set<key>`/`del<key>`.
pub fn all() -> Vec<Spec> {
    let mut v = FIXED.to_vec();
    for (key, help) in LOW_LEVEL_KEYS {
        let set: &'static str = Box::leak(format!("set{key}").into_boxed_str());
        let del: &'static str = Box::leak(format!("del{key}").into_boxed_str());
        v.push(spec(set, "<value>", Exact(1), LowLevel, help, ""));
        v.push(spec(del, "", Exact(0), LowLevel, "", ""));
    }
    v
}

/// Looks a command up by name; `setX` commands also answer to `X`
/// (`aemp seeds …` = `aemp setseeds …`). Returns the canonical spec.
pub fn find(name: &str) -> Option<Spec> {
    let specs = all();
    if let Some(s) = specs.iter().find(|s| s.name == name) {
        return Some(s.clone());
    }
    let prefixed = format!("set{name}");
    specs.into_iter().find(|s| s.name == prefixed)
}
