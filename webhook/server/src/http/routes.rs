//! The HTTP routes.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{StatusCode, Version, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use tollgate_host::Endpoint;

use crate::admission::budget::review_budget;
use crate::admission::{Admission, Reply};
use crate::http::Arrived;
use crate::metrics::{Metrics, RequestRejected};

/// Per-request limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_body_bytes: usize,
    /// Review budget when `?timeout=` is absent.
    pub default_timeout: Duration,
    /// The most a body may take to arrive (within the review's budget).
    pub body_read_timeout: Duration,
}

#[derive(Clone)]
struct AppState {
    admission: Arc<Admission>,
    metrics: Arc<Metrics>,
    limits: Limits,
}

pub fn router(admission: Arc<Admission>, metrics: Arc<Metrics>, limits: Limits) -> Router {
    probe_routes()
        .route("/validate", post(validate))
        .route("/mutate", post(mutate))
        .with_state(AppState {
            admission,
            metrics,
            limits,
        })
}

/// `/healthz`, `/readyz` and `/metrics` alone, for `--probe-listen`.
pub fn probes(admission: Arc<Admission>, metrics: Arc<Metrics>, limits: Limits) -> Router {
    probe_routes().with_state(AppState {
        admission,
        metrics,
        limits,
    })
}

fn probe_routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
}

async fn validate(State(state): State<AppState>, request: Request) -> Response {
    admit(&state, Endpoint::Validate, request).await
}

async fn mutate(State(state): State<AppState>, request: Request) -> Response {
    admit(&state, Endpoint::Mutate, request).await
}

/// The most an HTTP/1 client's oversize body is read (and discarded) before
/// answering 413; see [`drain`].
const DRAIN_LIMIT: u64 = 64 << 20;

/// Reads the body within the review's own deadline and size limit, then
/// hands it to the admission service.
async fn admit(state: &AppState, endpoint: Endpoint, request: Request) -> Response {
    let budget = match review_budget(request.uri().query(), state.limits.default_timeout) {
        Ok(budget) => budget,
        Err(error) => return refuse(state, endpoint, StatusCode::BAD_REQUEST, &error.to_string()),
    };
    // The budget runs from the request's first byte (the API server's
    // clock started before it sent): time spent waiting for a busy
    // runtime before this handler ran is not added on top.
    let arrived = request
        .extensions()
        .get::<Arrived>()
        .map_or_else(tokio::time::Instant::now, |a| a.0);
    let deadline = arrived + budget;
    let body_deadline = deadline.min(arrived + state.limits.body_read_timeout);
    let limit = state.limits.max_body_bytes;
    let http1 = request.version() < Version::HTTP_2;
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let mut body = request.into_body();
    let read = tokio::time::timeout_at(body_deadline, read_body(&mut body, limit, declared)).await;
    let body = match read {
        Ok(Ok(body)) => body,
        Ok(Err(BodyError::TooLarge)) => {
            if http1 && declared.is_none_or(|n| n <= DRAIN_LIMIT) {
                let _ = tokio::time::timeout_at(deadline, drain(&mut body)).await;
            }
            let reason = format!("request body exceeds the limit of {limit} bytes");
            state
                .metrics
                .request_rejected(RequestRejected::BodyTooLarge);
            return refuse(state, endpoint, StatusCode::PAYLOAD_TOO_LARGE, &reason);
        }
        Ok(Err(BodyError::Read(error))) => {
            let reason = format!("cannot read the request body: {error}");
            return refuse(state, endpoint, StatusCode::BAD_REQUEST, &reason);
        }
        Err(_elapsed) => {
            let reason = if body_deadline < deadline {
                format!(
                    "the request body did not arrive within the body read timeout of {:?}",
                    state.limits.body_read_timeout
                )
            } else {
                "the request body did not arrive before the review deadline".to_owned()
            };
            state.metrics.request_rejected(RequestRejected::BodyTimeout);
            return refuse(state, endpoint, StatusCode::REQUEST_TIMEOUT, &reason);
        }
    };
    match state.admission.review(endpoint, deadline, body).await {
        Reply::Review(json) => ([(header::CONTENT_TYPE, "application/json")], json).into_response(),
        Reply::BadRequest(reason) => text(StatusCode::BAD_REQUEST, reason),
    }
}

enum BodyError {
    TooLarge,
    Read(axum::Error),
}

/// The whole body, or `TooLarge` as soon as it (or its declared length)
/// exceeds `limit`. Chunks are joined once at the end (a single chunk is
/// not copied).
async fn read_body(
    body: &mut Body,
    limit: usize,
    declared: Option<u64>,
) -> Result<Bytes, BodyError> {
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge);
    }
    let mut chunks: Vec<Bytes> = Vec::new();
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.map_err(BodyError::Read)?.into_data() else {
            continue; // trailers
        };
        total += data.len();
        if total > limit {
            return Err(BodyError::TooLarge);
        }
        chunks.push(data);
    }
    Ok(match chunks.len() {
        0 => Bytes::new(),
        1 => chunks.pop().expect("one chunk"),
        _ => {
            let mut joined = BytesMut::with_capacity(total);
            chunks.iter().for_each(|c| joined.extend_from_slice(c));
            joined.freeze()
        }
    })
}

/// Reads and discards the rest of a body, up to [`DRAIN_LIMIT`]. An HTTP/1
/// client is still writing when the 413 comes back; if the server closed
/// with its body unread the client would see a connection reset instead of
/// the answer.
async fn drain(body: &mut Body) {
    let mut total = 0u64;
    while let Some(Ok(frame)) = body.frame().await {
        total += frame.data_ref().map_or(0, |d| d.len() as u64);
        if total > DRAIN_LIMIT {
            return;
        }
    }
}

fn refuse(state: &AppState, endpoint: Endpoint, status: StatusCode, reason: &str) -> Response {
    state.metrics.invalid(endpoint);
    tracing::warn!(
        endpoint = endpoint.as_str(),
        status = status.as_u16(),
        reason,
        "refused a request"
    );
    text(status, reason.to_owned())
}

fn text(status: StatusCode, mut line: String) -> Response {
    line.push('\n');
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        line,
    )
        .into_response()
}

async fn healthz() -> Response {
    text(StatusCode::OK, "ok".into())
}

/// A stale cache keeps the server ready: every replica reads the same API
/// server, so taking them out of the endpoints would only turn the context
/// policies' clear failure verdicts (and every other policy's verdicts) into
/// the API server's "no endpoints" error. The body says which caches are
/// stale.
async fn readyz(State(state): State<AppState>) -> Response {
    if state.admission.is_ready() {
        let stale = state.admission.stale_context();
        if stale.is_empty() {
            text(StatusCode::OK, "ready".into())
        } else {
            let lines = stale.join("\n  ");
            text(
                StatusCode::OK,
                format!("ready; lookups of stale caches fail:\n  {lines}"),
            )
        }
    } else {
        text(
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: the cluster context has not synced".into(),
        )
    }
}

async fn metrics_text(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
        .into_response()
}
