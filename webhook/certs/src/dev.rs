//! A development CA and serving certificate, so `tollgate` with no flags
//! serves TLS that a client can verify.
//!
//! Generated once under the state directory and reused on later runs (a
//! client configured with `--cacert` keeps working).

use std::io::Write;
use std::path::{Path, PathBuf};

use super::files::TlsFiles;
use super::issue::{Authority, Lifetime};

/// The files of the development certificate.
#[derive(Debug, Clone)]
pub struct DevCert {
    /// The CA certificate clients trust (`curl --cacert`).
    pub ca: PathBuf,
    pub files: TlsFiles,
}

#[derive(Debug, thiserror::Error)]
pub enum DevCertError {
    #[error("cannot write the development certificate under {dir}: {source}")]
    Io { dir: String, source: std::io::Error },
    #[error("cannot generate the development certificate: {0}")]
    Generate(#[from] rcgen::Error),
}

/// The names the serving certificate covers.
const NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

impl DevCert {
    /// The certificate under `dir`, generated on first use.
    pub fn ensure(dir: &Path) -> Result<Self, DevCertError> {
        let cert = Self {
            ca: dir.join("ca.pem"),
            files: TlsFiles {
                cert: dir.join("tls.crt"),
                key: dir.join("tls.key"),
            },
        };
        if [&cert.ca, &cert.files.cert, &cert.files.key]
            .iter()
            .all(|p| p.is_file())
        {
            return Ok(cert);
        }
        let io = |source| DevCertError::Io {
            dir: dir.display().to_string(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let (ca_pem, tls_pem, key_pem) = generate()?;
        // The key first and the CA last: a crash in between leaves the set
        // incomplete, so the next run regenerates it.
        write_atomically(&cert.files.key, key_pem.as_bytes(), 0o600).map_err(io)?;
        write_atomically(&cert.files.cert, tls_pem.as_bytes(), 0o644).map_err(io)?;
        write_atomically(&cert.ca, ca_pem.as_bytes(), 0o644).map_err(io)?;
        Ok(cert)
    }
}

/// `(ca.pem, tls.crt, tls.key)`, valid for ten years: a development
/// certificate outlives the laptop it was made on.
fn generate() -> Result<(String, String, String), DevCertError> {
    let lifetime = Lifetime::days(3650);
    let ca = Authority::generate("Tollgate development CA", lifetime)?;
    let leaf = ca.issue(&NAMES.map(String::from), lifetime)?;
    Ok((ca.cert_pem().to_owned(), leaf.cert_pem, leaf.key_pem))
}

fn write_atomically(path: &Path, contents: &[u8], mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)?;
    file.write_all(contents)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_once_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let first = DevCert::ensure(dir.path()).unwrap();
        let ca = std::fs::read_to_string(&first.ca).unwrap();
        assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"));
        let key_mode = {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(&first.files.key)
                .unwrap()
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(key_mode, 0o600);
        let second = DevCert::ensure(dir.path()).unwrap();
        assert_eq!(std::fs::read_to_string(&second.ca).unwrap(), ca);
    }
}
