//! CBOR encoding and decoding of [`Value`] (RFC 8949), via `minicbor`.
//!
//! This is the codec behind the `cbor` framing (spec §5.5), which two Perl
//! 2.02 nodes use by default.
//!
//! # Decoding
//!
//! * byte strings → [`Value::Bytes`] (Perl sends its ordinary strings like
//!   this), text strings → [`Value::Text`];
//! * integers, the full CBOR range (−2⁶⁴ … 2⁶⁴−1) → [`Value::Int`];
//! * half, single and double floats → [`Value::Float`];
//! * `null` and `undefined` → [`Value::Null`]; `true`/`false` → [`Value::Bool`];
//! * indefinite-length strings, arrays and maps are accepted;
//! * **tags are dropped**: the tagged item is decoded as if untagged (AEMP
//!   gives no tag a meaning, and Perl only produces them for objects);
//! * any other simple value, a stray `break`, or a reserved byte → error;
//! * nesting deeper than [`MAX_DEPTH`] → [`CborError::TooDeep`], never a
//!   stack overflow.
//!
//! # Encoding
//!
//! Definite lengths only, as CBOR::XS does by default. [`Value::Text`] →
//! text string, [`Value::Bytes`] → byte string, [`Value::Int`] → the
//! shortest integer encoding (values outside CBOR's integer range are sent
//! as a double, which is what Perl would do with such a number),
//! [`Value::Float`] → always a 64-bit float (`0xfb`, as CBOR::XS does).
//!
//! ```
//! use aemp_core::value::cbor;
//! use aemp_core::Value;
//! let v = Value::Array(vec![Value::Bytes(vec![]), Value::Bytes(b"g_slave".to_vec())]);
//! let bytes = cbor::to_vec(&v);
//! assert_eq!(bytes, b"\x82\x40\x47g_slave");
//! assert_eq!(cbor::from_slice(&bytes).unwrap(), v);
//! ```

use super::Value;
use minicbor::data::Int;
use minicbor::decode::{self, Decoder};
use minicbor::encode::{self, Encoder, Write};
use std::fmt;

/// Maximum nesting depth of arrays and maps accepted when decoding.
pub const MAX_DEPTH: usize = 128;

/// Why CBOR input could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CborError {
    /// The input ends in the middle of an item (more bytes may complete it).
    Truncated,
    /// Arrays/maps are nested deeper than [`MAX_DEPTH`].
    TooDeep,
    /// Bytes follow the one item expected ([`from_slice`] only).
    TrailingBytes(usize),
    /// Malformed or unsupported CBOR.
    Invalid(String),
}

impl fmt::Display for CborError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CborError::Truncated => f.write_str("CBOR data truncated"),
            CborError::TooDeep => write!(f, "CBOR data nested deeper than {MAX_DEPTH} levels"),
            CborError::TrailingBytes(n) => write!(f, "{n} trailing bytes after CBOR item"),
            CborError::Invalid(m) => write!(f, "invalid CBOR: {m}"),
        }
    }
}

impl std::error::Error for CborError {}

impl From<decode::Error> for CborError {
    fn from(e: decode::Error) -> Self {
        if e.is_end_of_input() {
            CborError::Truncated
        } else {
            CborError::Invalid(e.to_string())
        }
    }
}

/// Decodes exactly one CBOR item that must fill all of `bytes`.
///
/// ```
/// # use aemp_core::{value::cbor, Value};
/// assert_eq!(cbor::from_slice(&[0x18, 0x2a]), Ok(Value::Int(42)));
/// assert!(cbor::from_slice(&[0x18]).is_err());
/// ```
pub fn from_slice(bytes: &[u8]) -> Result<Value, CborError> {
    let (v, used) = decode_prefix(bytes)?;
    if used != bytes.len() {
        return Err(CborError::TrailingBytes(bytes.len() - used));
    }
    Ok(v)
}

/// Decodes the first CBOR item of `bytes`, returning it and the number of
/// bytes it occupied. [`CborError::Truncated`] means the item is incomplete.
pub fn decode_prefix(bytes: &[u8]) -> Result<(Value, usize), CborError> {
    let mut r = Reader { b: bytes, p: 0 };
    let v = decode_at(&mut r, 0)?;
    Ok((v, r.p))
}

/// Decodes one item at the decoder's position (depth-limited).
pub fn decode_value(d: &mut Decoder<'_>) -> Result<Value, CborError> {
    let mut r = Reader {
        b: d.input(),
        p: d.position(),
    };
    let v = decode_at(&mut r, 0)?;
    d.set_position(r.p);
    Ok(v)
}

/// Decodes the first CBOR item of `bytes` if it is an array, as its first
/// element and a vector of the others, plus the number of bytes it
/// occupied; `Ok(None)` if the item is not an array. This is how packets
/// `[port, msg…]` arrive: the message vector is allocated once, at its
/// final size, and never shifted.
///
/// ```
/// # use aemp_core::{value::cbor, Value};
/// let b = cbor::to_vec(&Value::Array(vec![Value::from("p"), Value::Int(1)]));
/// let (first, rest, used) = cbor::decode_split_prefix(&b).unwrap().unwrap();
/// assert_eq!((first, rest, used), (Some(Value::from("p")), vec![Value::Int(1)], b.len()));
/// assert_eq!(cbor::decode_split_prefix(&[0x01]), Ok(None));
/// ```
#[allow(clippy::type_complexity)]
pub fn decode_split_prefix(
    bytes: &[u8],
) -> Result<Option<(Option<Value>, Vec<Value>, usize)>, CborError> {
    let mut r = Reader { b: bytes, p: 0 };
    let mut ib = r.byte()?;
    while ib >> 5 == 6 {
        r.arg(ib)?;
        ib = r.byte()?;
    }
    if ib >> 5 != 4 {
        return Ok(None);
    }
    let (first, rest) = if ib & 31 == 31 {
        let mut first = None;
        let mut rest = Vec::new();
        while r.peek()? != 0xff {
            let v = decode_at(&mut r, 1)?;
            if first.is_none() {
                first = Some(v);
            } else {
                rest.push(v);
            }
        }
        r.p += 1;
        (first, rest)
    } else {
        let n = r.arg(ib)?;
        if n == 0 {
            (None, Vec::new())
        } else {
            let first = decode_at(&mut r, 1)?;
            let mut rest = Vec::with_capacity((n - 1).min(r.remaining() as u64) as usize);
            for _ in 1..n {
                rest.push(decode_at(&mut r, 1)?);
            }
            (Some(first), rest)
        }
    };
    Ok(Some((first, rest, r.p)))
}

/// The decoder proper: a cursor over the input. (Hand-written rather than
/// minicbor's `Decoder`, which classifies every item twice; this is the
/// receive hot path.)
struct Reader<'a> {
    b: &'a [u8],
    p: usize,
}

impl<'a> Reader<'a> {
    #[inline]
    fn byte(&mut self) -> Result<u8, CborError> {
        let x = *self.b.get(self.p).ok_or(CborError::Truncated)?;
        self.p += 1;
        Ok(x)
    }

    #[inline]
    fn peek(&self) -> Result<u8, CborError> {
        self.b.get(self.p).copied().ok_or(CborError::Truncated)
    }

    #[inline]
    fn remaining(&self) -> usize {
        self.b.len() - self.p
    }

    #[inline]
    fn take(&mut self, n: u64) -> Result<&'a [u8], CborError> {
        if n > self.remaining() as u64 {
            return Err(CborError::Truncated);
        }
        let s = &self.b[self.p..self.p + n as usize];
        self.p += n as usize;
        Ok(s)
    }

    #[inline]
    fn array<const N: usize>(&mut self) -> Result<[u8; N], CborError> {
        let s = self.take(N as u64)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    /// The argument of initial byte `ib` (additional info 0..=27; anything
    /// else is reserved or "indefinite" and must be handled by the caller).
    #[inline]
    fn arg(&mut self, ib: u8) -> Result<u64, CborError> {
        Ok(match ib & 31 {
            ai @ 0..=23 => u64::from(ai),
            24 => u64::from(self.byte()?),
            25 => u64::from(u16::from_be_bytes(self.array()?)),
            26 => u64::from(u32::from_be_bytes(self.array()?)),
            27 => u64::from_be_bytes(self.array()?),
            _ => return Err(reserved(ib)),
        })
    }

    /// The chunks of an indefinite-length string of major type `major`,
    /// appended to `out`, up to and including the `break`.
    fn chunks(&mut self, major: u8, out: &mut Vec<u8>) -> Result<(), CborError> {
        loop {
            let ib = self.byte()?;
            if ib == 0xff {
                return Ok(());
            }
            if ib >> 5 != major || ib & 31 > 27 {
                return Err(CborError::Invalid(format!(
                    "unexpected initial byte 0x{ib:02x} in an indefinite-length string"
                )));
            }
            let n = self.arg(ib)?;
            let chunk = self.take(n)?;
            if major == 3 {
                std::str::from_utf8(chunk).map_err(utf8_err)?;
            }
            out.extend_from_slice(chunk);
        }
    }
}

fn reserved(ib: u8) -> CborError {
    CborError::Invalid(format!("reserved initial byte 0x{ib:02x}"))
}

fn utf8_err(e: std::str::Utf8Error) -> CborError {
    CborError::Invalid(format!("invalid UTF-8 in text string: {e}"))
}

/// A half-precision float (RFC 8949, appendix D).
fn f16_to_f64(h: u16) -> f64 {
    let exp = (h >> 10) & 0x1f;
    let mant = f64::from(h & 0x3ff);
    let v = match exp {
        0 => mant * 2f64.powi(-24),
        31 if mant == 0.0 => f64::INFINITY,
        31 => f64::NAN,
        _ => (1024.0 + mant) * 2f64.powi(i32::from(exp) - 25),
    };
    if h & 0x8000 != 0 {
        -v
    } else {
        v
    }
}

fn decode_at(r: &mut Reader<'_>, depth: usize) -> Result<Value, CborError> {
    if depth > MAX_DEPTH {
        return Err(CborError::TooDeep);
    }
    // Tags are skipped iteratively, so a chain of tags cannot recurse.
    let mut ib = r.byte()?;
    while ib >> 5 == 6 {
        r.arg(ib)?;
        ib = r.byte()?;
    }
    let ai = ib & 31;
    Ok(match ib >> 5 {
        0 => Value::Int(i128::from(r.arg(ib)?)),
        1 => Value::Int(-1 - i128::from(r.arg(ib)?)),
        2 if ai == 31 => {
            let mut v = Vec::new();
            r.chunks(2, &mut v)?;
            Value::Bytes(v)
        }
        2 => {
            let n = r.arg(ib)?;
            Value::Bytes(r.take(n)?.to_vec())
        }
        3 if ai == 31 => {
            let mut v = Vec::new();
            r.chunks(3, &mut v)?;
            // Every chunk is valid UTF-8, so their concatenation is.
            let s = String::from_utf8(v).map_err(|e| utf8_err(e.utf8_error()))?;
            Value::Text(super::str(&s))
        }
        3 => {
            let n = r.arg(ib)?;
            let s = std::str::from_utf8(r.take(n)?).map_err(utf8_err)?;
            Value::Text(super::str(s))
        }
        4 if ai == 31 => {
            let mut items = Vec::new();
            while r.peek()? != 0xff {
                items.push(decode_at(r, depth + 1)?);
            }
            r.p += 1;
            Value::Array(items)
        }
        4 => {
            let n = r.arg(ib)?;
            // Never preallocate more than the remaining input could hold.
            let mut items = Vec::with_capacity(n.min(r.remaining() as u64) as usize);
            for _ in 0..n {
                items.push(decode_at(r, depth + 1)?);
            }
            Value::Array(items)
        }
        5 if ai == 31 => {
            let mut entries = Vec::new();
            while r.peek()? != 0xff {
                let k = decode_at(r, depth + 1)?;
                let v = decode_at(r, depth + 1)?;
                entries.push((k, v));
            }
            r.p += 1;
            Value::Map(entries)
        }
        5 => {
            let n = r.arg(ib)?;
            let mut entries = Vec::with_capacity(n.min(r.remaining() as u64 / 2) as usize);
            for _ in 0..n {
                let k = decode_at(r, depth + 1)?;
                let v = decode_at(r, depth + 1)?;
                entries.push((k, v));
            }
            Value::Map(entries)
        }
        _ => match ai {
            20 => Value::Bool(false),
            21 => Value::Bool(true),
            22 | 23 => Value::Null,
            25 => Value::Float(f16_to_f64(u16::from_be_bytes(r.array()?))),
            26 => Value::Float(f64::from(f32::from_be_bytes(r.array()?))),
            27 => Value::Float(f64::from_be_bytes(r.array()?)),
            0..=19 => {
                return Err(CborError::Invalid(format!("unsupported simple value {ai}")));
            }
            24 => {
                let n = r.byte()?;
                return Err(CborError::Invalid(format!("unsupported simple value {n}")));
            }
            31 => return Err(CborError::Invalid("unexpected break".into())),
            _ => return Err(reserved(ib)),
        },
    })
}

/// Encodes `v` as one CBOR item into a new vector.
pub fn to_vec(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(v, &mut out);
    out
}

/// Appends the CBOR encoding of `v` to `out`.
///
/// ```
/// # use aemp_core::{value::cbor, Value};
/// let mut out = vec![];
/// cbor::encode_into(&Value::Float(1.5), &mut out);
/// assert_eq!(out, [0xfb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0]);
/// ```
pub fn encode_into(v: &Value, out: &mut Vec<u8>) {
    let mut e = Encoder::new(out);
    // Writing into a Vec cannot fail and `encode_value` raises no errors of
    // its own, so the result carries no information.
    let _ = encode_value(v, &mut e);
}

/// Encodes `v` with a `minicbor` encoder (any writer).
pub fn encode_value<W: Write>(
    v: &Value,
    e: &mut Encoder<W>,
) -> Result<(), encode::Error<W::Error>> {
    match v {
        Value::Null => {
            e.null()?;
        }
        Value::Bool(b) => {
            e.bool(*b)?;
        }
        Value::Int(i) => match Int::try_from(*i) {
            Ok(i) => {
                e.int(i)?;
            }
            Err(_) => {
                e.f64(*i as f64)?;
            }
        },
        Value::Float(x) => {
            e.f64(*x)?;
        }
        Value::Text(s) => {
            e.str(s)?;
        }
        Value::Bytes(b) => {
            e.bytes(b)?;
        }
        Value::Array(a) => {
            e.array(a.len() as u64)?;
            for x in a {
                encode_value(x, e)?;
            }
        }
        Value::Map(m) => {
            e.map(m.len() as u64)?;
            for (k, x) in m {
                encode_value(k, e)?;
                encode_value(x, e)?;
            }
        }
    }
    Ok(())
}

impl<C> minicbor::Encode<C> for Value {
    fn encode<W: Write>(
        &self,
        e: &mut Encoder<W>,
        _ctx: &mut C,
    ) -> Result<(), encode::Error<W::Error>> {
        encode_value(self, e)
    }
}

impl<'b, C> minicbor::Decode<'b, C> for Value {
    fn decode(d: &mut Decoder<'b>, _ctx: &mut C) -> Result<Self, decode::Error> {
        let start = d.position();
        decode_value(d).map_err(|e| match e {
            CborError::Truncated => decode::Error::end_of_input(),
            e => decode::Error::message(e.to_string()).at(start),
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn hex(s: &str) -> Vec<u8> {
        ::hex::decode(s).unwrap()
    }

    /// True if no text strings occur anywhere in `v` (Perl sends bytes).
    pub(crate) fn all_bytes(v: &Value) -> bool {
        match v {
            Value::Text(_) => false,
            Value::Array(a) => a.iter().all(all_bytes),
            Value::Map(m) => m.iter().all(|(k, v)| all_bytes(k) && all_bytes(v)),
            _ => true,
        }
    }

    /// Every CBOR packet of the Perl 2.02 trace (section 1), with its diag
    /// rendered the way `Value`'s `Display` does.
    pub(crate) const TRACE_CBOR: &[(&str, &str)] = &[
        ("824047675f736c617665", r#"["","g_slave"]"#),
        ("834047675f736c617665a242276ca1456e6f646542814e3132372e302e302e313a34303431476d7967726f7570a1506e6f64654223516c6a37347a337159624c76616c75652d66726f6d2d42", r#"["","g_slave",{"'l":{"nodeB":["127.0.0.1:4041"]},"mygroup":{"nodeB#Qlj74z3qYb":"value-from-B"}}]"#),
        ("824048675f676c6f62616c", r#"["","g_global"]"#),
        ("834046675f6d6f6e31476d7967726f7570", r#"["","g_mon1","mygroup"]"#),
        ("844a516c6a37347a337159624470696e6750736565644123516969683967727342624c68656c6c6f2066726f6d2041", r#"["Qlj74z3qYb","ping","seedA#Qiih9grsBb","hello from A"]"#),
        ("83404474696d655073656564412351696968396772734263", r#"["","time","seedA#Qiih9grsBc"]"#),
        ("8340446d6f6e314a516c6a37347a33715962", r#"["","mon1","Qlj74z3qYb"]"#),
        ("854054416e794576656e743a3a4d503a3a5f737061776e4b48524d4f366c4a474552654c4d79546573743a3a696e69745073656564412351696968396772734264", r#"["","AnyEvent::MP::_spawn","HRMO6lJGERe","MyTest::init","seedA#Qiih9grsBd"]"#),
        ("844046675f63686731476d7967726f7570a1506e6f64654223516c6a37347a337159624c76616c75652d66726f6d2d42", r#"["","g_chg1","mygroup",{"nodeB#Qlj74z3qYb":"value-from-B"}]"#),
        ("834046675f66696e64457365656441", r#"["","g_find","seedA"]"#),
        ("84404b675f64625f66616d696c7942276c4163", r#"["","g_db_family","'l","c"]"#),
        ("844047675f666f756e64457365656441814e3132372e302e302e313a34303430", r#"["","g_found","seedA",["127.0.0.1:4040"]]"#),
        ("844047675f7265706c794163a2456e6f646542814e3132372e302e302e313a34303431457365656441814e3132372e302e302e313a34303430", r#"["","g_reply","c",{"nodeB":["127.0.0.1:4041"],"seedA":["127.0.0.1:4040"]}]"#),
        ("844049675f64625f6b657973476d7967726f75704162", r#"["","g_db_keys","mygroup","b"]"#),
        ("834a5169696839677273426244706f6e67544220676f74202768656c6c6f2066726f6d204127", r#"["Qiih9grsBb","pong","B got 'hello from A'"]"#),
        ("824a51696968396772734263fb41dac19111fd9564", r#"["Qiih9grsBc",1795572807.962243]"#),
        ("8340446d6f6e314a51696968396772734264", r#"["","mon1","Qiih9grsBd"]"#),
        ("834a5169696839677273426447737061776e6564516e6f6465422348524d4f366c4a47455265", r#"["Qiih9grsBd","spawned","nodeB#HRMO6lJGERe"]"#),
        ("844047675f7265706c79416281506e6f64654223516c6a37347a33715962", r#"["","g_reply","b",["nodeB#Qlj74z3qYb"]]"#),
        ("8340446d6f6e314b48524d4f366c4a47455265", r#"["","mon1","HRMO6lJGERe"]"#),
        ("834b48524d4f366c4a47455265446563686f4a686920737061776e6564", r#"["HRMO6lJGERe","echo","hi spawned"]"#),
        ("8540446b696c314b48524d4f366c4a474552654b6b696c6c65645f62795f4143627965", r#"["","kil1","HRMO6lJGERe","killed_by_A","bye"]"#),
        ("8540446b696c304b48524d4f366c4a474552654b6b696c6c65645f62795f4143627965", r#"["","kil0","HRMO6lJGERe","killed_by_A","bye"]"#),
        ("824a516c6a37347a337159624471756974", r#"["Qlj74z3qYb","quit"]"#),
        ("8540446b696c304a516c6a37347a337159624e717569745f7265717565737465644462792041", r#"["","kil0","Qlj74z3qYb","quit_requested","by A"]"#),
        ("854045675f757064476d7967726f7570f681506e6f64654223516c6a37347a33715962", r#"["","g_upd","mygroup",null,["nodeB#Qlj74z3qYb"]]"#),
        ("854046675f63686732476d7967726f7570a081506e6f64654223516c6a37347a33715962", r#"["","g_chg2","mygroup",{},["nodeB#Qlj74z3qYb"]]"#),
        ("834046675f6d6f6e30476d7967726f7570", r#"["","g_mon0","mygroup"]"#),
    ];

    #[test]
    fn trace_packets_decode_and_reencode_exactly() {
        for (h, diag) in TRACE_CBOR {
            let bytes = hex(h);
            let v = from_slice(&bytes).unwrap();
            assert_eq!(v.to_string(), *diag, "{h}");
            assert!(all_bytes(&v), "Perl strings must stay byte strings: {h}");
            assert_eq!(to_vec(&v), bytes, "re-encoding {h}");
        }
    }

    #[test]
    fn trace_float_is_exact() {
        let v = from_slice(&hex("824a51696968396772734263fb41dac19111fd9564")).unwrap();
        assert_eq!(v.as_array().unwrap()[1], Value::Float(1795572807.962243));
    }

    #[test]
    fn integers_full_range() {
        // -2^64 (0x3b ff..ff) and 2^64-1 (0x1b ff..ff)
        let min = from_slice(&hex("3bffffffffffffffff")).unwrap();
        assert_eq!(min, Value::Int(-(1i128 << 64)));
        let max = from_slice(&hex("1bffffffffffffffff")).unwrap();
        assert_eq!(max, Value::Int(u64::MAX as i128));
        assert_eq!(to_vec(&min), hex("3bffffffffffffffff"));
        assert_eq!(to_vec(&Value::Int(-1)), [0x20]);
        assert_eq!(to_vec(&Value::Int(500)), [0x19, 0x01, 0xf4]);
        // out of CBOR range -> double
        let big = to_vec(&Value::Int(1i128 << 70));
        assert_eq!(big[0], 0xfb);
        assert_eq!(from_slice(&big).unwrap(), Value::Float(2f64.powi(70)));
    }

    #[test]
    fn floats_half_single_double() {
        assert_eq!(from_slice(&hex("f93e00")).unwrap(), Value::Float(1.5));
        assert_eq!(from_slice(&hex("fa3fc00000")).unwrap(), Value::Float(1.5));
        assert_eq!(
            from_slice(&hex("fb3ff8000000000000")).unwrap(),
            Value::Float(1.5)
        );
        // RFC 8949 appendix A: half-precision edge cases
        for (h, x) in [
            ("f90000", 0.0),
            ("f98000", -0.0),
            ("f90001", 5.960464477539063e-8),
            ("f90400", 6.103515625e-5),
            ("f97bff", 65504.0),
            ("f9c400", -4.0),
            ("f97c00", f64::INFINITY),
            ("f9fc00", f64::NEG_INFINITY),
        ] {
            assert_eq!(from_slice(&hex(h)).unwrap(), Value::Float(x), "{h}");
        }
        assert!(from_slice(&hex("f97e00"))
            .unwrap()
            .as_f64()
            .unwrap()
            .is_nan());
        // always encoded as double
        assert_eq!(to_vec(&Value::Float(0.0)), hex("fb0000000000000000"));
    }

    #[test]
    fn simple_values() {
        assert_eq!(from_slice(&[0xf6]).unwrap(), Value::Null);
        assert_eq!(from_slice(&[0xf7]).unwrap(), Value::Null);
        assert_eq!(from_slice(&[0xf5]).unwrap(), Value::Bool(true));
        assert_eq!(from_slice(&[0xf4]).unwrap(), Value::Bool(false));
        assert!(matches!(from_slice(&[0xe0]), Err(CborError::Invalid(_))));
        assert!(matches!(
            from_slice(&[0xf8, 0x20]),
            Err(CborError::Invalid(_))
        ));
        assert!(matches!(from_slice(&[0xff]), Err(CborError::Invalid(_))));
        assert!(matches!(from_slice(&[0x1c]), Err(CborError::Invalid(_))));
    }

    #[test]
    fn indefinite_lengths() {
        // (_ h'01', h'02'), (_ "a", "b"), [_ 1, [_ ]], {_ "k": 1}
        let v = from_slice(&hex("845f41014102ff7f61616162ff9f019fffffbf616b01ff")).unwrap();
        assert_eq!(
            v,
            Value::Array(vec![
                Value::Bytes(vec![1, 2]),
                Value::from("ab"),
                Value::Array(vec![Value::Int(1), Value::Array(vec![])]),
                Value::Map(vec![(Value::from("k"), Value::Int(1))]),
            ])
        );
    }

    #[test]
    fn tags_are_dropped() {
        // 1(1363896240), 55799(self-described) [ 2(h'01') ]
        assert_eq!(
            from_slice(&hex("c11a514b67b0")).unwrap(),
            Value::Int(1363896240)
        );
        assert_eq!(
            from_slice(&hex("d9d9f781c24101")).unwrap(),
            Value::Array(vec![Value::Bytes(vec![1])])
        );
    }

    #[test]
    fn depth_limit_not_stack_overflow() {
        let mut deep = vec![0x81u8; 100_000];
        deep.push(0x01);
        assert_eq!(from_slice(&deep), Err(CborError::TooDeep));
        let mut ok = vec![0x81u8; MAX_DEPTH];
        ok.push(0x01);
        assert!(from_slice(&ok).is_ok());
        let mut tags = vec![0xc1u8; 100_000];
        tags.push(0x01);
        assert_eq!(from_slice(&tags), Ok(Value::Int(1)));
    }

    #[test]
    fn truncated_and_hostile_lengths() {
        assert_eq!(from_slice(&hex("8340")), Err(CborError::Truncated));
        assert_eq!(from_slice(&hex("5a0000ffff00")), Err(CborError::Truncated));
        // array claiming 2^64-1 elements must not preallocate
        assert_eq!(
            from_slice(&hex("9bffffffffffffffff01")),
            Err(CborError::Truncated)
        );
        assert_eq!(from_slice(&hex("0102")), Err(CborError::TrailingBytes(1)));
        assert!(matches!(
            from_slice(&hex("62c328")),
            Err(CborError::Invalid(_))
        ));
    }

    #[test]
    fn text_and_bytes_stay_distinct() {
        let v = Value::Array(vec![Value::from("a"), Value::Bytes(b"a".to_vec())]);
        let b = to_vec(&v);
        assert_eq!(b, hex("8261614161"));
        assert_eq!(from_slice(&b).unwrap(), v);
    }

    #[test]
    fn minicbor_traits() {
        let v = Value::Map(vec![(Value::Int(1), Value::Null)]);
        let b = minicbor::to_vec(&v).unwrap();
        assert_eq!(b, hex("a101f6"));
        let back: Value = minicbor::decode(&b).unwrap();
        assert_eq!(back, v);
    }
}
