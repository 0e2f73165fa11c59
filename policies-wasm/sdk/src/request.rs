//! The admission request as a rule sees it.

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::views::{Object, null_as_default};

/// `admission.k8s.io/v1` (and `v1beta1`) `AdmissionRequest`, with
/// `object` and `oldObject` parsed into the view `T` the rule declares
/// (see [`views`](crate::views)); the default is the superset [`Object`].
///
/// A rule takes `&Request<'_, MyView<'_>>`; the SDK builds it from the
/// request parsed once per evaluation, so rules that read the same view
/// share one parse of the object. The envelope fields are borrowed from the
/// request; the raw JSON of both objects stays reachable through
/// [`Request::raw_object`] and [`Request::raw_old_object`].
#[derive(Debug, Clone)]
pub struct Request<'a, T = Object<'a>> {
    pub uid: Cow<'a, str>,
    /// The kind of the object being admitted (for the `scale` subresource:
    /// `autoscaling/v1 Scale`).
    pub kind: GroupVersionKind<'a>,
    /// The resource as requested; for subresources it names the owner's
    /// resource (`deployments`) while `kind` is the subresource's.
    pub resource: GroupVersionResource<'a>,
    pub sub_resource: Option<Cow<'a, str>>,
    /// The kind the client asked for, when the API server converted the
    /// object to the version the webhook registered for.
    pub request_kind: Option<GroupVersionKind<'a>>,
    pub name: Option<Cow<'a, str>>,
    pub namespace: Option<Cow<'a, str>>,
    pub operation: Operation,
    /// `object` read as the view: `None` for DELETE (and CONNECT).
    pub object: Option<T>,
    /// `oldObject` read as the view: `Some` for UPDATE and DELETE.
    pub old_object: Option<T>,
    pub dry_run: Option<bool>,
    /// Who made the request: rules exempt the cluster's own controllers.
    pub user_info: UserInfo<'a>,
    source: Arc<Source<'a>>,
}

/// The request as sent, with `object` and `oldObject` read as `O`: the
/// view itself in one pass (the first view an evaluation asks for), or
/// `&RawValue` for the [`Envelope`].
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Whole<'a, O> {
    #[serde(borrow, default)]
    uid: Cow<'a, str>,
    #[serde(borrow, default)]
    kind: GroupVersionKind<'a>,
    #[serde(borrow, default)]
    resource: GroupVersionResource<'a>,
    #[serde(borrow, default)]
    sub_resource: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    request_kind: Option<GroupVersionKind<'a>>,
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    namespace: Option<Cow<'a, str>>,
    #[serde(default)]
    operation: Operation,
    #[serde(default = "none")]
    object: Option<O>,
    #[serde(default = "none")]
    old_object: Option<O>,
    #[serde(default)]
    dry_run: Option<bool>,
    #[serde(borrow, default)]
    user_info: UserInfo<'a>,
}

fn none<O>() -> Option<O> {
    None
}

/// The request with both objects left unparsed: read only when a second
/// view or the raw JSON is asked for.
type Envelope<'a> = Whole<'a, &'a RawValue>;

/// The request's bytes, and its envelope once someone needed it.
#[derive(Debug)]
pub(crate) struct Source<'a> {
    json: &'a [u8],
    envelope: OnceLock<Option<Envelope<'a>>>,
}

impl<'a> Source<'a> {
    pub(crate) fn new(json: &'a [u8]) -> Arc<Self> {
        Arc::new(Self {
            json,
            envelope: OnceLock::new(),
        })
    }

    /// The envelope; `None` if the request is not readable at all.
    fn envelope(&self) -> Option<&Envelope<'a>> {
        self.envelope
            .get_or_init(|| read_object(self.json).ok())
            .as_ref()
    }

    fn envelope_scanned(&self) -> bool {
        self.envelope.get().is_some()
    }

    /// The request read as `T`: in one pass unless the envelope is already
    /// at hand.
    pub(crate) fn view<T: Deserialize<'a>>(
        self: &Arc<Self>,
    ) -> Result<Request<'a, T>, RequestError> {
        if !self.envelope_scanned() {
            match read_object::<Whole<'a, T>>(self.json) {
                Ok(whole) => return Ok(Request::from_parts(whole, self.clone())),
                // Tell an unreadable request from an object the view does
                // not fit (the error path only).
                Err(e) if self.envelope().is_none() => return Err(RequestError::Envelope(e)),
                Err(_) => {}
            }
        }
        match self.envelope() {
            Some(envelope) => Ok(Request::from_envelope(envelope, self.clone())?),
            None => Err(RequestError::Envelope(
                read_object::<Envelope<'a>>(self.json).expect_err("the envelope did not read"),
            )),
        }
    }
}

/// serde reads a struct from an array too; a request is an object.
fn read_object<'a, D: Deserialize<'a>>(json: &'a [u8]) -> Result<D, serde_json::Error> {
    if json.trim_ascii_start().first() == Some(&b'[') {
        return Err(<serde_json::Error as serde::de::Error>::custom(
            "expected a JSON object",
        ));
    }
    serde_json::from_slice(json)
}

/// `request.object` or `request.oldObject` could not be read as the view.
#[derive(Debug, thiserror::Error)]
#[error("cannot read request.{field} as {view}: {error}")]
pub struct ViewError {
    /// `object` or `oldObject`.
    pub field: &'static str,
    /// The view's type name.
    pub view: &'static str,
    pub error: serde_json::Error,
}

/// A request that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("cannot read the admission request: {0}")]
    Envelope(serde_json::Error),
    #[error(transparent)]
    View(#[from] ViewError),
}

impl<'a, T> Request<'a, T> {
    fn from_parts(whole: Whole<'a, T>, source: Arc<Source<'a>>) -> Self {
        Request {
            uid: whole.uid,
            kind: whole.kind,
            resource: whole.resource,
            sub_resource: whole.sub_resource,
            request_kind: whole.request_kind,
            name: whole.name,
            namespace: whole.namespace,
            operation: whole.operation,
            object: whole.object,
            old_object: whole.old_object,
            dry_run: whole.dry_run,
            user_info: whole.user_info,
            source,
        }
    }
}

impl<'a, T: Deserialize<'a>> Request<'a, T> {
    /// The request with both objects read as `T` from the envelope's raw
    /// JSON.
    fn from_envelope(envelope: &Envelope<'a>, source: Arc<Source<'a>>) -> Result<Self, ViewError> {
        let read = |field: &'static str, raw: Option<&'a RawValue>| {
            raw.map(|raw| {
                serde_json::from_str(raw.get()).map_err(|error| ViewError {
                    field,
                    view: std::any::type_name::<T>(),
                    error,
                })
            })
            .transpose()
        };
        let whole = Whole {
            uid: envelope.uid.clone(),
            kind: envelope.kind.clone(),
            resource: envelope.resource.clone(),
            sub_resource: envelope.sub_resource.clone(),
            request_kind: envelope.request_kind.clone(),
            name: envelope.name.clone(),
            namespace: envelope.namespace.clone(),
            operation: envelope.operation,
            object: read("object", envelope.object)?,
            old_object: read("oldObject", envelope.old_object)?,
            dry_run: envelope.dry_run,
            user_info: envelope.user_info.clone(),
        };
        Ok(Self::from_parts(whole, source))
    }

    /// Reads a request (the `request` member of an AdmissionReview) on its
    /// own, as tests and tools do; rules get theirs from the SDK.
    pub fn parse(json: &'a [u8]) -> Result<Self, RequestError> {
        Source::new(json).view()
    }
}

impl<'a, T> Request<'a, T> {
    /// `object` as the API server sent it (managedFields and the
    /// last-applied annotation stripped unless the policy sets
    /// `bulkyFields: true`); `None` when absent or `null`.
    pub fn raw_object(&self) -> Option<&'a RawValue> {
        self.source.envelope().and_then(|e| e.object)
    }

    /// `oldObject` as the API server sent it.
    pub fn raw_old_object(&self) -> Option<&'a RawValue> {
        self.source.envelope().and_then(|e| e.old_object)
    }

    /// The object the request is about: `object`, or for DELETE `oldObject`.
    pub fn subject(&self) -> Option<&T> {
        self.object.as_ref().or(self.old_object.as_ref())
    }

    /// Whether the request targets the `scale` subresource.
    pub fn is_scale(&self) -> bool {
        self.sub_resource.as_deref() == Some("scale")
    }
}

/// `request.userInfo`: the authenticated user.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct UserInfo<'a> {
    #[serde(borrow, default)]
    pub username: Cow<'a, str>,
    #[serde(borrow, default, deserialize_with = "null_as_default")]
    pub groups: Vec<Cow<'a, str>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct GroupVersionKind<'a> {
    #[serde(borrow, default)]
    pub group: Cow<'a, str>,
    #[serde(borrow, default)]
    pub version: Cow<'a, str>,
    #[serde(borrow, default)]
    pub kind: Cow<'a, str>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct GroupVersionResource<'a> {
    #[serde(borrow, default)]
    pub group: Cow<'a, str>,
    #[serde(borrow, default)]
    pub version: Cow<'a, str>,
    #[serde(borrow, default)]
    pub resource: Cow<'a, str>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Operation {
    #[default]
    Create,
    Update,
    Delete,
    Connect,
}
