//! The incoming AdmissionReview, parsed once and borrowed.
//!
//! One serde_json pass over the body reads the envelope and records the
//! `request` member's members as raw slices; the routing fields are then read
//! from their (small) slices, while `object` and `oldObject` stay raw. So a
//! review that no policy matches is answered without building its objects,
//! and a matched one hands guests the request span as it arrived.

use std::borrow::Cow;
use std::ops::Range;

use serde::Deserialize;
use serde::de::Error as _;
use serde_json::Value;
use serde_json::value::RawValue;
use tollgate_sdk::{GroupVersionKind, Operation};

use crate::json::{CowStr, RawMembers, WS, offset_in, unquote};

mod shape;
mod strip;
pub use shape::MAX_DEPTH;
/// For the `review_parse` fuzz target.
#[doc(hidden)]
pub use shape::scan_agrees as shape_scan_agrees;
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
    pub object: Option<&'a RawValue>,
    pub old_object: Option<&'a RawValue>,
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
    object: Option<&'a RawValue>,
    old_object: Option<&'a RawValue>,
    /// The `request` member exactly as sent.
    request: &'a str,
    /// Its members, raw, in document order.
    members: Vec<(&'a RawValue, &'a RawValue)>,
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

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope<'a> {
    #[serde(borrow, default)]
    api_version: Option<CowStr<'a>>,
    #[serde(borrow, default)]
    kind: Option<CowStr<'a>>,
    // No `default`: a missing member is `None` anyway, and without it a
    // JSON array is not read as an envelope.
    #[serde(borrow)]
    request: Option<RawMembers<'a>>,
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
    /// Parses `body` in one pass over its bytes.
    pub fn parse(body: &'a [u8]) -> Result<Parsed<'a>, ReviewError> {
        let text = std::str::from_utf8(body).map_err(ReviewError::Utf8)?;
        let envelope: Envelope<'a> = serde_json::from_str(text).map_err(ReviewError::Json)?;
        let api_version = check_envelope(&envelope)?;
        let members = envelope.request.ok_or(ReviewError::MissingRequest)?.0;
        let mut fields: [Option<&'a RawValue>; FIELDS.len()] = [None; FIELDS.len()];
        let mut duplicate = None;
        for (key, value) in &members {
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
            Some(raw) => serde_json::from_str(raw.get()).map_err(ReviewError::InvalidUid)?,
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
            let shape =
                shape::check(request_span(text, &members)).map_err(|source| RequestError {
                    field: "request",
                    source,
                })?;
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
            object: object.filter(|o| o.get() != "null"),
            old_object: old_object.filter(|o| o.get() != "null"),
            request: request_span(text, &members),
            members,
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
    pub fn object(&self) -> Option<&'a RawValue> {
        self.object
    }

    /// `request.object` parsed, for applying and composing patches.
    pub fn object_value(&self) -> Option<Value> {
        serde_json::from_str(self.object?.get()).ok()
    }

    /// The request with `object` replaced (every other member byte for byte
    /// as sent), so that a policy evaluated after a repair sees the object
    /// as the policies before it left it.
    pub fn with_object(&self, object: &Value) -> String {
        let object = object.to_string();
        let mut out = String::with_capacity(self.request.len() + object.len());
        out.push('{');
        let mut replaced = false;
        for (i, (key, value)) in self.members.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(key.get());
            out.push(':');
            if !replaced && unquote(key).is_ok_and(|k| k == "object") {
                out.push_str(&object);
                replaced = true;
            } else {
                out.push_str(value.get());
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

/// One routing field read from its raw slice; `null` reads as absent.
fn field<'a, T: Deserialize<'a>>(
    name: &'static str,
    raw: Option<&'a RawValue>,
) -> Result<Option<T>, RequestError> {
    raw.map(|raw| serde_json::from_str::<Option<T>>(raw.get()))
        .transpose()
        .map(Option::flatten)
        .map_err(|source| RequestError {
            field: name,
            source,
        })
}

fn optional_str<'a>(
    name: &'static str,
    raw: Option<&'a RawValue>,
) -> Result<Option<Cow<'a, str>>, RequestError> {
    Ok(field::<CowStr<'a>>(name, raw)?.map(|s| s.0))
}

/// The text of the `request` object: from its first key back to the `{`,
/// from its last value on to the `}`. serde_json has checked the structure,
/// so only whitespace lies between them.
fn request_span<'a>(text: &'a str, members: &[(&'a RawValue, &'a RawValue)]) -> &'a str {
    let (Some((first, _)), Some((_, last))) = (members.first(), members.last()) else {
        // Unreachable: a request without members has no uid.
        return "{}";
    };
    let start = offset_in(text, first.get());
    let end = offset_in(text, last.get()) + last.get().len();
    let open = text[..start].trim_end_matches(WS).len() - 1;
    let close = end + (text[end..].len() - text[end..].trim_start_matches(WS).len());
    debug_assert_eq!(&text[open..=open], "{");
    debug_assert_eq!(&text[close..=close], "}");
    &text[open..=close]
}

fn check_envelope(envelope: &Envelope<'_>) -> Result<&'static str, ReviewError> {
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
mod tests;
