//! What the Secret holds, read into certificates Tollgate can reason about.
//!
//! | key | content |
//! |---|---|
//! | `tls.crt`, `tls.key` | the serving certificate and its key |
//! | `ca.crt` | the CA bundle the webhook configurations carry (one CA, two while rotating) |
//! | `ca.key` | the key of the bundle's CA that signs new serving certificates |
//!
//! and two annotations: `tollgate.dev/ca-bundle-generation` (a counter that
//! goes up with every change of `ca.crt`, copied onto the webhook
//! configurations, so a replica with a stale view never writes an older
//! bundle over a newer one) and `tollgate.dev/rotate` (`ca` or `cert`: an
//! operator's request for an early rotation, removed once acted on).

use std::collections::BTreeMap;

use super::inspect::{Cert, public_key_of};

pub const TLS_CRT: &str = "tls.crt";
pub const TLS_KEY: &str = "tls.key";
pub const CA_CRT: &str = "ca.crt";
pub const CA_KEY: &str = "ca.key";
pub const GENERATION: &str = "tollgate.dev/ca-bundle-generation";
pub const ROTATE: &str = "tollgate.dev/rotate";

/// The Secret's `data` and `metadata.annotations`, decoded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Contents {
    pub data: BTreeMap<String, Vec<u8>>,
    pub annotations: BTreeMap<String, String>,
}

/// An operator's request for an early rotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotate {
    /// A new CA (and so, after the bundle step, a new serving certificate).
    Ca,
    /// A new serving certificate from the current CA, for exactly the
    /// configured names.
    Cert,
}

/// The CA that signs: a bundle certificate and its key.
#[derive(Debug, Clone)]
pub struct Signer {
    pub cert: Cert,
    pub key_pem: String,
}

/// The serving pair.
#[derive(Debug, Clone)]
pub struct Leaf {
    pub cert: Cert,
    /// `tls.crt` as stored (the leaf first).
    pub cert_pem: String,
    pub key_pem: String,
}

/// The usable parts of the Secret.
#[derive(Debug, Clone, Default)]
pub struct Material {
    /// `ca.crt`, in order.
    pub bundle: Vec<Cert>,
    pub signer: Option<Signer>,
    /// Present when the certificate parses and the key is its key.
    pub leaf: Option<Leaf>,
    pub generation: u64,
    pub rotate: Option<Rotate>,
    /// What was there but could not be used, for the log.
    pub problems: Vec<String>,
}

impl Material {
    pub fn read(contents: &Contents) -> Self {
        let mut problems = Vec::new();
        let text = |key: &str| -> Option<String> {
            let bytes = contents.data.get(key).filter(|b| !b.is_empty())?;
            Some(String::from_utf8_lossy(bytes).into_owned())
        };
        let bundle = match text(CA_CRT) {
            Some(pem) => Cert::parse_all(pem.as_bytes()).unwrap_or_else(|e| {
                problems.push(format!("{CA_CRT}: {e}"));
                Vec::new()
            }),
            None => Vec::new(),
        };
        let signer = text(CA_KEY).and_then(|key_pem| {
            let spki = match public_key_of(&key_pem) {
                Ok(spki) => spki,
                Err(e) => {
                    problems.push(format!("{CA_KEY}: {e}"));
                    return None;
                }
            };
            let found = bundle.iter().find(|c| c.is_ca && c.has_public_key(&spki));
            if found.is_none() {
                problems.push(format!("{CA_KEY} belongs to no CA in {CA_CRT}"));
            }
            Some(Signer {
                cert: found?.clone(),
                key_pem,
            })
        });
        let leaf = match (text(TLS_CRT), text(TLS_KEY)) {
            (Some(cert_pem), Some(key_pem)) => {
                let parsed = Cert::parse_first(cert_pem.as_bytes()).map_err(|e| e.to_string());
                let fits = public_key_of(&key_pem).map_err(|e| e.to_string());
                match (parsed, fits) {
                    (Ok(cert), Ok(spki)) if cert.has_public_key(&spki) => Some(Leaf {
                        cert,
                        cert_pem,
                        key_pem,
                    }),
                    (Ok(_), Ok(_)) => {
                        problems.push(format!("{TLS_KEY} is not the key of {TLS_CRT}"));
                        None
                    }
                    (Err(e), _) => {
                        problems.push(format!("{TLS_CRT}: {e}"));
                        None
                    }
                    (_, Err(e)) => {
                        problems.push(format!("{TLS_KEY}: {e}"));
                        None
                    }
                }
            }
            _ => None,
        };
        let generation = contents
            .annotations
            .get(GENERATION)
            .and_then(|g| g.parse().ok())
            .unwrap_or(0);
        let rotate = match contents.annotations.get(ROTATE).map(String::as_str) {
            None => None,
            Some("ca") => Some(Rotate::Ca),
            Some("cert") => Some(Rotate::Cert),
            Some(other) => {
                problems.push(format!(
                    "annotation {ROTATE}={other:?} is neither \"ca\" nor \"cert\"; ignored"
                ));
                None
            }
        };
        Self {
            bundle,
            signer,
            leaf,
            generation,
            rotate,
            problems,
        }
    }

    /// `ca.crt`.
    pub fn bundle_pem(&self) -> String {
        self.bundle.iter().map(Cert::pem).collect()
    }

    /// What to store: the four keys and the generation; a rotation request
    /// that was not acted on stays.
    pub fn contents(&self) -> Contents {
        let mut data = BTreeMap::new();
        let leaf = self.leaf.as_ref();
        let signer = self.signer.as_ref();
        data.insert(TLS_CRT.into(), leaf.map_or("", |l| &l.cert_pem).into());
        data.insert(TLS_KEY.into(), leaf.map_or("", |l| &l.key_pem).into());
        data.insert(CA_CRT.into(), self.bundle_pem().into_bytes());
        data.insert(CA_KEY.into(), signer.map_or("", |s| &s.key_pem).into());
        let mut annotations = BTreeMap::new();
        annotations.insert(GENERATION.into(), self.generation.to_string());
        if let Some(rotate) = &self.rotate {
            let value = match rotate {
                Rotate::Ca => "ca",
                Rotate::Cert => "cert",
            };
            annotations.insert(ROTATE.into(), value.into());
        }
        Contents { data, annotations }
    }

    /// Whether `cert` is a CA of the bundle.
    pub fn trusts(&self, cert: &Cert) -> bool {
        self.bundle.iter().any(|ca| cert.signed_by(ca))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::issue::{Authority, Lifetime};

    fn contents(ca: &Authority, names: &[&str]) -> Contents {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let leaf = ca.issue(&names, Lifetime::days(2)).unwrap();
        let mut data = BTreeMap::new();
        data.insert(TLS_CRT.into(), leaf.cert_pem.into_bytes());
        data.insert(TLS_KEY.into(), leaf.key_pem.into_bytes());
        data.insert(CA_CRT.into(), ca.cert_pem().as_bytes().to_vec());
        data.insert(CA_KEY.into(), ca.key_pem().as_bytes().to_vec());
        let mut annotations = BTreeMap::new();
        annotations.insert(GENERATION.into(), "7".into());
        Contents { data, annotations }
    }

    #[test]
    fn reads_what_it_writes() {
        let ca = Authority::generate("tollgate-ca@1", Lifetime::days(30)).unwrap();
        let stored = contents(&ca, &["a.svc"]);
        let material = Material::read(&stored);
        assert!(material.problems.is_empty(), "{:?}", material.problems);
        assert_eq!(material.bundle.len(), 1);
        assert!(material.signer.is_some());
        let leaf = material.leaf.as_ref().unwrap();
        assert_eq!(leaf.cert.names, ["a.svc"]);
        assert!(material.trusts(&leaf.cert));
        assert_eq!(material.generation, 7);
        let again = Material::read(&material.contents());
        assert_eq!(again.contents(), material.contents());
    }

    #[test]
    fn unusable_parts_are_named_and_left_out() {
        let ca = Authority::generate("tollgate-ca@1", Lifetime::days(30)).unwrap();
        let other = Authority::generate("tollgate-ca@2", Lifetime::days(30)).unwrap();
        let mut stored = contents(&ca, &["a.svc"]);
        // The key of another certificate, a CA key that signs nothing here,
        // and a request nobody understands.
        let foreign = other.issue(&["b.svc".into()], Lifetime::days(1)).unwrap();
        stored
            .data
            .insert(TLS_KEY.into(), foreign.key_pem.into_bytes());
        stored
            .data
            .insert(CA_KEY.into(), other.key_pem().as_bytes().to_vec());
        stored
            .annotations
            .insert(ROTATE.into(), "everything".into());
        let material = Material::read(&stored);
        assert!(material.leaf.is_none() && material.signer.is_none());
        assert_eq!(material.rotate, None);
        let problems = material.problems.join("\n");
        for expected in [
            "tls.key is not the key of tls.crt",
            "ca.key belongs to no CA in ca.crt",
            "tollgate.dev/rotate=\"everything\"",
        ] {
            assert!(problems.contains(expected), "{problems}");
        }

        stored.data.insert(CA_CRT.into(), b"garbage".to_vec());
        stored.data.insert(
            TLS_CRT.into(),
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".to_vec(),
        );
        let material = Material::read(&stored);
        assert!(material.bundle.is_empty() && material.leaf.is_none());

        // An empty Secret (say created by an installer) is simply empty.
        let empty = Material::read(&Contents::default());
        assert!(empty.problems.is_empty() && empty.leaf.is_none() && empty.signer.is_none());
    }
}
