//! The HTTPS server: routes, TLS, readiness and graceful shutdown.
//!
//! The accept loop is our own (tokio + tokio-rustls + hyper) because
//! shutdown must answer every review a client already sent: a connection
//! the kernel accepted before the signal is still served, an HTTP/1
//! connection gets a moment for the request its client is about to send
//! (answered with `Connection: close`), and HTTP/2 connections get a
//! GOAWAY, which tells the client exactly which requests to retry
//! elsewhere.

pub mod client_auth;
mod connection;
pub mod limits;
mod probes;
pub mod ready;
pub mod routes;
mod shutdown;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use self::client_auth::ClientAuth;
pub use self::connection::Arrived;
use self::limits::{ConnectionLimits, Registry};
use self::ready::Readiness;
use crate::admission::Cutoff;
use crate::metrics::Metrics;
use tollgate_certs::ServingCert;

/// Connection-level settings.
#[derive(Debug, Clone, Copy)]
pub struct ServerOptions {
    pub listen: SocketAddr,
    /// Where `/healthz`, `/readyz` and `/metrics` are also served, in
    /// plain HTTP (`--probe-listen`).
    pub probe_listen: Option<SocketAddr>,
    pub connections: ConnectionLimits,
    /// After the signal (and the delay), how long in-flight reviews may take.
    pub shutdown_grace: Duration,
    /// After SIGTERM, how long to keep accepting while `/readyz` says 503.
    pub shutdown_delay: Duration,
}

/// What every connection task shares.
struct Shared {
    router: Router,
    acceptor: tokio_rustls::TlsAcceptor,
    readiness: Readiness,
    connections: Arc<Registry>,
    metrics: Arc<Metrics>,
    /// Turns true when the server stops accepting.
    draining: watch::Receiver<bool>,
}

/// Aborts its task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Resolves once the server drains (or can no longer be told to).
async fn drained(mut draining: watch::Receiver<bool>) {
    let _ = draining.wait_for(|d| *d).await;
}

/// What the server runs with besides its options.
pub struct Serving {
    pub router: Router,
    /// The probe routes alone, for `probe_listen`.
    pub probes: Router,
    pub tls: ServingCert,
    /// Client certificates required on `listen` (`--client-ca`).
    pub client_auth: Option<Arc<ClientAuth>>,
    pub readiness: Readiness,
    pub metrics: Arc<Metrics>,
    /// Set to the end of the grace period when shutdown begins: reviews
    /// still being evaluated are answered before it.
    pub cutoff: Cutoff,
}

/// Descriptors kept for everything but connections (listener, watches,
/// module files, the API server).
const RESERVED_FILES: u64 = 64;

/// The answers of the reviews cut off at the end of the grace period are
/// written in this last part of it.
fn answer_margin(grace: Duration) -> Duration {
    (grace / 10).clamp(Duration::from_millis(10), Duration::from_secs(1))
}

/// Serves until SIGTERM or SIGINT, then stops accepting and answers
/// in-flight reviews (within the grace period). `on_listening` gets the
/// bound addresses, the probe listener's second (useful with port 0).
pub async fn serve(
    serving: Serving,
    mut options: ServerOptions,
    on_listening: impl FnOnce(SocketAddr, Option<SocketAddr>) + Send + 'static,
) -> std::io::Result<()> {
    let Serving {
        router,
        probes,
        tls: tls_cert,
        client_auth,
        readiness,
        metrics,
        cutoff,
    } = serving;
    let files = limits::raise_open_files_limit();
    let max = u64::from(options.connections.max_connections);
    if let Some(files) = files
        && files < max + RESERVED_FILES
    {
        let fits = files.saturating_sub(RESERVED_FILES).max(1);
        tracing::warn!(
            open_files = files,
            max_connections = max,
            lowered_to = fits,
            "the open-files limit does not fit --max-connections; lowering the cap"
        );
        options.connections.max_connections = u32::try_from(fits).unwrap_or(u32::MAX);
    }
    tracing::debug!(open_files = ?files, max_connections = options.connections.max_connections, "connection limits");
    let listener = TcpListener::bind(options.listen).await?;
    let probe_listener = match options.probe_listen {
        Some(addr) => Some(TcpListener::bind(addr).await?),
        None => None,
    };
    let probe_addr = probe_listener
        .as_ref()
        .map(TcpListener::local_addr)
        .transpose()?;
    on_listening(listener.local_addr()?, probe_addr);
    // Kept serving through the drain (/readyz says 503 to the end).
    let _probes = probe_listener.map(|probe| {
        AbortOnDrop(tokio::spawn(probes::serve(
            probe,
            probes,
            readiness.clone(),
        )))
    });
    let (drain, draining) = watch::channel(false);
    let signals = shutdown::Signals::listen()?;
    let stop = tokio::spawn(signals.wait(readiness.clone(), options.shutdown_delay, drain));
    let shared = Arc::new(Shared {
        router,
        acceptor: tls::acceptor(&tls_cert, client_auth),
        readiness,
        connections: Registry::new(options.connections, metrics.clone()),
        metrics,
        draining: draining.clone(),
    });
    let accept = |stream, connections: &mut JoinSet<()>| match shared.connections.admit() {
        Some(registered) => {
            connections.spawn(connection::serve(stream, shared.clone(), registered));
        }
        // At the cap with every connection busy: closed unserved (counted).
        None => drop(stream),
    };
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            biased;
            _ = drained(draining.clone()) => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => accept(stream, &mut connections),
                Err(error) => {
                    // Out of file descriptors and the like: pause, not spin.
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    // Connections the kernel completed before the signal are served, not
    // reset: their clients have sent (or are sending) a review.
    while let Ok(Ok((stream, _))) = tokio::time::timeout(Duration::ZERO, listener.accept()).await {
        accept(stream, &mut connections);
    }
    // Reviews still being evaluated at the end of the grace period get
    // their failure verdicts, written before it ends.
    let grace_ends = tokio::time::Instant::now() + options.shutdown_grace;
    cutoff.set(grace_ends - answer_margin(options.shutdown_grace));
    drop(listener);
    tracing::info!(
        connections = connections.len(),
        grace = ?options.shutdown_grace,
        "stopped accepting; answering in-flight reviews"
    );
    let finished = tokio::time::timeout_at(grace_ends, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if finished.is_err() {
        tracing::warn!(
            connections = connections.len(),
            "grace period over; closing the remaining connections"
        );
        connections.shutdown().await;
    }
    stop.abort();
    Ok(())
}
