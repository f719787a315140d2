//! Configuration: `configure` arguments, the rc file, profiles and addresses (spec §3).
//!
//! This module is sans-IO like the rest of the core: the driver reads the rc
//! file and hands its *text* to [`RcFile::parse`], passes the host name in,
//! and expands `*` bind hosts to interface addresses with the pure helpers of
//! [`addr`]. Nothing here touches the file system, the environment, DNS or a
//! clock.
//!
//! * [`Config`] — the effective configuration (a JSON object, unknown keys
//!   kept) with typed accessors and documented defaults.
//! * [`effective_config`] — the `configure` profile merge of spec §3.2.
//! * [`decode_cli_args`], [`configure_args`], [`parse_run_args`] — Perl-style
//!   argument lists (`aemp run profile seed binds '["*:4040"]'`).
//! * [`rc`] — the rc file: parsing relaxed JSON, profiles, the editing API
//!   of the `aemp` configuration commands.
//! * [`addr`] — bind/seed address syntax and the `*` interface filter.
//!
//! ```
//! use aemp_core::config::{effective_config, parse_run_args, RcFile};
//! let rc = RcFile::parse(r#"{ "version": 1, "secret": "g",
//!     "profile": { "seed": { "binds": "*:4040" } } }"#).unwrap();
//! let argv: Vec<String> = ["seed", "nodeid", "x"].iter().map(|s| s.to_string()).collect();
//! let (profile, args) = parse_run_args(&argv).unwrap();
//! let cfg = effective_config(profile.as_deref(), &args, Some(&rc), "cerebro").unwrap();
//! assert_eq!(cfg.profile_name(), "seed");
//! assert_eq!(cfg.nodeid_template().unwrap(), "x");
//! assert_eq!(cfg.secret().unwrap().as_deref(), Some("g"));
//! assert_eq!(cfg.binds("cerebro").unwrap()[0].to_string(), "*:4040");
//! ```

pub mod addr;
pub mod rc;

pub use addr::{Addr, AddrUse};
pub use rc::{RcFile, Target};

use serde_json::{Map, Value};
use std::fmt;
use std::time::Duration;

/// A JSON object: the shape of configure arguments, rc levels and configs.
pub type JsonMap = Map<String, Value>;

/// Everything that can be wrong with configuration input.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// The rc text is empty (or only whitespace/comments). Perl treats this
    /// like a missing file; the CLI must not overwrite a file it got no
    /// configuration from without noticing.
    RcEmpty,
    /// The rc text is not (relaxed) JSON.
    RcSyntax {
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// What the JSON parser said.
        msg: String,
    },
    /// The rc text is JSON but not of the expected shape (top level not an
    /// object, `profile` not an object of objects).
    RcShape(String),
    /// A configuration key has a value of the wrong type or form.
    BadValue {
        /// The key.
        key: String,
        /// What is wrong.
        msg: String,
    },
    /// A bind or seed address cannot be parsed.
    BadAddress {
        /// The offending element.
        spec: String,
        /// What is wrong.
        msg: String,
    },
    /// A profile's `parent` chain loops; the names in visiting order, the
    /// repeated one last. (Perl recurses forever here.)
    ParentCycle(Vec<String>),
    /// A Perl-style argument list is malformed.
    BadArgs(String),
}

impl ConfigError {
    /// True for the errors that mean "the rc text could not be read as a
    /// configuration": the CLI should refuse to save over such a file.
    pub fn is_rc_unreadable(&self) -> bool {
        matches!(
            self,
            ConfigError::RcEmpty | ConfigError::RcSyntax { .. } | ConfigError::RcShape(_)
        )
    }

    pub(crate) fn bad(key: &str, msg: impl Into<String>) -> Self {
        ConfigError::BadValue {
            key: key.into(),
            msg: msg.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::RcEmpty => write!(f, "rc file is empty"),
            ConfigError::RcSyntax { line, column, msg } => {
                write!(
                    f,
                    "rc file: JSON syntax error at line {line}, column {column}: {msg}"
                )
            }
            ConfigError::RcShape(m) => write!(f, "rc file: {m}"),
            ConfigError::BadValue { key, msg } => write!(f, "config key '{key}': {msg}"),
            ConfigError::BadAddress { spec, msg } => write!(f, "{spec}: unparsable address: {msg}"),
            ConfigError::ParentCycle(chain) => {
                write!(f, "profile parent chain loops: {}", chain.join(" -> "))
            }
            ConfigError::BadArgs(m) => write!(f, "bad arguments: {m}"),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Perl truthiness of a JSON value: `null`, `false`, `0`, `0.0`, `""` and
/// `"0"` are false; everything else (including `"0.0"`, `"00"`, `[]`, `{}`)
/// is true.
///
/// ```
/// use aemp_core::config::perl_truthy;
/// use serde_json::json;
/// assert!(!perl_truthy(&json!("0")) && !perl_truthy(&json!(0)) && !perl_truthy(&json!(null)));
/// assert!(perl_truthy(&json!("0.0")) && perl_truthy(&json!([])));
/// ```
pub fn perl_truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !(s.is_empty() || s == "0"),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// Perl's `split /,/, $s`: fields between commas, trailing empty fields
/// dropped (so `""` gives no field and `"a,"` gives `["a"]`, while
/// `",a"` gives `["", "a"]`).
pub(crate) fn perl_split_comma(s: &str) -> Vec<&str> {
    let mut v: Vec<&str> = s.split(',').collect();
    while v.last() == Some(&"") {
        v.pop();
    }
    v
}

/// A scalar as Perl would stringify it: strings as they are, numbers in
/// their JSON form, booleans as `1`/`""`. `None` for null, arrays, objects.
pub(crate) fn scalar_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(if *b { "1".into() } else { String::new() }),
        _ => None,
    }
}

/// The defaults Perl's `find_profile` starts from (spec §3.2). Other keys'
/// defaults live in the [`Config`] accessors, so they do not show up in
/// `showconfig` output, exactly as in Perl.
///
/// ```
/// let d = aemp_core::config::perl_defaults();
/// assert_eq!(d["monitor_timeout"], 30);
/// assert_eq!(d["framing_format"], serde_json::json!(["cbor", "json", "storable"]));
/// ```
pub fn perl_defaults() -> JsonMap {
    let mut m = JsonMap::new();
    m.insert("monitor_timeout".into(), 30.into());
    m.insert("connect_interval".into(), 2.into());
    m.insert(
        "framing_format".into(),
        Value::from(DEFAULT_FRAMING_FORMAT.to_vec()),
    );
    m.insert(
        "auth_offer".into(),
        Value::from(DEFAULT_AUTH_OFFER.to_vec()),
    );
    m.insert(
        "auth_accept".into(),
        Value::from(DEFAULT_AUTH_ACCEPT.to_vec()),
    );
    m
}

/// Default `framing_format` (Perl 2.x): offered/accepted framings in preference order.
pub const DEFAULT_FRAMING_FORMAT: &[&str] = &["cbor", "json", "storable"];
/// Default `auth_offer`: methods we are willing to send.
pub const DEFAULT_AUTH_OFFER: &[&str] = &["tls_sha3_512", "hmac_sha3_512"];
/// Default `auth_accept`: methods we advertise as acceptable from the peer.
pub const DEFAULT_AUTH_ACCEPT: &[&str] =
    &["tls_sha3_512", "hmac_sha3_512", "tls_anon", "cleartext"];
/// Default `binds`: all local interface addresses, ephemeral port.
pub const DEFAULT_BINDS: &[&str] = &["*"];
/// Default `monitor_timeout` in seconds.
pub const DEFAULT_MONITOR_TIMEOUT: f64 = 30.0;
/// Default `connect_interval` in seconds.
pub const DEFAULT_CONNECT_INTERVAL: f64 = 2.0;
/// Default `heartbeat_interval` in seconds (extension).
pub const DEFAULT_HEARTBEAT_INTERVAL: f64 = 2.0;
/// Default `heartbeat_timeout` in seconds (extension).
pub const DEFAULT_HEARTBEAT_TIMEOUT: f64 = 10.0;
/// Default `max_packet` in bytes (extension): 16 MiB.
pub const DEFAULT_MAX_PACKET: usize = 16 << 20;
/// Default `max_queue` in bytes (extension): 64 MiB.
pub const DEFAULT_MAX_QUEUE: usize = 64 << 20;

/// One entry of the `services` list (spec §3.3).
#[derive(Clone, Debug, PartialEq)]
pub enum Service {
    /// A string ending in `::`: load that module (Perl `require`). A Rust
    /// node maps module names to whatever it registered under that name.
    Module(String),
    /// Any other string: call this function (resolved like `spawn`).
    Call(String),
    /// An array `[func, args…]`: call `func` with the arguments.
    CallWithArgs(String, Vec<Value>),
}

/// The effective configuration of a node: a JSON object exactly as Perl's
/// `find_profile` computes it (unknown keys carried untouched) plus the
/// profile name it was computed for.
///
/// Typed accessors apply the defaults and check the form of a value; those
/// that can fail return [`ConfigError`] (call [`Config::validate`] once to
/// check them all up front).
///
/// | accessor | key | default |
/// |---|---|---|
/// | [`nodeid_template`](Config::nodeid_template) | `nodeid` | `<profile>/` |
/// | [`secret`](Config::secret) | `secret` | none |
/// | [`cert`](Config::cert) | `cert` | none |
/// | [`binds`](Config::binds) | `binds` | `["*"]` (also for an empty list) |
/// | [`seeds`](Config::seeds) | `seeds` | none |
/// | [`services`](Config::services) | `services` | none |
/// | [`monitor_timeout`](Config::monitor_timeout) | `monitor_timeout` | 30 s |
/// | [`connect_interval`](Config::connect_interval) | `connect_interval` | 2 s |
/// | [`framing_format`](Config::framing_format) | `framing_format` | `["cbor","json","storable"]` |
/// | [`auth_offer`](Config::auth_offer) | `auth_offer` | `["tls_sha3_512","hmac_sha3_512"]` |
/// | [`auth_accept`](Config::auth_accept) | `auth_accept` | `["tls_sha3_512","hmac_sha3_512","tls_anon","cleartext"]` |
/// | [`autocork`](Config::autocork) | `autocork` | false |
/// | [`nodelay`](Config::nodelay) | `nodelay` | true |
/// | [`secure`](Config::secure) | `secure` | false |
/// | [`heartbeat_interval`](Config::heartbeat_interval) | `heartbeat_interval` *(extension)* | 2 s |
/// | [`heartbeat_timeout`](Config::heartbeat_timeout) | `heartbeat_timeout` *(extension)* | 10 s |
/// | [`max_packet`](Config::max_packet) | `max_packet` *(extension)* | 16 MiB |
/// | [`max_queue`](Config::max_queue) | `max_queue` *(extension)* | 64 MiB |
///
/// A key that is absent or `null` takes its default. Lists may be JSON
/// arrays or comma-separated strings (`"a:1,b:2"`, split like Perl's
/// `split /,/`). Durations are numbers of seconds (fractions allowed) or
/// numeric strings. Booleans use Perl truthiness ([`perl_truthy`]).
/// The extension keys are ignored by Perl nodes (they carry unknown keys
/// untouched), so one rc file can serve both.
///
/// ```
/// use aemp_core::config::Config;
/// use std::time::Duration;
/// let cfg = Config::new("web", serde_json::json!({"monitor_timeout": "2.5", "secure": "0"})
///     .as_object().unwrap().clone());
/// assert_eq!(cfg.monitor_timeout().unwrap(), Duration::from_millis(2500));
/// assert_eq!(cfg.connect_interval().unwrap(), Duration::from_secs(2));
/// assert!(!cfg.secure());
/// assert_eq!(cfg.nodeid_template().unwrap(), "web/");
/// ```
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Config {
    profile: String,
    map: JsonMap,
}

impl Config {
    /// A configuration from a profile name and the merged key/values.
    pub fn new(profile: impl Into<String>, map: JsonMap) -> Self {
        Config {
            profile: profile.into(),
            map,
        }
    }

    /// The profile name this configuration was computed for (the
    /// `profile` configure argument, default the host name).
    pub fn profile_name(&self) -> &str {
        &self.profile
    }

    /// All keys, as merged (including Perl's `version`/`profile` leftovers
    /// from the rc file's global level).
    pub fn as_map(&self) -> &JsonMap {
        &self.map
    }

    /// Consumes the config, returning the key/value map.
    pub fn into_map(self) -> JsonMap {
        self.map
    }

    /// The raw value of a key; `null` counts as absent.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    /// Sets a key (e.g. for a driver that fixes a value after the merge).
    pub fn set(&mut self, key: impl Into<String>, value: Value) {
        self.map.insert(key.into(), value);
    }

    /// What `aemp showconfig` prints: the map without the `profile`
    /// (all-profiles table) and `parent` keys.
    ///
    /// ```
    /// use aemp_core::config::Config;
    /// let m = serde_json::json!({"profile": {}, "parent": "x", "secret": "s"});
    /// let cfg = Config::new("p", m.as_object().unwrap().clone());
    /// assert_eq!(serde_json::Value::Object(cfg.showconfig()), serde_json::json!({"secret": "s"}));
    /// ```
    pub fn showconfig(&self) -> JsonMap {
        let mut m = self.map.clone();
        m.remove("profile");
        m.remove("parent");
        m
    }

    /// [`showconfig`](Config::showconfig) as pretty-printed JSON text.
    pub fn showconfig_pretty(&self) -> String {
        serde_json::to_string_pretty(&Value::Object(self.showconfig()))
            .unwrap_or_else(|_| "{}".into())
    }

    /// The node-ID template (spec §1.2 step 1): the `nodeid` key if present,
    /// else `<profile>/`. Expand it with [`crate::id::expand_node_id`].
    /// Like Perl (`$node or croak`), a present but false value (`null`,
    /// `""`, `"0"`) is an illegal node ID; so is one containing `#`.
    ///
    /// ```
    /// use aemp_core::config::Config;
    /// use aemp_core::id::expand_node_id;
    /// let cfg = Config::new("cerebro", Default::default());
    /// let t = cfg.nodeid_template().unwrap();
    /// assert_eq!(expand_node_id(&t, "cerebro", "ZQDGSIkRhE").0, "cerebro/ZQDGSIkRhE");
    /// ```
    pub fn nodeid_template(&self) -> Result<String, ConfigError> {
        let t = match self.map.get("nodeid") {
            None => format!("{}/", self.profile),
            Some(v) => {
                if !perl_truthy(v) {
                    return Err(ConfigError::bad("nodeid", "illegal (empty) node ID"));
                }
                scalar_string(v).ok_or_else(|| ConfigError::bad("nodeid", "must be a string"))?
            }
        };
        if t.contains('#') {
            return Err(ConfigError::bad("nodeid", format!("'{t}' contains '#'")));
        }
        Ok(t)
    }

    /// The node ID (spec §1.2 steps 1–3): [`nodeid_template`](Config::nodeid_template)
    /// expanded with [`crate::id::expand_node_id`] and checked with
    /// [`crate::id::validate_node_id`]. Returns the ID and whether a random
    /// part was substituted (then the local port prefix `UNIQ` is empty).
    ///
    /// ```
    /// use aemp_core::config::Config;
    /// let cfg = Config::new("aemp", serde_json::json!({"nodeid": "aemp/%n/%u"})
    ///     .as_object().unwrap().clone());
    /// assert_eq!(cfg.node_id("cerebro", "ZQDGSIkRhE").unwrap(),
    ///            ("aemp/cerebro/ZQDGSIkRhE".to_string(), true));
    /// ```
    pub fn node_id(&self, hostname: &str, runiq: &str) -> Result<(String, bool), ConfigError> {
        let (id, randomised) = crate::id::expand_node_id(&self.nodeid_template()?, hostname, runiq);
        crate::id::validate_node_id(&id).map_err(|e| ConfigError::bad("nodeid", e))?;
        Ok((id, randomised))
    }

    fn opt_string(&self, key: &str) -> Result<Option<String>, ConfigError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => scalar_string(v)
                .map(Some)
                .ok_or_else(|| ConfigError::bad(key, "must be a string")),
        }
    }

    /// The shared secret for HMAC authentication, if any.
    pub fn secret(&self) -> Result<Option<String>, ConfigError> {
        self.opt_string("secret")
    }

    /// The PEM text (key + certificate + optional CA certificates), if any.
    pub fn cert(&self) -> Result<Option<String>, ConfigError> {
        self.opt_string("cert")
    }

    /// A list of strings: a JSON array of scalars, or one comma-separated
    /// string. `None` when absent or null.
    pub fn string_list(&self, key: &str) -> Result<Option<Vec<String>>, ConfigError> {
        let Some(v) = self.get(key) else {
            return Ok(None);
        };
        string_list_value(key, v).map(Some)
    }

    fn list_or(&self, key: &str, default: &[&str]) -> Result<Vec<String>, ConfigError> {
        Ok(self
            .string_list(key)?
            .unwrap_or_else(|| default.iter().map(|s| s.to_string()).collect()))
    }

    /// The listen addresses (spec §3.3), parsed with [`addr::parse_addrs`];
    /// default `["*"]`. As in Perl (`$binds ||= ["*"]`), a missing, null or
    /// empty-string value means `["*"]`, while an explicit empty array `[]`
    /// means no listeners: a *bind-less* node (see `docs/routing.md`). `*`
    /// hosts are kept for the driver to expand ([`addr::expand_wildcard`]).
    pub fn binds(&self, hostname: &str) -> Result<Vec<Addr>, ConfigError> {
        if matches!(self.get("binds"), Some(Value::Array(a)) if a.is_empty()) {
            return Ok(Vec::new());
        }
        let mut list = self.list_or("binds", DEFAULT_BINDS)?;
        if list.is_empty() {
            list = vec!["*".into()];
        }
        addr::parse_addrs(&list, hostname, AddrUse::Bind)
    }

    /// The seed addresses; default none. `ws://`/`wss://` URLs are accepted
    /// (extension).
    pub fn seeds(&self, hostname: &str) -> Result<Vec<Addr>, ConfigError> {
        let list = self.list_or("seeds", &[])?;
        addr::parse_addrs(&list, hostname, AddrUse::Seed)
    }

    /// The services to start (spec §3.3); a comma-separated string is a list
    /// of plain names.
    pub fn services(&self) -> Result<Vec<Service>, ConfigError> {
        let items: Vec<Value> = match self.get("services") {
            None => return Ok(vec![]),
            Some(Value::String(s)) => perl_split_comma(s)
                .into_iter()
                .map(|x| Value::String(x.into()))
                .collect(),
            Some(Value::Array(a)) => a.clone(),
            Some(_) => return Err(ConfigError::bad("services", "must be a list or a string")),
        };
        items
            .into_iter()
            .map(|item| match item {
                Value::String(s) if s.is_empty() => {
                    Err(ConfigError::bad("services", "empty service name"))
                }
                Value::String(s) if s.ends_with("::") => Ok(Service::Module(s)),
                Value::String(s) => Ok(Service::Call(s)),
                Value::Array(mut a) => {
                    if a.is_empty() {
                        return Err(ConfigError::bad("services", "empty array entry"));
                    }
                    match a.remove(0) {
                        Value::String(f) if !f.is_empty() => Ok(Service::CallWithArgs(f, a)),
                        _ => Err(ConfigError::bad(
                            "services",
                            "an array entry must start with a function name",
                        )),
                    }
                }
                other => Err(ConfigError::bad(
                    "services",
                    format!("entry {other} is neither a string nor an array"),
                )),
            })
            .collect()
    }

    /// A duration in seconds (number or numeric string, ≥ 0, finite);
    /// `default` seconds when absent or null.
    pub fn duration(&self, key: &str, default: f64) -> Result<Duration, ConfigError> {
        let Some(v) = self.get(key) else {
            return Ok(Duration::from_secs_f64(default));
        };
        let secs = number_value(key, v)?;
        if !(secs.is_finite() && (0.0..=1e12).contains(&secs)) {
            return Err(ConfigError::bad(
                key,
                format!("{secs} is not a usable number of seconds"),
            ));
        }
        Ok(Duration::from_secs_f64(secs))
    }

    /// Handshake read timeout, reconnect back-off cap, address budget; 30 s.
    pub fn monitor_timeout(&self) -> Result<Duration, ConfigError> {
        self.duration("monitor_timeout", DEFAULT_MONITOR_TIMEOUT)
    }

    /// Spacing between connection attempts to successive addresses (and the
    /// overall connect timeout in Perl 2.x, spec §14.3); 2 s.
    pub fn connect_interval(&self) -> Result<Duration, ConfigError> {
        self.duration("connect_interval", DEFAULT_CONNECT_INTERVAL)
    }

    /// *Extension:* how often to send a keepalive on an idle connection; 2 s.
    pub fn heartbeat_interval(&self) -> Result<Duration, ConfigError> {
        self.duration("heartbeat_interval", DEFAULT_HEARTBEAT_INTERVAL)
    }

    /// *Extension:* how long a silent connection lives before it is declared
    /// dead; 10 s.
    pub fn heartbeat_timeout(&self) -> Result<Duration, ConfigError> {
        self.duration("heartbeat_timeout", DEFAULT_HEARTBEAT_TIMEOUT)
    }

    /// A byte count: a non-negative integer (or numeric string), > 0.
    pub fn byte_size(&self, key: &str, default: usize) -> Result<usize, ConfigError> {
        let Some(v) = self.get(key) else {
            return Ok(default);
        };
        let n = number_value(key, v)?;
        if !(n.is_finite() && n >= 1.0 && n.fract() == 0.0 && n <= usize::MAX as f64) {
            return Err(ConfigError::bad(
                key,
                format!("{n} is not a positive whole number of bytes"),
            ));
        }
        Ok(n as usize)
    }

    /// *Extension:* the largest packet we accept or send, in bytes; 16 MiB.
    pub fn max_packet(&self) -> Result<usize, ConfigError> {
        self.byte_size("max_packet", DEFAULT_MAX_PACKET)
    }

    /// *Extension:* bytes queued per remote node while connecting; 64 MiB.
    pub fn max_queue(&self) -> Result<usize, ConfigError> {
        self.byte_size("max_queue", DEFAULT_MAX_QUEUE)
    }

    /// Framings offered/accepted, in preference order, as configured.
    pub fn framing_format(&self) -> Result<Vec<String>, ConfigError> {
        self.list_or("framing_format", DEFAULT_FRAMING_FORMAT)
    }

    /// [`framing_format`](Config::framing_format) restricted to the
    /// framings this implementation speaks (`supported`), keeping the
    /// configured order; duplicates removed.
    ///
    /// ```
    /// let cfg = aemp_core::config::Config::default();
    /// assert_eq!(cfg.framing_format_supported(&["json", "cbor"]).unwrap(), ["cbor", "json"]);
    /// ```
    pub fn framing_format_supported(&self, supported: &[&str]) -> Result<Vec<String>, ConfigError> {
        let mut out: Vec<String> = Vec::new();
        for f in self.framing_format()? {
            if supported.contains(&f.as_str()) && !out.contains(&f) {
                out.push(f);
            }
        }
        Ok(out)
    }

    /// Auth methods we are willing to send.
    pub fn auth_offer(&self) -> Result<Vec<String>, ConfigError> {
        self.list_or("auth_offer", DEFAULT_AUTH_OFFER)
    }

    /// Auth methods we advertise as acceptable from the peer.
    pub fn auth_accept(&self) -> Result<Vec<String>, ConfigError> {
        self.list_or("auth_accept", DEFAULT_AUTH_ACCEPT)
    }

    fn flag(&self, key: &str, default: bool) -> bool {
        self.get(key).map_or(default, perl_truthy)
    }

    /// Batch writes (AnyEvent::Handle autocork); default false.
    pub fn autocork(&self) -> bool {
        self.flag("autocork", false)
    }

    /// TCP_NODELAY; default true (absent or null). `0`, `""`, `"0"`,
    /// `false` turn it off.
    pub fn nodelay(&self) -> bool {
        self.flag("nodelay", true)
    }

    /// Secure mode (spec §3.4): refuse remote code execution; default false.
    pub fn secure(&self) -> bool {
        self.flag("secure", false)
    }

    /// Checks every typed key at once (addresses parsed against `hostname`).
    pub fn validate(&self, hostname: &str) -> Result<(), ConfigError> {
        self.nodeid_template()?;
        self.secret()?;
        self.cert()?;
        self.binds(hostname)?;
        self.seeds(hostname)?;
        self.services()?;
        self.monitor_timeout()?;
        self.connect_interval()?;
        self.heartbeat_interval()?;
        self.heartbeat_timeout()?;
        self.max_packet()?;
        self.max_queue()?;
        self.framing_format()?;
        self.auth_offer()?;
        self.auth_accept()?;
        Ok(())
    }
}

/// A list of strings from a JSON array of scalars or a comma-separated
/// string (Perl `split /,/` semantics: `""` is the empty list).
pub(crate) fn string_list_value(key: &str, v: &Value) -> Result<Vec<String>, ConfigError> {
    match v {
        Value::String(s) => Ok(perl_split_comma(s).into_iter().map(String::from).collect()),
        Value::Array(a) => a
            .iter()
            .map(|x| {
                scalar_string(x)
                    .ok_or_else(|| ConfigError::bad(key, format!("list entry {x} is not a string")))
            })
            .collect(),
        other => Err(ConfigError::bad(
            key,
            format!("{other} is neither a list nor a comma-separated string"),
        )),
    }
}

fn number_value(key: &str, v: &Value) -> Result<f64, ConfigError> {
    match v {
        Value::Number(n) => n
            .as_f64()
            .ok_or_else(|| ConfigError::bad(key, "number out of range")),
        Value::String(s) => s
            .trim()
            .parse::<f64>()
            .map_err(|_| ConfigError::bad(key, format!("'{s}' is not a number"))),
        other => Err(ConfigError::bad(key, format!("{other} is not a number"))),
    }
}

/// Computes the effective configuration (spec §3.1 step 1–2, §3.2).
///
/// * The profile name is `profile` if given, else the `profile` key of
///   `args`, else `hostname`.
/// * `args` are the configure key/values; the keys `profile`, `norc` and
///   `force` are consumed (Perl truthiness for the latter two).
/// * `rc` is the parsed rc file, `None` if there is none (then it is as if
///   `norc` were given).
///
/// Normal: `defaults ⊕ args ⊕ rc(profile)` (rc wins); `force`:
/// `defaults ⊕ rc(profile) ⊕ args`; `norc`: `defaults ⊕ args`. `⊕`
/// replaces whole values. `rc(profile)` is [`RcFile::resolve`]; a parent
/// cycle is an error.
///
/// ```
/// use aemp_core::config::{effective_config, RcFile};
/// use serde_json::json;
/// let rc = RcFile::parse(r#"{"version":1,"seeds":["a:1"]}"#).unwrap();
/// let args = json!({"seeds": "b:2"}).as_object().unwrap().clone();
/// let cfg = effective_config(None, &args, Some(&rc), "host").unwrap();
/// assert_eq!(cfg.profile_name(), "host");
/// assert_eq!(cfg.get("seeds"), Some(&json!(["a:1"])));  // rc wins
/// let mut forced = args.clone();
/// forced.insert("force".into(), json!(1));
/// let cfg = effective_config(None, &forced, Some(&rc), "host").unwrap();
/// assert_eq!(cfg.get("seeds"), Some(&json!("b:2")));    // args win
/// ```
pub fn effective_config(
    profile: Option<&str>,
    args: &JsonMap,
    rc: Option<&RcFile>,
    hostname: &str,
) -> Result<Config, ConfigError> {
    let mut args = args.clone();
    let arg_profile = args.remove("profile");
    let norc = args.remove("norc").is_some_and(|v| perl_truthy(&v));
    let force = args.remove("force").is_some_and(|v| perl_truthy(&v));
    let name = match profile {
        Some(p) => p.to_string(),
        None => match arg_profile {
            None | Some(Value::Null) => hostname.to_string(),
            Some(v) => {
                scalar_string(&v).ok_or_else(|| ConfigError::bad("profile", "must be a string"))?
            }
        },
    };

    let mut map = perl_defaults();
    let overlay = |map: &mut JsonMap, over: JsonMap| {
        for (k, v) in over {
            map.insert(k, v);
        }
    };
    match rc {
        Some(rc) if !norc => {
            let rcmap = rc.resolve(Some(&name))?;
            if force {
                overlay(&mut map, rcmap);
                overlay(&mut map, args);
            } else {
                overlay(&mut map, args);
                overlay(&mut map, rcmap);
            }
        }
        _ => overlay(&mut map, args),
    }
    Ok(Config::new(name, map))
}

/// Decodes command-line arguments the way `aemp` does (spec §10.1): if the
/// first argument starts with `[` it is a JSON array replacing all
/// arguments; otherwise every argument starting with `[`, `{` or `"` is
/// JSON-decoded in place and the rest stay strings.
///
/// ```
/// use aemp_core::config::decode_cli_args;
/// use serde_json::json;
/// let argv = ["binds", r#"["*:4040"]"#, r#""x""#].map(String::from);
/// assert_eq!(decode_cli_args(&argv).unwrap(), vec![json!("binds"), json!(["*:4040"]), json!("x")]);
/// ```
pub fn decode_cli_args(argv: &[String]) -> Result<Vec<Value>, ConfigError> {
    let decode = |s: &str| {
        serde_json::from_str::<Value>(s)
            .map_err(|e| ConfigError::BadArgs(format!("{s}: invalid JSON: {e}")))
    };
    if let Some(first) = argv.first().filter(|a| a.starts_with('[')) {
        return match decode(first)? {
            Value::Array(a) => Ok(a),
            _ => Err(ConfigError::BadArgs(format!("{first}: not a JSON array"))),
        };
    }
    argv.iter()
        .map(|a| {
            if a.starts_with(['[', '{', '"']) {
                decode(a)
            } else {
                Ok(Value::String(a.clone()))
            }
        })
        .collect()
}

/// Turns a Perl `configure` argument list into `(profile, key/values)`:
/// an odd number of arguments means the first one is the profile name
/// (spec §3.1); a `profile` key also names it (the last one given wins, as
/// in a Perl hash) and is removed from the map. Later duplicate keys win.
///
/// ```
/// use aemp_core::config::configure_args;
/// use serde_json::json;
/// let (p, kv) = configure_args(&[json!("seed"), json!("secure"), json!(1)]).unwrap();
/// assert_eq!(p.as_deref(), Some("seed"));
/// assert_eq!(kv["secure"], 1);
/// ```
pub fn configure_args(args: &[Value]) -> Result<(Option<String>, JsonMap), ConfigError> {
    let mut rest = args;
    let mut profile = None;
    if args.len() % 2 == 1 {
        profile = Some(args[0].clone());
        rest = &args[1..];
    }
    let mut map = JsonMap::new();
    for pair in rest.chunks(2) {
        let key = scalar_string(&pair[0])
            .ok_or_else(|| ConfigError::BadArgs(format!("{} is not usable as a key", pair[0])))?;
        if key == "profile" {
            profile = Some(pair[1].clone());
        } else {
            map.insert(key, pair[1].clone());
        }
    }
    let profile = match profile {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            scalar_string(&v)
                .ok_or_else(|| ConfigError::BadArgs(format!("profile {v} is not a string")))?,
        ),
    };
    Ok((profile, map))
}

/// The arguments of `aemp run …` (spec §10.2): [`decode_cli_args`] then
/// [`configure_args`].
///
/// ```
/// use aemp_core::config::parse_run_args;
/// use serde_json::json;
/// let argv = ["profile", "seed", "nodeid", "x", "binds", r#"["*:4040"]"#, "secret", "s3cret"]
///     .map(String::from);
/// let (profile, kv) = parse_run_args(&argv).unwrap();
/// assert_eq!(profile.as_deref(), Some("seed"));
/// assert_eq!(kv["binds"], json!(["*:4040"]));
/// assert_eq!(kv["secret"], "s3cret");
/// ```
pub fn parse_run_args(argv: &[String]) -> Result<(Option<String>, JsonMap), ConfigError> {
    configure_args(&decode_cli_args(argv)?)
}

#[cfg(test)]
mod tests;
