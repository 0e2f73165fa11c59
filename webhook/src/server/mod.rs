//! The HTTPS server: routes, TLS, development certificate, graceful
//! shutdown.

pub mod devcert;
pub mod routes;
pub mod tls;

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum_server::Handle;
use axum_server::tls_rustls::RustlsConfig;
use hyper_util::rt::TokioTimer;

/// Connection-level settings.
#[derive(Debug, Clone, Copy)]
pub struct ServerOptions {
    pub listen: SocketAddr,
    pub header_read_timeout: Duration,
    pub shutdown_grace: Duration,
}

/// Serves `router` until SIGTERM or SIGINT, then stops accepting and lets
/// in-flight reviews finish (up to the grace period). `on_listening` gets the
/// bound address (useful with port 0).
pub async fn serve(
    router: Router,
    tls: RustlsConfig,
    options: ServerOptions,
    on_listening: impl FnOnce(SocketAddr) + Send + 'static,
) -> std::io::Result<()> {
    let handle = Handle::new();
    let mut server = axum_server::bind_rustls(options.listen, tls).handle(handle.clone());
    server
        .http_builder()
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(options.header_read_timeout);
    server.http_builder().http2().timer(TokioTimer::new());

    let listening = handle.clone();
    tokio::spawn(async move {
        if let Some(addr) = listening.listening().await {
            on_listening(addr);
        }
    });
    tokio::spawn(shutdown_on_signal(handle, options.shutdown_grace));
    server.serve(router.into_make_service()).await
}

async fn shutdown_on_signal(handle: Handle, grace: Duration) {
    use tokio::signal::unix::{SignalKind, signal};
    let (mut term, mut int) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(term), Ok(int)) => (term, int),
        (Err(error), _) | (_, Err(error)) => {
            tracing::error!(%error, "cannot listen for shutdown signals");
            return;
        }
    };
    let name = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    };
    tracing::info!(signal = name, grace = ?grace, connections = handle.connection_count(), "shutting down: answering in-flight reviews");
    handle.graceful_shutdown(Some(grace));
}
