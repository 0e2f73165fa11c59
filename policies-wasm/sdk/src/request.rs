//! The admission request as a rule sees it.

use std::borrow::Cow;

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
    raw_object: Option<&'a RawValue>,
    raw_old_object: Option<&'a RawValue>,
}

/// The request with `object` and `oldObject` left unparsed: what the SDK
/// reads once per evaluation before any view.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Envelope<'a> {
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
    #[serde(borrow, default)]
    object: Option<&'a RawValue>,
    #[serde(borrow, default)]
    old_object: Option<&'a RawValue>,
    #[serde(default)]
    dry_run: Option<bool>,
    #[serde(borrow, default)]
    user_info: UserInfo<'a>,
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

impl<'a> Envelope<'a> {
    pub(crate) fn parse(json: &'a [u8]) -> Result<Self, RequestError> {
        // serde reads a struct from an array too; a request is an object.
        if json.trim_ascii_start().first() == Some(&b'[') {
            let e = <serde_json::Error as serde::de::Error>::custom("expected a JSON object");
            return Err(RequestError::Envelope(e));
        }
        serde_json::from_slice(json).map_err(RequestError::Envelope)
    }

    /// The request with both objects read as `T`.
    pub(crate) fn view<T: Deserialize<'a>>(&self) -> Result<Request<'a, T>, ViewError> {
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
        Ok(Request {
            uid: self.uid.clone(),
            kind: self.kind.clone(),
            resource: self.resource.clone(),
            sub_resource: self.sub_resource.clone(),
            request_kind: self.request_kind.clone(),
            name: self.name.clone(),
            namespace: self.namespace.clone(),
            operation: self.operation,
            object: read("object", self.object)?,
            old_object: read("oldObject", self.old_object)?,
            dry_run: self.dry_run,
            user_info: self.user_info.clone(),
            raw_object: self.object,
            raw_old_object: self.old_object,
        })
    }
}

impl<'a, T: Deserialize<'a>> Request<'a, T> {
    /// Reads a request (the `request` member of an AdmissionReview) on its
    /// own, as tests and tools do; rules get theirs from the SDK.
    pub fn parse(json: &'a [u8]) -> Result<Self, RequestError> {
        Ok(Envelope::parse(json)?.view()?)
    }
}

impl<'a, T> Request<'a, T> {
    /// `object` as the API server sent it (managedFields and the
    /// last-applied annotation stripped unless the policy sets
    /// `bulkyFields: true`); `None` when absent or `null`.
    pub fn raw_object(&self) -> Option<&'a RawValue> {
        self.raw_object
    }

    /// `oldObject` as the API server sent it.
    pub fn raw_old_object(&self) -> Option<&'a RawValue> {
        self.raw_old_object
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
