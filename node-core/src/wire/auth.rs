//! Negotiation and the authentication line (spec §5.2, §5.4).
//!
//! Each side picks, independently, the auth method and framing it will
//! *send*: the first entry of the **peer's** list that it supports itself
//! (`tls_*` methods only when TLS is active). It then sends
//! `<method>;<token>;<framing>` + LF, where the token proves knowledge of
//! the shared secret over the four greeting lines:
//!
//! * `hmac_sha3_512`: lowercase hex HMAC-SHA3-512(key = secret,
//!   message = `L1 LF L2 LF R1 LF R2 LF`), sender's own lines first;
//! * `cleartext`: lowercase hex of the secret (accepted, never sent);
//! * `tls_anon` (TLS only): empty;
//! * `tls_sha3_512` (TLS only): lowercase hex SHA3-512 of the same message.
//!
//! ```
//! use aemp_core::wire::auth::{hmac_sha3_512_hex, verify_hmac_sha3_512, Transcript};
//! let t = Transcript { l1: b"a", l2: b"b", r1: b"c", r2: b"d" };
//! let token = hmac_sha3_512_hex(b"s3cret", &t.local());
//! assert_eq!(token.len(), 128);
//! // the peer verifies over the same bytes (its `remote()` is our `local()`)
//! let peer = Transcript { l1: b"c", l2: b"d", r1: b"a", r2: b"b" };
//! assert!(verify_hmac_sha3_512(b"s3cret", &token, &peer.remote()));
//! ```

use super::framing::Framing;
use super::HandshakeError;
use hmac::{Hmac, Mac};
use sha3::{Digest, Sha3_512};

/// HMAC over the greeting lines with the shared secret.
pub const HMAC_SHA3_512: &str = "hmac_sha3_512";
/// The hex-encoded secret itself (insecure without TLS; never sent by us).
pub const CLEARTEXT: &str = "cleartext";
/// TLS without further authentication (marks the connection untrusted).
pub const TLS_ANON: &str = "tls_anon";
/// SHA3-512 over the greeting lines, inside TLS.
pub const TLS_SHA3_512: &str = "tls_sha3_512";

/// Perl's default `auth_offer`.
pub const DEFAULT_AUTH_OFFER: &[&str] = &[TLS_SHA3_512, HMAC_SHA3_512];
/// Perl's default `auth_accept`.
pub const DEFAULT_AUTH_ACCEPT: &[&str] = &[TLS_SHA3_512, HMAC_SHA3_512, TLS_ANON, CLEARTEXT];

type HmacSha3 = Hmac<Sha3_512>;

/// The four greeting lines of a connection (without terminators), from
/// one side's point of view: `l*` ours, `r*` the peer's.
#[derive(Debug, Clone, Copy)]
pub struct Transcript<'a> {
    /// Our line 1.
    pub l1: &'a [u8],
    /// Our line 2.
    pub l2: &'a [u8],
    /// The peer's line 1.
    pub r1: &'a [u8],
    /// The peer's line 2.
    pub r2: &'a [u8],
}

impl Transcript<'_> {
    /// `L1 LF L2 LF R1 LF R2 LF`: what we authenticate when sending.
    pub fn local(&self) -> Vec<u8> {
        join4(self.l1, self.l2, self.r1, self.r2)
    }

    /// `R1 LF R2 LF L1 LF L2 LF`: what the peer authenticated.
    pub fn remote(&self) -> Vec<u8> {
        join4(self.r1, self.r2, self.l1, self.l2)
    }
}

fn join4(a: &[u8], b: &[u8], c: &[u8], d: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(a.len() + b.len() + c.len() + d.len() + 4);
    for x in [a, b, c, d] {
        v.extend_from_slice(x);
        v.push(b'\n');
    }
    v
}

/// Lowercase hex HMAC-SHA3-512 of `msg` keyed with `secret`.
pub fn hmac_sha3_512_hex(secret: &[u8], msg: &[u8]) -> String {
    // HMAC accepts keys of any length; `new_from_slice` cannot fail here.
    let mut mac = HmacSha3::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(msg);
    hex::encode(mac.finalize().into_bytes())
}

/// Checks a peer's hex HMAC token in constant time (bad hex → false).
pub fn verify_hmac_sha3_512(secret: &[u8], token_hex: &str, msg: &[u8]) -> bool {
    let Ok(token) = hex::decode(token_hex) else {
        return false;
    };
    let mut mac = HmacSha3::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(msg);
    mac.verify_slice(&token).is_ok()
}

/// Lowercase hex SHA3-512 of `msg` (the `tls_sha3_512` token).
pub fn sha3_512_hex(msg: &[u8]) -> String {
    hex::encode(Sha3_512::digest(msg))
}

/// The `cleartext` token: lowercase hex of the secret.
///
/// ```
/// # use aemp_core::wire::auth::cleartext_token;
/// assert_eq!(cleartext_token(b"geheim"), "67656865696d");
/// ```
pub fn cleartext_token(secret: &[u8]) -> String {
    hex::encode(secret)
}

/// Checks a `cleartext` token without an early exit on the first mismatch.
pub fn verify_cleartext(secret: &[u8], token_hex: &str) -> bool {
    let Ok(token) = hex::decode(token_hex) else {
        return false;
    };
    token.len() == secret.len()
        && token
            .iter()
            .zip(secret)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// Picks the auth method we send: the first of the peer's list that is in
/// our offer (`tls_*` only when TLS is active).
///
/// ```
/// # use aemp_core::wire::auth::select_auth;
/// let peer = ["tls_sha3_512".to_string(), "hmac_sha3_512".into()];
/// let offer = ["tls_sha3_512".to_string(), "hmac_sha3_512".into()];
/// assert_eq!(select_auth(&peer, &offer, false), Some("hmac_sha3_512"));
/// assert_eq!(select_auth(&peer, &offer, true), Some("tls_sha3_512"));
/// ```
pub fn select_auth<'a>(peer: &'a [String], offer: &[String], tls: bool) -> Option<&'a str> {
    peer.iter()
        .find(|m| offer.contains(m) && (tls || !m.starts_with("tls_")))
        .map(String::as_str)
}

/// Picks the framing we send: the first of the peer's list we support and
/// have enabled.
///
/// ```
/// # use aemp_core::wire::auth::select_framing;
/// # use aemp_core::wire::framing::Framing;
/// let peer = ["storable".to_string(), "json".into(), "cbor".into()];
/// assert_eq!(select_framing(&peer, &[Framing::Cbor, Framing::Json]), Some(Framing::Json));
/// ```
pub fn select_framing(peer: &[String], ours: &[Framing]) -> Option<Framing> {
    peer.iter()
        .filter_map(|n| Framing::from_name(n))
        .find(|f| ours.contains(f))
}

/// Computes the token for the method we send.
///
/// Errors: no TLS and no secret → "unable to handshake TLS and no shared
/// secret configured"; a method we cannot send (e.g. `cleartext`) →
/// "`<m>`: fatal, selected unsupported snd auth method".
pub fn make_token(
    method: &str,
    tls: bool,
    secret: Option<&[u8]>,
    t: &Transcript<'_>,
) -> Result<String, HandshakeError> {
    match (method, tls, secret) {
        (TLS_ANON, true, _) => Ok(String::new()),
        (TLS_SHA3_512, true, _) => Ok(sha3_512_hex(&t.local())),
        (HMAC_SHA3_512, _, Some(s)) => Ok(hmac_sha3_512_hex(s, &t.local())),
        (_, false, None) => Err(HandshakeError::NoTlsNoSecret),
        (m, _, _) => Err(HandshakeError::UnsupportedSndAuth(m.to_string())),
    }
}

/// Verifies the peer's token for the method the peer named. Our
/// `auth_accept` is not re-checked (as in Perl). Without a configured
/// secret, `hmac_sha3_512` and `cleartext` always fail.
pub fn verify_token(
    method: &str,
    token: &str,
    tls: bool,
    secret: Option<&[u8]>,
    t: &Transcript<'_>,
) -> Result<(), HandshakeError> {
    let ok = match method {
        HMAC_SHA3_512 => secret.is_some_and(|s| verify_hmac_sha3_512(s, token, &t.remote())),
        CLEARTEXT => secret.is_some_and(|s| verify_cleartext(s, token)),
        TLS_ANON => tls && token.is_empty(),
        TLS_SHA3_512 => tls && token == sha3_512_hex(&t.remote()),
        m => return Err(HandshakeError::UnsupportedRcvAuth(m.to_string())),
    };
    if ok {
        Ok(())
    } else {
        Err(HandshakeError::AuthFailure)
    }
}

/// A parsed auth line `<method>;<token>;<framing>` (extra fields ignored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthLine {
    /// The sender's auth method.
    pub method: String,
    /// The token (lowercase hex, or empty for `tls_anon`).
    pub token: String,
    /// The framing the sender will send in.
    pub framing: String,
}

impl AuthLine {
    /// Parses an auth line (without terminator); missing fields are empty.
    pub fn parse(line: &str) -> AuthLine {
        let mut f = line.split(';');
        let mut next = || f.next().unwrap_or("").to_string();
        AuthLine {
            method: next(),
            token: next(),
            framing: next(),
        }
    }

    /// Renders the line including its LF terminator.
    pub fn to_line(&self) -> String {
        format!("{};{};{}\n", self.method, self.token, self.framing)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// (client line1, client line2, server line1, server line2,
    ///  client token, server token) of the three trace sessions.
    pub(crate) const TRACE_SESSIONS: &[[&str; 6]] = &[
        [
            "aemp;1;nodeB;tls_sha3_512,hmac_sha3_512,tls_anon,cleartext;cbor,json,storable;provider=AE-2.02;peeraddr=127.0.0.1:5050;gproto=1;mproto=1",
            "0cR8uApX0gw9uWeGnKc6830KuV/GcDt3z8x1+3N+BDQ9H0bprMJl8HURlqOjIyC6X3iI443V5XF1YpWVF5zFZHJ9",
            "aemp;1;seedA;tls_sha3_512,hmac_sha3_512,tls_anon,cleartext;cbor,json,storable;mproto=1;peeraddr=127.0.0.1:60042;gproto=1;provider=AE-2.02",
            "keQI83/nyLy6CQkQB4TFiSKLTEkm66ud0HVKnWPoI+h8y9bGWtx6X891atYWOA5TGqjgdPQ1YkGkPjpcK3QKarxO",
            "bfa4a93d71e5cb2366f1c7ed8579491a9665af4f08587d5daf60b2d2dd43953b0933e8c9f9321194bf4aab4d4a688a28a2eea5f8006405667ee69e16480404da",
            "8440c18915859e099945c17d449369875bc7c974a919994a180a49fbb4c1f99c04ceab651ffbea8f783e5930cd95109e5ac62dfeafc976a522fdda3ef877c411",
        ],
        [
            "aemp;1;nodeB;tls_sha3_512,hmac_sha3_512,tls_anon,cleartext;json,storable;gproto=1;mproto=1;peeraddr=127.0.0.1:5050;provider=AE-2.02",
            "8A36SaNyWEAfZITFb2fAs2JllPtNZuSDs72SmXgIHpOBhwvDsMI/mfwN5uOa9NZd0TY6kqIu9y11SIrDPzEfHoBs",
            "aemp;1;seedA;tls_sha3_512,hmac_sha3_512,tls_anon,cleartext;json,storable;gproto=1;peeraddr=127.0.0.1:35062;provider=AE-2.02;mproto=1",
            "9hawHV6kmyuW1YiBN6bLkHxkg8t/8Xwle7I6M2lHGHHMFz+VpMXHAT1s2r6rjEZy2KU3W5ivb+sfV5EnmfqZbA+C",
            "c77dfe00fd478724127d6fc2550e667457596b9e6088c3920262463825d72abe9481c147c0d9621c320f725f25421e91be18af59c1efae4c84930a0176d314bb",
            "a9a36167d2a318e3188b144e8de85885f5984b1a0c3767c4fbf15dd408a6a9c4dd6c999105df84944c25fff8f9e4606ef8f7ca5eb7b6f8862ef0d778438f92b5",
        ],
        [
            "aemp;1;pyclient;hmac_sha3_512,cleartext;json;provider=py-test",
            "wtmOJE2Zw1VH6bWHe/8JQ90BF37XC/UG4VKJsYNOYxTKqG48Znmrmpnd3w9WZJ0kEuG9ZnLuS6cSYV22E7Pfzi9Y",
            "aemp;1;seedA;tls_sha3_512,hmac_sha3_512,tls_anon,cleartext;cbor,json,storable;peeraddr=127.0.0.1:55002;gproto=1;provider=AE-2.02;mproto=1",
            "OR1cKJhio+w640Ga42/tR2C2X1yS0x0e72PIJo0+gyVEbfyKn0cx5yJffTlYySNIbqDT6neRKHuDM5iA/9aPwlCw",
            "45fe139171b001286def2c8bb26876593a3e5c40c3c3b726289ddfd3363e4a1e9103ecf634c10e182da3c1ed67d6709d9ddb32f2ddaca301f662161ca49804aa",
            "30a599e3fa43ea5fb68cdf1a940a98d1eec1294234f67a6e20df8d27a24efe97575af2f638a4fb901ef3d9862267ec4cfaddd16bc357c4cf4481666834323784",
        ],
    ];

    #[test]
    fn trace_tokens_reproduced_and_verified() {
        for [c1, c2, s1, s2, ctok, stok] in TRACE_SESSIONS {
            let client = Transcript {
                l1: c1.as_bytes(),
                l2: c2.as_bytes(),
                r1: s1.as_bytes(),
                r2: s2.as_bytes(),
            };
            let server = Transcript {
                l1: s1.as_bytes(),
                l2: s2.as_bytes(),
                r1: c1.as_bytes(),
                r2: c2.as_bytes(),
            };
            let secret = Some(&b"s3cret"[..]);
            assert_eq!(
                make_token(HMAC_SHA3_512, false, secret, &client).unwrap(),
                *ctok
            );
            assert_eq!(
                make_token(HMAC_SHA3_512, false, secret, &server).unwrap(),
                *stok
            );
            assert!(verify_token(HMAC_SHA3_512, ctok, false, secret, &server).is_ok());
            assert!(verify_token(HMAC_SHA3_512, stok, false, secret, &client).is_ok());
            assert_eq!(
                verify_token(HMAC_SHA3_512, stok, false, Some(b"wrong"), &client),
                Err(HandshakeError::AuthFailure)
            );
            // the token of the other direction does not verify (order matters)
            assert!(verify_token(HMAC_SHA3_512, ctok, false, secret, &client).is_err());
        }
    }

    #[test]
    fn cleartext_and_tls_methods() {
        let t = Transcript {
            l1: b"a",
            l2: b"b",
            r1: b"c",
            r2: b"d",
        };
        let s = Some(&b"geheim"[..]);
        assert!(verify_token(CLEARTEXT, "67656865696d", false, s, &t).is_ok());
        assert!(verify_token(CLEARTEXT, "67656865696e", false, s, &t).is_err());
        assert!(verify_token(CLEARTEXT, "", false, None, &t).is_err());
        assert!(verify_token(TLS_ANON, "", true, None, &t).is_ok());
        assert!(verify_token(TLS_ANON, "", false, None, &t).is_err());
        let peer_tok = sha3_512_hex(b"c\nd\na\nb\n");
        assert!(verify_token(TLS_SHA3_512, &peer_tok, true, None, &t).is_ok());
        assert!(verify_token(TLS_SHA3_512, &peer_tok, false, None, &t).is_err());
        assert_eq!(
            make_token(TLS_SHA3_512, true, None, &t).unwrap(),
            sha3_512_hex(b"a\nb\nc\nd\n")
        );
        assert_eq!(
            verify_token("hmac_md6_64_256", "", false, s, &t)
                .unwrap_err()
                .to_string(),
            "hmac_md6_64_256: fatal, selected unsupported rcv auth method"
        );
        assert_eq!(
            make_token(HMAC_SHA3_512, false, None, &t).unwrap_err(),
            HandshakeError::NoTlsNoSecret
        );
        assert!(make_token(CLEARTEXT, false, s, &t).is_err());
        assert!(!verify_hmac_sha3_512(b"k", "zz", b"m"));
    }

    #[test]
    fn auth_line_parse() {
        let l = AuthLine::parse("hmac_sha3_512;abcd;cbor;future;fields");
        assert_eq!(l.method, "hmac_sha3_512");
        assert_eq!(l.token, "abcd");
        assert_eq!(l.framing, "cbor");
        assert_eq!(
            AuthLine {
                method: "tls_anon".into(),
                token: String::new(),
                framing: "json".into()
            }
            .to_line(),
            "tls_anon;;json\n"
        );
    }
}
