//! The incoming AdmissionReview, parsed borrowed and lazily.
//!
//! Only the envelope and the request's routing fields are decoded; `object`
//! and `oldObject` stay raw slices of the body, so a review that no policy
//! matches is answered without ever building its objects.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;
use tollgate_host::RequestMeta;
use tollgate_sdk::{GroupVersionKind, Operation};

/// The admission API versions Tollgate answers in.
pub const API_VERSIONS: [&str; 2] = ["admission.k8s.io/v1", "admission.k8s.io/v1beta1"];
const KIND: &str = "AdmissionReview";

/// A review whose envelope is valid, borrowing the request body.
#[derive(Debug)]
pub struct Review<'a> {
    /// The request's apiVersion, echoed in the answer.
    pub api_version: &'static str,
    pub uid: Cow<'a, str>,
    head: RequestHead<'a>,
}

/// Why a body cannot be answered with an AdmissionReview at all (HTTP 400).
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("body is not a JSON AdmissionReview: {0}")]
    Json(#[source] serde_json::Error),
    #[error("kind is {0:?}, expected \"AdmissionReview\"")]
    Kind(String),
    #[error("apiVersion is {0:?}, expected admission.k8s.io/v1 or admission.k8s.io/v1beta1")]
    ApiVersion(String),
    #[error("AdmissionReview has no request")]
    MissingRequest,
    #[error("AdmissionReview request has no uid")]
    MissingUid,
}

/// The outcome of parsing a body.
#[derive(Debug)]
pub enum Parsed<'a> {
    Review(Review<'a>),
    /// The envelope and uid are valid but the request's routing fields are
    /// not (say an unknown operation): answered as a denial that echoes the
    /// uid, since the API server is waiting for exactly this review.
    InvalidRequest {
        api_version: &'static str,
        uid: Cow<'a, str>,
        error: serde_json::Error,
    },
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope<'a, R> {
    #[serde(borrow, default)]
    api_version: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    kind: Option<Cow<'a, str>>,
    request: Option<R>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RequestHead<'a> {
    #[serde(borrow, default)]
    uid: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    kind: GroupVersionKind<'a>,
    #[serde(borrow, default)]
    sub_resource: Option<Cow<'a, str>>,
    operation: Operation,
    #[serde(borrow, default)]
    namespace: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    object: Option<&'a RawValue>,
    #[serde(borrow, default)]
    old_object: Option<&'a RawValue>,
}

/// Only what is needed to answer a review whose request is malformed.
#[derive(Debug, Deserialize)]
struct UidOnly<'a> {
    #[serde(borrow, default)]
    uid: Option<Cow<'a, str>>,
}

/// The raw `request` member, handed to guests when a policy matches.
#[derive(Deserialize)]
struct RawRequest<'a> {
    #[serde(borrow)]
    request: &'a RawValue,
}

impl<'a> Review<'a> {
    /// Parses `body` in one pass over the bytes.
    pub fn parse(body: &'a [u8]) -> Result<Parsed<'a>, ReviewError> {
        match serde_json::from_slice::<Envelope<'a, RequestHead<'a>>>(body) {
            Ok(envelope) => {
                let api_version = check_envelope(&envelope)?;
                let head = envelope.request.ok_or(ReviewError::MissingRequest)?;
                let uid = head.uid.clone().filter(|u| !u.is_empty());
                let uid = uid.ok_or(ReviewError::MissingUid)?;
                Ok(Parsed::Review(Review {
                    api_version,
                    uid,
                    head,
                }))
            }
            // Error path only: find out whether there is a uid to answer.
            Err(error) => {
                let lenient = serde_json::from_slice::<Envelope<'a, UidOnly<'a>>>(body)
                    .map_err(ReviewError::Json)?;
                let api_version = check_envelope(&lenient)?;
                let request = lenient.request.ok_or(ReviewError::MissingRequest)?;
                let uid = request.uid.filter(|u| !u.is_empty());
                let uid = uid.ok_or(ReviewError::MissingUid)?;
                Ok(Parsed::InvalidRequest {
                    api_version,
                    uid,
                    error,
                })
            }
        }
    }

    pub fn operation(&self) -> Operation {
        self.head.operation
    }

    /// What policy matching needs, borrowed.
    pub fn meta(&self) -> RequestMeta<'_> {
        let h = &self.head;
        RequestMeta {
            group: &h.kind.group,
            version: &h.kind.version,
            kind: &h.kind.kind,
            sub_resource: h.sub_resource.as_deref(),
            operation: h.operation,
            namespace: h.namespace.as_deref(),
            name: h.name.as_deref(),
            object: h.object,
            old_object: h.old_object,
        }
    }
}

/// The raw `request` member of a body that [`Review::parse`] accepted. A
/// second pass, paid only when some policy matched.
pub fn raw_request(body: &[u8]) -> Result<&RawValue, serde_json::Error> {
    serde_json::from_slice::<RawRequest<'_>>(body).map(|r| r.request)
}

fn check_envelope<R>(envelope: &Envelope<'_, R>) -> Result<&'static str, ReviewError> {
    let kind = envelope.kind.as_deref().unwrap_or_default();
    if kind != KIND {
        return Err(ReviewError::Kind(kind.to_owned()));
    }
    let api_version = envelope.api_version.as_deref().unwrap_or_default();
    API_VERSIONS
        .into_iter()
        .find(|v| *v == api_version)
        .ok_or_else(|| ReviewError::ApiVersion(api_version.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<Parsed<'_>, ReviewError> {
        Review::parse(body.as_bytes())
    }

    const GOOD: &str = r#"{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview",
        "request":{"uid":"u-1","kind":{"group":"apps","version":"v1","kind":"Deployment"},
        "operation":"DELETE","namespace":"kube-system","name":"x","object":null,
        "oldObject":{"metadata":{"name":"x"}},"subResource":"scale"}}"#;

    #[test]
    fn reads_routing_fields_and_keeps_objects_raw() {
        let Parsed::Review(review) = parse(GOOD).unwrap() else {
            panic!("expected a review")
        };
        assert_eq!(review.api_version, "admission.k8s.io/v1beta1");
        assert_eq!(review.uid, "u-1");
        assert_eq!(review.operation(), Operation::Delete);
        let meta = review.meta();
        assert_eq!(
            (meta.group, meta.version, meta.kind),
            ("apps", "v1", "Deployment")
        );
        assert_eq!(meta.sub_resource, Some("scale"));
        assert_eq!(meta.namespace, Some("kube-system"));
        assert!(meta.object.is_none(), "null object is absent");
        assert_eq!(
            meta.old_object.unwrap().get(),
            r#"{"metadata":{"name":"x"}}"#
        );
        let raw = raw_request(GOOD.as_bytes()).unwrap();
        assert!(raw.get().starts_with(r#"{"uid":"u-1""#));
    }

    #[test]
    fn rejects_what_is_not_an_admission_review() {
        for (body, expected) in [
            ("{", "not a JSON"),
            ("[]", "not a JSON"),
            (
                r#"{"apiVersion":"admission.k8s.io/v1","kind":"Pod"}"#,
                "kind is \"Pod\"",
            ),
            (
                r#"{"apiVersion":"v1","kind":"AdmissionReview"}"#,
                "apiVersion is \"v1\"",
            ),
            (
                r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#,
                "no request",
            ),
            (
                r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"operation":"CREATE"}}"#,
                "no uid",
            ),
            (
                r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"","operation":"CREATE"}}"#,
                "no uid",
            ),
        ] {
            let error = parse(body).unwrap_err().to_string();
            assert!(error.contains(expected), "{body}: {error}");
        }
    }

    #[test]
    fn a_malformed_request_with_a_uid_is_still_answerable() {
        let body = r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview",
            "request":{"uid":"u-2","operation":"EXPLODE"}}"#;
        match parse(body).unwrap() {
            Parsed::InvalidRequest {
                api_version,
                uid,
                error,
            } => {
                assert_eq!(api_version, "admission.k8s.io/v1");
                assert_eq!(uid, "u-2");
                assert!(error.to_string().contains("EXPLODE"));
            }
            other => panic!("expected an invalid request, got {other:?}"),
        }
    }
}
