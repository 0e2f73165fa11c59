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

/// How long, once draining, an HTTP/1 connection stays open for a request
/// its client may be sending right now (a client that just connected, or
/// one reusing a kept-alive connection). HTTP/1 cannot tell a client
/// "not processed, retry elsewhere"; closing under it would lose the review.
const HTTP1_LINGER: Duration = Duration::from_secs(1);

pub(super) async fn serve(stream: TcpStream, shared: Arc<Shared>) {
    let _ = stream.set_nodelay(true);
    let tls = match tokio::time::timeout(shared.header_read_timeout, shared.acceptor.accept(stream))
        .await
    {
        Ok(Ok(tls)) => tls,
        Ok(Err(error)) => {
            tracing::debug!(%error, "TLS handshake failed");
            return;
        }
        Err(_elapsed) => {
            tracing::debug!("TLS handshake timed out");
            return;
        }
    };
    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
    let io = TokioIo::new(tls);
    let handler = shared.clone();
    let service = service_fn(move |request| handler.clone().handle(request, h2));
    let result = if h2 {
        let connection = http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .serve_connection(io, service);
        tokio::pin!(connection);
        tokio::select! {
            result = connection.as_mut() => result,
            _ = super::drained(shared.draining.clone()) => {
                // GOAWAY: streams already sent are answered, later ones
                // the client retries on another connection.
                connection.as_mut().graceful_shutdown();
                connection.await
            }
        }
    } else {
        let connection = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(shared.header_read_timeout)
            .serve_connection(io, service);
        tokio::pin!(connection);
        tokio::select! {
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
        }
    };
    if let Err(error) = result {
        tracing::debug!(%error, "connection ended with an error");
    }
}

impl Shared {
    async fn handle(
        self: Arc<Self>,
        request: Request<Incoming>,
        h2: bool,
    ) -> Result<Response<Body>, Infallible> {
        if request.uri().path() == "/readyz"
            && let Some(reason) = self.readiness.waiting_for()
        {
            let mut response = Response::new(Body::from(format!("not ready: {reason}\n")));
            *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
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
