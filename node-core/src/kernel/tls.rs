//! TLS for TCP connections (spec §5.3), sans-IO.
//!
//! Built on rustls's own sans-IO API: received socket bytes go in with
//! `read_tls`/`process_new_packets`, plaintext comes out of `reader()`;
//! plaintext we send goes into `writer()` and the records come out of
//! `write_tls`. The driver never sees any of it: it keeps passing raw
//! socket bytes to `handle_data` and writing what `poll_transmit` returns.
//!
//! Compiled only with the `tls` cargo feature of `aemp-core` (the native
//! node enables it; the wasm build does not). Without it, [`TlsContext`]
//! cannot be built and configuring a `cert` is an error.
//!
//! **Trust (spec §5.3):** the configured PEM (private key, certificate,
//! optional extra CA certificates, in any order) is both our certificate
//! chain and the set of certificates we trust. Verification is required in
//! both directions (the server demands a client certificate) and ignores
//! host names. A peer's end-entity certificate is accepted when
//! * it is byte-for-byte one of the certificates in our PEM (the usual
//!   setup: all nodes share one self-signed certificate; this also covers
//!   certificates made by `openssl req -x509`, which are marked as CAs and
//!   so would be refused as end entities by a strict chain check), or
//! * it chains (through the intermediates the peer sent) to one of the
//!   certificates in our PEM as trust anchor, checked by webpki for the
//!   TLS client/server usage and validity period, with no name check.
//!
//! The first case does not check the validity period (OpenSSL, which Perl
//! uses, would). TLS 1.2 and 1.3 only.

#[cfg(feature = "tls")]
pub(crate) use imp::*;

#[cfg(not(feature = "tls"))]
pub(crate) use stub::*;

#[cfg(feature = "tls")]
mod imp {
    use std::io::{Read, Write};
    use std::sync::Arc;

    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::crypto::WebPkiSupportedAlgorithms;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, TrustAnchor, UnixTime};
    use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
    use rustls::sign::CertifiedKey;
    use rustls::{
        CertificateError, ClientConfig, ClientConnection, Connection, DigitallySignedStruct,
        DistinguishedName, OtherError, ServerConfig, ServerConnection, SignatureScheme,
    };

    /// Our TLS configuration: built once from the `cert` PEM.
    pub(crate) struct TlsContext {
        client: Arc<ClientConfig>,
        server: Arc<ServerConfig>,
    }

    impl std::fmt::Debug for TlsContext {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("TlsContext")
        }
    }

    /// The certificates we trust, and how to check a peer's.
    #[derive(Debug)]
    struct Verifier {
        /// Every certificate of our PEM (DER), accepted as they are.
        certs: Vec<CertificateDer<'static>>,
        /// The same certificates as trust anchors for chain checks.
        anchors: Vec<TrustAnchor<'static>>,
        algs: WebPkiSupportedAlgorithms,
    }

    fn cert_error(e: webpki::Error) -> rustls::Error {
        use webpki::Error as E;
        let ce = match e {
            // Not one of ours and not issued by one of ours: a different
            // self-signed certificate shows up as one of these.
            E::UnknownIssuer | E::CaUsedAsEndEntity | E::InvalidSignatureForPublicKey => {
                CertificateError::UnknownIssuer
            }
            E::CertExpired { .. } => CertificateError::Expired,
            E::CertNotValidYet { .. } => CertificateError::NotValidYet,
            E::BadDer | E::BadDerTime => CertificateError::BadEncoding,
            E::UnsupportedCriticalExtension => CertificateError::UnhandledCriticalExtension,
            e => CertificateError::Other(OtherError(Arc::new(e))),
        };
        rustls::Error::InvalidCertificate(ce)
    }

    impl Verifier {
        fn check(
            &self,
            end_entity: &CertificateDer<'_>,
            intermediates: &[CertificateDer<'_>],
            now: UnixTime,
            server: bool,
        ) -> Result<(), rustls::Error> {
            if self.certs.iter().any(|c| c.as_ref() == end_entity.as_ref()) {
                return Ok(());
            }
            let ee = webpki::EndEntityCert::try_from(end_entity).map_err(cert_error)?;
            let usage = if server {
                webpki::KeyUsage::server_auth()
            } else {
                webpki::KeyUsage::client_auth()
            };
            ee.verify_for_usage(
                self.algs.all,
                &self.anchors,
                intermediates,
                now,
                usage,
                None,
                None,
            )
            .map(|_| ())
            .map_err(cert_error)
        }
    }

    impl ServerCertVerifier for Verifier {
        fn verify_server_cert(
            &self,
            end_entity: &CertificateDer<'_>,
            intermediates: &[CertificateDer<'_>],
            _server_name: &ServerName<'_>,
            _ocsp_response: &[u8],
            now: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            self.check(end_entity, intermediates, now, true)?;
            Ok(ServerCertVerified::assertion())
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algs)
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.algs.supported_schemes()
        }
    }

    impl ClientCertVerifier for Verifier {
        fn root_hint_subjects(&self) -> &[DistinguishedName] {
            &[]
        }

        fn verify_client_cert(
            &self,
            end_entity: &CertificateDer<'_>,
            intermediates: &[CertificateDer<'_>],
            now: UnixTime,
        ) -> Result<ClientCertVerified, rustls::Error> {
            self.check(end_entity, intermediates, now, false)?;
            Ok(ClientCertVerified::assertion())
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algs)
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.algs.supported_schemes()
        }
    }

    impl TlsContext {
        /// Builds the client and server configurations from the `cert`
        /// PEM text. Errors are configuration errors (texts for the user).
        pub(crate) fn from_pem(pem: &str) -> Result<TlsContext, String> {
            let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("cert: bad PEM certificate: {e:?}"))?;
            if certs.is_empty() {
                return Err("cert: the PEM text contains no certificate".into());
            }
            let key = PrivateKeyDer::from_pem_slice(pem.as_bytes())
                .map_err(|e| format!("cert: the PEM text contains no usable private key: {e:?}"))?;
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let signing_key = provider
                .key_provider
                .load_private_key(key)
                .map_err(|e| format!("cert: unusable private key: {e}"))?;
            // Our certificate is the one that matches the key (the PEM may
            // list it anywhere); the others follow as its chain.
            let leaf = certs
                .iter()
                .position(|c| {
                    CertifiedKey::new(vec![c.clone()], signing_key.clone())
                        .keys_match()
                        .is_ok()
                })
                .unwrap_or(0);
            let mut chain = vec![certs[leaf].clone()];
            chain.extend(
                certs
                    .iter()
                    .enumerate()
                    .filter(|&(i, _)| i != leaf)
                    .map(|(_, c)| c.clone()),
            );
            let anchors = certs
                .iter()
                .filter_map(|c| webpki::anchor_from_trusted_cert(c).ok())
                .map(|a| a.to_owned())
                .collect();
            let verifier = Arc::new(Verifier {
                certs: certs.clone(),
                anchors,
                algs: provider.signature_verification_algorithms,
            });
            let certified = Arc::new(CertifiedKey::new(chain, signing_key));
            let versions = [&rustls::version::TLS13, &rustls::version::TLS12];

            let mut client = ClientConfig::builder_with_provider(provider.clone())
                .with_protocol_versions(&versions)
                .map_err(|e| format!("cert: {e}"))?
                .dangerous()
                .with_custom_certificate_verifier(verifier.clone())
                .with_client_cert_resolver(Arc::new(Resolver(certified.clone())));
            client.enable_sni = false;

            let server = ServerConfig::builder_with_provider(provider)
                .with_protocol_versions(&versions)
                .map_err(|e| format!("cert: {e}"))?
                .with_client_cert_verifier(verifier)
                .with_cert_resolver(Arc::new(Resolver(certified)));
            Ok(TlsContext {
                client: Arc::new(client),
                server: Arc::new(server),
            })
        }

        /// A new TLS session for one connection, as client or server.
        pub(crate) fn session(&self, client: bool) -> Result<TlsSession, String> {
            let mut conn: Connection = if client {
                // The name is never checked (see the module docs); SNI is off.
                let name = ServerName::try_from("aemp").expect("a valid DNS name");
                ClientConnection::new(self.client.clone(), name)
                    .map_err(|e| format!("unable to start TLS: {e}"))?
                    .into()
            } else {
                ServerConnection::new(self.server.clone())
                    .map_err(|e| format!("unable to start TLS: {e}"))?
                    .into()
            };
            // We drain the records every poll; never refuse plaintext.
            conn.set_buffer_limit(None);
            Ok(TlsSession { conn })
        }
    }

    /// Always presents our one certificate chain (client and server).
    #[derive(Debug)]
    struct Resolver(Arc<CertifiedKey>);

    impl rustls::client::ResolvesClientCert for Resolver {
        fn resolve(
            &self,
            _root_hint_subjects: &[&[u8]],
            _sigschemes: &[SignatureScheme],
        ) -> Option<Arc<CertifiedKey>> {
            Some(self.0.clone())
        }

        fn has_certs(&self) -> bool {
            true
        }
    }

    impl rustls::server::ResolvesServerCert for Resolver {
        fn resolve(&self, _hello: rustls::server::ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
            Some(self.0.clone())
        }
    }

    /// The TLS state of one connection.
    pub(crate) struct TlsSession {
        conn: Connection,
    }

    impl TlsSession {
        /// Processes received socket bytes; returns the plaintext they
        /// carried. On error the session is dead; records still pending
        /// (an alert telling the peer why) come out of [`Self::take_records`].
        pub(crate) fn receive(&mut self, mut data: &[u8]) -> Result<Vec<u8>, String> {
            let mut plain = Vec::new();
            while !data.is_empty() {
                match self.conn.read_tls(&mut data) {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) => return Err(format!("TLS receive error: {e}")),
                }
                let state = self.conn.process_new_packets().map_err(|e| e.to_string())?;
                let n = state.plaintext_bytes_to_read();
                if n > 0 {
                    let at = plain.len();
                    plain.resize(at + n, 0);
                    self.conn
                        .reader()
                        .read_exact(&mut plain[at..])
                        .map_err(|e| format!("TLS read error: {e}"))?;
                }
            }
            Ok(plain)
        }

        /// True until the TLS handshake is complete.
        pub(crate) fn is_handshaking(&self) -> bool {
            self.conn.is_handshaking()
        }

        /// Queues plaintext to send (buffered until the handshake is done).
        pub(crate) fn write_plain(&mut self, data: &[u8]) {
            if !data.is_empty() {
                // Cannot fail: no buffer limit, and an in-memory sink.
                let _ = self.conn.writer().write_all(data);
            }
        }

        /// True if records are waiting for [`Self::take_records`].
        pub(crate) fn wants_write(&self) -> bool {
            self.conn.wants_write()
        }

        /// Appends every pending TLS record to `out`.
        pub(crate) fn take_records(&mut self, out: &mut Vec<u8>) {
            while self.conn.wants_write() {
                match self.conn.write_tls(out) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        }

        /// Queues a `close_notify` alert.
        pub(crate) fn close(&mut self) {
            self.conn.send_close_notify();
        }
    }
}

#[cfg(not(feature = "tls"))]
mod stub {
    /// Stand-in when the `tls` feature is off: cannot be built.
    #[derive(Debug)]
    pub(crate) enum TlsContext {}

    impl TlsContext {
        pub(crate) fn from_pem(_pem: &str) -> Result<TlsContext, String> {
            Err(
                "cert is set, but this build of aemp-core has no TLS support \
                 (cargo feature `tls`)"
                    .into(),
            )
        }

        pub(crate) fn session(&self, _client: bool) -> Result<TlsSession, String> {
            match *self {}
        }
    }

    /// Stand-in when the `tls` feature is off: never exists.
    pub(crate) enum TlsSession {}

    #[allow(clippy::unused_self)]
    impl TlsSession {
        pub(crate) fn receive(&mut self, _data: &[u8]) -> Result<Vec<u8>, String> {
            match *self {}
        }
        pub(crate) fn is_handshaking(&self) -> bool {
            match *self {}
        }
        pub(crate) fn write_plain(&mut self, _data: &[u8]) {
            match *self {}
        }
        pub(crate) fn wants_write(&self) -> bool {
            match *self {}
        }
        pub(crate) fn take_records(&mut self, _out: &mut Vec<u8>) {
            match *self {}
        }
        pub(crate) fn close(&mut self) {
            match *self {}
        }
    }
}

#[cfg(all(test, feature = "tls"))]
mod tests {
    use super::super::conn::{Action, Transport};
    use super::super::net_tests::{log, sink, Wire};
    use crate::msg;
    use crate::value::Str;
    use std::time::Duration;

    /// A fresh self-signed certificate: (certificate PEM, key PEM).
    fn self_signed(ca: bool) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::new(vec!["AnyEvent::MP".into()]).unwrap();
        if ca {
            // Like `openssl req -x509`: basicConstraints CA:TRUE.
            p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        }
        let cert = p.self_signed(&key).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    /// gencert's layout: certificate PEM, then key PEM.
    fn gencert() -> String {
        let (c, k) = self_signed(false);
        format!("{c}{k}")
    }

    /// The PEM with key first (setcert's layout: key + cert + CA certs).
    fn key_first(pem: &str) -> String {
        let i = pem.find("-----BEGIN PRIVATE KEY").unwrap();
        format!("{}{}", &pem[i..], &pem[..i])
    }

    fn node(id: &str, secret: Option<&str>, cert: Option<&str>) -> Vec<(String, String)> {
        let mut v = vec![
            ("nodeid".to_string(), id.to_string()),
            ("seeds".into(), "10.0.0.1:4040".into()),
        ];
        if let Some(s) = secret {
            v.push(("secret".into(), s.into()));
        }
        if let Some(c) = cert {
            v.push(("cert".into(), c.into()));
        }
        v
    }

    fn refs(v: &[(String, String)]) -> Vec<(&str, &str)> {
        v.iter().map(|(k, x)| (k.as_str(), x.as_str())).collect()
    }

    fn pair(a: &[(String, String)], b: &[(String, String)]) -> Wire {
        let mut w = Wire::new();
        w.add("10.0.0.1:4040", &refs(a));
        w.add("10.0.0.2:4040", &refs(b));
        w.pump();
        w
    }

    /// B monitors a port on A; returns what the monitor saw.
    fn monitor_a(w: &mut Wire) -> Vec<String> {
        let l = log();
        let l2 = l.clone();
        w.nodes[1]
            .mon("A#x", move |_, r| l2.borrow_mut().push(r.to_string()))
            .forget();
        w.pump();
        let v = l.borrow().clone();
        v
    }

    #[test]
    fn shared_certificate_gives_tls_and_everything_works() {
        let pem = gencert();
        let mut w = pair(
            &node("A", Some("s"), Some(&pem)),
            &node("B", Some("s"), Some(&key_first(&pem))),
        );
        assert_eq!(w.nodes[0].up_nodes(), vec![Str::from("B")]);
        for (n, peer) in [(0, "B"), (1, "A")] {
            assert!(w.nodes[n].peer_uses_tls(peer));
            assert_eq!(w.nodes[n].peer_auth_method(peer), Some("tls_sha3_512"));
        }
        // Messages both ways, including one larger than a TLS record.
        let (la, lb) = (log(), log());
        let pa = sink(&mut w.nodes[0], &la);
        let pb = sink(&mut w.nodes[1], &lb);
        let big = "x".repeat(100_000);
        w.nodes[0].snd(&pb, msg!["from A", 1]);
        w.nodes[0].snd(&pb, msg![big.clone()]);
        w.nodes[1].snd(&pa, msg!["from B"]);
        w.pump();
        assert_eq!(lb.borrow().len(), 2);
        assert_eq!(lb.borrow()[0], r#"["from A",1]"#);
        assert_eq!(lb.borrow()[1], format!(r#"["{big}"]"#));
        assert_eq!(*la.borrow(), vec![r#"["from B"]"#]);
        // Remote monitors.
        let l = log();
        let target = w.nodes[1].port_with(|_, _| Ok(()));
        let l2 = l.clone();
        w.nodes[0]
            .mon(&target, move |_, r| l2.borrow_mut().push(r.to_string()))
            .forget();
        w.pump();
        w.nodes[0].kil(&target, msg!["bye"]).unwrap();
        w.pump();
        assert_eq!(*l.borrow(), vec!["bye"]);
        // Idle links live on (encrypted) heartbeats.
        w.advance(Duration::from_secs(30));
        assert_eq!(w.nodes[1].up_nodes(), vec![Str::from("A")]);
    }

    #[test]
    fn tls_needs_no_secret_and_ignores_a_wrong_one() {
        // With tls_sha3_512 the certificate authenticates; like Perl, the
        // secret is not used at all (it only matters without TLS).
        let pem = gencert();
        let w = pair(
            &node("A", Some("one"), Some(&pem)),
            &node("B", Some("other"), Some(&pem)),
        );
        assert_eq!(w.nodes[1].peer_auth_method("A"), Some("tls_sha3_512"));
        let w = pair(&node("A", None, Some(&pem)), &node("B", None, Some(&pem)));
        assert!(w.nodes[1].peer_uses_tls("A"));
    }

    #[test]
    fn openssl_style_ca_certificate_can_be_shared() {
        let (c, k) = self_signed(true);
        let pem = format!("{c}{k}");
        let w = pair(&node("A", None, Some(&pem)), &node("B", None, Some(&pem)));
        assert!(w.nodes[1].peer_uses_tls("A"));
    }

    #[test]
    fn certificates_signed_by_a_common_ca_are_trusted() {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let leaf = || {
            let key = rcgen::KeyPair::generate().unwrap();
            let p = rcgen::CertificateParams::new(vec!["node".into()]).unwrap();
            let cert = p.signed_by(&key, &issuer).unwrap();
            // key, own cert, CA cert (setcert's layout)
            format!("{}{}{}", key.serialize_pem(), cert.pem(), ca_cert.pem())
        };
        let w = pair(
            &node("A", None, Some(&leaf())),
            &node("B", None, Some(&leaf())),
        );
        assert!(w.nodes[1].peer_uses_tls("A"));
        assert!(w.nodes[0].peer_uses_tls("B"));
    }

    #[test]
    fn different_certificates_are_refused() {
        let mut w = pair(
            &node("A", Some("s"), Some(&gencert())),
            &node("B", Some("s"), Some(&gencert())),
        );
        assert!(w.nodes[1].up_nodes().is_empty());
        assert!(w.nodes[0].up_nodes().is_empty());
        let seen = monitor_a(&mut w);
        assert_eq!(seen.len(), 1);
        assert!(
            seen[0].starts_with("transport_error => A, TLS handshake failed: "),
            "{seen:?}"
        );
    }

    #[test]
    fn tls_only_when_both_have_a_certificate() {
        let w = pair(
            &node("A", Some("s"), Some(&gencert())),
            &node("B", Some("s"), None),
        );
        assert_eq!(w.nodes[1].peer_auth_method("A"), Some("hmac_sha3_512"));
        assert!(!w.nodes[1].peer_uses_tls("A"));
        assert!(!w.nodes[0].peer_uses_tls("B"));
        // Without TLS the secrets must match as usual.
        let mut w = pair(
            &node("A", Some("s"), Some(&gencert())),
            &node("B", Some("wrong"), None),
        );
        assert_eq!(
            monitor_a(&mut w),
            vec!["transport_error => A, authentication failure/shared secret mismatch"]
        );
    }

    #[test]
    fn garbage_instead_of_tls_records_is_a_clear_error() {
        let pem = gencert();
        let mut w = Wire::new();
        w.add("10.0.0.1:4040", &refs(&node("A", None, Some(&pem))));
        let now = w.now;
        let c = w.nodes[0].handle_accept(now, Transport::Tcp, None);
        let greeting = w.nodes[0].poll_transmit().unwrap().data;
        assert!(String::from_utf8_lossy(&greeting).contains(";tls=1.0"));
        let mut cfg = crate::wire::HandshakeConfig::new("B", None);
        cfg.has_cert = true;
        let peer = crate::wire::Handshake::new(&cfg, [9; 66], None);
        let mut bytes = peer.greeting().to_vec();
        bytes.extend_from_slice(b"tls_sha3_512;00;cbor\n garbage, not TLS");
        w.nodes[0].handle_data(now, c, &bytes);
        let mut closed = false;
        while let Some(a) = w.nodes[0].poll_action() {
            closed |= a == Action::Close { conn: c };
        }
        assert!(closed);
        assert_eq!(w.nodes[0].conn_count(), 0);
        // Whatever went out after the greeting is TLS (an alert), never
        // plaintext.
        while let Some(t) = w.nodes[0].poll_transmit() {
            assert!(!t.data.starts_with(b"tls_"), "{:?}", t.data);
        }
    }

    #[test]
    fn garbage_on_an_established_tls_link_closes_it() {
        let pem = gencert();
        let mut w = pair(&node("A", None, Some(&pem)), &node("B", None, Some(&pem)));
        let seen = log();
        let s2 = seen.clone();
        let pb = w.nodes[1].port_with(|_, _| Ok(()));
        w.nodes[0]
            .mon(&pb, move |_, r| s2.borrow_mut().push(r.to_string()))
            .forget();
        w.pump();
        let conn = w.nodes[0].peer_conn("B").unwrap();
        let now = w.now;
        w.nodes[0].handle_data(now, conn, b"\x17\x03\x03\x00\x05plain");
        w.pump();
        let seen = seen.borrow();
        assert_eq!(seen.len(), 1);
        assert!(
            seen[0].starts_with("transport_error => B, TLS error: "),
            "{seen:?}"
        );
    }

    #[test]
    fn no_tls_over_websocket() {
        let pem = gencert();
        let mut w = Wire::new();
        w.add("10.0.0.1:4040", &refs(&node("A", None, Some(&pem))));
        let now = w.now;
        w.nodes[0].handle_accept(now, Transport::WebSocket, None);
        let greeting = w.nodes[0].poll_transmit().unwrap().data;
        assert!(!String::from_utf8_lossy(&greeting).contains("tls=1.0"));
    }

    #[test]
    fn bad_cert_config_is_a_configuration_error() {
        let (c, k) = self_signed(false);
        for (pem, why) in [
            (c.as_str(), "no usable private key"),
            (k.as_str(), "contains no certificate"),
        ] {
            let cfg = super::super::net_tests::cfg(&[("nodeid", "A"), ("cert", pem)]);
            let err = crate::Node::new([1; 32])
                .configure(&cfg, "h")
                .unwrap_err()
                .to_string();
            assert!(err.contains(why), "{err}");
        }
    }
}

#[cfg(all(test, not(feature = "tls")))]
mod tests {
    #[test]
    fn cert_without_tls_support_is_a_configuration_error() {
        let cfg = super::super::net_tests::cfg(&[("nodeid", "A"), ("cert", "x")]);
        let err = crate::Node::new([1; 32])
            .configure(&cfg, "h")
            .unwrap_err()
            .to_string();
        assert!(err.contains("no TLS support"), "{err}");
    }
}
