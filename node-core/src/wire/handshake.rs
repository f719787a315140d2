//! The sans-IO connection handshake: greeting, optional TLS, auth lines.
//!
//! One [`Handshake`] per connection, outgoing or incoming alike (the
//! protocol is symmetric). The driver:
//! 1. creates it with a fresh 66-byte nonce and writes
//!    [`greeting`](Handshake::greeting) at once;
//! 2. passes every received chunk to [`receive`](Handshake::receive) and
//!    acts on the returned [`HsEvent`]s in order:
//!    * [`HsEvent::PeerGreeting`]: the peer's greeting passed the protocol,
//!      version, echo and self checks — the kernel may refuse the node here
//!      (e.g. "already connected") by dropping the connection;
//!    * [`HsEvent::Send`]: write these bytes (our auth line);
//!    * [`HsEvent::StartTls`]: TLS is active — run TLS as client or server
//!      over the socket, handing it `rest`; once it is up, call
//!      [`tls_ready`](Handshake::tls_ready) and from then on pass
//!      *decrypted* bytes to `receive` (and encrypt what we send);
//!    * [`HsEvent::Established`]: done. Bytes received after the peer's auth
//!      line are in `rest`: they are data-phase bytes, feed them to a
//!      [`FrameDecoder`](super::FrameDecoder) for `recv_framing` first.
//! 3. On `Err(e)`, closes the connection and reports `e.to_string()` as
//!    the `transport_error` text.
//!
//! Timeouts are the driver's job (it has the clock); nothing here needs one.
//!
//! ```
//! use aemp_core::wire::{Handshake, HandshakeConfig, HsEvent};
//! let a_cfg = HandshakeConfig::new("a", Some(b"secret"));
//! let b_cfg = HandshakeConfig::new("b", Some(b"secret"));
//! let mut a = Handshake::new(&a_cfg, [1; 66], None);
//! let mut b = Handshake::new(&b_cfg, [2; 66], None);
//! let a_ev = a.receive(b.greeting()).unwrap();
//! let b_ev = b.receive(a.greeting()).unwrap();
//! let send = |ev: &[HsEvent]| ev.iter().find_map(|e| match e {
//!     HsEvent::Send(bytes) => Some(bytes.clone()), _ => None }).unwrap();
//! let a_done = a.receive(&send(&b_ev)).unwrap();
//! let b_done = b.receive(&send(&a_ev)).unwrap();
//! assert!(matches!(&a_done[..], [HsEvent::Established(e)] if e.peer_id == "b"));
//! assert!(matches!(&b_done[..], [HsEvent::Established(e)] if e.peer_id == "a"));
//! ```

use super::auth::{self, AuthLine, Transcript};
use super::framing::Framing;
use super::greeting::{nonce_line, perl_num, Greeting, NONCE_LEN, PROTOCOL_VERSION};
use super::HandshakeError;

/// Default limit for one line before authentication completes (Perl's 4 KiB).
pub const DEFAULT_MAX_LINE: usize = 4096;

/// Our `provider` greeting value: `aemp-rs-<crate version>`.
pub fn default_provider() -> String {
    format!("aemp-rs-{}", env!("CARGO_PKG_VERSION"))
}

/// What a handshake needs to know about our node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeConfig {
    /// Our node ID.
    pub node_id: String,
    /// The shared secret, if configured.
    pub secret: Option<Vec<u8>>,
    /// *Extension:* the secret for untrusted nodes (browser pages). A peer
    /// whose greeting carries `untrusted=1` is authenticated with this one
    /// instead of `secret` (both directions), and the connection is marked
    /// untrusted. A node that is itself untrusted puts its web secret into
    /// `secret` and `("untrusted", "1")` into `extra`.
    pub web_secret: Option<Vec<u8>>,
    /// Methods we may send (`auth_offer`), default `tls_sha3_512,hmac_sha3_512`.
    pub auth_offer: Vec<String>,
    /// Methods we announce as accepted (`auth_accept`), default
    /// `tls_sha3_512,hmac_sha3_512,tls_anon,cleartext`.
    pub auth_accept: Vec<String>,
    /// Framings we accept, in preference order (default cbor, json).
    pub framings: Vec<Framing>,
    /// A TLS certificate is configured: we send `tls=1.0` and use TLS when
    /// the peer wants it too.
    pub has_cert: bool,
    /// Maximum line length before auth is done (default 4096).
    pub max_line: usize,
    /// Our `provider` value.
    pub provider: String,
    /// The protocol name, `aemp` (or e.g. `aemp-dataconn`).
    pub protocol: String,
    /// Extra `key=value` pairs for our greeting (e.g. `dataconn_id`).
    pub extra: Vec<(String, String)>,
}

impl HandshakeConfig {
    /// A configuration with Perl's defaults for everything but the node ID
    /// and secret.
    pub fn new(node_id: impl Into<String>, secret: Option<&[u8]>) -> Self {
        let strs = |l: &[&str]| l.iter().map(|s| s.to_string()).collect();
        HandshakeConfig {
            node_id: node_id.into(),
            secret: secret.map(<[u8]>::to_vec),
            web_secret: None,
            auth_offer: strs(auth::DEFAULT_AUTH_OFFER),
            auth_accept: strs(auth::DEFAULT_AUTH_ACCEPT),
            framings: vec![Framing::Cbor, Framing::Json],
            has_cert: false,
            max_line: DEFAULT_MAX_LINE,
            provider: default_provider(),
            protocol: "aemp".into(),
            extra: Vec::new(),
        }
    }
}

/// The peer's greeting, as reported by [`HsEvent::PeerGreeting`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerGreeting {
    /// Line 1, parsed.
    pub greeting: Greeting,
    /// Line 2 (the nonce, as sent).
    pub nonce: String,
    /// True if TLS will be used on this connection.
    pub tls: bool,
}

impl PeerGreeting {
    /// The peer's node ID.
    pub fn node_id(&self) -> &str {
        &self.greeting.node_id
    }
}

/// The result of a successful handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Established {
    /// The peer's node ID.
    pub peer_id: String,
    /// The framing we encode in (the one named in our auth line).
    pub send_framing: Framing,
    /// The framing the peer encodes in (named in its auth line).
    pub recv_framing: Framing,
    /// The auth method the peer used.
    pub auth_method: String,
    /// True if the peer authenticated with `tls_anon` only.
    pub untrusted: bool,
    /// The peer's greeting.
    pub peer: PeerGreeting,
    /// Bytes that followed the peer's auth line: the start of the data phase.
    pub rest: Vec<u8>,
}

/// What the driver has to do next (see the [module docs](self)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HsEvent {
    /// Write these bytes to the peer.
    Send(Vec<u8>),
    /// The peer's greeting arrived and passed the basic checks.
    PeerGreeting(PeerGreeting),
    /// Start TLS now, as client (`true`) or server; `rest` are bytes that
    /// arrived after the greeting (already TLS records).
    StartTls {
        /// We are the TLS client (our nonce line compares lower).
        client: bool,
        /// Received bytes that belong to the TLS stream.
        rest: Vec<u8>,
    },
    /// Authentication completed both ways.
    Established(Box<Established>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Line1,
    Line2,
    AwaitTls,
    AuthLine,
    Done,
}

/// The handshake of one connection (see the [module docs](self)).
#[derive(Debug)]
pub struct Handshake {
    cfg: HandshakeConfig,
    l1: Vec<u8>,
    l2: Vec<u8>,
    out: Vec<u8>,
    buf: Vec<u8>,
    scanned: usize,
    state: State,
    r1: Vec<u8>,
    r2: Vec<u8>,
    peer: Option<Greeting>,
    tls: bool,
    s_auth: String,
    s_framing: Framing,
    peer_greeting: Option<PeerGreeting>,
    error: Option<HandshakeError>,
    unsent: Vec<u8>,
}

impl Handshake {
    /// Starts a handshake. `nonce` must be fresh random bytes; `peeraddr` is
    /// the peer's address as we see it, if known.
    pub fn new(cfg: &HandshakeConfig, nonce: [u8; NONCE_LEN], peeraddr: Option<String>) -> Self {
        let mut kv = vec![("provider".to_string(), Some(cfg.provider.clone()))];
        if let Some(a) = peeraddr {
            kv.push(("peeraddr".into(), Some(a)));
        }
        kv.push(("mproto".into(), Some("1".into())));
        kv.push(("gproto".into(), Some("1".into())));
        if cfg.has_cert {
            kv.push(("tls".into(), Some("1.0".into())));
        }
        for (k, v) in &cfg.extra {
            kv.push((k.clone(), Some(v.clone())));
        }
        let g = Greeting {
            protocol: cfg.protocol.clone(),
            version: PROTOCOL_VERSION.to_string(),
            node_id: cfg.node_id.clone(),
            auth: cfg.auth_accept.clone(),
            framings: cfg.framings.iter().map(|f| f.name().to_string()).collect(),
            kv,
        };
        Self::with_lines(cfg, g.to_line(), nonce_line(&nonce))
    }

    /// Starts a handshake with our two greeting lines given verbatim
    /// (without terminators). For replaying captured sessions and for
    /// protocols that need a custom greeting; [`new`](Self::new) is the
    /// normal constructor.
    pub fn with_lines(cfg: &HandshakeConfig, line1: String, line2: String) -> Self {
        let mut out = Vec::with_capacity(line1.len() + line2.len() + 2);
        out.extend_from_slice(line1.as_bytes());
        out.push(b'\n');
        out.extend_from_slice(line2.as_bytes());
        out.push(b'\n');
        Handshake {
            cfg: cfg.clone(),
            l1: line1.into_bytes(),
            l2: line2.into_bytes(),
            out,
            buf: Vec::new(),
            scanned: 0,
            state: State::Line1,
            r1: Vec::new(),
            r2: Vec::new(),
            peer: None,
            tls: false,
            s_auth: String::new(),
            s_framing: Framing::Cbor,
            peer_greeting: None,
            error: None,
            unsent: Vec::new(),
        }
    }

    /// Our two greeting lines, to send as soon as the connection is up.
    pub fn greeting(&self) -> &[u8] {
        &self.out
    }

    /// True if TLS was negotiated (known once the peer's line 1 arrived).
    pub fn tls(&self) -> bool {
        self.tls
    }

    /// True after [`HsEvent::StartTls`] until [`tls_ready`](Self::tls_ready)
    /// is called.
    pub fn awaiting_tls(&self) -> bool {
        self.state == State::AwaitTls
    }

    /// The peer's greeting, once received.
    pub fn peer(&self) -> Option<&PeerGreeting> {
        self.peer_greeting.as_ref()
    }

    /// True once [`HsEvent::Established`] was returned.
    pub fn is_established(&self) -> bool {
        self.state == State::Done
    }

    /// Processes received bytes. After an error the handshake is dead and
    /// keeps returning it.
    pub fn receive(&mut self, data: &[u8]) -> Result<Vec<HsEvent>, HandshakeError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        if self.state == State::Done {
            return Err(HandshakeError::Finished);
        }
        self.buf.extend_from_slice(data);
        let mut ev = Vec::new();
        match self.process(&mut ev) {
            Ok(()) => Ok(ev),
            Err(e) => {
                // Keep what we produced before failing (our auth line): the
                // caller should still send it, so the peer learns the reason.
                for x in ev {
                    if let HsEvent::Send(bytes) = x {
                        self.unsent.extend_from_slice(&bytes);
                    }
                }
                self.error = Some(e.clone());
                Err(e)
            }
        }
    }

    /// Bytes produced by the `receive` call that failed (e.g. our auth
    /// line, when the peer's greeting and its bad auth line arrived
    /// together). Send them before closing.
    pub fn take_unsent(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.unsent)
    }

    /// Tells the handshake that TLS is up (after [`HsEvent::StartTls`]):
    /// returns our auth line to send (through TLS), plus whatever follows
    /// from plaintext already passed to `receive`.
    pub fn tls_ready(&mut self) -> Result<Vec<HsEvent>, HandshakeError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        if self.state != State::AwaitTls {
            return Err(HandshakeError::Finished);
        }
        let mut ev = Vec::new();
        let r = self.send_auth(&mut ev).and_then(|()| self.process(&mut ev));
        match r {
            Ok(()) => Ok(ev),
            Err(e) => {
                self.error = Some(e.clone());
                Err(e)
            }
        }
    }

    fn process(&mut self, ev: &mut Vec<HsEvent>) -> Result<(), HandshakeError> {
        loop {
            if matches!(self.state, State::AwaitTls | State::Done) {
                return Ok(());
            }
            let Some(line) = self.take_line()? else {
                return Ok(());
            };
            match self.state {
                State::Line1 => self.on_line1(line)?,
                State::Line2 => self.on_line2(line, ev)?,
                State::AuthLine => self.on_auth(line, ev)?,
                State::AwaitTls | State::Done => unreachable!("checked above"),
            }
        }
    }

    /// The next complete line (CR LF or LF), enforcing the length limit on
    /// complete and incomplete lines alike.
    fn take_line(&mut self) -> Result<Option<Vec<u8>>, HandshakeError> {
        let Some(i) = self.buf[self.scanned..].iter().position(|&b| b == b'\n') else {
            self.scanned = self.buf.len();
            if self.buf.len() > self.cfg.max_line {
                return Err(HandshakeError::LineTooLong);
            }
            return Ok(None);
        };
        let end = self.scanned + i;
        let mut line: Vec<u8> = self.buf.drain(..=end).collect();
        self.scanned = 0;
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        if line.len() > self.cfg.max_line {
            return Err(HandshakeError::LineTooLong);
        }
        Ok(Some(line))
    }

    fn on_line1(&mut self, line: Vec<u8>) -> Result<(), HandshakeError> {
        let g = Greeting::parse(&String::from_utf8_lossy(&line));
        self.r1 = line;
        if self.cfg.protocol == "aemp" && g.protocol.starts_with("aemp-") {
            // a sub-protocol (e.g. DataConn): switch to it, as Perl does
            self.cfg.protocol = g.protocol.clone();
        }
        if g.protocol != self.cfg.protocol {
            return Err(HandshakeError::Unparsable {
                expected: self.cfg.protocol.clone(),
                got: g.protocol,
            });
        }
        if perl_num(&g.version) != f64::from(PROTOCOL_VERSION) {
            return Err(HandshakeError::VersionMismatch(g.version));
        }
        self.tls = self.cfg.has_cert && g.wants_tls();
        self.s_auth = auth::select_auth(&g.auth, &self.cfg.auth_offer, self.tls)
            .ok_or_else(|| HandshakeError::NoCommonAuth(g.auth.join(",")))?
            .to_string();
        self.s_framing = auth::select_framing(&g.framings, &self.cfg.framings)
            .ok_or_else(|| HandshakeError::NoCommonFraming(g.framings.join(",")))?;
        self.peer = Some(g);
        self.state = State::Line2;
        Ok(())
    }

    fn on_line2(&mut self, line: Vec<u8>, ev: &mut Vec<HsEvent>) -> Result<(), HandshakeError> {
        self.r2 = line;
        if self.r1 == self.l1 && self.r2 == self.l2 {
            return Err(HandshakeError::EchoAttack);
        }
        let greeting = self.peer.clone().unwrap_or_default();
        if self.cfg.protocol == "aemp" && greeting.node_id == self.cfg.node_id {
            return Err(HandshakeError::TalkToMyself);
        }
        let pg = PeerGreeting {
            greeting,
            nonce: String::from_utf8_lossy(&self.r2).into_owned(),
            tls: self.tls,
        };
        self.peer_greeting = Some(pg.clone());
        ev.push(HsEvent::PeerGreeting(pg));
        if self.tls {
            self.state = State::AwaitTls;
            ev.push(HsEvent::StartTls {
                client: self.l2 < self.r2,
                rest: std::mem::take(&mut self.buf),
            });
            self.scanned = 0;
            Ok(())
        } else {
            self.send_auth(ev)
        }
    }

    /// The peer announced itself untrusted and we accept such peers.
    fn peer_is_web(&self) -> bool {
        self.cfg.web_secret.is_some()
            && self
                .peer
                .as_ref()
                .is_some_and(|g| g.get("untrusted") == Some("1"))
    }

    /// The secret this connection authenticates with.
    fn secret(&self) -> Option<&[u8]> {
        if self.peer_is_web() {
            self.cfg.web_secret.as_deref()
        } else {
            self.cfg.secret.as_deref()
        }
    }

    fn transcript(&self) -> Transcript<'_> {
        Transcript {
            l1: &self.l1,
            l2: &self.l2,
            r1: &self.r1,
            r2: &self.r2,
        }
    }

    fn send_auth(&mut self, ev: &mut Vec<HsEvent>) -> Result<(), HandshakeError> {
        let token = auth::make_token(&self.s_auth, self.tls, self.secret(), &self.transcript())?;
        let line = AuthLine {
            method: self.s_auth.clone(),
            token,
            framing: self.s_framing.name().to_string(),
        };
        ev.push(HsEvent::Send(line.to_line().into_bytes()));
        self.state = State::AuthLine;
        Ok(())
    }

    fn on_auth(&mut self, line: Vec<u8>, ev: &mut Vec<HsEvent>) -> Result<(), HandshakeError> {
        let a = AuthLine::parse(&String::from_utf8_lossy(&line));
        auth::verify_token(
            &a.method,
            &a.token,
            self.tls,
            self.secret(),
            &self.transcript(),
        )?;
        let recv_framing = Framing::from_name(&a.framing)
            .ok_or_else(|| HandshakeError::UnusableFraming(a.framing.clone()))?;
        let peer = self.peer_greeting.clone().ok_or(HandshakeError::Finished)?;
        self.state = State::Done;
        ev.push(HsEvent::Established(Box::new(Established {
            peer_id: peer.greeting.node_id.clone(),
            send_framing: self.s_framing,
            recv_framing,
            untrusted: a.method == auth::TLS_ANON || self.peer_is_web(),
            auth_method: a.method,
            peer,
            rest: std::mem::take(&mut self.buf),
        })));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::cbor::tests::hex;
    use crate::wire::auth::tests::TRACE_SESSIONS;
    use crate::wire::framing::{encode_packet, FrameDecoder};
    use crate::Value;

    fn cfg(id: &str) -> HandshakeConfig {
        HandshakeConfig::new(id, Some(b"s3cret"))
    }

    fn sends(ev: &[HsEvent]) -> Vec<u8> {
        ev.iter()
            .filter_map(|e| match e {
                HsEvent::Send(b) => Some(b.clone()),
                _ => None,
            })
            .flatten()
            .collect()
    }

    fn established(ev: &[HsEvent]) -> Option<Established> {
        ev.iter().find_map(|e| match e {
            HsEvent::Established(e) => Some((**e).clone()),
            _ => None,
        })
    }

    /// Runs two handshakes against each other, delivering bytes in chunks
    /// of `chunk`; returns both results.
    fn run(
        a: &mut Handshake,
        b: &mut Handshake,
        chunk: usize,
    ) -> (
        Result<Established, HandshakeError>,
        Result<Established, HandshakeError>,
    ) {
        let mut to_b = a.greeting().to_vec();
        let mut to_a = b.greeting().to_vec();
        let (mut ra, mut rb) = (None, None);
        for _ in 0..10 {
            let (xa, xb) = (std::mem::take(&mut to_a), std::mem::take(&mut to_b));
            for c in xa.chunks(chunk) {
                if ra.is_some() {
                    break;
                }
                match a.receive(c) {
                    Ok(ev) => {
                        to_b.extend(sends(&ev));
                        if let Some(e) = established(&ev) {
                            ra = Some(Ok(e));
                        }
                    }
                    Err(e) => ra = Some(Err(e)),
                }
            }
            for c in xb.chunks(chunk) {
                if rb.is_some() {
                    break;
                }
                match b.receive(c) {
                    Ok(ev) => {
                        to_a.extend(sends(&ev));
                        if let Some(e) = established(&ev) {
                            rb = Some(Ok(e));
                        }
                    }
                    Err(e) => rb = Some(Err(e)),
                }
            }
            if ra.is_some() && rb.is_some() {
                break;
            }
        }
        (ra.expect("a finished"), rb.expect("b finished"))
    }

    #[test]
    fn our_greeting_format() {
        let h = Handshake::new(&cfg("me"), [0; 66], Some("1.2.3.4:5".into()));
        let s = String::from_utf8(h.greeting().to_vec()).unwrap();
        let (l1, l2) = s.trim_end().split_once('\n').unwrap();
        assert_eq!(
            l1,
            format!(
                "aemp;1;me;tls_sha3_512,hmac_sha3_512,tls_anon,cleartext;cbor,json;provider=aemp-rs-{};peeraddr=1.2.3.4:5;mproto=1;gproto=1",
                env!("CARGO_PKG_VERSION")
            )
        );
        assert_eq!(l2, "A".repeat(88));
        let mut c = cfg("me");
        c.has_cert = true;
        let h = Handshake::new(&c, [0; 66], None);
        assert!(String::from_utf8_lossy(h.greeting()).contains(";gproto=1;tls=1.0\n"));
    }

    #[test]
    fn handshake_cbor_both_ways_and_fragmented() {
        for chunk in [1, 2, 7, 4096] {
            let mut a = Handshake::new(&cfg("a"), [1; 66], None);
            let mut b = Handshake::new(&cfg("b"), [2; 66], Some("x:1".into()));
            let (ea, eb) = run(&mut a, &mut b, chunk);
            let (ea, eb) = (ea.unwrap(), eb.unwrap());
            assert_eq!(ea.peer_id, "b");
            assert_eq!(eb.peer_id, "a");
            assert_eq!(
                (ea.send_framing, ea.recv_framing),
                (Framing::Cbor, Framing::Cbor)
            );
            assert_eq!(
                (eb.send_framing, eb.recv_framing),
                (Framing::Cbor, Framing::Cbor)
            );
            assert_eq!(ea.auth_method, "hmac_sha3_512");
            assert!(!ea.untrusted);
            assert_eq!(ea.peer.greeting.peeraddr(), Some("x:1"));
            assert!(a.is_established() && b.is_established());
            assert_eq!(a.receive(b"x"), Err(HandshakeError::Finished));
        }
    }

    #[test]
    fn json_only_peer_gets_json_and_mixed_directions() {
        let mut jc = cfg("j");
        jc.framings = vec![Framing::Json];
        let mut a = Handshake::new(&cfg("a"), [1; 66], None);
        let mut j = Handshake::new(&jc, [2; 66], None);
        let (ea, ej) = run(&mut a, &mut j, 3);
        let (ea, ej) = (ea.unwrap(), ej.unwrap());
        assert_eq!(ea.send_framing, Framing::Json);
        assert_eq!(ej.recv_framing, Framing::Json);
        assert_eq!(ej.send_framing, Framing::Json);
        // a packet from a reaches j as json
        let mut out = vec![];
        encode_packet(ea.send_framing, "port", &[Value::Int(7)], &mut out);
        assert_eq!(out, br#"["port",7]"#);
        let mut d = FrameDecoder::new(ej.recv_framing);
        d.feed(&out);
        assert_eq!(d.next_packet().unwrap().unwrap()[1], Value::Int(7));

        // a prefers json, b prefers cbor: each receives what it prefers
        let mut ac = cfg("a");
        ac.framings = vec![Framing::Json, Framing::Cbor];
        let mut a = Handshake::new(&ac, [1; 66], None);
        let mut b = Handshake::new(&cfg("b"), [2; 66], None);
        let (ea, eb) = run(&mut a, &mut b, 100);
        let (ea, eb) = (ea.unwrap(), eb.unwrap());
        assert_eq!(
            (ea.send_framing, ea.recv_framing),
            (Framing::Cbor, Framing::Json)
        );
        assert_eq!(
            (eb.send_framing, eb.recv_framing),
            (Framing::Json, Framing::Cbor)
        );
    }

    fn run_pair(
        a: &HandshakeConfig,
        b: &HandshakeConfig,
    ) -> (
        Result<Established, HandshakeError>,
        Result<Established, HandshakeError>,
    ) {
        let mut a = Handshake::new(a, [1; 66], None);
        let mut b = Handshake::new(b, [2; 66], None);
        run(&mut a, &mut b, 1000)
    }

    #[test]
    fn web_secret_authenticates_untrusted_peers_only() {
        let mut seed = HandshakeConfig::new("seed", Some(b"cluster"));
        seed.web_secret = Some(b"webtoken".to_vec());
        let mut page = HandshakeConfig::new("web/x", Some(b"webtoken"));
        page.extra.push(("untrusted".into(), "1".into()));
        let (ea, eb) = run_pair(&seed, &page);
        let (ea, eb) = (ea.unwrap(), eb.unwrap());
        assert!(ea.untrusted, "the seed marks the page untrusted");
        assert_eq!(ea.peer_id, "web/x");
        assert_eq!(eb.peer_id, "seed");
        // A trusted node with the cluster secret is still trusted.
        let node = HandshakeConfig::new("n", Some(b"cluster"));
        let (ea, _) = run_pair(&seed, &node);
        assert!(!ea.unwrap().untrusted);
        // The web secret does not open the cluster without the untrusted flag.
        let impostor = HandshakeConfig::new("n2", Some(b"webtoken"));
        let (ea, _) = run_pair(&seed, &impostor);
        assert_eq!(
            ea.unwrap_err().to_string(),
            "authentication failure/shared secret mismatch"
        );
    }

    #[test]
    fn wrong_secret() {
        let mut a = Handshake::new(&cfg("a"), [1; 66], None);
        let mut b = Handshake::new(&HandshakeConfig::new("b", Some(b"other")), [2; 66], None);
        let (ea, eb) = run(&mut a, &mut b, 1000);
        assert_eq!(
            ea.unwrap_err().to_string(),
            "authentication failure/shared secret mismatch"
        );
        assert_eq!(eb.unwrap_err(), HandshakeError::AuthFailure);
    }

    #[test]
    fn talking_to_myself_and_echo() {
        let mut a = Handshake::new(&cfg("same"), [1; 66], None);
        let mut b = Handshake::new(&cfg("same"), [2; 66], None);
        let (ea, _) = run(&mut a, &mut b, 1000);
        assert_eq!(ea.unwrap_err().to_string(), "I refuse to talk to myself");

        let mut a = Handshake::new(&cfg("a"), [1; 66], None);
        let own = a.greeting().to_vec();
        let err = a.receive(&own).unwrap_err();
        assert_eq!(err.to_string(), "authentication error, echo attack?");
        // the error sticks
        assert_eq!(a.receive(b""), Err(err));
    }

    fn peer_err(line: &str) -> String {
        let mut a = Handshake::new(&cfg("a"), [1; 66], None);
        a.receive(line.as_bytes()).unwrap_err().to_string()
    }

    #[test]
    fn greeting_errors() {
        assert_eq!(
            peer_err("aemp;2;x;hmac_sha3_512;cbor\nn\n"),
            "version mismatch (we: 1, they: 2)"
        );
        assert_eq!(
            peer_err("GET / HTTP/1.0\r\n"),
            "unparsable greeting, expected 'aemp', got 'GET / HTTP/1.0'"
        );
        assert_eq!(
            peer_err("aemp;1;x;hmac_md6_64_256,tls_anon;cbor\n"),
            "hmac_md6_64_256,tls_anon: no common auth type supported"
        );
        assert_eq!(
            peer_err("aemp;1;x;hmac_sha3_512;storable\n"),
            "storable: no common framing method supported"
        );
        assert_eq!(peer_err(&"a".repeat(5000)), "greeting line too long");
        assert_eq!(
            peer_err(&format!("{}\n", "a".repeat(4097))),
            "greeting line too long"
        );
        // exactly at the limit is fine (then fails for another reason)
        assert!(peer_err(&format!("aemp;1;x;y;z;k={}\n", "v".repeat(4080))).contains("auth"));
    }

    #[test]
    fn no_secret_no_tls() {
        let mut a = Handshake::new(&HandshakeConfig::new("a", None), [1; 66], None);
        let err = a
            .receive(b"aemp;1;x;hmac_sha3_512;cbor\nnonce\n")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "unable to handshake TLS and no shared secret configured"
        );
    }

    #[test]
    fn bad_auth_lines() {
        let mut a = Handshake::new(&cfg("a"), [1; 66], None);
        a.receive(b"aemp;1;x;hmac_sha3_512;cbor\nnonce\n").unwrap();
        assert_eq!(
            a.receive(b"hmac_md6_64_256;00;cbor\n")
                .unwrap_err()
                .to_string(),
            "hmac_md6_64_256: fatal, selected unsupported rcv auth method"
        );
        let mut a = Handshake::new(&cfg("a"), [1; 66], None);
        a.receive(b"aemp;1;x;hmac_sha3_512;cbor\nnonce\n").unwrap();
        assert_eq!(
            a.receive(b"cleartext;73336372657;cbor\n").unwrap_err(),
            HandshakeError::AuthFailure
        );
        // cleartext with the right secret works, storable framing does not
        let mut a = Handshake::new(&cfg("a"), [1; 66], None);
        a.receive(b"aemp;1;x;hmac_sha3_512;cbor\nnonce\n").unwrap();
        assert_eq!(
            a.receive(b"cleartext;733363726574;storable\n")
                .unwrap_err()
                .to_string(),
            "storable: unusable remote framing"
        );
        let mut a = Handshake::new(&cfg("a"), [1; 66], None);
        a.receive(b"aemp;1;x;hmac_sha3_512;cbor\nnonce\n").unwrap();
        let ev = a
            .receive(b"cleartext;733363726574;json;extra\n[1]")
            .unwrap();
        let e = established(&ev).unwrap();
        assert_eq!(e.recv_framing, Framing::Json);
        assert_eq!(e.rest, b"[1]");
    }

    /// Replays the trace: our lines are the trace's lines of one side, the
    /// peer's bytes are fed in; we must send exactly the trace's auth line
    /// and accept the peer's.
    fn replay(
        me: &str,
        framings: Vec<Framing>,
        mine: (&str, &str, &str),
        theirs: (&str, &str, &str),
        crlf: bool,
    ) -> Established {
        let mut c = cfg(me);
        c.framings = framings;
        let mut h = Handshake::with_lines(&c, mine.0.into(), mine.1.into());
        let nl = if crlf { "\r\n" } else { "\n" };
        let greet = format!("{}{nl}{}{nl}", theirs.0, theirs.1);
        let mut ev = vec![];
        for b in greet.as_bytes() {
            ev.extend(h.receive(std::slice::from_ref(b)).unwrap());
        }
        assert!(matches!(&ev[0], HsEvent::PeerGreeting(p) if p.nonce == theirs.1));
        assert_eq!(sends(&ev), format!("{}\n", mine.2).as_bytes());
        let ev = h.receive(format!("{}{nl}", theirs.2).as_bytes()).unwrap();
        established(&ev).unwrap()
    }

    #[test]
    fn trace_sessions_replay_exactly() {
        let both = vec![Framing::Cbor, Framing::Json];
        for (i, [c1, c2, s1, s2, ctok, stok]) in TRACE_SESSIONS.iter().enumerate() {
            let fr = |tok: &str| {
                let f = if i == 0 { "cbor" } else { "json" };
                format!("hmac_sha3_512;{tok};{f}")
            };
            let (cl, sl) = (fr(ctok), fr(stok));
            let client_framings = if i == 0 {
                both.clone()
            } else {
                vec![Framing::Json]
            };
            let server_framings = if i == 1 {
                vec![Framing::Json]
            } else {
                both.clone()
            };
            let client_id = if i == 2 { "pyclient" } else { "nodeB" };
            // server side
            let e = replay(
                "seedA",
                server_framings,
                (s1, s2, &sl),
                (c1, c2, &cl),
                i == 2,
            );
            assert_eq!(e.peer_id, client_id);
            if i == 2 {
                // the python client only offers hmac and json
                assert_eq!(e.peer.greeting.auth, ["hmac_sha3_512", "cleartext"]);
                assert_eq!(e.send_framing, Framing::Json);
            }
            // client side (the Python client is not ours to replay)
            if i < 2 {
                let e = replay(
                    "nodeB",
                    client_framings,
                    (c1, c2, &cl),
                    (s1, s2, &sl),
                    false,
                );
                assert_eq!(e.peer_id, "seedA");
                assert_eq!(e.recv_framing, e.send_framing);
            }
        }
    }

    #[test]
    fn rest_after_auth_line_is_data() {
        let [c1, c2, s1, s2, ctok, stok] = TRACE_SESSIONS[0];
        let mut h = Handshake::with_lines(&cfg("nodeB"), c1.into(), c2.into());
        let mut input = format!("{s1}\n{s2}\nhmac_sha3_512;{stok};cbor\n").into_bytes();
        input.extend(hex("824048675f676c6f62616c"));
        let ev = h.receive(&input).unwrap();
        assert_eq!(
            sends(&ev),
            format!("hmac_sha3_512;{ctok};cbor\n").as_bytes()
        );
        let e = established(&ev).unwrap();
        let mut d = FrameDecoder::new(e.recv_framing);
        d.feed(&e.rest);
        assert_eq!(
            crate::value::msg_to_string(&d.next_packet().unwrap().unwrap()),
            r#"["","g_global"]"#
        );
    }

    #[test]
    fn tls_path() {
        let mut ac = HandshakeConfig::new("a", None);
        ac.has_cert = true;
        let mut bc = HandshakeConfig::new("b", None);
        bc.has_cert = true;
        let mut a = Handshake::new(&ac, [1; 66], None);
        let mut b = Handshake::new(&bc, [2; 66], None);
        let ea = a.receive(b.greeting()).unwrap();
        let eb = b.receive(a.greeting()).unwrap();
        assert!(a.tls() && b.tls());
        let client = |ev: &[HsEvent]| {
            ev.iter()
                .find_map(|e| match e {
                    HsEvent::StartTls { client, .. } => Some(*client),
                    _ => None,
                })
                .unwrap()
        };
        assert_ne!(client(&ea), client(&eb));
        assert!(sends(&ea).is_empty(), "auth line waits for TLS");
        let la = sends(&a.tls_ready().unwrap());
        let lb = sends(&b.tls_ready().unwrap());
        assert!(la.starts_with(b"tls_sha3_512;"));
        let xa = established(&a.receive(&lb).unwrap()).unwrap();
        let xb = established(&b.receive(&la).unwrap()).unwrap();
        assert_eq!((xa.peer_id.as_str(), xb.peer_id.as_str()), ("b", "a"));
        assert_eq!(xa.auth_method, "tls_sha3_512");

        // only one side has a cert: no TLS, hmac as usual
        let mut a = Handshake::new(&ac, [1; 66], None);
        a.cfg.secret = Some(b"s3cret".to_vec());
        let mut b = Handshake::new(&cfg("b"), [2; 66], None);
        let (ra, rb) = run(&mut a, &mut b, 50);
        assert_eq!(ra.unwrap().auth_method, "hmac_sha3_512");
        assert!(rb.is_ok());

        // tls_anon peer is accepted but untrusted
        let mut a = Handshake::new(&ac, [1; 66], None);
        a.receive(b"aemp;1;x;tls_sha3_512;cbor;tls=1.0\nnonce\n")
            .unwrap();
        a.tls_ready().unwrap();
        let e = established(&a.receive(b"tls_anon;;cbor\n").unwrap()).unwrap();
        assert!(e.untrusted);
    }
}
