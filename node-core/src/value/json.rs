//! JSON encoding and decoding of [`Value`], via `serde_json`.
//!
//! This is the codec behind the `json` framing (spec §5.5). [`Value`]
//! implements `serde::Serialize` and `serde::Deserialize` with the mapping
//! below, so it also works with any other serde format.
//!
//! # Decoding
//!
//! Strings → [`Value::Text`]; integers → [`Value::Int`] (integers beyond the
//! 64-bit range arrive as [`Value::Float`], as `serde_json` parses them);
//! numbers with a fraction or exponent → [`Value::Float`]; objects →
//! [`Value::Map`] with text keys, in document order. Nesting is limited by
//! `serde_json`'s built-in recursion limit (128 levels, the same as
//! [`cbor::MAX_DEPTH`](super::cbor::MAX_DEPTH)): deeper input is an error,
//! never a stack overflow.
//!
//! # Encoding
//!
//! Compact, no whitespace. JSON has no byte strings, so:
//! * [`Value::Bytes`] holding valid UTF-8 becomes that string;
//! * other bytes become a string with each byte mapped to the character
//!   U+0000…U+00FF of the same number — exactly what Perl's JSON::XS does
//!   with a byte string, so a Perl peer gets back the same bytes;
//! * map keys that are not text (or UTF-8 bytes) are written as their own
//!   JSON rendering, used as the key string (`1` → `"1"`), as Perl would
//!   stringify them;
//! * non-finite floats (NaN, ±∞) become `null`;
//! * [`Value::Int`] outside the 64-bit range is written as a plain integer
//!   literal (a Perl peer reads it as a float).
//!
//! ```
//! use aemp_core::value::json;
//! use aemp_core::Value;
//! let v = json::from_slice(br#"["","g_find","seedA",1.5]"#).unwrap();
//! assert_eq!(v.as_array().unwrap()[3], Value::Float(1.5));
//! assert_eq!(json::to_vec(&Value::Bytes(vec![0x61, 0xff])), "\"a\u{ff}\"".as_bytes());
//! ```

use super::Value;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use std::fmt;

/// Why JSON input could not be decoded (the `serde_json` message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError(pub String);

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid JSON: {}", self.0)
    }
}

impl std::error::Error for JsonError {}

impl From<serde_json::Error> for JsonError {
    fn from(e: serde_json::Error) -> Self {
        JsonError(e.to_string())
    }
}

/// Decodes one JSON text (surrounding whitespace allowed).
pub fn from_slice(bytes: &[u8]) -> Result<Value, JsonError> {
    Ok(serde_json::from_slice(bytes)?)
}

/// Encodes `v` as compact JSON into a new vector.
pub fn to_vec(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(v, &mut out);
    out
}

/// Appends the compact JSON encoding of `v` to `out`.
///
/// ```
/// # use aemp_core::{value::json, Value};
/// let mut out = b"x".to_vec();
/// json::encode_into(&Value::Map(vec![(Value::Int(1), Value::Float(f64::NAN))]), &mut out);
/// assert_eq!(out, br#"x{"1":null}"#);
/// ```
pub fn encode_into(v: &Value, out: &mut Vec<u8>) {
    // Serializing a `Value` into a Vec cannot fail: every variant has a JSON
    // form and the writer is infallible.
    let _ = serde_json::to_writer(out, v);
}

/// Maps each byte to the character with the same number (Latin-1), as
/// JSON::XS does for a Perl byte string.
fn latin1(b: &[u8]) -> String {
    b.iter().map(|&c| char::from(c)).collect()
}

fn serialize_str_like<S: Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
    match std::str::from_utf8(b) {
        Ok(t) => s.serialize_str(t),
        Err(_) => s.serialize_str(&latin1(b)),
    }
}

/// A map key: text as itself, anything else as its JSON rendering.
struct Key<'a>(&'a Value);

impl Serialize for Key<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Text(t) => s.serialize_str(t),
            Value::Bytes(b) => serialize_str_like(b, s),
            other => s.serialize_str(&String::from_utf8_lossy(&to_vec(other))),
        }
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Int(i) => {
                if let Ok(x) = i64::try_from(*i) {
                    s.serialize_i64(x)
                } else if let Ok(x) = u64::try_from(*i) {
                    s.serialize_u64(x)
                } else {
                    s.serialize_i128(*i)
                }
            }
            Value::Float(x) => s.serialize_f64(*x),
            Value::Text(t) => s.serialize_str(t),
            Value::Bytes(b) => serialize_str_like(b, s),
            Value::Array(a) => {
                let mut seq = s.serialize_seq(Some(a.len()))?;
                for x in a {
                    seq.serialize_element(x)?;
                }
                seq.end()
            }
            Value::Map(m) => {
                let mut map = s.serialize_map(Some(m.len()))?;
                for (k, v) in m {
                    map.serialize_entry(&Key(k), v)?;
                }
                map.end()
            }
        }
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Int(v.into()))
    }
    fn visit_i128<E>(self, v: i128) -> Result<Value, E> {
        Ok(Value::Int(v))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
        Ok(i128::try_from(v).map_or(Value::Float(v as f64), Value::Int))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Text(super::str(v)))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::Text(super::str(&v)))
    }
    fn visit_bytes<E>(self, v: &[u8]) -> Result<Value, E> {
        Ok(Value::Bytes(v.to_vec()))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut v = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(x) = seq.next_element()? {
            v.push(x);
        }
        Ok(Value::Array(v))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut m = Vec::with_capacity(map.size_hint().unwrap_or(0).min(4096));
        while let Some((k, v)) = map.next_entry()? {
            m.push((k, v));
        }
        Ok(Value::Map(m))
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Every JSON packet of the Perl 2.02 trace (section 2) and the Python
    /// client session (section 4).
    pub(crate) const TRACE_JSON: &[&str] = &[
        r#"["","g_slave"]"#,
        r#"["","g_slave",{"mygroup":{"nodeB#WQv6FN3tOb":"value-from-B"},"'l":{"nodeB":["127.0.0.1:4041"]}}]"#,
        r#"["","g_mon1","mygroup"]"#,
        r#"["","g_find","seedA"]"#,
        r#"["","g_db_family","'l","c"]"#,
        r#"["","g_db_keys","mygroup","b"]"#,
        r#"["","g_global"]"#,
        r#"["WQv6FN3tOb","ping","seedA#WNteTywseb","hello from A"]"#,
        r#"["WNteTywseb","pong","B got 'hello from A'"]"#,
        r#"["","time","seedA#WNteTywsec"]"#,
        r#"["","mon1","WQv6FN3tOb"]"#,
        r#"["","AnyEvent::MP::_spawn","tGYLtgKcVJe","MyTest::init","seedA#WNteTywsed"]"#,
        r#"["","g_chg1","mygroup",{"nodeB#WQv6FN3tOb":"value-from-B"}]"#,
        r#"["","g_found","seedA",["127.0.0.1:4040"]]"#,
        r#"["","g_reply","c",{"seedA":["127.0.0.1:4040"],"nodeB":["127.0.0.1:4041"]}]"#,
        r#"["","g_reply","b",["nodeB#WQv6FN3tOb"]]"#,
        r#"["WNteTywsec",1795572819.11314]"#,
        r#"["","mon1","WNteTywsed"]"#,
        r#"["WNteTywsed","spawned","nodeB#tGYLtgKcVJe"]"#,
        r#"["","mon1","tGYLtgKcVJe"]"#,
        r#"["tGYLtgKcVJe","echo","hi spawned"]"#,
        r#"["","kil1","tGYLtgKcVJe","killed_by_A","bye"]"#,
        r#"["","kil0","tGYLtgKcVJe","killed_by_A","bye"]"#,
        r#"["WQv6FN3tOb","quit"]"#,
        r#"["","g_upd","mygroup",null,["nodeB#WQv6FN3tOb"]]"#,
        r#"["","kil0","WQv6FN3tOb","quit_requested","by A"]"#,
        r#"["","g_chg2","mygroup",{},["nodeB#WQv6FN3tOb"]]"#,
        r#"["","g_mon0","mygroup"]"#,
        r#"["","time","pyclient#r1"]"#,
        r#"["","g_slave",{}]"#,
        r#"["","g_db_keys","echo","q1"]"#,
        r#"["r1",1795572876.3166]"#,
        r#"["","g_reply","q1",["seedA#Gxorp81EVb"]]"#,
        r#"["Gxorp81EVb","pyclient#r2","hello","from","python"]"#,
        r#"["r2","echo","hello","from","python"]"#,
    ];

    #[test]
    fn trace_packets_roundtrip() {
        for p in TRACE_JSON {
            let v = from_slice(p.as_bytes()).unwrap();
            assert!(matches!(v, Value::Array(_)));
            // Display renders like compact JSON for these values.
            assert_eq!(v.to_string(), *p);
            assert_eq!(to_vec(&v), p.as_bytes(), "re-encoding {p}");
        }
    }

    #[test]
    fn structure_and_order() {
        let v = from_slice(TRACE_JSON[1].as_bytes()).unwrap();
        let a = v.as_array().unwrap();
        assert_eq!(a[0], Value::from(""));
        let m = a[2].as_map().unwrap();
        assert_eq!(m[0].0, Value::from("mygroup"));
        assert_eq!(m[1].0, Value::from("'l"));
        assert_eq!(
            m[1].1,
            Value::Map(vec![(
                Value::from("nodeB"),
                Value::Array(vec![Value::from("127.0.0.1:4041")])
            )])
        );
        let t = from_slice(TRACE_JSON[16].as_bytes()).unwrap();
        assert_eq!(t.as_array().unwrap()[1], Value::Float(1795572819.11314));
    }

    #[test]
    fn numbers() {
        assert_eq!(from_slice(b"-5").unwrap(), Value::Int(-5));
        assert_eq!(
            from_slice(b"18446744073709551615").unwrap(),
            Value::Int(u64::MAX as i128)
        );
        assert_eq!(from_slice(b"1e2").unwrap(), Value::Float(100.0));
        assert_eq!(from_slice(b"2.0").unwrap(), Value::Float(2.0));
        assert!(from_slice(b"1e400").is_err());
        assert_eq!(
            to_vec(&Value::Int(-(1i128 << 64))),
            b"-18446744073709551616"
        );
        assert_eq!(to_vec(&Value::Float(f64::INFINITY)), b"null");
        assert_eq!(to_vec(&Value::Float(0.5)), b"0.5");
    }

    #[test]
    fn bytes_and_keys() {
        assert_eq!(
            to_vec(&Value::Bytes(b"h\xc3\xa9".to_vec())),
            "\"hé\"".as_bytes()
        );
        // non-UTF-8: Latin-1 mapping, escapes where JSON needs them
        assert_eq!(
            to_vec(&Value::Bytes(vec![0xe9, 0x00, b'"'])),
            "\"é\\u0000\\\"\"".as_bytes()
        );
        let m = Value::Map(vec![
            (Value::Bytes(b"k".to_vec()), Value::Int(1)),
            (Value::Null, Value::Int(2)),
            (Value::Array(vec![Value::Int(3)]), Value::Int(3)),
        ]);
        assert_eq!(to_vec(&m), br#"{"k":1,"null":2,"[3]":3}"#);
    }

    #[test]
    fn depth_limit_and_garbage() {
        let deep = "[".repeat(100_000);
        assert!(from_slice(deep.as_bytes()).is_err());
        let ok = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert!(from_slice(ok.as_bytes()).is_ok());
        assert!(from_slice(b"[1,").is_err());
        assert!(from_slice(b"[1] x").is_err());
    }
}
