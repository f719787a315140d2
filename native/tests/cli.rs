//! The `aemp` configuration commands against a temporary rc file
//! (spec §10.1, §10.3, §10.4): resulting JSON, chaining, aliases,
//! showconfig, help, exit codes, and that an unreadable rc file is never
//! overwritten.

use serde_json::{json, Value};

mod common;
use common::Env;

#[test]
fn node_id_and_secret() {
    let e = Env::new();
    e.ok(&["setnodeid", "web/%n/%u"]);
    assert_eq!(e.rc(), json!({"version": 1, "nodeid": "web/%n/%u"}));
    e.ok(&["delnodeid", "setsecret", "s3cret"]);
    assert_eq!(e.rc(), json!({"version": 1, "secret": "s3cret"}));
    e.ok(&["gensecret"]);
    let s = e.rc()["secret"].as_str().unwrap().to_string();
    assert!(
        s.len() >= 32 && s.chars().all(|c| c.is_ascii_alphanumeric()),
        "{s}"
    );
    e.ok(&["gensecret"]);
    assert_ne!(e.rc()["secret"], s, "a new secret each time");
    e.ok(&["delsecret"]);
    assert_eq!(e.rc(), json!({"version": 1}));
    // a bad node ID is refused
    assert_eq!(e.aemp(&["setnodeid", "a#b"]).code, 2);
}

#[test]
fn certificates() {
    let e = Env::new();
    e.ok(&["gencert"]);
    let cert = e.rc()["cert"].as_str().unwrap().to_string();
    let c = cert
        .find("-----BEGIN CERTIFICATE-----")
        .expect("certificate");
    let k = cert.find("-----BEGIN PRIVATE KEY-----").expect("key");
    assert!(c < k, "certificate PEM first, then the key");
    let file = e.dir.path().join("my.pem");
    std::fs::write(
        &file,
        "-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    e.ok(&["profile", "tls", "setcert", file.to_str().unwrap()]);
    assert_eq!(
        e.rc()["profile"]["tls"]["cert"],
        "-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n"
    );
    e.ok(&["profile", "tls", "delcert", "delcert"]);
    assert_eq!(e.rc()["profile"]["tls"], json!({}));
    assert_eq!(e.rc()["cert"], cert, "the global level is untouched");
    e.ok(&["delcert"]);
    assert!(e.rc().get("cert").is_none());
    let o = e.aemp(&["setcert", "/nonexistent/file.pem"]);
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("/nonexistent/file.pem"), "{}", o.stderr);
}

#[test]
fn seeds_binds_services() {
    let e = Env::new();
    e.ok(&[
        "setseeds", "a:1,b:2", "addseed", "c:3", "addseed", "a:1", "delseed", "b:2",
    ]);
    assert_eq!(e.rc()["seeds"], json!(["c:3", "a:1"]));
    e.ok(&["setseeds", r#"["x:1","y:2"]"#]);
    assert_eq!(e.rc()["seeds"], json!(["x:1", "y:2"]));
    e.ok(&["setseeds", ""]);
    assert_eq!(e.rc()["seeds"], json!([]));
    e.ok(&["delseeds"]);
    assert!(e.rc().get("seeds").is_none());

    e.ok(&[
        "setbinds",
        "*:4040",
        "addbind",
        "127.0.0.1:*",
        "addbind",
        "*:4040",
    ]);
    assert_eq!(e.rc()["binds"], json!(["127.0.0.1:*", "*:4040"]));
    e.ok(&["delbind", "*:4040"]);
    assert_eq!(e.rc()["binds"], json!(["127.0.0.1:*"]));
    e.ok(&["delbinds"]);
    assert!(e.rc().get("binds").is_none());

    e.ok(&["setservices", "a::b,c::d", "addservice", "a::b"]);
    e.ok(&["addservice", r#"["m::f",1,2]"#]);
    assert_eq!(
        e.rc()["services"],
        json!(["a::b", "c::d", "a::b", ["m::f", 1, 2]])
    );
    e.ok(&["delservice", "a::b"]);
    assert_eq!(e.rc()["services"], json!(["c::d", "a::b", ["m::f", 1, 2]]));
    e.ok(&["delservices"]);
    assert!(e.rc().get("services").is_none());
}

#[test]
fn low_level_keys_verbatim() {
    let e = Env::new();
    let keys = [
        "monitor_timeout",
        "connect_interval",
        "framing_format",
        "auth_offer",
        "auth_accept",
        "autocork",
        "nodelay",
        "secure",
        "heartbeat_interval",
        "heartbeat_timeout",
    ];
    for k in keys {
        e.ok(&[&format!("set{k}"), "7"]);
        assert_eq!(e.rc()[k], "7", "{k}");
        e.ok(&[&format!("del{k}")]);
        assert!(e.rc().get(k).is_none(), "{k}");
    }
    e.ok(&["setframing_format", r#"["json"]"#, "nodelay", "0"]);
    assert_eq!(e.rc()["framing_format"], json!(["json"]));
    assert_eq!(e.rc()["nodelay"], "0");
}

#[test]
fn chaining_profiles_and_aliases() {
    let e = Env::new();
    e.ok(&[
        "profile",
        "seed",
        "setbinds",
        "*:4040",
        "setseeds",
        "host:4040",
        "gensecret",
    ]);
    let rc = e.rc();
    assert_eq!(rc["profile"]["seed"]["binds"], json!(["*:4040"]));
    assert_eq!(rc["profile"]["seed"]["seeds"], json!(["host:4040"]));
    assert!(rc["profile"]["seed"]["secret"].is_string());
    assert!(rc.get("secret").is_none(), "the profile got the secret");
    // unprefixed aliases: `seeds` = `setseeds`, `monitor_timeout` = `setmonitor_timeout`
    e.ok(&[
        "seeds",
        "s:1",
        "binds",
        "*",
        "nodeid",
        "n",
        "monitor_timeout",
        "3",
        "secret",
        "x",
    ]);
    let rc = e.rc();
    assert_eq!(rc["seeds"], json!(["s:1"]));
    assert_eq!(rc["binds"], json!(["*"]));
    assert_eq!(
        (rc["nodeid"].clone(), rc["monitor_timeout"].clone()),
        (json!("n"), json!("3"))
    );
    assert_eq!(rc["secret"], "x");
    // a first argument starting with [ replaces all arguments
    e.ok(&[r#"["profile","p2","setseeds","q:1"]"#]);
    assert_eq!(e.rc()["profile"]["p2"]["seeds"], json!(["q:1"]));
    // parents
    e.ok(&["profile", "doomed", "setparent", "seed", "nodeid", "d"]);
    assert_eq!(
        e.rc()["profile"]["doomed"],
        json!({"parent": "seed", "nodeid": "d"})
    );
    let shown: Value = serde_json::from_str(&e.ok(&["showprofile", "doomed"])).unwrap();
    assert_eq!(shown, json!({"parent": "seed", "nodeid": "d"}));
    // a loop is refused, nothing is saved
    let before = e.rc();
    let o = e.aemp(&["profile", "seed", "setparent", "doomed"]);
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert_eq!(e.rc(), before);
    // setparent needs a profile
    assert_eq!(e.aemp(&["setparent", "seed"]).code, 2);
    e.ok(&["profile", "doomed", "delparent"]);
    assert_eq!(e.rc()["profile"]["doomed"], json!({"nodeid": "d"}));
    e.ok(&["delprofile", "doomed", "delprofile", "p2"]);
    let rc = e.rc();
    let names: Vec<&String> = rc["profile"].as_object().unwrap().keys().collect();
    assert_eq!(names, ["seed"]);
}

#[test]
fn showconfig_merges() {
    let e = Env::new();
    e.ok(&[
        "secret",
        "g",
        "seeds",
        "a:1",
        "profile",
        "base",
        "seeds",
        "b:2",
        "nodeid",
        "base",
        "profile",
        "leaf",
        "setparent",
        "base",
        "secret",
        "l",
    ]);
    let cfg: Value = serde_json::from_str(&e.ok(&["showconfig", "leaf"])).unwrap();
    assert_eq!(cfg["secret"], "l");
    assert_eq!(cfg["seeds"], json!(["b:2"]));
    assert_eq!(cfg["nodeid"], "base");
    assert_eq!(cfg["monitor_timeout"], 30, "defaults included");
    assert!(cfg.get("profile").is_none() && cfg.get("parent").is_none());
    // extra key/values are defaults: the rc file wins, new keys appear
    let cfg: Value =
        serde_json::from_str(&e.ok(&["showconfig", "leaf", "secret", "z", "binds", "*:9"]))
            .unwrap();
    assert_eq!(cfg["secret"], "l");
    assert_eq!(cfg["binds"], "*:9");
    // unknown profile: the global level
    let cfg: Value = serde_json::from_str(&e.ok(&["showconfig", "nope"])).unwrap();
    assert_eq!(
        (cfg["secret"].clone(), cfg["seeds"].clone()),
        (json!("g"), json!(["a:1"]))
    );
    // default profile = host name: still valid JSON with the global values
    let cfg: Value = serde_json::from_str(&e.ok(&["showconfig"])).unwrap();
    assert_eq!(cfg["secret"], "g");
    assert_eq!(e.aemp(&["showconfig", "leaf", "oddkey"]).code, 2);
}

#[test]
fn errors_and_exit_codes() {
    let e = Env::new();
    let o = e.aemp(&["frobnicate"]);
    assert_eq!(o.code, 2);
    assert!(
        o.stderr.contains("frobnicate: no such aemp command"),
        "{}",
        o.stderr
    );
    // an unknown command after valid ones: nothing is saved
    let o = e.aemp(&["setsecret", "x", "frobnicate"]);
    assert_eq!(o.code, 2);
    assert!(!e.rc_path().exists());
    assert_eq!(e.aemp(&[]).code, 2);
    let o = e.aemp(&["setseeds"]);
    assert_eq!(o.code, 2);
    assert!(o.stderr.contains("setseeds"), "{}", o.stderr);
    assert_eq!(e.aemp(&["setseeds", "[oops"]).code, 2, "bad JSON");
    assert_eq!(e.aemp(&["--bogus-flag"]).code, 2);
    assert_eq!(e.aemp(&["cal"]).code, 2);
    assert_eq!(e.aemp(&["db"]).code, 2);
    assert!(!e.rc_path().exists());
}

#[test]
fn unreadable_rc_is_not_overwritten() {
    let e = Env::new();
    let bad = "{ \"secret\": \"precious\", oops";
    std::fs::write(e.rc_path(), bad).unwrap();
    let o = e.aemp(&["setseeds", "a:1"]);
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("not touching it"), "{}", o.stderr);
    assert_eq!(std::fs::read_to_string(e.rc_path()).unwrap(), bad);
    // only comments: also not ours to overwrite
    std::fs::write(e.rc_path(), "# my notes\n").unwrap();
    assert_eq!(e.aemp(&["gensecret"]).code, 1);
    assert_eq!(
        std::fs::read_to_string(e.rc_path()).unwrap(),
        "# my notes\n"
    );
    // a relaxed file (comments, trailing commas) is read, and rewritten as
    // plain JSON with a backup of the old text
    let relaxed = "{ # mine\n \"version\": 1, \"secret\": \"s\",\n}\n";
    std::fs::write(e.rc_path(), relaxed).unwrap();
    e.ok(&["addseed", "h:1"]);
    assert_eq!(
        e.rc(),
        json!({"version": 1, "secret": "s", "seeds": ["h:1"]})
    );
    let backup = e.dir.path().join("rc~");
    assert_eq!(std::fs::read_to_string(backup).unwrap(), relaxed);
    assert!(!e.dir.path().join("rc~new~").exists());
}

#[test]
fn help() {
    let e = Env::new();
    let out = e.ok(&["--help"]);
    for cmd in [
        "snd",
        "cal",
        "mon",
        "eval",
        "trace",
        "db",
        "run",
        "setnodeid",
        "gensecret",
        "gencert",
        "setcert",
        "delcert",
        "addseed",
        "delbinds",
        "addservice",
        "profile",
        "delprofile",
        "setparent",
        "showprofile",
        "showconfig",
        "monitor_timeout",
        "heartbeat_timeout",
    ] {
        assert!(out.contains(cmd), "--help lists {cmd}");
    }
    assert!(e.ok(&["help"]).contains("showconfig"));
    assert!(e.ok(&["cal", "--help"]).contains("aemp cal <port>"));
    assert!(e.ok(&["help", "seeds"]).contains("aemp setseeds"));
    assert_eq!(e.aemp(&["help", "nope"]).code, 2);
    assert!(!e.rc_path().exists());
}
