//! A closed-loop HTTPS load generator: N keep-alive HTTP/1.1 connections,
//! each posting the same review back to back for a fixed time, latencies in
//! an HDR histogram.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

pub struct Target {
    pub port: u16,
    pub path: String,
    pub body: Bytes,
    /// Every answer must echo it; one that does not counts as an error.
    pub uid: String,
}

/// The result of one round.
#[derive(Debug, Clone)]
pub struct Stats {
    pub rate: f64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub errors: u64,
}

impl Stats {
    /// The round with the median throughput.
    pub fn median(mut rounds: Vec<Stats>) -> Stats {
        rounds.sort_by(|a, b| a.rate.total_cmp(&b.rate));
        rounds[rounds.len() / 2].clone()
    }
}

pub fn client_config(ca_pem: &Path) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca_pem).context("read CA")? {
        roots.add(cert?)?;
    }
    Ok(Arc::new(
        rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    ))
}

pub async fn run(
    target: &Target,
    tls: &Arc<rustls::ClientConfig>,
    connections: usize,
    duration: Duration,
) -> anyhow::Result<Stats> {
    let end = Instant::now() + duration;
    let mut tasks = Vec::new();
    for _ in 0..connections {
        tasks.push(connection(target, tls.clone(), end));
    }
    let started = Instant::now();
    let results = futures::future::join_all(tasks).await;
    let elapsed = started.elapsed().as_secs_f64();
    let mut hist = Histogram::<u64>::new(3)?;
    let mut errors = 0;
    for r in results {
        let (h, e) = r?;
        hist.add(h)?;
        errors += e;
    }
    Ok(Stats {
        rate: hist.len() as f64 / elapsed,
        p50_us: hist.value_at_quantile(0.5),
        p99_us: hist.value_at_quantile(0.99),
        errors,
    })
}

async fn connection(
    target: &Target,
    tls: Arc<rustls::ClientConfig>,
    end: Instant,
) -> anyhow::Result<(Histogram<u64>, u64)> {
    let tcp = TcpStream::connect(("127.0.0.1", target.port)).await?;
    tcp.set_nodelay(true)?;
    let name = rustls::pki_types::ServerName::try_from("localhost")?;
    let stream = TlsConnector::from(tls).connect(name, tcp).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    let driver = tokio::spawn(conn);
    let mut hist = Histogram::<u64>::new(3)?;
    let mut errors = 0;
    while Instant::now() < end {
        let request = hyper::Request::post(target.path.as_str())
            .header("host", "localhost")
            .header("content-type", "application/json")
            .body(Full::new(target.body.clone()))?;
        let t0 = Instant::now();
        let response = sender.send_request(request).await?;
        let ok = response.status().is_success();
        let body = response.into_body().collect().await?.to_bytes();
        hist.record(t0.elapsed().as_micros() as u64)?;
        if !ok || !contains(&body, target.uid.as_bytes()) {
            errors += 1;
        }
    }
    drop(sender);
    driver.abort();
    Ok((hist, errors))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len().max(1)).any(|w| w == needle)
}
