//! Ready-made typed views of the admitted object.
//!
//! A rule names the view it reads as the `T` of [`Request<'a, T>`](crate::Request);
//! the SDK parses `request.object` and `request.oldObject` into it, once per
//! evaluation however many rules of the module read the same view. A view
//! is any `T: Deserialize<'a>`:
//!
//! - the borrowed views here: [`Pod`], [`Workload`] (anything with a pod
//!   template), [`NetworkPolicy`], and the superset [`Object`] the Calico pack
//!   reads (the default). Strings borrow from the request, fields a view does
//!   not declare are skipped without being materialised, and `null` lists and
//!   maps read as empty;
//! - a struct of your own with `#[derive(Deserialize)]` holding exactly the
//!   fields the rule reads — the fastest choice;
//! - `serde_json::Value` for dynamic access, `&'a RawValue` for none (see
//!   also [`Request::raw_object`](crate::Request::raw_object)),
//!   `serde::de::IgnoredAny` for a rule that reads only the request's envelope;
//! - k8s-openapi's complete types (`k8s_openapi::api::core::v1::Pod`), re-exported
//!   with the `k8s-openapi` feature: every field, owned, at the cost of
//!   allocating all of them.

mod meta;
mod network_policy;
mod object;
mod object_defaults;
mod pod;
mod workload;

pub(crate) use meta::null_as_default;
pub use meta::{
    IntOrString, LabelSelector, LabelSelectorRequirement, ObjectMeta, OwnerReference, Str, StrMap,
};
pub use network_policy::{
    EgressRule, IngressRule, IpBlock, NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort,
    NetworkPolicySpec,
};
pub use object::{
    Condition, ContainerStatus, NodeImage, Object, RollingUpdate, Spec, Status, Strategy,
};
pub use object_defaults::DEFAULT_DEPLOYMENT_STRATEGY;
pub use pod::{
    Capabilities, Container, ContainerAt, ContainerField, EnvVar, EnvVarSource, HostPathVolume,
    KeyRef, Pod, PodSecurityContext, PodSpec, PodTemplate, SecurityContext, Volume,
};
pub use workload::{JobTemplate, JobTemplateSpec, Workload, WorkloadSpec};
