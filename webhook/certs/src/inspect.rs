//! Reading certificates back: validity, names, who signed them (x509-parser).

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

/// How far back certificates are dated, against clock skew between the
/// replica that issues them and the API servers that verify them (the
/// hour client-go's certificate helpers use).
pub const BACKDATE: Duration = Duration::from_secs(3600);

/// A certificate could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InspectError {
    #[error("not PEM: {0}")]
    Pem(String),
    #[error("no certificate in the PEM")]
    Empty,
    #[error("not an X.509 certificate: {0}")]
    X509(String),
}

/// What Tollgate needs to know about one certificate.
#[derive(Clone, PartialEq, Eq)]
pub struct Cert {
    pub der: Vec<u8>,
    pub not_before: SystemTime,
    pub not_after: SystemTime,
    /// DNS names and IP addresses (as text) of the subjectAltName.
    pub names: Vec<String>,
    pub is_ca: bool,
    pub subject: String,
}

impl std::fmt::Debug for Cert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cert")
            .field("subject", &self.subject)
            .field("names", &self.names)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

fn time(t: x509_parser::time::ASN1Time) -> SystemTime {
    let seconds = t.timestamp();
    if seconds >= 0 {
        SystemTime::UNIX_EPOCH + Duration::from_secs(seconds as u64)
    } else {
        SystemTime::UNIX_EPOCH - Duration::from_secs(seconds.unsigned_abs())
    }
}

impl Cert {
    /// Every certificate in a PEM bundle, in order.
    pub fn parse_all(pem: &[u8]) -> Result<Vec<Cert>, InspectError> {
        let ders = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| InspectError::Pem(e.to_string()))?;
        ders.iter().map(|der| Self::from_der(der)).collect()
    }

    /// The first certificate of a PEM chain.
    pub fn parse_first(pem: &[u8]) -> Result<Cert, InspectError> {
        Self::parse_all(pem)?
            .into_iter()
            .next()
            .ok_or(InspectError::Empty)
    }

    pub fn from_der(der: &[u8]) -> Result<Cert, InspectError> {
        let (_, x509) =
            X509Certificate::from_der(der).map_err(|e| InspectError::X509(e.to_string()))?;
        let mut names = Vec::new();
        if let Ok(Some(san)) = x509.subject_alternative_name() {
            for name in &san.value.general_names {
                match name {
                    GeneralName::DNSName(dns) => names.push((*dns).to_owned()),
                    GeneralName::IPAddress(bytes) => {
                        let ip = match bytes.len() {
                            4 => <[u8; 4]>::try_from(*bytes).ok().map(IpAddr::from),
                            16 => <[u8; 16]>::try_from(*bytes).ok().map(IpAddr::from),
                            _ => None,
                        };
                        names.extend(ip.map(|ip| ip.to_string()));
                    }
                    _ => {}
                }
            }
        }
        Ok(Cert {
            der: der.to_vec(),
            not_before: time(x509.validity().not_before),
            not_after: time(x509.validity().not_after),
            names,
            is_ca: x509.is_ca(),
            subject: x509.subject().to_string(),
        })
    }

    fn x509(&self) -> X509Certificate<'_> {
        X509Certificate::from_der(&self.der)
            .expect("parsed once already")
            .1
    }

    /// Whether `ca` signed this certificate.
    pub fn signed_by(&self, ca: &Cert) -> bool {
        let ca_x509 = ca.x509();
        self.x509()
            .verify_signature(Some(ca_x509.public_key()))
            .is_ok()
    }

    /// Whether `key_spki` (a SubjectPublicKeyInfo, DER) is this
    /// certificate's public key.
    pub fn has_public_key(&self, key_spki: &[u8]) -> bool {
        self.x509().public_key().raw == key_spki
    }

    /// When it was made (Tollgate backdates `notBefore` by [`BACKDATE`]).
    pub fn issued(&self) -> SystemTime {
        self.not_before + BACKDATE
    }

    pub fn valid_at(&self, now: SystemTime) -> bool {
        self.not_before <= now && now < self.not_after
    }

    /// When it is due for renewal: two thirds into its life, so a third of
    /// it is left to retry in if the API server is unreachable.
    pub fn renew_at(&self) -> SystemTime {
        let issued = self.issued().min(self.not_after);
        let life = self.not_after.duration_since(issued).unwrap_or_default();
        issued + life * 2 / 3
    }

    /// Whether it names every one of `names`.
    pub fn covers<'a>(&self, mut names: impl Iterator<Item = &'a String>) -> bool {
        names.all(|n| self.names.iter().any(|m| m.eq_ignore_ascii_case(n)))
    }

    pub fn pem(&self) -> String {
        to_pem(&self.der)
    }
}

/// A certificate as PEM text (LF line endings, as rcgen writes them).
pub fn to_pem(der: &[u8]) -> String {
    let config = pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF);
    pem::encode_config(&pem::Pem::new("CERTIFICATE", der), config)
}

/// The SubjectPublicKeyInfo (DER) of a PEM private key.
pub fn public_key_of(key_pem: &str) -> Result<Vec<u8>, rcgen::Error> {
    use rcgen::PublicKeyData;
    Ok(rcgen::KeyPair::from_pem(key_pem)?.subject_public_key_info())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert_eq!(Cert::parse_first(b"").unwrap_err(), InspectError::Empty);
        assert!(
            Cert::parse_all(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
                .is_err()
        );
        assert!(
            Cert::parse_all(b"-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n")
                .is_err()
        );
    }
}
