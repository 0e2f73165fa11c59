//! The floor: the cheapest possible admission webhook on this machine, the
//! yardstick of every speed figure.
//!
//! It does what any webhook must and nothing more: TLS (rustls through
//! axum-server, the stack Tollgate serves with), HTTP/1.1, the whole review
//! parsed into a `serde_json::Value` (a policy has to look at the object),
//! and `allowed: true` with the uid echoed. No webhook that decides anything
//! can be faster on the same machine, so Tollgate's figures are stated as
//! ratios to the floor's, measured in the same run on the same body.

use axum::Router;
use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum_server::tls_rustls::RustlsConfig;
use std::borrow::Cow;

use serde_json::{Value, json};

use crate::cli::FloorArgs;

/// The largest review accepted, Tollgate's default `--max-body-bytes`.
const MAX_BODY: usize = 16 << 20;

/// Serves until killed, on a multi-threaded runtime with one worker per
/// core (as `tollgate serve`).
pub fn serve(args: &FloorArgs) -> anyhow::Result<()> {
    // Bound here, so that with port 0 the line below says which port it
    // got (the bench reads it: no "free port" race).
    let listener = std::net::TcpListener::bind(args.listen)
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", args.listen))?;
    serve_on(listener, args)
}

/// [`serve`] on a socket already bound (the tests bind port 0 themselves).
pub fn serve_on(listener: std::net::TcpListener, args: &FloorArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let tls = RustlsConfig::from_pem_file(&args.cert, &args.key)
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot use certificate {} with key {}: {e}",
                    args.cert.display(),
                    args.key.display()
                )
            })?;
        let route = if args.uid_only {
            post(echo)
        } else {
            post(review)
        };
        let app = Router::new()
            .route("/validate", route.clone())
            .route("/mutate", route)
            .layer(DefaultBodyLimit::max(MAX_BODY));
        listener.set_nonblocking(true)?;
        println!("floor: listening on https://{}", listener.local_addr()?);
        axum_server::from_tcp_rustls(listener, tls)
            .serve(app.into_make_service())
            .await
            .map_err(|e| anyhow::anyhow!("cannot serve on {}: {e}", args.listen))
    })
}

async fn review(body: Bytes) -> Response {
    respond(answer(&body))
}

async fn echo(body: Bytes) -> Response {
    respond(echo_uid(&body))
}

fn respond(answer: Result<String, String>) -> Response {
    match answer {
        Ok(json) => ([(header::CONTENT_TYPE, "application/json")], json).into_response(),
        Err(reason) => (StatusCode::BAD_REQUEST, reason).into_response(),
    }
}

/// The least any webhook must read: `request.uid` (and `apiVersion`),
/// every other member skipped by serde_json without being built.
fn echo_uid(body: &[u8]) -> Result<String, String> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Envelope<'a> {
        #[serde(borrow)]
        api_version: Option<Cow<'a, str>>,
        #[serde(borrow)]
        request: Request<'a>,
    }
    #[derive(serde::Deserialize)]
    struct Request<'a> {
        #[serde(borrow)]
        uid: Cow<'a, str>,
    }
    let review: Envelope<'_> = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    Ok(allowed(review.api_version.as_deref(), &review.request.uid))
}

/// The floor's whole judgement: parse everything, allow, echo the uid.
fn answer(body: &[u8]) -> Result<String, String> {
    let review: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let uid = review["request"]["uid"].as_str().unwrap_or_default();
    Ok(allowed(review["apiVersion"].as_str(), uid))
}

/// The answer both floors give: allowed, the uid and apiVersion echoed.
fn allowed(api_version: Option<&str>, uid: &str) -> String {
    json!({
        "apiVersion": api_version.unwrap_or("admission.k8s.io/v1"),
        "kind": "AdmissionReview",
        "response": {"uid": uid, "allowed": true},
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_and_echoes_uid_and_version() {
        let body = br#"{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"u-1","object":{"kind":"Pod"}}}"#;
        let out: Value = serde_json::from_str(&answer(body).unwrap()).unwrap();
        assert_eq!(
            out,
            json!({"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview",
                   "response": {"uid": "u-1", "allowed": true}})
        );
    }

    #[test]
    fn uid_only_reads_the_request_uid_and_nothing_else() {
        let body = br#"{"apiVersion":"admission.k8s.io/v1beta1","request":{"object":{"metadata":{"uid":"o-1"}},"uid":"u-2"}}"#;
        let out: Value = serde_json::from_str(&echo_uid(body).unwrap()).unwrap();
        assert_eq!(
            out,
            json!({"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview",
                   "response": {"uid": "u-2", "allowed": true}})
        );
        assert!(
            echo_uid(b"{}")
                .unwrap_err()
                .contains("missing field `request`")
        );
        assert!(echo_uid(br#"{"request":{"uid":"u-2"#).is_err());
    }

    #[test]
    fn bad_json_is_refused() {
        assert!(answer(b"{\"request\":").is_err());
    }
}
