//! The HTTPS server: routes, TLS, readiness and graceful shutdown.
//!
//! The accept loop is our own (tokio + tokio-rustls + hyper) because
//! shutdown must answer every review a client already sent: a connection
//! the kernel accepted before the signal is still served, an HTTP/1
//! connection gets a moment for the request its client is about to send
//! (answered with `Connection: close`), and HTTP/2 connections get a
//! GOAWAY, which tells the client exactly which requests to retry
//! elsewhere.

mod connection;
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

use self::ready::Readiness;
use self::tls::ServingCert;

/// Connection-level settings.
#[derive(Debug, Clone, Copy)]
pub struct ServerOptions {
    pub listen: SocketAddr,
    /// Also the TLS handshake's limit.
    pub header_read_timeout: Duration,
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
    header_read_timeout: Duration,
    /// Turns true when the server stops accepting.
    draining: watch::Receiver<bool>,
}

/// Resolves once the server drains (or can no longer be told to).
async fn drained(mut draining: watch::Receiver<bool>) {
    let _ = draining.wait_for(|d| *d).await;
}

/// Serves `router` until SIGTERM or SIGINT, then stops accepting and
/// answers in-flight reviews (up to the grace period). `on_listening` gets
/// the bound address (useful with port 0).
pub async fn serve(
    router: Router,
    tls: ServingCert,
    readiness: Readiness,
    options: ServerOptions,
    on_listening: impl FnOnce(SocketAddr) + Send + 'static,
) -> std::io::Result<()> {
    let listener = TcpListener::bind(options.listen).await?;
    on_listening(listener.local_addr()?);
    let (drain, draining) = watch::channel(false);
    let signals = shutdown::Signals::listen()?;
    let stop = tokio::spawn(signals.wait(readiness.clone(), options.shutdown_delay, drain));
    let shared = Arc::new(Shared {
        router,
        acceptor: tls.acceptor(),
        readiness,
        header_read_timeout: options.header_read_timeout,
        draining: draining.clone(),
    });
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            biased;
            _ = drained(draining.clone()) => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(connection::serve(stream, shared.clone()));
                }
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
        connections.spawn(connection::serve(stream, shared.clone()));
    }
    drop(listener);
    tracing::info!(
        connections = connections.len(),
        grace = ?options.shutdown_grace,
        "stopped accepting; answering in-flight reviews"
    );
    let finished = tokio::time::timeout(options.shutdown_grace, async {
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
