//! The admission request as a guest sees it.

use std::borrow::Cow;

use serde::Deserialize;

use crate::object::Object;

/// `admission.k8s.io/v1` (and `v1beta1`) `AdmissionRequest`, parsed into
/// borrowed, typed fields. Fields no rule reads are skipped by the parser,
/// not materialised.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Request<'a> {
    #[serde(borrow, default)]
    pub uid: Cow<'a, str>,
    /// The kind of the object being admitted (for the `scale` subresource:
    /// `autoscaling/v1 Scale`).
    #[serde(borrow, default)]
    pub kind: GroupVersionKind<'a>,
    /// The resource as requested; for subresources it names the owner's
    /// resource (`deployments`) while `kind` is the subresource's.
    #[serde(borrow, default)]
    pub resource: GroupVersionResource<'a>,
    #[serde(borrow, default)]
    pub sub_resource: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub namespace: Option<Cow<'a, str>>,
    #[serde(default)]
    pub operation: Operation,
    #[serde(borrow, default)]
    pub object: Option<Object<'a>>,
    #[serde(borrow, default)]
    pub old_object: Option<Object<'a>>,
    #[serde(default)]
    pub dry_run: Option<bool>,
    /// Who made the request: rules exempt the cluster's own controllers.
    #[serde(borrow, default)]
    pub user_info: UserInfo<'a>,
}

/// `request.userInfo`: the authenticated user.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct UserInfo<'a> {
    #[serde(borrow, default)]
    pub username: Cow<'a, str>,
    #[serde(borrow, default, deserialize_with = "crate::object::null_as_default")]
    pub groups: Vec<Cow<'a, str>>,
}

impl<'a> Request<'a> {
    /// The object the request is about: `object`, or for DELETE `oldObject`.
    pub fn subject(&self) -> Option<&Object<'a>> {
        self.object.as_ref().or(self.old_object.as_ref())
    }

    /// Whether the request targets the `scale` subresource.
    pub fn is_scale(&self) -> bool {
        self.sub_resource.as_deref() == Some("scale")
    }
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
