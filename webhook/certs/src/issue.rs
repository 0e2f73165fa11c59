//! Making certificates: a certificate authority and the serving
//! certificates it signs (ECDSA P-256, rcgen).

use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};

use super::inspect::{BACKDATE, Cert};

/// When a certificate starts and how long it is meant to last.
#[derive(Debug, Clone, Copy)]
pub struct Lifetime {
    pub issued: SystemTime,
    pub valid_for: Duration,
}

impl Lifetime {
    pub fn starting(issued: SystemTime, valid_for: Duration) -> Self {
        Self { issued, valid_for }
    }

    /// From now, for `days` days.
    pub fn days(days: u64) -> Self {
        Self::starting(SystemTime::now(), Duration::from_secs(days * 24 * 3600))
    }

    fn apply(&self, params: &mut CertificateParams, cap: Option<SystemTime>) {
        let not_after = self.issued + self.valid_for;
        params.not_before = (self.issued - BACKDATE).into();
        params.not_after = cap.map_or(not_after, |cap| cap.min(not_after)).into();
    }
}

/// A certificate authority that can sign serving certificates.
pub struct Authority {
    cert_pem: String,
    key_pem: String,
    not_after: SystemTime,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authority")
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

/// A serving certificate and its private key, PEM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
}

impl Authority {
    /// A new CA called `name` (its common name; make it unique, so that
    /// verifiers holding an old and a new CA tell them apart by subject).
    pub fn generate(name: &str, lifetime: Lifetime) -> Result<Self, rcgen::Error> {
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, name);
        // Signs serving certificates only, never another CA.
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        lifetime.apply(&mut params, None);
        let not_after = params.not_after.into();
        let key = KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        Ok(Self {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            not_after,
            issuer: Issuer::new(params, key),
        })
    }

    /// A CA from its certificate and key (as stored in the Secret).
    pub fn from_parts(cert: &Cert, key_pem: &str) -> Result<Self, rcgen::Error> {
        let key = KeyPair::from_pem(key_pem)?;
        let issuer = Issuer::from_ca_cert_der(&cert.der.as_slice().into(), key)?;
        Ok(Self {
            cert_pem: cert.pem(),
            key_pem: key_pem.to_owned(),
            not_after: cert.not_after,
            issuer,
        })
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// A serving certificate for `names` (DNS names or IP addresses; the
    /// first is also the common name). It never outlives this CA.
    pub fn issue(&self, names: &[String], lifetime: Lifetime) -> Result<Issued, rcgen::Error> {
        let mut params = CertificateParams::new(names.to_vec())?;
        params.distinguished_name = DistinguishedName::new();
        if let Some(first) = names.first() {
            params.distinguished_name.push(DnType::CommonName, first);
        }
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        lifetime.apply(&mut params, Some(self.not_after));
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::inspect::{Cert, public_key_of};

    #[test]
    fn reads_back_what_was_issued() {
        let now = SystemTime::now();
        let day = Duration::from_secs(24 * 3600);
        let ca = Authority::generate("tollgate-ca@1", Lifetime::starting(now, 30 * day)).unwrap();
        let names = vec!["tollgate.tollgate.svc".to_owned(), "127.0.0.1".to_owned()];
        let leaf = ca.issue(&names, Lifetime::starting(now, 3 * day)).unwrap();

        let ca_cert = Cert::parse_first(ca.cert_pem().as_bytes()).unwrap();
        let leaf_cert = Cert::parse_first(leaf.cert_pem.as_bytes()).unwrap();
        assert!(ca_cert.is_ca && !leaf_cert.is_ca);
        assert_eq!(leaf_cert.names, names);
        assert!(leaf_cert.covers(names.iter()));
        assert!(!leaf_cert.covers([String::from("other.svc")].iter()));
        assert!(leaf_cert.signed_by(&ca_cert));
        assert!(!ca_cert.signed_by(&leaf_cert));
        assert!(leaf_cert.has_public_key(&public_key_of(&leaf.key_pem).unwrap()));
        assert!(!leaf_cert.has_public_key(&public_key_of(ca.key_pem()).unwrap()));

        // Backdated, and renewed two thirds into its life.
        let secs = |t: SystemTime| t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
        assert_eq!(secs(leaf_cert.issued()), secs(now));
        assert_eq!(secs(leaf_cert.not_after), secs(now + 3 * day));
        assert_eq!(secs(leaf_cert.renew_at()), secs(now + 2 * day));
        assert!(leaf_cert.valid_at(now) && !leaf_cert.valid_at(now + 3 * day));

        // A leaf never outlives its CA.
        let long = ca
            .issue(&names, Lifetime::starting(now, 365 * day))
            .unwrap();
        let long = Cert::parse_first(long.cert_pem.as_bytes()).unwrap();
        assert_eq!(secs(long.not_after), secs(ca_cert.not_after));

        // PEM round trip.
        assert_eq!(
            Cert::parse_first(ca_cert.pem().as_bytes()).unwrap(),
            ca_cert
        );
        let bundle = format!("{}{}", ca_cert.pem(), leaf_cert.pem());
        assert_eq!(Cert::parse_all(bundle.as_bytes()).unwrap().len(), 2);
    }
}
