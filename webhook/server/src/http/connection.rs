//! One client connection: TLS, then HTTP/1.1 or HTTP/2 as ALPN chose, and
//! its part in a graceful shutdown.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpStream;
use tower::ServiceExt;

use super::Shared;
use super::limits::{Activity, Registered, Unread, Watched};

/// How long, once draining, an HTTP/1 connection stays open for a request
/// its client may be sending right now (a client that just connected, or
/// one reusing a kept-alive connection). HTTP/1 cannot tell a client
/// "not processed, retry elsewhere"; closing under it would lose the review.
const HTTP1_LINGER: Duration = Duration::from_secs(1);

/// How long an HTTP/2 connection closed at a limit gets to deliver its
/// GOAWAY before it is dropped.
const GOAWAY_LINGER: Duration = Duration::from_secs(1);

/// HTTP/1 read buffer of a connection, at most (hyper's minimum; it also
/// bounds the request head). hyper's default lets the buffer grow to fit a
/// whole body in one read, and keeps a buffer that size reserved while the
/// request is served: with 1,500 connections each in the middle of a 20 KB
/// review that alone was 45 MB. The body arrives in pieces instead and is
/// joined once (`routes::read_body`).
const HTTP1_READ_BUFFER: usize = 8 << 10;

pub(super) async fn serve(stream: TcpStream, shared: Arc<Shared>, registered: Registered) {
    let _ = stream.set_nodelay(true);
    let activity = registered.activity.clone();
    let limits = *shared.connections.limits();
    let unread = Unread::of(&stream);
    let stream = Watched::new(stream, activity.clone());
    let tls = tokio::select! {
        // The handshake before its limits: see `Activity::expired`.
        biased;
        accepted = shared.acceptor.accept(stream) => match accepted {
            Ok(tls) => tls,
            Err(error) => {
                match super::client_auth::refusal(&error) {
                    Some(reason) => {
                        tracing::debug!(%error, reason = reason.as_str(), "refused a client certificate");
                        shared.metrics.client_refused(reason);
                    }
                    None => tracing::debug!(%error, "TLS handshake failed"),
                }
                return;
            }
        },
        reason = activity.expired(&limits, unread) => {
            // The handshake timed out, or the connection was shed at the cap.
            tracing::debug!(reason = reason.as_str(), "closing a connection in its handshake");
            shared.metrics.connection_closed(reason);
            return;
        }
    };
    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
    activity.handshaken(h2);
    let io = TokioIo::new(tls);
    let handler = shared.clone();
    let tracked = activity.clone();
    let service = service_fn(move |request| handler.clone().handle(request, h2, tracked.clone()));
    let result = if h2 {
        // Boxed: an HTTP/2 connection's state is several KiB larger than an
        // HTTP/1 one's, and every connection task would be that size.
        let mut connection = Box::pin(
            http2::Builder::new(TokioExecutor::new())
                .timer(TokioTimer::new())
                .serve_connection(io, service),
        );
        tokio::select! {
            // The connection before its limits: see `Activity::expired`.
            biased;
            result = connection.as_mut() => result,
            _ = super::drained(shared.draining.clone()) => {
                // GOAWAY: streams already sent are answered, later ones
                // the client retries on another connection.
                connection.as_mut().graceful_shutdown();
                connection.await
            }
            reason = activity.expired(&limits, unread) => {
                shared.metrics.connection_closed(reason);
                tracing::debug!(reason = reason.as_str(), "closing an HTTP/2 connection");
                connection.as_mut().graceful_shutdown();
                tokio::time::timeout(GOAWAY_LINGER, connection)
                    .await
                    .unwrap_or(Ok(()))
            }
        }
    } else {
        // The header timeout is ours (`limits`): hyper's would also close
        // a kept-alive connection between requests.
        let connection = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(None)
            .max_buf_size(HTTP1_READ_BUFFER)
            .serve_connection(io, service);
        tokio::pin!(connection);
        tokio::select! {
            biased;
            result = connection.as_mut() => result,
            _ = super::drained(shared.draining.clone()) => {
                // Responses now carry `Connection: close`; a connection that
                // answers one ends by itself.
                tokio::select! {
                    result = connection.as_mut() => result,
                    _ = tokio::time::sleep(HTTP1_LINGER) => {
                        connection.as_mut().graceful_shutdown();
                        connection.await
                    }
                }
            }
            reason = activity.expired(&limits, unread) => {
                // Nothing in flight: closing loses no answer.
                shared.metrics.connection_closed(reason);
                tracing::debug!(reason = reason.as_str(), "closing an HTTP/1 connection");
                Ok(())
            }
        }
    };
    if let Err(error) = result {
        tracing::debug!(%error, "connection ended with an error");
    }
    drop(registered);
}

/// Counts a request in flight on its connection while its handler runs
/// (also when the client goes away and the handler is dropped).
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.request_finished();
    }
}

/// When a request began (the start of its review deadline), for the routes.
#[derive(Debug, Clone, Copy)]
pub struct Arrived(pub tokio::time::Instant);

impl Shared {
    async fn handle(
        self: Arc<Self>,
        mut request: Request<Incoming>,
        h2: bool,
        activity: Arc<Activity>,
    ) -> Result<Response<Body>, Infallible> {
        let arrived = activity.request_started();
        let _in_flight = InFlight(activity);
        request.extensions_mut().insert(Arrived(arrived));
        if let Some(response) = not_ready(&self.readiness, request.uri().path()) {
            return Ok(response);
        }
        let mut response = self.router.clone().oneshot(request).await?;
        if !h2 && *self.draining.borrow() {
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        Ok(response)
    }
}

/// The 503 of `/readyz` while a readiness gate is closed or the server is
/// stopping (the route itself knows only the admission service's state).
pub(super) fn not_ready(readiness: &super::ready::Readiness, path: &str) -> Option<Response<Body>> {
    if path != "/readyz" {
        return None;
    }
    let reason = readiness.waiting_for()?;
    let mut response = Response::new(Body::from(format!("not ready: {reason}\n")));
    *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    Some(response)
}
