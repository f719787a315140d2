//! Message values: the one data type that travels in AEMP messages.
//!
//! A message is a list of [`Value`]s ([`Msg`]). `Value` carries everything
//! JSON and CBOR carry: null, booleans, integers (the full CBOR range),
//! floats, text, byte strings, arrays and maps. Conversion to and from both
//! wire encodings is lossless where the encoding can express the value (see
//! [`cbor`] and [`json`]).
//!
//! # The text/bytes rule
//!
//! Perl has one string type, and CBOR::XS encodes ordinary Perl strings as
//! CBOR *byte* strings. A Rust node therefore receives tags, port IDs, DB
//! family names and keys from Perl peers as [`Value::Bytes`]. We keep the
//! value as it arrived (so it round-trips unchanged), and apply one rule
//! wherever AEMP *interprets* a value as a string:
//!
//! > A byte string that is valid UTF-8 is the same string as the text with
//! > those bytes.
//!
//! [`Value::as_str`] implements the rule; `rcv` tag dispatch, port-ID routing,
//! node-port request names, reply ports and database names all go through it.
//! Structural equality (`==`) stays strict: `Text("a") != Bytes(b"a")`. Use
//! [`Value::text_eq`] for the AEMP comparison.
//!
//! ```
//! use aemp_core::Value;
//! let from_perl = Value::Bytes(b"ping".to_vec());
//! assert_eq!(from_perl.as_str(), Some("ping"));
//! assert!(from_perl.text_eq(&Value::from("ping")));
//! assert_ne!(from_perl, Value::from("ping"));
//! ```

pub mod cbor;
pub mod json;

use smol_str::SmolStr;
use std::fmt;

/// A message: the list of values given to `snd` and received by callbacks.
pub type Msg = Vec<Value>;

/// A compact, cheaply clonable string (inline up to 23 bytes).
pub type Str = SmolStr;

/// Makes a [`Str`] (the fast path for the short strings AEMP uses
/// everywhere: tags, port names; `SmolStr::new` spends time looking for
/// whitespace runs that never occur here).
///
/// ```
/// assert_eq!(aemp_core::value::str("tag"), "tag");
/// ```
#[inline]
pub fn str(s: &str) -> Str {
    if s.len() <= 23 {
        SmolStr::new_inline(s)
    } else {
        SmolStr::new(s)
    }
}

/// One AEMP value. See the [module docs](self) for the text/bytes rule.
#[derive(Clone, Debug, PartialEq, Default)]
pub enum Value {
    /// JSON `null`, CBOR `null`/`undefined`, Perl `undef`.
    #[default]
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer. The range covers CBOR's (−2⁶⁴ … 2⁶⁴−1).
    Int(i128),
    /// A float (CBOR half/single/double, JSON numbers with a fraction or exponent).
    Float(f64),
    /// A text string (CBOR major type 3, JSON strings).
    Text(Str),
    /// A byte string (CBOR major type 2; what Perl sends for ordinary strings).
    Bytes(Vec<u8>),
    /// An array.
    Array(Vec<Value>),
    /// A map, in wire order. Keys may be any value (CBOR allows it); JSON and
    /// Perl only produce text keys.
    Map(Vec<(Value, Value)>),
}

impl Value {
    /// The value as a string, if it is text or a byte string holding valid UTF-8.
    ///
    /// ```
    /// # use aemp_core::Value;
    /// assert_eq!(Value::from("x").as_str(), Some("x"));
    /// assert_eq!(Value::Bytes(vec![0xff]).as_str(), None);
    /// assert_eq!(Value::Int(1).as_str(), None);
    /// ```
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Text(s) => Some(s.as_str()),
            Value::Bytes(b) => std::str::from_utf8(b).ok(),
            _ => None,
        }
    }

    /// AEMP string equality: equal as strings under the text/bytes rule, or
    /// structurally equal otherwise.
    pub fn text_eq(&self, other: &Value) -> bool {
        match (self.as_str(), other.as_str()) {
            (Some(a), Some(b)) => a == b,
            _ => self == other,
        }
    }

    /// Turns a text-like byte string into text (recursively for arrays and
    /// maps keys/values are left alone); other values are returned unchanged.
    pub fn into_text_like(self) -> Value {
        match self {
            Value::Bytes(b) => match String::from_utf8(b) {
                Ok(s) => Value::Text(Str::from(s)),
                Err(e) => Value::Bytes(e.into_bytes()),
            },
            v => v,
        }
    }

    /// True for [`Value::Null`].
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The value as an integer, if it is one (floats with no fraction count).
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => i64::try_from(*i).ok(),
            Value::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Some(*f as i64),
            _ => None,
        }
    }

    /// The value as a float, if it is a number.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            _ => None,
        }
    }

    /// The value as a boolean, if it is one.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// Perl truthiness: null, false, 0, "", "0" and empty byte strings are false.
    pub fn is_true(&self) -> bool {
        match self {
            Value::Null => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Text(_) | Value::Bytes(_) => !matches!(self.as_str(), Some("") | Some("0")),
            Value::Array(_) | Value::Map(_) => true,
        }
    }

    /// The elements, if the value is an array.
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    /// The entries, if the value is a map.
    pub fn as_map(&self) -> Option<&[(Value, Value)]> {
        match self {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// Looks a key up in a map by AEMP string equality (linear scan).
    ///
    /// ```
    /// # use aemp_core::Value;
    /// let m = Value::Map(vec![(Value::Bytes(b"k".to_vec()), Value::Int(1))]);
    /// assert_eq!(m.get("k"), Some(&Value::Int(1)));
    /// ```
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }

    /// A short, printable rendering of a message's first element, as Perl's
    /// default port callback reports it: at most 30 characters, anything
    /// outside printable ASCII replaced by `.`.
    pub fn tag_preview(&self) -> String {
        let s = match self.as_str() {
            Some(s) => s.to_string(),
            None => self.to_string(),
        };
        s.chars()
            .take(30)
            .map(|c| if (' '..='~').contains(&c) { c } else { '.' })
            .collect()
    }
}

/// Renders the value as compact JSON-like text (byte strings as text when
/// they are UTF-8, else as `h'hex'`). For logs and the CLI.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn esc(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
            // serde_json escapes exactly as JSON requires.
            f.write_str(&serde_json::to_string(s).map_err(|_| fmt::Error)?)
        }
        match self {
            Value::Null => f.write_str("null"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => {
                if x.is_finite() && x.fract() == 0.0 && x.abs() < 1e16 {
                    write!(f, "{x:.1}")
                } else {
                    write!(f, "{x}")
                }
            }
            Value::Text(s) => esc(f, s),
            Value::Bytes(b) => match std::str::from_utf8(b) {
                Ok(s) => esc(f, s),
                Err(_) => {
                    f.write_str("h'")?;
                    for x in b {
                        write!(f, "{x:02x}")?;
                    }
                    f.write_str("'")
                }
            },
            Value::Array(a) => {
                f.write_str("[")?;
                for (i, v) in a.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_str("]")
            }
            Value::Map(m) => {
                f.write_str("{")?;
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{k}:{v}")?;
                }
                f.write_str("}")
            }
        }
    }
}

/// Renders a whole message as a JSON-like array (for logs and traces).
pub fn msg_to_string(msg: &[Value]) -> String {
    let mut s = String::from("[");
    for (i, v) in msg.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&v.to_string());
    }
    s.push(']');
    s
}

impl From<&str> for Value {
    #[inline]
    fn from(s: &str) -> Self {
        Value::Text(str(s))
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Text(Str::from(s))
    }
}
impl From<&String> for Value {
    fn from(s: &String) -> Self {
        Value::Text(str(s.as_str()))
    }
}
impl From<Str> for Value {
    fn from(s: Str) -> Self {
        Value::Text(s)
    }
}
impl From<&Str> for Value {
    fn from(s: &Str) -> Self {
        Value::Text(s.clone())
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}
impl From<f64> for Value {
    fn from(x: f64) -> Self {
        Value::Float(x)
    }
}
impl From<Vec<u8>> for Value {
    fn from(b: Vec<u8>) -> Self {
        Value::Bytes(b)
    }
}
impl From<Vec<Value>> for Value {
    fn from(a: Vec<Value>) -> Self {
        Value::Array(a)
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(o: Option<T>) -> Self {
        o.map_or(Value::Null, Into::into)
    }
}
macro_rules! from_int {
    ($($t:ty),*) => {$(
        impl From<$t> for Value {
            fn from(i: $t) -> Self { Value::Int(i as i128) }
        }
    )*};
}
from_int!(i8, i16, i32, i64, u8, u16, u32, u64, usize, isize);

/// Builds a [`Msg`] from a list of expressions convertible into [`Value`].
///
/// ```
/// use aemp_core::{msg, Value};
/// let m = msg!["ping", 1, 2.5, true];
/// assert_eq!(m, vec![Value::from("ping"), Value::Int(1), Value::Float(2.5), Value::Bool(true)]);
/// ```
#[macro_export]
macro_rules! msg {
    () => { ::std::vec::Vec::<$crate::Value>::new() };
    ($($e:expr),+ $(,)?) => { ::std::vec![$($crate::Value::from($e)),+] };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_bytes_rule() {
        let b = Value::Bytes(b"tag".to_vec());
        let t = Value::from("tag");
        assert!(b.text_eq(&t));
        assert!(t.text_eq(&b));
        assert_ne!(b, t);
        assert!(!Value::Bytes(vec![0xc3]).text_eq(&Value::from("\u{c3}")));
        assert!(Value::Int(1).text_eq(&Value::Int(1)));
        assert!(!Value::Int(1).text_eq(&Value::from("1")));
    }

    #[test]
    fn perl_truth() {
        for v in [
            Value::Null,
            Value::Bool(false),
            Value::Int(0),
            Value::from(""),
            Value::from("0"),
        ] {
            assert!(!v.is_true(), "{v:?}");
        }
        for v in [Value::Int(2), Value::from("00"), Value::Array(vec![])] {
            assert!(v.is_true(), "{v:?}");
        }
    }

    #[test]
    fn tag_preview_truncates_and_masks() {
        let v = Value::from("a\u{1}b\u{e9}cccccccccccccccccccccccccccccccccc");
        let p = v.tag_preview();
        assert_eq!(p.chars().count(), 30);
        assert!(p.starts_with("a.b.c"));
    }

    #[test]
    fn display_is_json_like() {
        let v = Value::Array(vec![
            Value::Null,
            Value::from("a\"b"),
            Value::Bytes(vec![0xff, 0]),
            Value::Map(vec![(Value::from("k"), Value::Float(1.0))]),
        ]);
        assert_eq!(v.to_string(), r#"[null,"a\"b",h'ff00',{"k":1.0}]"#);
    }

    #[test]
    fn get_uses_text_rule() {
        let m = Value::Map(vec![
            (Value::from("a"), Value::Int(1)),
            (Value::Bytes(b"b".to_vec()), Value::Int(2)),
        ]);
        assert_eq!(m.get("b"), Some(&Value::Int(2)));
        assert_eq!(m.get("c"), None);
    }
}
