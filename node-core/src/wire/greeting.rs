//! The two greeting lines both sides send at connection start (spec §5.1).
//!
//! Line 1: `<protocol>;<version>;<nodeid>;<auth list>;<framing list>[;key=value]*`,
//! with `;` and `%` in values escaped as `%3b` and `%25`; a key without `=`
//! has no value. Line 2: the nonce, base64 of 66 random bytes (88 chars).
//! Each line ends in LF; CR LF is accepted on input.
//!
//! ```
//! use aemp_core::wire::greeting::Greeting;
//! let g = Greeting::parse("aemp;1;seedA;hmac_sha3_512,cleartext;json;provider=AE-2.02;nproto=1;flag");
//! assert_eq!(g.node_id, "seedA");
//! assert_eq!(g.auth, ["hmac_sha3_512", "cleartext"]);
//! assert_eq!(g.get("provider"), Some("AE-2.02"));
//! assert_eq!(g.mproto(), Some("1"));
//! assert!(g.has("flag") && g.get("flag").is_none());
//! ```

use base64::Engine;

/// The protocol version we speak (the second field of line 1).
pub const PROTOCOL_VERSION: u32 = 1;

/// The number of random bytes in a nonce.
pub const NONCE_LEN: usize = 66;

/// A parsed greeting line 1.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Greeting {
    /// `aemp` (or `aemp-<word>` for sub-protocols such as DataConn).
    pub protocol: String,
    /// The version field as sent (compared numerically).
    pub version: String,
    /// The sender's node ID.
    pub node_id: String,
    /// Auth methods the sender accepts, in preference order.
    pub auth: Vec<String>,
    /// Framings the sender accepts, in preference order.
    pub framings: Vec<String>,
    /// `key=value` pairs in wire order, values unescaped; `None` for a key
    /// without `=`.
    pub kv: Vec<(String, Option<String>)>,
}

impl Greeting {
    /// Parses line 1 (without its line terminator). Like Perl's `split /;/`
    /// this never fails: missing fields are empty, and the handshake judges
    /// protocol and version.
    pub fn parse(line: &str) -> Greeting {
        let mut fields = line.split(';');
        let mut next = || fields.next().unwrap_or("").to_string();
        let protocol = next();
        let version = next();
        let node_id = next();
        let list = |s: String| -> Vec<String> {
            s.split(',')
                .filter(|x| !x.is_empty())
                .map(str::to_string)
                .collect()
        };
        let auth = list(next());
        let framings = list(next());
        let kv = fields
            .filter(|f| !f.is_empty())
            .map(|f| match f.split_once('=') {
                Some((k, v)) => (k.to_string(), Some(unescape(v))),
                None => (f.to_string(), None),
            })
            .collect();
        Greeting {
            protocol,
            version,
            node_id,
            auth,
            framings,
            kv,
        }
    }

    /// Renders line 1 (without terminator), escaping values.
    ///
    /// ```
    /// # use aemp_core::wire::greeting::Greeting;
    /// let g = Greeting {
    ///     protocol: "aemp".into(), version: "1".into(), node_id: "n".into(),
    ///     auth: vec!["hmac_sha3_512".into()], framings: vec!["cbor".into(), "json".into()],
    ///     kv: vec![("provider".into(), Some("x;y%".into())), ("k".into(), None)],
    /// };
    /// assert_eq!(g.to_line(), "aemp;1;n;hmac_sha3_512;cbor,json;provider=x%3by%25;k");
    /// assert_eq!(Greeting::parse(&g.to_line()), g);
    /// ```
    pub fn to_line(&self) -> String {
        let mut s = format!(
            "{};{};{};{};{}",
            self.protocol,
            self.version,
            self.node_id,
            self.auth.join(","),
            self.framings.join(",")
        );
        for (k, v) in &self.kv {
            s.push(';');
            s.push_str(k);
            if let Some(v) = v {
                s.push('=');
                s.push_str(&escape(v));
            }
        }
        s
    }

    /// True if the key is present (with or without a value).
    pub fn has(&self, key: &str) -> bool {
        self.kv.iter().any(|(k, _)| k == key)
    }

    /// The value of a key (the first occurrence); `None` if absent or valueless.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.kv
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| v.as_deref())
    }

    /// The node-protocol version: `mproto`, or its documented alias `nproto`.
    pub fn mproto(&self) -> Option<&str> {
        self.get("mproto").or_else(|| self.get("nproto"))
    }

    /// The global-protocol version (`gproto`).
    pub fn gproto(&self) -> Option<&str> {
        self.get("gproto")
    }

    /// The sender's software (`provider`, e.g. `AE-2.02`).
    pub fn provider(&self) -> Option<&str> {
        self.get("provider")
    }

    /// Our address as the sender sees it (`peeraddr`).
    pub fn peeraddr(&self) -> Option<&str> {
        self.get("peeraddr")
    }

    /// The version field as Perl compares it (numeric prefix, else 0).
    pub fn version_number(&self) -> f64 {
        perl_num(&self.version)
    }

    /// True if the sender wants TLS: `tls` present with integer part 1.
    pub fn wants_tls(&self) -> bool {
        self.get("tls").is_some_and(|v| perl_num(v).trunc() == 1.0)
    }
}

/// Perl's numeric value of a string: the longest numeric prefix after
/// leading whitespace, 0 if there is none.
pub(crate) fn perl_num(s: &str) -> f64 {
    let s = s.trim_start();
    let b = s.as_bytes();
    let mut end = 0;
    if matches!(b.first(), Some(b'+' | b'-')) {
        end = 1;
    }
    let digits = |mut i: usize| {
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        i
    };
    end = digits(end);
    if b.get(end) == Some(&b'.') {
        end = digits(end + 1);
    }
    if matches!(b.get(end), Some(b'e' | b'E')) {
        let mut e = end + 1;
        if matches!(b.get(e), Some(b'+' | b'-')) {
            e += 1;
        }
        let after = digits(e);
        if after > e {
            end = after;
        }
    }
    s[..end].parse().unwrap_or(0.0)
}

/// Escapes a greeting value: `%` → `%25`, `;` → `%3b`, and CR/LF (which
/// would break the line) → `%0d`/`%0a`.
pub fn escape(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '%' => s.push_str("%25"),
            ';' => s.push_str("%3b"),
            '\n' => s.push_str("%0a"),
            '\r' => s.push_str("%0d"),
            c => s.push(c),
        }
    }
    s
}

/// Undoes [`escape`]: every `%XX` with two hex digits becomes that byte;
/// other `%` are kept as they are.
pub fn unescape(v: &str) -> String {
    if !v.contains('%') {
        return v.to_string();
    }
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if let Some(h) = b.get(i + 1..i + 3).and_then(|h| {
                std::str::from_utf8(h)
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
            }) {
                out.push(h);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Greeting line 2: the base64 of the nonce (88 characters, no padding).
///
/// ```
/// # use aemp_core::wire::greeting::nonce_line;
/// assert_eq!(nonce_line(&[0u8; 66]).len(), 88);
/// ```
pub fn nonce_line(nonce: &[u8; NONCE_LEN]) -> String {
    base64::engine::general_purpose::STANDARD.encode(nonce)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_trace_greetings() {
        let g = Greeting::parse("aemp;1;nodeB;tls_sha3_512,hmac_sha3_512,tls_anon,cleartext;cbor,json,storable;provider=AE-2.02;peeraddr=127.0.0.1:5050;gproto=1;mproto=1");
        assert_eq!(g.protocol, "aemp");
        assert_eq!(g.version_number(), 1.0);
        assert_eq!(g.node_id, "nodeB");
        assert_eq!(
            g.auth,
            ["tls_sha3_512", "hmac_sha3_512", "tls_anon", "cleartext"]
        );
        assert_eq!(g.framings, ["cbor", "json", "storable"]);
        assert_eq!(g.provider(), Some("AE-2.02"));
        assert_eq!(g.peeraddr(), Some("127.0.0.1:5050"));
        assert_eq!(g.mproto(), Some("1"));
        assert_eq!(g.gproto(), Some("1"));
        assert!(!g.wants_tls());
        let py = Greeting::parse("aemp;1;pyclient;hmac_sha3_512,cleartext;json;provider=py-test");
        assert_eq!(py.framings, ["json"]);
        assert_eq!(py.mproto(), None);
    }

    #[test]
    fn escaping() {
        assert_eq!(escape("a;b%c\n"), "a%3bb%25c%0a");
        assert_eq!(unescape("a%3bb%25c%3B"), "a;b%c;");
        assert_eq!(unescape("100%"), "100%");
        assert_eq!(unescape("%zz%4"), "%zz%4");
        let g = Greeting::parse("aemp;1;n;a;b;k=v%3bw;=x;novalue");
        assert_eq!(g.get("k"), Some("v;w"));
        assert!(g.has("novalue"));
        assert_eq!(g.get("novalue"), None);
    }

    #[test]
    fn tls_and_numbers() {
        assert!(Greeting::parse("aemp;1;n;a;b;tls=1.0").wants_tls());
        assert!(Greeting::parse("aemp;1;n;a;b;tls=1.9").wants_tls());
        assert!(!Greeting::parse("aemp;1;n;a;b;tls=2.0").wants_tls());
        assert!(!Greeting::parse("aemp;1;n;a;b;tls").wants_tls());
        assert_eq!(perl_num(" 1.0abc"), 1.0);
        assert_eq!(perl_num("2"), 2.0);
        assert_eq!(perl_num("x"), 0.0);
        assert_eq!(perl_num("1e1"), 10.0);
        assert_eq!(perl_num("1e"), 1.0);
    }

    #[test]
    fn short_and_garbage_lines() {
        let g = Greeting::parse("GET / HTTP/1.1");
        assert_eq!(g.protocol, "GET / HTTP/1.1");
        assert!(g.node_id.is_empty() && g.auth.is_empty());
    }

    #[test]
    fn nonce_is_88_chars_without_padding() {
        let n = nonce_line(&[0xab; NONCE_LEN]);
        assert_eq!(n.len(), 88);
        assert!(!n.contains('='));
    }
}
