//! HTTPS/1.1 (or plain HTTP/1.1) client connections to a webhook, as the
//! API server makes them: keep-alive, one request at a time per connection.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// Where a webhook listens and how to reach it.
#[derive(Clone)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    /// `None` for plain HTTP.
    tls: Option<(TlsConnector, ServerName<'static>)>,
    /// The `host` header.
    authority: String,
}

impl Endpoint {
    /// A server on 127.0.0.1 serving a certificate for `localhost` signed by `ca`.
    pub fn local(port: u16, ca: &Path) -> anyhow::Result<Self> {
        let tls = (
            TlsConnector::from(client_config(ca)?),
            ServerName::try_from("localhost")?,
        );
        Ok(Self {
            host: "127.0.0.1".into(),
            port,
            tls: Some(tls),
            authority: "localhost".into(),
        })
    }

    /// The endpoint of a URL (`https://` needs the CA that signed its certificate).
    pub fn from_url(url: &hyper::Uri, ca: Option<&Path>) -> anyhow::Result<Self> {
        let host = url
            .host()
            .with_context(|| format!("{url} has no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let (tls, default_port) = match url.scheme_str() {
            Some("https") => {
                let ca = ca.with_context(|| {
                    format!(
                        "{url} is HTTPS: pass --against-ca FILE, the CA that signed its certificate"
                    )
                })?;
                let name = ServerName::try_from(host.clone())
                    .with_context(|| format!("{host} is not a TLS server name"))?;
                (Some((TlsConnector::from(client_config(ca)?), name)), 443)
            }
            Some("http") => (None, 80),
            _ => bail!("{url}: only http:// and https:// URLs can be benchmarked"),
        };
        Ok(Self {
            port: url.port_u16().unwrap_or(default_port),
            authority: url.authority().map(|a| a.to_string()).unwrap_or_default(),
            host,
            tls,
        })
    }

    /// A new keep-alive connection (TCP, then TLS, then HTTP/1.1).
    pub async fn connect(&self) -> anyhow::Result<Connection> {
        let tcp = TcpStream::connect((self.host.as_str(), self.port)).await?;
        tcp.set_nodelay(true)?;
        let io: Box<dyn Io> = match &self.tls {
            Some((connector, name)) => Box::new(connector.connect(name.clone(), tcp).await?),
            None => Box::new(tcp),
        };
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
        let driver = tokio::spawn(conn);
        Ok(Connection {
            sender,
            driver,
            authority: self.authority.clone(),
        })
    }

    /// One request on a fresh connection, within `timeout`.
    pub async fn request_once(
        &self,
        method: Method,
        path: &str,
        body: Bytes,
        timeout: Duration,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        tokio::time::timeout(timeout, async {
            self.connect().await?.send(method, path, body).await
        })
        .await
        .with_context(|| format!("no answer within {timeout:?}"))?
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// An open connection; closed on drop.
pub struct Connection {
    sender: SendRequest<Full<Bytes>>,
    driver: tokio::task::JoinHandle<hyper::Result<()>>,
    authority: String,
}

impl Connection {
    /// Sends one request and reads the whole answer.
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        body: Bytes,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        let request = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, self.authority.as_str())
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(body))?;
        self.sender.ready().await?;
        let response = self.sender.send_request(request).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

pub fn client_config(ca_pem: &Path) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(ca_pem)
        .with_context(|| format!("cannot read CA certificate {}", ca_pem.display()))?;
    for cert in certs {
        roots.add(cert.with_context(|| format!("bad PEM in {}", ca_pem.display()))?)?;
    }
    if roots.is_empty() {
        bail!("{} holds no certificate", ca_pem.display());
    }
    Ok(Arc::new(
        rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let plain = Endpoint::from_url(&"http://10.0.0.1/validate".parse().unwrap(), None).unwrap();
        assert_eq!((plain.host.as_str(), plain.port), ("10.0.0.1", 80));
        assert!(plain.tls.is_none());
        let https = Endpoint::from_url(&"https://localhost:3000/v".parse().unwrap(), None);
        assert!(https.err().unwrap().to_string().contains("--against-ca"));
        let ftp = Endpoint::from_url(&"ftp://localhost/v".parse().unwrap(), None);
        assert!(ftp.is_err());
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("ca.pem");
        std::fs::write(&empty, "nothing here\n").unwrap();
        assert!(client_config(&empty).is_err());
        assert!(client_config(&dir.path().join("missing.pem")).is_err());
    }
}
