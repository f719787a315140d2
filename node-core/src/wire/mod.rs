//! The byte-level AEMP transport protocol: greeting, authentication, framing (spec §5).
//!
//! A connection runs through three phases, all sans-IO here:
//! 1. **Greeting** ([`greeting`]): both sides send two lines at once.
//! 2. **Authentication** ([`auth`]): both send an auth line proving the
//!    shared secret and naming the framing they will send in. (With TLS,
//!    a TLS handshake runs between greeting and auth line.)
//! 3. **Data** ([`framing`]): concatenated CBOR or JSON arrays.
//!
//! [`Handshake`] drives phases 1–2 for one connection; after
//! [`HsEvent::Established`] the driver switches to a [`FrameDecoder`] for
//! the received framing (feeding it the `rest` bytes first) and encodes
//! with [`encode_packet`] in the send framing.

pub mod auth;
pub mod framing;
pub mod greeting;
pub mod handshake;

pub use framing::{
    encode_keepalive, encode_packet, encode_raw_packet, FrameDecoder, FrameError, Framing,
};
pub use greeting::{Greeting, PROTOCOL_VERSION};
pub use handshake::{Established, Handshake, HandshakeConfig, HsEvent, PeerGreeting};

use std::fmt;

/// Why a handshake failed. `Display` gives the exact reason text Perl uses,
/// for `transport_error => $nodeid, $text` (spec §2.11, §5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandshakeError {
    /// "unparsable greeting, expected 'aemp', got '…'"
    Unparsable {
        /// The protocol we speak.
        expected: String,
        /// The first field of the peer's line 1.
        got: String,
    },
    /// "version mismatch (we: 1, they: N)"
    VersionMismatch(String),
    /// "I refuse to talk to myself"
    TalkToMyself,
    /// "authentication error, echo attack?"
    EchoAttack,
    /// "`<list>`: no common auth type supported"
    NoCommonAuth(String),
    /// "`<list>`: no common framing method supported"
    NoCommonFraming(String),
    /// "unable to handshake TLS and no shared secret configured"
    NoTlsNoSecret,
    /// "`<m>`: fatal, selected unsupported snd auth method" (our own offer
    /// names a method we cannot send, e.g. `cleartext`).
    UnsupportedSndAuth(String),
    /// "`<m>`: fatal, selected unsupported rcv auth method"
    UnsupportedRcvAuth(String),
    /// "authentication failure/shared secret mismatch"
    AuthFailure,
    /// "`<m>`: unusable remote framing"
    UnusableFraming(String),
    /// "greeting line too long" (a line over the limit before auth is done)
    LineTooLong,
    /// "handshake already finished" (API misuse: data after the end)
    Finished,
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use HandshakeError::*;
        match self {
            Unparsable { expected, got } => {
                write!(f, "unparsable greeting, expected '{expected}', got '{got}'")
            }
            VersionMismatch(they) => {
                write!(f, "version mismatch (we: {PROTOCOL_VERSION}, they: {they})")
            }
            TalkToMyself => f.write_str("I refuse to talk to myself"),
            EchoAttack => f.write_str("authentication error, echo attack?"),
            NoCommonAuth(l) => write!(f, "{l}: no common auth type supported"),
            NoCommonFraming(l) => write!(f, "{l}: no common framing method supported"),
            NoTlsNoSecret => f.write_str("unable to handshake TLS and no shared secret configured"),
            UnsupportedSndAuth(m) => write!(f, "{m}: fatal, selected unsupported snd auth method"),
            UnsupportedRcvAuth(m) => write!(f, "{m}: fatal, selected unsupported rcv auth method"),
            AuthFailure => f.write_str("authentication failure/shared secret mismatch"),
            UnusableFraming(m) => write!(f, "{m}: unusable remote framing"),
            LineTooLong => f.write_str("greeting line too long"),
            Finished => f.write_str("handshake already finished"),
        }
    }
}

impl std::error::Error for HandshakeError {}

#[cfg(test)]
mod robustness_tests;
