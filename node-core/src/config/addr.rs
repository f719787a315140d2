//! Bind and seed address syntax (spec §3.3) and the `*` interface filter.
//!
//! One element is parsed like Perl's `_resolve` + `AnyEvent::Socket::parse_hostport`:
//!
//! * `host:port`; IPv6 as `[addr]:port`, or a bare IPv6 address (port 0);
//! * host `*` = every local interface address ([`Addr::is_wildcard`]; the
//!   driver expands it with [`expand_wildcard`] and the list of its
//!   interface addresses);
//! * port `*` or missing = 0 (ephemeral);
//! * a bare number `4040` = `<hostname>:4040`; an empty element = the host
//!   name with port 0;
//! * *extension:* `ws://…` and `wss://…` URLs, kept verbatim with scheme,
//!   as seed addresses for browser/WebSocket seeds (not as binds).
//!
//! Ports must be numbers (0–65535) or `*`; service names (`host:http`),
//! which Perl would look up, are refused since the core does no lookups.
//! Host names are kept as given; resolving them is the driver's job.
//!
//! A string may hold a comma-separated list, split like Perl's
//! `split /,/` (trailing empty fields dropped, so `""` is no element).
//! Results are de-duplicated keeping the first occurrence.
//!
//! ```
//! use aemp_core::config::addr::{parse_addr_list, AddrUse};
//! let l = parse_addr_list("4040,[::1]:5,*:*,ws://h:1/p,4040", "cerebro", AddrUse::Seed).unwrap();
//! let s: Vec<String> = l.iter().map(|a| a.to_string()).collect();
//! assert_eq!(s, ["cerebro:4040", "[::1]:5", "*:0", "ws://h:1/p"]);
//! ```

use super::{perl_split_comma, ConfigError};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The host that stands for all local interface addresses.
pub const WILDCARD: &str = "*";

/// Where an address is used: binds may not be URLs.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum AddrUse {
    /// A listen address (`binds`).
    Bind,
    /// A seed address (`seeds`); URLs allowed.
    Seed,
}

/// One parsed bind or seed address.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Addr {
    /// A TCP endpoint. `host` is a name, an IP literal (IPv6 without
    /// brackets) or [`WILDCARD`]; port 0 means ephemeral (binds) / unknown.
    Tcp {
        /// Host name, IP literal or `*`.
        host: String,
        /// Port; 0 = ephemeral.
        port: u16,
    },
    /// *Extension:* a `ws://` or `wss://` URL, verbatim.
    Url(String),
}

impl Addr {
    /// A TCP address.
    pub fn tcp(host: impl Into<String>, port: u16) -> Self {
        Addr::Tcp {
            host: host.into(),
            port,
        }
    }

    /// True for host `*` (to be expanded to interface addresses).
    pub fn is_wildcard(&self) -> bool {
        matches!(self, Addr::Tcp { host, .. } if host == WILDCARD)
    }
}

/// `host:port` with IPv6 hosts bracketed; URLs as they are.
///
/// ```
/// use aemp_core::config::Addr;
/// assert_eq!(Addr::tcp("fe80::1", 4040).to_string(), "[fe80::1]:4040");
/// assert_eq!(Addr::tcp("10.0.0.1", 0).to_string(), "10.0.0.1:0");
/// ```
impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Addr::Tcp { host, port } if host.contains(':') => write!(f, "[{host}]:{port}"),
            Addr::Tcp { host, port } => write!(f, "{host}:{port}"),
            Addr::Url(u) => f.write_str(u),
        }
    }
}

fn bad(spec: &str, msg: impl Into<String>) -> ConfigError {
    ConfigError::BadAddress {
        spec: spec.into(),
        msg: msg.into(),
    }
}

fn parse_port(spec: &str, p: &str) -> Result<u16, ConfigError> {
    if p == "*" {
        return Ok(0);
    }
    if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(spec, format!("port '{p}' is not a number or '*'")));
    }
    p.parse::<u16>()
        .map_err(|_| bad(spec, format!("port {p} is out of range")))
}

fn check_host(spec: &str, h: &str) -> Result<(), ConfigError> {
    if h.is_empty() {
        return Err(bad(spec, "empty host"));
    }
    if h.chars()
        .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '[' | ']' | '#' | '/'))
    {
        return Err(bad(spec, format!("invalid character in host '{h}'")));
    }
    Ok(())
}

/// Parses one element (no commas). See the [module docs](self).
///
/// ```
/// use aemp_core::config::addr::{parse_addr, Addr, AddrUse};
/// assert_eq!(parse_addr("4040", "h", AddrUse::Bind).unwrap(), Addr::tcp("h", 4040));
/// assert_eq!(parse_addr("", "h", AddrUse::Bind).unwrap(), Addr::tcp("h", 0));
/// assert!(parse_addr("*:4040", "h", AddrUse::Bind).unwrap().is_wildcard());
/// assert!(parse_addr("ws://h/", "h", AddrUse::Bind).is_err());
/// ```
pub fn parse_addr(spec: &str, hostname: &str, usage: AddrUse) -> Result<Addr, ConfigError> {
    let t = spec.trim();
    let lower = t.to_ascii_lowercase();
    if let Some(rest) = lower
        .strip_prefix("ws://")
        .or_else(|| lower.strip_prefix("wss://"))
    {
        if usage == AddrUse::Bind {
            return Err(bad(spec, "URLs are only accepted as seed addresses"));
        }
        let host = rest.split(['/', '?', '#']).next().unwrap_or("");
        if host.is_empty() || t.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad(spec, "malformed WebSocket URL"));
        }
        return Ok(Addr::Url(t.to_string()));
    }
    if t.bytes().all(|b| b.is_ascii_digit()) {
        check_host(spec, hostname).map_err(|_| bad(spec, "no usable host name"))?;
        let port = if t.is_empty() {
            0
        } else {
            parse_port(spec, t)?
        };
        return Ok(Addr::tcp(hostname, port));
    }
    if let Some(rest) = t.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| bad(spec, "missing ']'"))?;
        if host.is_empty() || host.contains('[') {
            return Err(bad(spec, "empty or malformed bracketed host"));
        }
        let port = match after {
            "" => 0,
            _ => match after.strip_prefix(':') {
                Some(p) => parse_port(spec, p)?,
                None => return Err(bad(spec, "expected ':port' after ']'")),
            },
        };
        return Ok(Addr::tcp(host, port));
    }
    if t.matches(':').count() >= 2 {
        return match t.parse::<Ipv6Addr>() {
            Ok(_) => Ok(Addr::tcp(t, 0)),
            Err(_) => Err(bad(
                spec,
                "IPv6 addresses with a port need brackets: [addr]:port",
            )),
        };
    }
    let (host, port) = match t.split_once(':') {
        Some((h, p)) => (h, parse_port(spec, p)?),
        None => (t, 0),
    };
    check_host(spec, host)?;
    Ok(Addr::tcp(host, port))
}

fn push_unique(out: &mut Vec<Addr>, a: Addr) {
    if !out.contains(&a) {
        out.push(a);
    }
}

/// Parses a comma-separated list (Perl `split /,/` semantics) and
/// de-duplicates it keeping order. A URL element cannot contain commas.
pub fn parse_addr_list(
    spec: &str,
    hostname: &str,
    usage: AddrUse,
) -> Result<Vec<Addr>, ConfigError> {
    parse_addrs(&[spec], hostname, usage)
}

/// Parses a configured list (each entry may itself be a comma-separated
/// list) into one de-duplicated list, keeping first occurrences.
///
/// ```
/// use aemp_core::config::addr::{parse_addrs, AddrUse};
/// let l = parse_addrs(&["a:1,b:2", "a:1", "*"], "h", AddrUse::Bind).unwrap();
/// assert_eq!(l.iter().map(|a| a.to_string()).collect::<Vec<_>>(), ["a:1", "b:2", "*:0"]);
/// ```
pub fn parse_addrs<S: AsRef<str>>(
    specs: &[S],
    hostname: &str,
    usage: AddrUse,
) -> Result<Vec<Addr>, ConfigError> {
    let mut out = Vec::new();
    for s in specs {
        for elem in perl_split_comma(s.as_ref()) {
            push_unique(&mut out, parse_addr(elem, hostname, usage)?);
        }
    }
    Ok(out)
}

/// The addresses `*` stands for, given the machine's interface addresses
/// in enumeration order (spec §3.3): IPv4 addresses except 127.0.0.0/8,
/// then IPv6 addresses whose first byte is 0x20–0x3f (global unicast) or
/// 0xfc/0xfd (unique local / "site-local"), each family in input order,
/// duplicates removed.
///
/// **Decision:** if nothing is left (a laptop without network), `*` means
/// the IPv4 loopback `127.0.0.1`, so a node still starts and local tools
/// (`aemp` on the same host) can reach it. Perl would listen nowhere.
///
/// ```
/// use aemp_core::config::addr::wildcard_addrs;
/// use std::net::IpAddr;
/// let ips: Vec<IpAddr> = ["fe80::1", "2001:db8::1", "127.0.0.1", "10.0.0.5"]
///     .iter().map(|s| s.parse().unwrap()).collect();
/// assert_eq!(wildcard_addrs(&ips), ["10.0.0.5".parse::<IpAddr>().unwrap(), "2001:db8::1".parse().unwrap()]);
/// assert_eq!(wildcard_addrs(&[]), ["127.0.0.1".parse::<IpAddr>().unwrap()]);
/// ```
pub fn wildcard_addrs(ifaces: &[IpAddr]) -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = Vec::new();
    let v4 = ifaces.iter().filter(|a| match a {
        IpAddr::V4(v) => v.octets()[0] != 127,
        IpAddr::V6(_) => false,
    });
    let v6 = ifaces.iter().filter(|a| match a {
        IpAddr::V4(_) => false,
        IpAddr::V6(v) => matches!(v.octets()[0], 0x20..=0x3f | 0xfc | 0xfd),
    });
    for a in v4.chain(v6) {
        if !out.contains(a) {
            out.push(*a);
        }
    }
    if out.is_empty() {
        out.push(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    out
}

/// Replaces every `*` host in `addrs` by the [`wildcard_addrs`] of
/// `ifaces` (same port), keeping order and removing duplicates.
///
/// ```
/// use aemp_core::config::addr::{expand_wildcard, Addr};
/// let ips = ["192.168.1.2".parse().unwrap(), "2a01::7".parse().unwrap()];
/// let out = expand_wildcard(&[Addr::tcp("*", 4040), Addr::tcp("192.168.1.2", 4040)], &ips);
/// assert_eq!(out, [Addr::tcp("192.168.1.2", 4040), Addr::tcp("2a01::7", 4040)]);
/// ```
pub fn expand_wildcard(addrs: &[Addr], ifaces: &[IpAddr]) -> Vec<Addr> {
    let wild = wildcard_addrs(ifaces);
    let mut out = Vec::new();
    for a in addrs {
        match a {
            Addr::Tcp { port, .. } if a.is_wildcard() => {
                for ip in &wild {
                    push_unique(&mut out, Addr::tcp(ip.to_string(), *port));
                }
            }
            _ => push_unique(&mut out, a.clone()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Addr, ConfigError> {
        parse_addr(s, "myhost", AddrUse::Seed)
    }

    #[test]
    fn host_port_forms() {
        assert_eq!(p("a.b:4040").unwrap(), Addr::tcp("a.b", 4040));
        assert_eq!(p("a.b").unwrap(), Addr::tcp("a.b", 0));
        assert_eq!(p("a.b:*").unwrap(), Addr::tcp("a.b", 0));
        assert_eq!(p(" 10.0.0.1:1 ").unwrap(), Addr::tcp("10.0.0.1", 1));
    }

    #[test]
    fn wildcard_host() {
        for s in ["*", "*:*", "*:0"] {
            let a = p(s).unwrap();
            assert!(a.is_wildcard(), "{s}");
            assert_eq!(a, Addr::tcp("*", 0));
        }
        assert_eq!(p("*:4040").unwrap(), Addr::tcp("*", 4040));
        assert!(!p("x:1").unwrap().is_wildcard());
    }

    #[test]
    fn bare_number_and_empty_use_hostname() {
        assert_eq!(p("4040").unwrap(), Addr::tcp("myhost", 4040));
        assert_eq!(p("").unwrap(), Addr::tcp("myhost", 0));
        assert!(parse_addr("4040", "", AddrUse::Bind).is_err());
    }

    #[test]
    fn ipv6_forms() {
        assert_eq!(p("[::1]:4040").unwrap(), Addr::tcp("::1", 4040));
        assert_eq!(p("[::1]").unwrap(), Addr::tcp("::1", 0));
        assert_eq!(p("[::1]:*").unwrap(), Addr::tcp("::1", 0));
        assert_eq!(p("2001:db8::1").unwrap(), Addr::tcp("2001:db8::1", 0));
        assert_eq!(p("[::1]:4040").unwrap().to_string(), "[::1]:4040");
        assert!(p("2001:db8::1:4040:zz").is_err());
        assert!(p("[::1").is_err());
        assert!(p("[]:1").is_err());
        assert!(p("[::1]x").is_err());
    }

    #[test]
    fn bad_ports_and_hosts() {
        assert!(p("h:http").is_err());
        assert!(p("h:65536").is_err());
        assert!(p("h:").is_err());
        assert!(p("h:-1").is_err());
        assert!(p(":4040").is_err());
        assert!(p("a b:1").is_err());
        assert!(p("99999").is_err());
        let e = p("h:http").unwrap_err();
        assert!(e.to_string().contains("h:http"), "{e}");
    }

    #[test]
    fn urls_are_seeds_only() {
        assert_eq!(p("ws://h:1/x").unwrap(), Addr::Url("ws://h:1/x".into()));
        assert_eq!(p("WSS://H/").unwrap(), Addr::Url("WSS://H/".into()));
        assert_eq!(p("wss://h/").unwrap().to_string(), "wss://h/");
        assert!(p("ws://").is_err());
        assert!(p("ws:///path").is_err());
        assert!(parse_addr("ws://h:1/", "x", AddrUse::Bind).is_err());
    }

    #[test]
    fn lists_split_like_perl_and_dedup() {
        let l = parse_addr_list("a:1,,b:2,a:1,", "h", AddrUse::Bind).unwrap();
        assert_eq!(l, [Addr::tcp("a", 1), Addr::tcp("h", 0), Addr::tcp("b", 2)]);
        assert!(parse_addr_list("", "h", AddrUse::Bind).unwrap().is_empty());
        assert!(parse_addr_list("a:1,h:x", "h", AddrUse::Bind).is_err());
        // "4040" and "h:4040" are the same address after substitution
        let l = parse_addrs(&["4040", "h:4040"], "h", AddrUse::Bind).unwrap();
        assert_eq!(l, [Addr::tcp("h", 4040)]);
    }

    fn ips(v: &[&str]) -> Vec<IpAddr> {
        v.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn wildcard_filter_rules() {
        let input = ips(&[
            "::1",
            "fe80::1",
            "fd00::5",
            "127.0.0.1",
            "127.5.5.5",
            "2001:db8::1",
            "192.168.0.2",
            "3fff::1",
            "4000::1",
            "fc00::1",
            "10.1.1.1",
            "192.168.0.2",
        ]);
        assert_eq!(
            wildcard_addrs(&input),
            ips(&[
                "192.168.0.2",
                "10.1.1.1",
                "fd00::5",
                "2001:db8::1",
                "3fff::1",
                "fc00::1"
            ])
        );
    }

    #[test]
    fn wildcard_falls_back_to_loopback() {
        assert_eq!(
            wildcard_addrs(&ips(&["127.0.0.1", "::1", "fe80::2"])),
            ips(&["127.0.0.1"])
        );
    }

    #[test]
    fn expand_keeps_order_and_ports() {
        let addrs = parse_addr_list("*:1,x:2,*:1", "h", AddrUse::Bind).unwrap();
        let out = expand_wildcard(&addrs, &ips(&["fd00::1", "10.0.0.1"]));
        let s: Vec<String> = out.iter().map(|a| a.to_string()).collect();
        assert_eq!(s, ["10.0.0.1:1", "[fd00::1]:1", "x:2"]);
    }
}
