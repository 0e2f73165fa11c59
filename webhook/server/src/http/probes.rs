//! The probe listener (`--probe-listen`): `/healthz`, `/readyz` and
//! `/metrics` in plain HTTP/1.1, with no client certificate.
//!
//! Plain, because that is what its clients expect of a probe port: kubelet
//! `httpGet` probes and Prometheus scrapes use `scheme: HTTP` unless told
//! otherwise, and neither holds a certificate from the API server's CA.
//! Nothing secret is served there (health, readiness and counters); reviews
//! are never accepted on it. It is a side door, so it is kept small: a
//! bounded number of connections, each closed when a request's headers do
//! not arrive in time (which also ends idle keep-alive connections).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

use super::connection::not_ready;
use super::ready::Readiness;

/// Probe connections open at once; more are closed unserved.
const MAX_CONNECTIONS: usize = 64;

/// How long a probe connection may wait for a request's headers (or sit
/// idle between requests).
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves the probe routes on `listener` until the task is aborted.
pub(super) async fn serve(listener: TcpListener, router: Router, readiness: Readiness) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                tracing::warn!(%error, "cannot accept a probe connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::debug!("probe connection limit reached; closing a new one");
            continue;
        };
        let (router, readiness) = (router.clone(), readiness.clone());
        tokio::spawn(async move {
            let service = service_fn(move |request: hyper::Request<Incoming>| {
                let (router, readiness) = (router.clone(), readiness.clone());
                async move {
                    if let Some(response) = not_ready(&readiness, request.uri().path()) {
                        return Ok::<_, Infallible>(response);
                    }
                    router.oneshot(request).await
                }
            });
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            if let Err(error) = connection.await {
                tracing::debug!(%error, "probe connection ended with an error");
            }
            drop(slot);
        });
    }
}
