//! Data-phase framing (spec §5.5): how packets follow each other on a
//! connection once authentication is done.
//!
//! A packet is an array `[portname, msg…]` (`""` = the node port); the
//! empty array `[]` is a no-op keepalive. There is no length prefix and no
//! delimiter:
//! * `cbor`: concatenated self-delimiting CBOR items;
//! * `json`: concatenated compact JSON arrays (whitespace between them is
//!   tolerated on input).
//!
//! Each direction has its own framing: we encode with the one we named in
//! our auth line and decode with the one the peer named in its auth line.
//! `storable` (Perl-only) is never offered and not supported.
//!
//! [`FrameDecoder`] is incremental: [`feed`](FrameDecoder::feed) it bytes as
//! they arrive and pull packets with
//! [`next_packet`](FrameDecoder::next_packet) until it returns `Ok(None)`.
//! Complete packets are decoded in one pass straight from the buffer; only
//! a packet split across reads is additionally scanned, resumably, so a big
//! packet arriving in many small chunks costs linear time. Consumed bytes
//! are dropped once they make up half the buffer (amortised linear).
//!
//! ```
//! use aemp_core::wire::framing::{encode_packet, FrameDecoder, Framing};
//! use aemp_core::Value;
//! let mut out = Vec::new();
//! encode_packet(Framing::Json, "port1", &[Value::from("hi"), Value::Int(1)], &mut out);
//! assert_eq!(out, br#"["port1","hi",1]"#);
//! let mut dec = FrameDecoder::new(Framing::Json);
//! dec.feed(&out[..5]);
//! assert_eq!(dec.next_packet(), Ok(None));
//! dec.feed(&out[5..]);
//! let msg = dec.next_packet().unwrap().unwrap();
//! assert_eq!(msg, vec![Value::from("port1"), Value::from("hi"), Value::Int(1)]);
//! ```

use crate::value::cbor::{self, CborError, MAX_DEPTH};
use crate::value::{Msg, Value};
use minicbor::data::Token;
use minicbor::{Decoder, Encoder};
use serde::Deserialize;
use std::fmt;
use std::str::FromStr;

/// Default maximum size of one packet in bytes (16 MiB).
pub const DEFAULT_MAX_PACKET: usize = 16 << 20;

/// A data-phase framing we support.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Framing {
    /// `cbor`: concatenated CBOR items (the 2.x default).
    Cbor,
    /// `json`: concatenated JSON arrays.
    Json,
}

impl Framing {
    /// The name used in greetings and auth lines.
    pub fn name(self) -> &'static str {
        match self {
            Framing::Cbor => "cbor",
            Framing::Json => "json",
        }
    }

    /// The framing with this wire name, if we support it.
    ///
    /// ```
    /// # use aemp_core::wire::framing::Framing;
    /// assert_eq!(Framing::from_name("json"), Some(Framing::Json));
    /// assert_eq!(Framing::from_name("storable"), None);
    /// ```
    pub fn from_name(name: &str) -> Option<Framing> {
        match name {
            "cbor" => Some(Framing::Cbor),
            "json" => Some(Framing::Json),
            _ => None,
        }
    }

    /// The supported framings of a comma-separated list, in order
    /// (unsupported names such as `storable` are skipped).
    ///
    /// ```
    /// # use aemp_core::wire::framing::Framing;
    /// assert_eq!(Framing::parse_list("cbor,storable,json"), vec![Framing::Cbor, Framing::Json]);
    /// ```
    pub fn parse_list(list: &str) -> Vec<Framing> {
        list.split(',').filter_map(Framing::from_name).collect()
    }

    /// Renders a list of framings as the comma-separated wire form.
    pub fn format_list(list: &[Framing]) -> String {
        list.iter().map(|f| f.name()).collect::<Vec<_>>().join(",")
    }
}

impl fmt::Display for Framing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Framing {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Framing::from_name(s).ok_or_else(|| format!("{s}: unsupported framing"))
    }
}

/// Why the data stream could not be decoded. The connection is unusable
/// afterwards (the decoder keeps returning the error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// A packet (complete or still arriving) is larger than the limit.
    TooLarge {
        /// The configured limit in bytes.
        limit: usize,
    },
    /// The top-level item is not an array.
    NotArray,
    /// Arrays/maps nested deeper than [`MAX_DEPTH`].
    TooDeep,
    /// Malformed data (the decoder's message).
    Invalid(String),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::TooLarge { limit } => {
                write!(f, "packet exceeds the maximum size of {limit} bytes")
            }
            FrameError::NotArray => f.write_str("packet is not an array"),
            FrameError::TooDeep => write!(f, "packet nested deeper than {MAX_DEPTH} levels"),
            FrameError::Invalid(m) => write!(f, "malformed packet: {m}"),
        }
    }
}

impl std::error::Error for FrameError {}

/// Progress of the resumable scan over a packet that is still incomplete.
#[derive(Debug, Default)]
struct Scan {
    /// True while a partial packet is being scanned (the fast one-pass
    /// decode found it truncated).
    active: bool,
    /// Absolute buffer position up to which the packet has been scanned.
    pos: usize,
    /// CBOR: remaining items of each open container (`None` = indefinite).
    stack: Vec<Option<u64>>,
    /// CBOR: the first non-tag token has been seen.
    started: bool,
    /// JSON: open brackets.
    depth: usize,
    /// JSON: inside a string.
    in_str: bool,
    /// JSON: after a backslash inside a string.
    esc: bool,
}

/// A decoded packet, whole or split into its first element and the rest.
enum Packet {
    Whole(Msg),
    Split(Value, Msg),
}

/// Incremental packet decoder for one direction of one connection.
#[derive(Debug)]
pub struct FrameDecoder {
    framing: Framing,
    buf: Vec<u8>,
    start: usize,
    scan: Scan,
    max_packet: usize,
    failed: Option<FrameError>,
}

impl FrameDecoder {
    /// A decoder for `framing` with the default packet limit.
    pub fn new(framing: Framing) -> Self {
        Self::with_max_packet(framing, DEFAULT_MAX_PACKET)
    }

    /// A decoder with a maximum packet size in bytes.
    pub fn with_max_packet(framing: Framing, max_packet: usize) -> Self {
        FrameDecoder {
            framing,
            buf: Vec::new(),
            start: 0,
            scan: Scan::default(),
            max_packet,
            failed: None,
        }
    }

    /// The framing this decoder reads.
    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// Bytes received but not yet returned as packets.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Appends received bytes. Call [`next_packet`](Self::next_packet)
    /// until it returns `Ok(None)` after every feed: that is what keeps the
    /// buffer bounded (by the packet limit plus one chunk).
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start * 2 >= self.buf.len() {
            self.buf.drain(..self.start);
            self.scan.pos -= self.start.min(self.scan.pos);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete packet, `Ok(None)` if more bytes are needed.
    /// An empty `Msg` is the keepalive packet `[]`.
    pub fn next_packet(&mut self) -> Result<Option<Msg>, FrameError> {
        Ok(self.next_any(false)?.map(|p| match p {
            Packet::Whole(m) => m,
            Packet::Split(first, mut rest) => {
                rest.insert(0, first);
                rest
            }
        }))
    }

    /// [`next_packet`](Self::next_packet) with the packet split into its
    /// first element (the port; `None` for the keepalive `[]`) and the
    /// rest (the message), without shifting the message in memory.
    #[allow(clippy::type_complexity)]
    pub fn next_split(&mut self) -> Result<Option<(Option<Value>, Msg)>, FrameError> {
        Ok(self.next_any(true)?.map(|p| match p {
            Packet::Whole(mut m) => {
                let first = if m.is_empty() {
                    None
                } else {
                    Some(m.remove(0))
                };
                (first, m)
            }
            Packet::Split(first, rest) => (Some(first), rest),
        }))
    }

    fn next_any(&mut self, split: bool) -> Result<Option<Packet>, FrameError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let r = match self.framing {
            Framing::Cbor => self.next_cbor(split),
            Framing::Json => self.next_json().map(|m| m.map(Packet::Whole)),
        };
        match r {
            Ok(Some(msg)) => {
                self.scan = Scan {
                    stack: std::mem::take(&mut self.scan.stack),
                    ..Scan::default()
                };
                self.scan.stack.clear();
                if self.start == self.buf.len() {
                    self.buf.clear();
                    self.start = 0;
                }
                Ok(Some(msg))
            }
            Ok(None) => {
                if self.buffered() > self.max_packet {
                    return Err(self.fail(FrameError::TooLarge {
                        limit: self.max_packet,
                    }));
                }
                Ok(None)
            }
            Err(e) => Err(self.fail(e)),
        }
    }

    fn fail(&mut self, e: FrameError) -> FrameError {
        self.failed = Some(e.clone());
        e
    }

    fn check_size(&self, len: usize) -> Result<(), FrameError> {
        if len > self.max_packet {
            Err(FrameError::TooLarge {
                limit: self.max_packet,
            })
        } else {
            Ok(())
        }
    }

    fn next_cbor(&mut self, split: bool) -> Result<Option<Packet>, FrameError> {
        if self.start == self.buf.len() {
            return Ok(None);
        }
        if !self.scan.active {
            // Fast path: the whole packet is usually there already.
            let input = &self.buf[self.start..];
            match input.first() {
                Some(0x80..=0x9f | 0xc0..=0xdb) => {}
                _ => return Err(FrameError::NotArray),
            }
            let r = if split {
                cbor::decode_split_prefix(input).map(|p| {
                    p.map(|(first, rest, used)| {
                        let pkt = match first {
                            Some(f) => Packet::Split(f, rest),
                            None => Packet::Whole(rest),
                        };
                        (Some(pkt), used)
                    })
                    .unwrap_or((None, 0))
                })
            } else {
                cbor::decode_prefix(input).map(|(v, used)| match v {
                    Value::Array(a) => (Some(Packet::Whole(a)), used),
                    _ => (None, used),
                })
            };
            match r {
                Ok((pkt, used)) => {
                    let pkt = pkt.ok_or(FrameError::NotArray)?;
                    self.check_size(used)?;
                    self.start += used;
                    return Ok(Some(pkt));
                }
                Err(CborError::Truncated) => {
                    self.scan.active = true;
                    self.scan.pos = self.start;
                }
                Err(e) => return Err(cbor_err(e)),
            }
        }
        match self.scan_cbor()? {
            None => Ok(None),
            Some(end) => {
                self.check_size(end - self.start)?;
                let v = cbor::from_slice(&self.buf[self.start..end]).map_err(cbor_err)?;
                self.start = end;
                match v {
                    Value::Array(a) => Ok(Some(Packet::Whole(a))),
                    _ => Err(FrameError::NotArray),
                }
            }
        }
    }

    /// Continues the structural scan of a partial CBOR packet; returns its
    /// end position once complete. Tokens are read with minicbor's
    /// tokenizer, only the container bookkeeping is done here.
    fn scan_cbor(&mut self) -> Result<Option<usize>, FrameError> {
        let mut d = Decoder::new(&self.buf);
        d.set_position(self.scan.pos);
        let s = &mut self.scan;
        loop {
            let p = d.position();
            if p - self.start > self.max_packet {
                return Err(FrameError::TooLarge {
                    limit: self.max_packet,
                });
            }
            let tok = match d.decode::<Token>() {
                Ok(t) => t,
                Err(e) if e.is_end_of_input() => {
                    s.pos = p;
                    return Ok(None);
                }
                Err(e) => return Err(FrameError::Invalid(e.to_string())),
            };
            if !s.started && !matches!(tok, Token::Tag(_)) {
                s.started = true;
                if !matches!(tok, Token::Array(_) | Token::BeginArray) {
                    return Err(FrameError::NotArray);
                }
            }
            let completes = match tok {
                Token::Tag(_) => false,
                Token::Array(0) | Token::Map(0) => true,
                Token::Array(n) => {
                    s.stack.push(Some(n));
                    false
                }
                Token::Map(n) => {
                    s.stack.push(Some(n.saturating_mul(2)));
                    false
                }
                Token::BeginArray | Token::BeginMap | Token::BeginBytes | Token::BeginString => {
                    s.stack.push(None);
                    false
                }
                Token::Break => match s.stack.pop() {
                    Some(None) => true,
                    _ => return Err(FrameError::Invalid("unexpected break".into())),
                },
                _ => true,
            };
            if s.stack.len() > MAX_DEPTH + 1 {
                return Err(FrameError::TooDeep);
            }
            if completes {
                loop {
                    match s.stack.last_mut() {
                        None => return Ok(Some(d.position())),
                        Some(None) => break,
                        Some(Some(n)) => {
                            *n -= 1;
                            if *n == 0 {
                                s.stack.pop();
                            } else {
                                break;
                            }
                        }
                    }
                }
            }
        }
    }

    fn next_json(&mut self) -> Result<Option<Msg>, FrameError> {
        if !self.scan.active {
            // Whitespace between packets is consumed, never buffered.
            while let Some(b' ' | b'\t' | b'\r' | b'\n') = self.buf.get(self.start) {
                self.start += 1;
            }
            let input = &self.buf[self.start..];
            match input.first() {
                None => return Ok(None),
                Some(b'[') => {}
                Some(_) => return Err(FrameError::NotArray),
            }
            // Fast path: decode straight from the buffer.
            let mut stream = serde_json::Deserializer::from_slice(input).into_iter::<Msg>();
            match stream.next() {
                Some(Ok(msg)) => {
                    let used = stream.byte_offset();
                    self.check_size(used)?;
                    self.start += used;
                    return Ok(Some(msg));
                }
                Some(Err(e)) if e.is_eof() => {
                    self.scan.active = true;
                    self.scan.pos = self.start;
                }
                Some(Err(e)) => return Err(json_err(e)),
                None => return Ok(None),
            }
        }
        match self.scan_json()? {
            None => Ok(None),
            Some(end) => {
                self.check_size(end - self.start)?;
                let msg = Msg::deserialize(&mut serde_json::Deserializer::from_slice(
                    &self.buf[self.start..end],
                ))
                .map_err(json_err)?;
                self.start = end;
                Ok(Some(msg))
            }
        }
    }

    /// Continues the bracket scan of a partial JSON packet (strings and
    /// escapes skipped); returns its end position once complete.
    fn scan_json(&mut self) -> Result<Option<usize>, FrameError> {
        let s = &mut self.scan;
        let limit = self.start.saturating_add(self.max_packet);
        let mut i = s.pos;
        while i < self.buf.len() {
            let b = self.buf[i];
            i += 1;
            if s.in_str {
                if s.esc {
                    s.esc = false;
                } else if b == b'\\' {
                    s.esc = true;
                } else if b == b'"' {
                    s.in_str = false;
                }
                continue;
            }
            match b {
                b'"' => s.in_str = true,
                b'[' | b'{' => {
                    s.depth += 1;
                    if s.depth > MAX_DEPTH {
                        return Err(FrameError::TooDeep);
                    }
                }
                b']' | b'}' => {
                    s.depth = s.depth.saturating_sub(1);
                    if s.depth == 0 {
                        return Ok(Some(i));
                    }
                }
                _ => {}
            }
            if i > limit {
                return Err(FrameError::TooLarge {
                    limit: self.max_packet,
                });
            }
        }
        s.pos = i;
        Ok(None)
    }
}

fn cbor_err(e: CborError) -> FrameError {
    match e {
        CborError::TooDeep => FrameError::TooDeep,
        e => FrameError::Invalid(e.to_string()),
    }
}

fn json_err(e: serde_json::Error) -> FrameError {
    if e.is_data() {
        // e.g. a top-level object where an array was expected
        if e.to_string().starts_with("invalid type") {
            return FrameError::NotArray;
        }
    }
    if e.to_string().starts_with("recursion limit exceeded") {
        return FrameError::TooDeep;
    }
    FrameError::Invalid(e.to_string())
}

/// Appends the packet `[port, msg…]` to `out`, without intermediate buffers.
///
/// ```
/// # use aemp_core::wire::framing::{encode_packet, Framing};
/// # use aemp_core::Value;
/// let mut out = Vec::new();
/// encode_packet(Framing::Cbor, "", &[Value::from("g_slave")], &mut out);
/// assert_eq!(out, b"\x82\x60\x67g_slave");
/// ```
pub fn encode_packet(framing: Framing, port: &str, msg: &[Value], out: &mut Vec<u8>) {
    match framing {
        Framing::Cbor => {
            let mut e = Encoder::new(&mut *out);
            // Writing into a Vec cannot fail.
            let _ = e.array(msg.len() as u64 + 1).and_then(|e| e.str(port));
            for v in msg {
                let _ = cbor::encode_value(v, &mut e);
            }
        }
        Framing::Json => {
            out.push(b'[');
            let _ = serde_json::to_writer(&mut *out, port);
            for v in msg {
                out.push(b',');
                crate::value::json::encode_into(v, out);
            }
            out.push(b']');
        }
    }
}

/// Appends a whole packet given as one array of values (`[]` allowed).
pub fn encode_raw_packet(framing: Framing, packet: &[Value], out: &mut Vec<u8>) {
    match framing {
        Framing::Cbor => {
            let mut e = Encoder::new(&mut *out);
            let _ = e.array(packet.len() as u64);
            for v in packet {
                let _ = cbor::encode_value(v, &mut e);
            }
        }
        Framing::Json => {
            out.push(b'[');
            for (i, v) in packet.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                crate::value::json::encode_into(v, out);
            }
            out.push(b']');
        }
    }
}

/// Appends the empty keepalive packet `[]`.
pub fn encode_keepalive(framing: Framing, out: &mut Vec<u8>) {
    match framing {
        Framing::Cbor => out.push(0x80),
        Framing::Json => out.extend_from_slice(b"[]"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::cbor::tests::{hex, TRACE_CBOR};
    use crate::value::json::tests::TRACE_JSON;

    fn drain(d: &mut FrameDecoder) -> Vec<Msg> {
        let mut v = vec![];
        while let Some(m) = d.next_packet().unwrap() {
            v.push(m);
        }
        v
    }

    fn trace_cbor_stream() -> (Vec<u8>, Vec<String>) {
        let mut all = vec![];
        let mut diags = vec![];
        for (h, diag) in TRACE_CBOR {
            all.extend(hex(h));
            diags.push(diag.to_string());
        }
        (all, diags)
    }

    fn rendered(msgs: &[Msg]) -> Vec<String> {
        msgs.iter()
            .map(|m| crate::value::msg_to_string(m))
            .collect()
    }

    #[test]
    fn cbor_trace_stream_in_one_go_and_byte_by_byte() {
        let (all, diags) = trace_cbor_stream();
        let mut d = FrameDecoder::new(Framing::Cbor);
        d.feed(&all);
        assert_eq!(rendered(&drain(&mut d)), diags);
        assert_eq!(d.buffered(), 0);

        let mut d = FrameDecoder::new(Framing::Cbor);
        let mut got = vec![];
        for b in &all {
            d.feed(std::slice::from_ref(b));
            got.extend(drain(&mut d));
        }
        assert_eq!(rendered(&got), diags);
    }

    #[test]
    fn next_split_matches_next_packet() {
        let (mut all, _) = trace_cbor_stream();
        all.extend_from_slice(&[0x80, 0x9f, 0x41, b'p', 0x01, 0xff, 0x9f, 0xff]); // [], [_ "p", 1], [_ ]
        for framing in [Framing::Cbor, Framing::Json] {
            let bytes = if framing == Framing::Cbor {
                all.clone()
            } else {
                TRACE_JSON.join("").into_bytes()
            };
            let mut d = FrameDecoder::new(framing);
            d.feed(&bytes);
            let want = drain(&mut d);
            for chunk in [1, 5, bytes.len()] {
                let mut d = FrameDecoder::new(framing);
                let mut got = vec![];
                for c in bytes.chunks(chunk) {
                    d.feed(c);
                    while let Some((first, mut rest)) = d.next_split().unwrap() {
                        if let Some(f) = first {
                            rest.insert(0, f);
                        }
                        got.push(rest);
                    }
                }
                assert_eq!(got, want, "{framing} chunk {chunk}");
            }
        }
    }

    #[test]
    fn json_trace_stream_chunks_and_whitespace() {
        let all: String = TRACE_JSON.join(" \n");
        for chunk in [1, 3, 7, 64, 10_000] {
            let mut d = FrameDecoder::new(Framing::Json);
            let mut got = vec![];
            for c in all.as_bytes().chunks(chunk) {
                d.feed(c);
                got.extend(drain(&mut d));
            }
            assert_eq!(rendered(&got), TRACE_JSON, "chunk {chunk}");
        }
    }

    #[test]
    fn json_tricky_strings_split() {
        let p = br#"["a]\"[{","\\",{"k]":"}"}]"#;
        let mut d = FrameDecoder::new(Framing::Json);
        for b in p {
            d.feed(std::slice::from_ref(b));
            if let Some(m) = d.next_packet().unwrap() {
                assert_eq!(m[0], Value::from("a]\"[{"));
                assert_eq!(m[1], Value::from("\\"));
                return;
            }
        }
        panic!("packet never completed");
    }

    #[test]
    fn keepalive_is_empty_msg() {
        for f in [Framing::Cbor, Framing::Json] {
            let mut out = vec![];
            encode_keepalive(f, &mut out);
            encode_packet(f, "p", &[], &mut out);
            encode_keepalive(f, &mut out);
            let mut d = FrameDecoder::new(f);
            d.feed(&out);
            assert_eq!(drain(&mut d), vec![vec![], vec![Value::from("p")], vec![]]);
        }
    }

    #[test]
    fn encode_matches_wire_form() {
        let msg = [Value::Bytes(b"g_slave".to_vec())];
        let mut out = vec![];
        encode_packet(Framing::Json, "", &msg, &mut out);
        assert_eq!(out, br#"["","g_slave"]"#);
        out.clear();
        // Perl sends the port as a byte string; a raw packet reproduces it.
        let raw = [Value::Bytes(vec![]), Value::Bytes(b"g_slave".to_vec())];
        encode_raw_packet(Framing::Cbor, &raw, &mut out);
        assert_eq!(out, hex(TRACE_CBOR[0].0));
    }

    #[test]
    fn not_an_array_is_an_error() {
        for (f, bad) in [
            (Framing::Cbor, &b"\xa0"[..]),
            (Framing::Cbor, b"\x01"),
            (Framing::Cbor, b"\xc1\x01"),
            (Framing::Json, b"{}"),
            (Framing::Json, b"1"),
            (Framing::Json, b"garbage"),
        ] {
            let mut d = FrameDecoder::new(f);
            d.feed(bad);
            assert_eq!(d.next_packet(), Err(FrameError::NotArray), "{bad:?}");
            // the error sticks
            assert!(d.next_packet().is_err());
        }
    }

    #[test]
    fn garbage_inside_packet() {
        let mut d = FrameDecoder::new(Framing::Cbor);
        d.feed(b"\x82\x01\xff");
        assert!(matches!(d.next_packet(), Err(FrameError::Invalid(_))));
        let mut d = FrameDecoder::new(Framing::Json);
        d.feed(b"[1,,2]");
        assert!(matches!(d.next_packet(), Err(FrameError::Invalid(_))));
        // garbage after a partial packet, found by the resumable scan
        let mut d = FrameDecoder::new(Framing::Cbor);
        d.feed(b"\x83\x01");
        assert_eq!(d.next_packet(), Ok(None));
        d.feed(b"\x1c");
        assert!(matches!(d.next_packet(), Err(FrameError::Invalid(_))));
    }

    #[test]
    fn oversize_complete_and_incomplete() {
        for f in [Framing::Cbor, Framing::Json] {
            let mut big = vec![];
            encode_packet(f, "p", &[Value::Bytes(vec![b'x'; 200])], &mut big);
            // complete but too large
            let mut d = FrameDecoder::with_max_packet(f, 100);
            d.feed(&big);
            assert_eq!(d.next_packet(), Err(FrameError::TooLarge { limit: 100 }));
            // still arriving and already too large: error before it completes
            let mut d = FrameDecoder::with_max_packet(f, 100);
            let mut err = None;
            for c in big[..big.len() - 1].chunks(10) {
                d.feed(c);
                if let Err(e) = d.next_packet() {
                    err = Some(e);
                    break;
                }
            }
            assert_eq!(err, Some(FrameError::TooLarge { limit: 100 }), "{f}");
            assert!(d.buffered() <= 120);
        }
        // a hostile CBOR length header never completes: bounded by the limit
        let mut d = FrameDecoder::with_max_packet(Framing::Cbor, 1000);
        d.feed(&hex("825affffffff"));
        let mut res = Ok(None);
        for _ in 0..20 {
            d.feed(&[0u8; 100]);
            res = d.next_packet();
            if res.is_err() {
                break;
            }
        }
        assert_eq!(res, Err(FrameError::TooLarge { limit: 1000 }));
    }

    #[test]
    fn deep_nesting_is_an_error() {
        let mut d = FrameDecoder::new(Framing::Cbor);
        d.feed(&vec![0x81; 10_000]);
        assert_eq!(d.next_packet(), Err(FrameError::TooDeep));
        let mut d = FrameDecoder::new(Framing::Json);
        d.feed("[".repeat(10_000).as_bytes());
        assert_eq!(d.next_packet(), Err(FrameError::TooDeep));
        // split so the resumable scanner sees it
        let mut d = FrameDecoder::new(Framing::Json);
        for _ in 0..1000 {
            d.feed(b"[");
            if d.next_packet().is_err() {
                return;
            }
        }
        panic!("depth not limited");
    }

    #[test]
    fn big_packet_in_small_chunks_is_linear_and_correct() {
        for f in [Framing::Cbor, Framing::Json] {
            let payload: Vec<Value> = (0..20_000)
                .map(|i| Value::from(format!("item{i}")))
                .collect();
            let mut out = vec![];
            encode_packet(f, "port", &payload, &mut out);
            encode_packet(f, "next", &[], &mut out);
            let mut d = FrameDecoder::new(f);
            let mut got = vec![];
            for c in out.chunks(16) {
                d.feed(c);
                got.extend(drain(&mut d));
            }
            assert_eq!(got.len(), 2);
            assert_eq!(got[0].len(), 20_001);
            assert_eq!(got[0][20_000], Value::from("item19999"));
            assert_eq!(got[1], vec![Value::from("next")]);
        }
    }

    #[test]
    fn many_small_packets_compact_buffer() {
        let mut d = FrameDecoder::new(Framing::Cbor);
        let mut pkt = vec![];
        encode_packet(Framing::Cbor, "p", &[Value::Int(1)], &mut pkt);
        let mut n = 0;
        for _ in 0..10_000 {
            // feed one and a half packets at a time
            d.feed(&pkt);
            d.feed(&pkt[..2]);
            n += drain(&mut d).len();
            d.feed(&pkt[2..]);
            n += drain(&mut d).len();
            assert!(d.buf.len() < 64, "buffer grows: {}", d.buf.len());
        }
        assert_eq!(n, 20_000);
    }

    #[test]
    fn framing_names() {
        assert_eq!("cbor".parse::<Framing>(), Ok(Framing::Cbor));
        assert!("storable".parse::<Framing>().is_err());
        assert_eq!(
            Framing::format_list(&[Framing::Cbor, Framing::Json]),
            "cbor,json"
        );
    }
}
