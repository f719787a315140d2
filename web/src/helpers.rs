//! Pure helpers of the browser driver: no JavaScript, so they build and are
//! unit-tested on the host too.

use aemp_core::config::{effective_config, Config, JsonMap};
use aemp_core::Time;
use serde_json::Value as Json;

/// The largest integer a JavaScript number holds exactly (`Number.MAX_SAFE_INTEGER`).
pub const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

/// The longest delay `setTimeout` takes (2³¹−1 ms, about 24.8 days); longer
/// delays would overflow and fire at once, so the driver clamps and re-arms.
pub const MAX_TIMEOUT_MS: f64 = 2_147_483_647.0;

/// The host name a browser node uses for `%n` in node-ID templates and as
/// the default profile name (browsers have no host name of their own).
pub const DEFAULT_HOSTNAME: &str = "browser";

/// Maps a key of the JavaScript configuration object to its `configure`
/// key: camelCase becomes snake_case (`heartbeatInterval` →
/// `heartbeat_interval`), and `framing` is short for `framing_format`.
/// snake_case keys pass unchanged.
///
/// ```
/// use aemp_web::helpers::config_key;
/// assert_eq!(config_key("heartbeatInterval"), "heartbeat_interval");
/// assert_eq!(config_key("framing"), "framing_format");
/// assert_eq!(config_key("nodeid"), "nodeid");
/// assert_eq!(config_key("monitor_timeout"), "monitor_timeout");
/// ```
pub fn config_key(key: &str) -> String {
    match key {
        "framing" => return "framing_format".into(),
        "nodeId" => return "nodeid".into(),
        _ => {}
    }
    let mut out = String::with_capacity(key.len() + 4);
    for c in key.chars() {
        if c.is_ascii_uppercase() {
            if !out.is_empty() {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The effective configuration of a browser node from the (already
/// key-mapped) configuration object: `profile` and `hostname` are taken out
/// (the latter defaults to [`DEFAULT_HOSTNAME`]); `binds` must be absent or
/// empty, because a browser cannot listen. Returns the configuration and
/// the host name. Every typed key is validated up front.
pub fn browser_config(mut args: JsonMap) -> Result<(Config, String), String> {
    let hostname = match args.remove("hostname") {
        None | Some(Json::Null) => DEFAULT_HOSTNAME.to_string(),
        Some(Json::String(s)) if !s.is_empty() => s,
        Some(other) => return Err(format!("hostname: {other} is not a non-empty string")),
    };
    match args.remove("binds") {
        None | Some(Json::Null) => {}
        Some(Json::Array(a)) if a.is_empty() => {}
        Some(Json::String(s)) if s.is_empty() => {}
        Some(other) => {
            return Err(format!(
                "binds: a browser node cannot listen, binds must be empty (got {other})"
            ))
        }
    }
    let cfg = effective_config(None, &args, None, &hostname).map_err(|e| e.to_string())?;
    cfg.validate(&hostname).map_err(|e| e.to_string())?;
    Ok((cfg, hostname))
}

/// The WebSocket URL for an address the kernel asks to connect to: `ws://`
/// and `wss://` URLs are used as they are; a plain `host:port` (a TCP
/// address learnt from a peer) is tried as `ws://host:port/`.
///
/// ```
/// use aemp_web::helpers::ws_url;
/// assert_eq!(ws_url("wss://x.example/aemp"), "wss://x.example/aemp");
/// assert_eq!(ws_url("10.0.0.1:4040"), "ws://10.0.0.1:4040/");
/// assert_eq!(ws_url("[::1]:4040"), "ws://[::1]:4040/");
/// ```
pub fn ws_url(addr: &str) -> String {
    let lower = addr
        .get(..6)
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    if lower.starts_with("ws://") || lower.starts_with("wss://") {
        addr.to_string()
    } else {
        format!("ws://{addr}/")
    }
}

/// Milliseconds from `now` until `at` for `setTimeout`: rounded up (so the
/// timer never fires early and spins), 0 when due, at most [`MAX_TIMEOUT_MS`].
pub fn delay_ms(now: Time, at: Time) -> f64 {
    let ns = at.as_nanos().saturating_sub(now.as_nanos());
    (ns.div_ceil(1_000_000) as f64).min(MAX_TIMEOUT_MS)
}

/// A `Time` from milliseconds since the epoch (`performance.timeOrigin +
/// performance.now()`); negative or NaN input gives the epoch.
pub fn time_from_ms(ms: f64) -> Time {
    if ms.is_finite() && ms > 0.0 {
        Time::from_nanos((ms * 1e6) as u64)
    } else {
        Time::ZERO
    }
}

/// How a JavaScript number maps to a value: a safe integer is an integer,
/// anything else (fractions, NaN, infinities, huge numbers) a float.
///
/// ```
/// use aemp_core::Value;
/// use aemp_web::helpers::number_to_value;
/// assert_eq!(number_to_value(3.0), Value::Int(3));
/// assert_eq!(number_to_value(0.5), Value::Float(0.5));
/// assert_eq!(number_to_value(1e300), Value::Float(1e300));
/// ```
pub fn number_to_value(x: f64) -> aemp_core::Value {
    if x.is_finite() && x.fract() == 0.0 && x.abs() <= MAX_SAFE_INTEGER {
        aemp_core::Value::Int(x as i128)
    } else {
        aemp_core::Value::Float(x)
    }
}

/// The JavaScript number for an integer, if it is a safe integer (else the
/// driver hands out a `BigInt`).
pub fn int_as_number(i: i128) -> Option<f64> {
    let f = i as f64;
    (f.abs() <= MAX_SAFE_INTEGER).then_some(f)
}

/// The integer range values can carry on the wire (CBOR's: −2⁶⁴ … 2⁶⁴−1).
pub fn int_in_wire_range(i: i128) -> bool {
    (-(1i128 << 64)..=(u64::MAX as i128)).contains(&i)
}

/// A duration from a JavaScript millisecond count; `None` for negative,
/// NaN or infinite input.
pub fn duration_from_ms(ms: f64) -> Option<std::time::Duration> {
    (ms.is_finite() && ms >= 0.0).then(|| std::time::Duration::from_secs_f64(ms.min(1e15) / 1e3))
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use aemp_core::Value;
    use serde_json::json;

    fn map(v: Json) -> JsonMap {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn keys() {
        assert_eq!(config_key("maxQueue"), "max_queue");
        assert_eq!(config_key("authOffer"), "auth_offer");
        assert_eq!(config_key("nodeId"), "nodeid");
        assert_eq!(config_key("secret"), "secret");
    }

    #[test]
    fn config_defaults_to_browser_hostname() {
        let (cfg, host) = browser_config(map(json!({"seeds": ["ws://127.0.0.1:9/"]}))).unwrap();
        assert_eq!(host, "browser");
        assert_eq!(cfg.nodeid_template().unwrap(), "browser/");
        assert_eq!(
            cfg.seeds(&host).unwrap()[0].to_string(),
            "ws://127.0.0.1:9/"
        );
    }

    #[test]
    fn config_rejects_binds_and_bad_values() {
        assert!(browser_config(map(json!({"binds": ["*:4040"]})))
            .unwrap_err()
            .contains("cannot listen"));
        assert!(browser_config(map(json!({"binds": []}))).is_ok());
        assert!(browser_config(map(json!({"heartbeat_interval": "soon"}))).is_err());
        assert!(browser_config(map(json!({"hostname": 3}))).is_err());
        let (cfg, host) =
            browser_config(map(json!({"hostname": "tab1", "nodeid": "%n/x"}))).unwrap();
        assert_eq!(host, "tab1");
        assert_eq!(cfg.nodeid_template().unwrap(), "%n/x");
    }

    #[test]
    fn urls() {
        assert_eq!(ws_url("WS://A:1/"), "WS://A:1/");
        assert_eq!(ws_url("a:1"), "ws://a:1/");
        assert_eq!(ws_url(""), "ws:///");
        assert_eq!(ws_url("é:1"), "ws://é:1/");
    }

    #[test]
    fn delays() {
        let t = Time::from_nanos(5_000_000_000);
        assert_eq!(delay_ms(t, t), 0.0);
        assert_eq!(delay_ms(t, Time::ZERO), 0.0);
        assert_eq!(delay_ms(t, Time::from_nanos(5_000_000_001)), 1.0);
        assert_eq!(delay_ms(t, Time::from_nanos(5_002_000_000)), 2.0);
        assert_eq!(
            delay_ms(Time::ZERO, Time::from_nanos(u64::MAX)),
            MAX_TIMEOUT_MS
        );
        assert_eq!(time_from_ms(1.5).as_nanos(), 1_500_000);
        assert_eq!(time_from_ms(f64::NAN), Time::ZERO);
        assert_eq!(time_from_ms(-3.0), Time::ZERO);
    }

    #[test]
    fn numbers() {
        assert_eq!(number_to_value(-0.0), Value::Int(0));
        assert_eq!(
            number_to_value(MAX_SAFE_INTEGER),
            Value::Int(9_007_199_254_740_991)
        );
        assert_eq!(
            number_to_value(MAX_SAFE_INTEGER + 1.0),
            Value::Float(MAX_SAFE_INTEGER + 1.0)
        );
        assert!(matches!(number_to_value(f64::NAN), Value::Float(x) if x.is_nan()));
        assert_eq!(number_to_value(f64::INFINITY), Value::Float(f64::INFINITY));
        assert_eq!(int_as_number(-5), Some(-5.0));
        assert_eq!(int_as_number(1 << 53), None);
        assert_eq!(int_as_number(-(1 << 53) + 1), Some(-(MAX_SAFE_INTEGER)));
        assert!(int_in_wire_range(-(1i128 << 64)));
        assert!(int_in_wire_range(u64::MAX as i128));
        assert!(!int_in_wire_range(1i128 << 64));
        assert_eq!(duration_from_ms(1500.0).unwrap().as_millis(), 1500);
        assert!(duration_from_ms(-1.0).is_none());
        assert!(duration_from_ms(f64::NAN).is_none());
        assert!(duration_from_ms(f64::INFINITY).is_none());
    }
}
