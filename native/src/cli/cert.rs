//! `aemp gencert`: a self-signed certificate for TLS authentication.

/// A new self-signed certificate (`CN=AnyEvent::MP`, valid for ten years
/// from the start of this year) and its ECDSA P-256 key: the certificate
/// PEM followed by the key PEM, the layout Perl's `aemp gencert` stores.
pub fn generate() -> Result<String, String> {
    use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};
    let err = |e: rcgen::Error| format!("gencert: {e}");
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "AnyEvent::MP");
    params.distinguished_name = dn;
    let year = 1970
        + std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() / 31_556_952)
            .unwrap_or(56) as i32;
    params.not_before = rcgen::date_time_ymd(year, 1, 1);
    params.not_after = rcgen::date_time_ymd(year + 10, 1, 1);
    let key = KeyPair::generate().map_err(err)?;
    let cert = params.self_signed(&key).map_err(err)?;
    let mut pem = cert.pem();
    if !pem.ends_with('\n') {
        pem.push('\n');
    }
    pem.push_str(&key.serialize_pem());
    Ok(pem)
}
