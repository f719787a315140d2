//! Unit tests for the `Config` type, the profile merge and argument parsing.

use super::*;
use serde_json::json;

fn obj(v: Value) -> JsonMap {
    v.as_object().expect("object").clone()
}

fn cfg(v: Value) -> Config {
    Config::new("prof", obj(v))
}

fn argv(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn truthiness_is_perls() {
    for f in [
        json!(null),
        json!(false),
        json!(0),
        json!(0.0),
        json!(""),
        json!("0"),
    ] {
        assert!(!perl_truthy(&f), "{f}");
    }
    for t in [
        json!(true),
        json!(1),
        json!(-1),
        json!("0.0"),
        json!("00"),
        json!(" "),
        json!([]),
        json!({}),
    ] {
        assert!(perl_truthy(&t), "{t}");
    }
}

#[test]
fn perl_split() {
    assert_eq!(perl_split_comma(""), Vec::<&str>::new());
    assert_eq!(perl_split_comma("a,"), ["a"]);
    assert_eq!(perl_split_comma("a,,"), ["a"]);
    assert_eq!(perl_split_comma(",a"), ["", "a"]);
    assert_eq!(perl_split_comma("a,,b"), ["a", "", "b"]);
}

#[test]
fn defaults_on_empty_config() {
    let c = cfg(json!({}));
    assert_eq!(c.nodeid_template().unwrap(), "prof/");
    assert_eq!(c.secret().unwrap(), None);
    assert_eq!(c.cert().unwrap(), None);
    assert_eq!(c.binds("h").unwrap(), [Addr::tcp("*", 0)]);
    assert!(c.seeds("h").unwrap().is_empty());
    assert!(c.services().unwrap().is_empty());
    assert_eq!(c.monitor_timeout().unwrap(), Duration::from_secs(30));
    assert_eq!(c.connect_interval().unwrap(), Duration::from_secs(2));
    assert_eq!(c.heartbeat_interval().unwrap(), Duration::from_secs(2));
    assert_eq!(c.heartbeat_timeout().unwrap(), Duration::from_secs(10));
    assert_eq!(c.max_packet().unwrap(), 16 * 1024 * 1024);
    assert_eq!(c.max_queue().unwrap(), 64 * 1024 * 1024);
    assert_eq!(c.framing_format().unwrap(), ["cbor", "json", "storable"]);
    assert_eq!(c.auth_offer().unwrap(), ["tls_sha3_512", "hmac_sha3_512"]);
    assert_eq!(
        c.auth_accept().unwrap(),
        ["tls_sha3_512", "hmac_sha3_512", "tls_anon", "cleartext"]
    );
    assert!(!c.autocork());
    assert!(c.nodelay());
    assert!(!c.secure());
    c.validate("h").unwrap();
}

#[test]
fn null_means_default() {
    let c = cfg(json!({"monitor_timeout": null, "nodelay": null, "binds": null, "secret": null}));
    assert_eq!(c.monitor_timeout().unwrap(), Duration::from_secs(30));
    assert!(c.nodelay());
    assert_eq!(c.binds("h").unwrap(), [Addr::tcp("*", 0)]);
    assert_eq!(c.secret().unwrap(), None);
}

#[test]
fn flags_use_truthiness() {
    let c = cfg(json!({"secure": "1", "nodelay": "0", "autocork": 1}));
    assert!(c.secure() && !c.nodelay() && c.autocork());
    let c = cfg(json!({"secure": "", "nodelay": false, "autocork": "0"}));
    assert!(!c.secure() && !c.nodelay() && !c.autocork());
}

#[test]
fn nodeid_template_rules() {
    assert_eq!(
        cfg(json!({"nodeid": "aemp/%n/%u"}))
            .nodeid_template()
            .unwrap(),
        "aemp/%n/%u"
    );
    assert_eq!(cfg(json!({"nodeid": 7})).nodeid_template().unwrap(), "7");
    for bad in [
        json!(""),
        json!("0"),
        json!(null),
        json!(0),
        json!(["x"]),
        json!("a#b"),
    ] {
        assert!(
            cfg(json!({ "nodeid": bad })).nodeid_template().is_err(),
            "{bad}"
        );
    }
    let (id, rnd) = crate::id::expand_node_id(
        &Config::new("host", JsonMap::new())
            .nodeid_template()
            .unwrap(),
        "host",
        "RUNIQRUNIQ",
    );
    assert_eq!((id.as_str(), rnd), ("host/RUNIQRUNIQ", true));
}

#[test]
fn strings_accept_numbers_refuse_structures() {
    assert_eq!(
        cfg(json!({"secret": 42})).secret().unwrap().as_deref(),
        Some("42")
    );
    assert!(cfg(json!({"secret": {"a": 1}})).secret().is_err());
    assert!(cfg(json!({"cert": [1]})).cert().is_err());
}

#[test]
fn durations() {
    let c =
        cfg(json!({"monitor_timeout": 0.25, "connect_interval": " 3 ", "heartbeat_timeout": 0}));
    assert_eq!(c.monitor_timeout().unwrap(), Duration::from_millis(250));
    assert_eq!(c.connect_interval().unwrap(), Duration::from_secs(3));
    assert_eq!(c.heartbeat_timeout().unwrap(), Duration::ZERO);
    for bad in [
        json!(-1),
        json!("2s"),
        json!("NaN"),
        json!("inf"),
        json!(true),
        json!([1]),
        json!(1e300),
    ] {
        let e = cfg(json!({ "monitor_timeout": bad }))
            .monitor_timeout()
            .unwrap_err();
        assert!(
            matches!(&e, ConfigError::BadValue { key, .. } if key == "monitor_timeout"),
            "{e}"
        );
    }
}

#[test]
fn byte_sizes() {
    let c = cfg(json!({"max_packet": 1024, "max_queue": "2048"}));
    assert_eq!(c.max_packet().unwrap(), 1024);
    assert_eq!(c.max_queue().unwrap(), 2048);
    for bad in [json!(0), json!(-5), json!(1.5), json!("x")] {
        assert!(
            cfg(json!({ "max_packet": bad })).max_packet().is_err(),
            "{bad}"
        );
    }
}

#[test]
fn lists_as_arrays_or_comma_strings() {
    let c = cfg(
        json!({"framing_format": "json,cbor", "auth_offer": ["hmac_sha3_512"], "seeds": "a:1,b:2"}),
    );
    assert_eq!(c.framing_format().unwrap(), ["json", "cbor"]);
    assert_eq!(c.auth_offer().unwrap(), ["hmac_sha3_512"]);
    assert_eq!(
        c.seeds("h").unwrap(),
        [Addr::tcp("a", 1), Addr::tcp("b", 2)]
    );
    assert!(cfg(json!({"auth_offer": 5})).auth_offer().is_err());
    assert!(cfg(json!({"auth_offer": [{}]})).auth_offer().is_err());
    assert_eq!(
        cfg(json!({"x": ["a", 1]}))
            .string_list("x")
            .unwrap()
            .unwrap(),
        ["a", "1"]
    );
    assert_eq!(cfg(json!({})).string_list("x").unwrap(), None);
}

#[test]
fn framing_filter_keeps_config_order() {
    let c = cfg(json!({"framing_format": ["storable", "json", "cbor", "json"]}));
    assert_eq!(
        c.framing_format_supported(&["cbor", "json"]).unwrap(),
        ["json", "cbor"]
    );
    assert!(c.framing_format_supported(&["msgpack"]).unwrap().is_empty());
}

#[test]
fn binds_and_seeds() {
    let c = cfg(json!({"binds": ["*:4040", "4041"], "seeds": ["ws://s:1/x", "s:2"]}));
    assert_eq!(
        c.binds("h").unwrap(),
        [Addr::tcp("*", 4040), Addr::tcp("h", 4041)]
    );
    assert_eq!(
        c.seeds("h").unwrap(),
        [Addr::Url("ws://s:1/x".into()), Addr::tcp("s", 2)]
    );
    assert!(cfg(json!({"binds": ["ws://s:1/x"]})).binds("h").is_err());
    // an explicit empty array = a bind-less node (Perl's `$binds ||= ["*"]`
    // keeps an empty array ref); an empty string still means "*"
    assert_eq!(cfg(json!({"binds": []})).binds("h").unwrap(), []);
    assert_eq!(
        cfg(json!({"binds": ""})).binds("h").unwrap(),
        [Addr::tcp("*", 0)]
    );
    assert!(cfg(json!({"seeds": "x:y"})).validate("h").is_err());
}

#[test]
fn services_forms() {
    let c = cfg(json!({"services": ["My::Mod::", "My::func", ["My::f", 1, "two"]]}));
    assert_eq!(
        c.services().unwrap(),
        [
            Service::Module("My::Mod::".into()),
            Service::Call("My::func".into()),
            Service::CallWithArgs("My::f".into(), vec![json!(1), json!("two")]),
        ]
    );
    assert_eq!(
        cfg(json!({"services": "a,b::"})).services().unwrap(),
        [Service::Call("a".into()), Service::Module("b::".into())]
    );
    for bad in [json!([[]]), json!([[1]]), json!([5]), json!([""]), json!(3)] {
        assert!(cfg(json!({ "services": bad })).services().is_err(), "{bad}");
    }
}

#[test]
fn unknown_keys_kept_and_showconfig_hides() {
    let rc = RcFile::parse(r#"{"version":1,"eval":"1","profile":{"p":{"parent":"q","zz":[1]}}}"#)
        .unwrap();
    let c = effective_config(Some("p"), &JsonMap::new(), Some(&rc), "h").unwrap();
    assert_eq!(c.get("zz"), Some(&json!([1])));
    assert_eq!(c.get("eval"), Some(&json!("1")));
    assert_eq!(c.get("version"), Some(&json!(1)));
    assert!(c.as_map().contains_key("profile") && c.as_map().contains_key("parent"));
    let shown = c.showconfig();
    assert!(!shown.contains_key("profile") && !shown.contains_key("parent"));
    assert!(shown.contains_key("zz") && shown.contains_key("monitor_timeout"));
    let text: Value = serde_json::from_str(&c.showconfig_pretty()).unwrap();
    assert_eq!(text, Value::Object(shown));
}

fn rc() -> RcFile {
    RcFile::parse(
        r#"{"version":1,"secret":"global","monitor_timeout":5,
            "profile":{"seed":{"binds":["*:4040"],"secret":"seed"},
                       "child":{"parent":"seed","nodeid":"c"}}}"#,
    )
    .unwrap()
}

#[test]
fn merge_normal_rc_wins() {
    let args = obj(json!({"secret": "arg", "seeds": "x:1", "monitor_timeout": 1}));
    let c = effective_config(Some("seed"), &args, Some(&rc()), "h").unwrap();
    assert_eq!(c.get("secret"), Some(&json!("seed")));
    assert_eq!(c.get("monitor_timeout"), Some(&json!(5)));
    assert_eq!(c.get("seeds"), Some(&json!("x:1")));
    assert_eq!(c.get("connect_interval"), Some(&json!(2)));
}

#[test]
fn merge_force_args_win() {
    let args = obj(json!({"secret": "arg", "force": 1}));
    let c = effective_config(Some("seed"), &args, Some(&rc()), "h").unwrap();
    assert_eq!(c.get("secret"), Some(&json!("arg")));
    assert_eq!(c.get("monitor_timeout"), Some(&json!(5)));
    assert_eq!(c.get("binds"), Some(&json!(["*:4040"])));
    assert!(c.get("force").is_none());
    // force => 0 is not force
    let args = obj(json!({"secret": "arg", "force": "0"}));
    let c = effective_config(Some("seed"), &args, Some(&rc()), "h").unwrap();
    assert_eq!(c.get("secret"), Some(&json!("seed")));
}

#[test]
fn merge_norc_ignores_rc() {
    let args = obj(json!({"norc": 1, "seeds": "x:1"}));
    let c = effective_config(Some("seed"), &args, Some(&rc()), "h").unwrap();
    assert_eq!(c.get("secret"), None);
    assert_eq!(c.get("monitor_timeout"), Some(&json!(30)));
    assert!(c.get("norc").is_none());
    let d = effective_config(Some("seed"), &obj(json!({"seeds": "x:1"})), None, "h").unwrap();
    assert_eq!(c.as_map(), d.as_map());
}

#[test]
fn merge_profile_selection() {
    // default profile = host name; unknown profile = global rc only
    let c = effective_config(None, &JsonMap::new(), Some(&rc()), "cerebro").unwrap();
    assert_eq!(c.profile_name(), "cerebro");
    assert_eq!(c.get("secret"), Some(&json!("global")));
    assert_eq!(c.nodeid_template().unwrap(), "cerebro/");
    // profile from args, removed from the map; explicit parameter wins
    let args = obj(json!({"profile": "child"}));
    let c = effective_config(None, &args, Some(&rc()), "h").unwrap();
    assert_eq!(c.profile_name(), "child");
    assert_eq!(c.get("secret"), Some(&json!("seed")));
    assert_eq!(c.nodeid_template().unwrap(), "c");
    let c = effective_config(Some("seed"), &args, Some(&rc()), "h").unwrap();
    assert_eq!(c.profile_name(), "seed");
    assert!(effective_config(None, &obj(json!({"profile": []})), None, "h").is_err());
}

#[test]
fn merge_replaces_whole_values() {
    let rc = RcFile::parse(r#"{"profile":{"p":{"services":["b"]}}}"#).unwrap();
    let args = obj(json!({"services": ["a"]}));
    let c = effective_config(Some("p"), &args, Some(&rc), "h").unwrap();
    assert_eq!(c.get("services"), Some(&json!(["b"])));
}

#[test]
fn merge_cycle_is_error() {
    let rc = RcFile::parse(r#"{"profile":{"a":{"parent":"b"},"b":{"parent":"a"}}}"#).unwrap();
    let e = effective_config(Some("a"), &JsonMap::new(), Some(&rc), "h").unwrap_err();
    assert!(matches!(e, ConfigError::ParentCycle(_)));
    assert!(e.to_string().contains("a -> b -> a"), "{e}");
    // norc never looks at the rc file
    assert!(effective_config(Some("a"), &obj(json!({"norc": true})), Some(&rc), "h").is_ok());
}

#[test]
fn cli_decoding() {
    let v = decode_cli_args(&argv(&["a", "{\"k\":1}", "\"[x\"", "3", "[1,2]"])).unwrap();
    assert_eq!(
        v,
        [
            json!("a"),
            json!({"k": 1}),
            json!("[x"),
            json!("3"),
            json!([1, 2])
        ]
    );
    let v = decode_cli_args(&argv(&["[\"profile\",\"p\",\"x\",1]", "ignored"])).unwrap();
    assert_eq!(v, [json!("profile"), json!("p"), json!("x"), json!(1)]);
    assert!(decode_cli_args(&argv(&["x", "[oops"])).is_err());
    assert!(decode_cli_args(&argv(&["[1", "x"])).is_err());
    assert!(decode_cli_args(&argv(&[])).unwrap().is_empty());
}

#[test]
fn configure_arg_pairs() {
    let (p, kv) = configure_args(&[json!("seed")]).unwrap();
    assert_eq!((p.as_deref(), kv.len()), (Some("seed"), 0));
    let (p, kv) = configure_args(&[
        json!("a"),
        json!("profile"),
        json!("b"),
        json!("x"),
        json!(1),
    ])
    .unwrap();
    assert_eq!(p.as_deref(), Some("b"));
    assert_eq!(Value::Object(kv), json!({"x": 1}));
    let (p, kv) = configure_args(&[json!("x"), json!(1), json!("x"), json!(2)]).unwrap();
    assert_eq!((p, kv["x"].clone()), (None, json!(2)));
    assert!(configure_args(&[json!(["k"]), json!(1)]).is_err());
    assert!(configure_args(&[json!({})]).is_err());
}

#[test]
fn run_args_end_to_end() {
    let (p, kv) = parse_run_args(&argv(&["nodeid", "x", "profile", "y"])).unwrap();
    assert_eq!(p.as_deref(), Some("y"));
    assert_eq!(Value::Object(kv.clone()), json!({"nodeid": "x"}));
    let c = effective_config(p.as_deref(), &kv, None, "h").unwrap();
    assert_eq!(c.nodeid_template().unwrap(), "x");
    let (p, kv) = parse_run_args(&argv(&["binds", "[\"*:4040\"]"])).unwrap();
    assert_eq!(p, None);
    let c = effective_config(p.as_deref(), &kv, None, "h").unwrap();
    assert_eq!(c.binds("h").unwrap(), [Addr::tcp("*", 4040)]);
}

#[test]
fn errors_display_clearly() {
    assert_eq!(ConfigError::RcEmpty.to_string(), "rc file is empty");
    let e = cfg(json!({"max_queue": "lots"})).max_queue().unwrap_err();
    assert_eq!(
        e.to_string(),
        "config key 'max_queue': 'lots' is not a number"
    );
    assert!(!e.is_rc_unreadable());
}

#[test]
fn node_id_expands_and_validates() {
    let c = cfg(json!({"nodeid": "n/%n"}));
    assert_eq!(c.node_id("box", "R").unwrap(), ("n/box".to_string(), false));
    let c = cfg(json!({}));
    assert_eq!(c.node_id("box", "R").unwrap(), ("prof/R".to_string(), true));
    // a host name with a control character makes an invalid ID
    let c = cfg(json!({"nodeid": "%n"}));
    assert!(c.node_id("a\nb", "R").is_err());
}
