//! The incoming AdmissionReview, parsed once and borrowed.
//!
//! One pass over the body ([`scan`]) checks it as JSON, reads the envelope,
//! records the `request` member's members as raw slices and judges the
//! request's shape; the routing fields are then read from their (small)
//! slices, while `object` and `oldObject` stay raw. So a review that no
//! policy matches is answered without building its objects, and a matched
//! one hands guests the request span as it arrived.

use std::borrow::Cow;
use std::ops::Range;

use serde::Deserialize;
use serde::de::Error as _;
use serde_json::Value;
use tollgate_sdk::{GroupVersionKind, Operation};

use crate::json::{CowStr, unquote};

mod envelope;
mod scan;
mod shape;
mod strip;
use envelope::Body;
pub use shape::MAX_DEPTH;
pub(crate) use shape::Shape;
pub(crate) use strip::Strip;

/// The admission API versions Tollgate answers in.
pub const API_VERSIONS: [&str; 2] = ["admission.k8s.io/v1", "admission.k8s.io/v1beta1"];
const KIND: &str = "AdmissionReview";

/// What matching ([`crate::matcher`]) needs from a request, borrowed from
/// the parsed review ([`Review::meta`]). The objects stay raw: labels are
/// only parsed when some policy's match has a label selector.
#[derive(Debug, Clone, Copy)]
pub struct RequestMeta<'a> {
    pub group: &'a str,
    pub version: &'a str,
    pub kind: &'a str,
    pub sub_resource: Option<&'a str>,
    pub operation: Operation,
    pub namespace: Option<&'a str>,
    pub name: Option<&'a str>,
    /// `object` and `oldObject`, raw JSON; `None` when absent or `null`.
    pub object: Option<&'a str>,
    pub old_object: Option<&'a str>,
    /// No string in the request has a `\u` or `\/` escape, so a plain-text
    /// search of the objects finds every text they hold (found by the shape
    /// check; `false` when not known).
    pub plain_text: bool,
}

/// A review whose envelope and request are valid, borrowing the body.
#[derive(Debug)]
pub struct Review<'a> {
    /// The request's apiVersion, echoed in the answer.
    pub api_version: &'static str,
    pub uid: Cow<'a, str>,
    kind: GroupVersionKind<'a>,
    sub_resource: Option<Cow<'a, str>>,
    operation: Operation,
    namespace: Option<Cow<'a, str>>,
    name: Option<Cow<'a, str>>,
    object: Option<&'a str>,
    old_object: Option<&'a str>,
    /// The `request` member exactly as sent.
    request: &'a str,
    /// Its members, raw (the key with its quotes), in document order.
    members: Vec<(&'a str, &'a str)>,
    /// Where the guests' stripped input cuts `request` (found by the shape
    /// check, which reads it anyway).
    strip: Vec<Range<usize>>,
    /// See [`RequestMeta::plain_text`].
    plain_text: bool,
}

/// Why a body cannot be answered with an AdmissionReview at all (HTTP 400).
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("body is not a JSON AdmissionReview: invalid UTF-8 after byte {}", .0.valid_up_to())]
    Utf8(#[source] std::str::Utf8Error),
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
    #[error("AdmissionReview request uid is not a string: {0}")]
    InvalidUid(#[source] serde_json::Error),
}

/// A request member that cannot be used (say an unknown operation).
#[derive(Debug, thiserror::Error)]
#[error("{field}: {source}")]
pub struct RequestError {
    pub field: &'static str,
    #[source]
    pub source: serde_json::Error,
}

/// The outcome of parsing a body.
// One per request, matched at once and kept beside its body: a box would
// add an allocation to every review for no memory saved.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Parsed<'a> {
    Review(Review<'a>),
    /// The envelope and uid are valid but a routing field is not: answered
    /// as a denial that echoes the uid, since the API server is waiting for
    /// exactly this review.
    InvalidRequest {
        api_version: &'static str,
        uid: Cow<'a, str>,
        error: RequestError,
    },
}

/// The request members Tollgate reads, in the order [`Review::parse`] keeps
/// them; any other member is only carried along.
const FIELDS: [&str; 8] = [
    "uid",
    "kind",
    "subResource",
    "operation",
    "namespace",
    "name",
    "object",
    "oldObject",
];

impl<'a> Review<'a> {
    /// Parses `body`: std's UTF-8 check, then one pass over the text (and
    /// serde's reading only for a body that pass leaves, see [`scan`]).
    pub fn parse(body: &'a [u8]) -> Result<Parsed<'a>, ReviewError> {
        let text = std::str::from_utf8(body).map_err(ReviewError::Utf8)?;
        let body = read(text)?;
        let api_version = check_envelope(body.kind.as_deref(), body.api_version.as_deref())?;
        let request = body.request.ok_or(ReviewError::MissingRequest)?;
        let mut fields: [Option<&'a str>; FIELDS.len()] = [None; FIELDS.len()];
        let mut duplicate = None;
        for &(key, value) in &request.members {
            let key = unquote(key).map_err(ReviewError::Json)?;
            if let Some(i) = FIELDS.iter().position(|f| *f == key)
                && fields[i].replace(value).is_some()
            {
                duplicate.get_or_insert(FIELDS[i]);
            }
        }
        let [
            uid,
            kind,
            sub_resource,
            operation,
            namespace,
            name,
            object,
            old_object,
        ] = fields;
        let uid: Option<CowStr<'a>> = match uid {
            Some(raw) => serde_json::from_str(raw).map_err(ReviewError::InvalidUid)?,
            None => None,
        };
        let uid = uid.map(|u| u.0).filter(|u| !u.is_empty());
        let uid = uid.ok_or(ReviewError::MissingUid)?;
        let head = (|| {
            if let Some(field) = duplicate {
                return Err(RequestError {
                    field,
                    source: serde_json::Error::duplicate_field(field),
                });
            }
            let shape = match request.shape {
                Some(shape) => shape,
                None => check_shape(request.text).map_err(|source| RequestError {
                    field: "request",
                    source,
                })?,
            };
            let operation = operation.ok_or_else(|| RequestError {
                field: "operation",
                source: serde_json::Error::missing_field("operation"),
            })?;
            Ok((
                shape,
                field::<GroupVersionKind<'a>>("kind", kind)?.unwrap_or_default(),
                optional_str("subResource", sub_resource)?,
                field::<Operation>("operation", Some(operation))?.unwrap_or_default(),
                optional_str("namespace", namespace)?,
                optional_str("name", name)?,
            ))
        })();
        let (shape, kind, sub_resource, operation, namespace, name) = match head {
            Ok(head) => head,
            Err(error) => {
                return Ok(Parsed::InvalidRequest {
                    api_version,
                    uid,
                    error,
                });
            }
        };
        Ok(Parsed::Review(Review {
            api_version,
            uid,
            kind,
            sub_resource,
            operation,
            namespace,
            name,
            object: object.filter(|o| *o != "null"),
            old_object: old_object.filter(|o| *o != "null"),
            request: request.text,
            members: request.members,
            strip: shape.cuts,
            plain_text: shape.plain_text,
        }))
    }

    pub fn operation(&self) -> Operation {
        self.operation
    }

    /// What policy matching needs, borrowed.
    pub fn meta(&self) -> RequestMeta<'_> {
        RequestMeta {
            group: &self.kind.group,
            version: &self.kind.version,
            kind: &self.kind.kind,
            sub_resource: self.sub_resource.as_deref(),
            operation: self.operation,
            namespace: self.namespace.as_deref(),
            name: self.name.as_deref(),
            object: self.object,
            old_object: self.old_object,
            plain_text: self.plain_text,
        }
    }

    /// Where the guests' stripped input cuts [`Self::request`].
    pub(crate) fn strip_cuts(&self) -> &[Range<usize>] {
        &self.strip
    }

    /// The `request` member exactly as sent (what guests get, stripped of
    /// bulky fields unless a policy asks for them).
    pub fn request(&self) -> &'a str {
        self.request
    }

    /// `request.object`, raw; `None` when absent or `null` (DELETE).
    pub fn object(&self) -> Option<&'a str> {
        self.object
    }

    /// `request.object` parsed, for applying and composing patches.
    pub fn object_value(&self) -> Option<Value> {
        serde_json::from_str(self.object?).ok()
    }

    /// The request with `object` replaced (every other member byte for byte
    /// as sent), so that a policy evaluated after a repair sees the object
    /// as the policies before it left it.
    pub fn with_object(&self, object: &Value) -> String {
        let object = object.to_string();
        let mut out = String::with_capacity(self.request.len() + object.len());
        out.push('{');
        let mut replaced = false;
        for (i, &(key, value)) in self.members.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(key);
            out.push(':');
            if !replaced && unquote(key).is_ok_and(|k| k == "object") {
                out.push_str(&object);
                replaced = true;
            } else {
                out.push_str(value);
            }
        }
        if !replaced {
            if !self.members.is_empty() {
                out.push(',');
            }
            out.push_str(r#""object":"#);
            out.push_str(&object);
        }
        out.push('}');
        out
    }
}

/// The body read down to the request's members: in one pass ([`scan`])
/// unless it holds something only serde decides ([`envelope::by_serde`]).
fn read(text: &str) -> Result<Body<'_>, ReviewError> {
    match scan::body(text) {
        Some(body) => Ok(body),
        None => envelope::by_serde(text),
    }
}

/// The shape of a request serde read (the raw JSON of the review's
/// `request` member): by the scan, or by serde's walk when the scan does
/// not vouch for it.
fn check_shape(request: &str) -> Result<Shape, serde_json::Error> {
    match scan::request(request) {
        Some(shape) => Ok(shape),
        None => shape::by_serde(request),
    }
}

/// For the `review_parse` fuzz target: whether the one pass agrees with
/// serde on `text`, i.e. whatever it vouches for, serde reads as the same
/// body with the same shape.
#[doc(hidden)]
pub fn one_pass_agrees(text: &str) -> bool {
    let Some(fast) = scan::body(text) else {
        return true;
    };
    let Ok(mut slow) = envelope::by_serde(text) else {
        return false;
    };
    if let Some(request) = &mut slow.request {
        match check_shape(request.text) {
            Ok(shape) => request.shape = Some(shape),
            Err(_) => return false,
        }
    }
    fast == slow
}

/// For the `review_parse` fuzz target: whether the request scan agrees
/// with serde's walk on `request` (valid JSON), i.e. what the scan accepts,
/// the walk accepts with the same cuts.
#[doc(hidden)]
pub fn shape_scan_agrees(request: &str) -> bool {
    scan::request(request)
        .is_none_or(|fast| shape::by_serde(request).is_ok_and(|slow| slow.cuts == fast.cuts))
}

/// One routing field read from its raw slice; `null` reads as absent.
fn field<'a, T: Deserialize<'a>>(
    name: &'static str,
    raw: Option<&'a str>,
) -> Result<Option<T>, RequestError> {
    raw.map(serde_json::from_str::<Option<T>>)
        .transpose()
        .map(Option::flatten)
        .map_err(|source| RequestError {
            field: name,
            source,
        })
}

fn optional_str<'a>(
    name: &'static str,
    raw: Option<&'a str>,
) -> Result<Option<Cow<'a, str>>, RequestError> {
    Ok(field::<CowStr<'a>>(name, raw)?.map(|s| s.0))
}

fn check_envelope(
    kind: Option<&str>,
    api_version: Option<&str>,
) -> Result<&'static str, ReviewError> {
    let kind = kind.unwrap_or_default();
    if kind != KIND {
        return Err(ReviewError::Kind(kind.to_owned()));
    }
    let api_version = api_version.unwrap_or_default();
    API_VERSIONS
        .into_iter()
        .find(|v| *v == api_version)
        .ok_or_else(|| ReviewError::ApiVersion(api_version.to_owned()))
}

#[cfg(test)]
mod tests;
