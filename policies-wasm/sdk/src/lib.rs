//! The Tollgate policy SDK: admission rules as plain Rust functions,
//! compiled to WebAssembly.
//!
//! A rule is a function from the admission request — read as the typed view
//! the rule declares — its typed settings, and read access to the cluster,
//! to a [`Verdict`]. A complete policy crate:
//!
//! ```toml
//! [package]
//! name = "no-host-namespaces"
//! version = "0.1.0"
//! edition = "2024"
//!
//! [lib]
//! crate-type = ["cdylib", "rlib"]   # cdylib for Wasm, rlib for native tests
//!
//! [dependencies]
//! tollgate-sdk = "0.1"
//! serde = { version = "1", features = ["derive"] }
//! ```
//!
//! ```
//! use serde::Deserialize;
//! use tollgate_sdk::{Cluster, Pod, Request, Settings, Verdict};
//!
//! /// The policy's `settings`, checked when the configuration loads.
//! #[derive(Debug, Default, Deserialize)]
//! #[serde(deny_unknown_fields, rename_all = "camelCase", default)]
//! pub struct HostSettings {
//!     /// Namespaces whose pods may share the host's namespaces.
//!     pub exempt_namespaces: Vec<String>,
//! }
//!
//! impl Settings for HostSettings {}
//!
//! /// Pods must not share the node's network, PID or IPC namespace.
//! pub fn no_host_namespaces(req: &Request<'_, Pod<'_>>, s: &HostSettings, _: &dyn Cluster) -> Verdict {
//!     let Some(pod) = &req.object else { return Verdict::allow() };
//!     let namespace = req.namespace.as_deref().unwrap_or_default();
//!     if s.exempt_namespaces.iter().any(|n| n == namespace) {
//!         return Verdict::allow();
//!     }
//!     let spec = &pod.spec;
//!     let shared: Vec<&str> = [("hostNetwork", spec.host_network), ("hostPID", spec.host_pid), ("hostIPC", spec.host_ipc)]
//!         .into_iter()
//!         .filter_map(|(field, set)| set.then_some(field))
//!         .collect();
//!     if shared.is_empty() {
//!         return Verdict::allow();
//!     }
//!     Verdict::deny(format!(
//!         "pod {} sets {}: remove them, or run it in an exempt namespace",
//!         pod.metadata.name_or_generated(),
//!         shared.join(", ")
//!     ))
//! }
//!
//! // The only line that knows about Wasm.
//! tollgate_sdk::export_rules! {
//!     "no-host-namespaces" => no_host_namespaces,
//! }
//!
//! // Natively, a rule is tested like any function...
//! let request = br#"{"uid": "1", "operation": "CREATE", "namespace": "web",
//!     "object": {"kind": "Pod", "metadata": {"name": "debug"}, "spec": {"hostPID": true}}}"#;
//! let req = Request::parse(request).unwrap();
//! let verdict = no_host_namespaces(&req, &HostSettings::default(), &tollgate_sdk::NoCluster);
//! assert_eq!(verdict.message.as_deref(), Some("pod debug sets hostPID: remove them, or run it in an exempt namespace"));
//!
//! // ...and the module's rule table evaluates a bundle exactly as the Wasm
//! // export does: one verdict per entry, the request parsed once.
//! let bundle = br#"[{"rule": "no-host-namespaces", "settings": {}},
//!                  {"rule": "no-host-namespaces", "settings": {"exemptNamespaces": ["web"]}}]"#;
//! let verdicts = rules().evaluate(request, bundle, &tollgate_sdk::NoCluster).unwrap().verdicts;
//! assert!(!verdicts[0].allowed && verdicts[1].allowed);
//! assert!(!rules()[0].check_settings(br#"{"exemptNamespace": []}"#).valid);
//! ```
//!
//! Build it with `cargo build --release --target wasm32-unknown-unknown` and
//! name the `.wasm` in a policy's `module:`.
//!
//! # Views
//!
//! The `T` of [`Request<'a, T>`] is any `T: Deserialize<'a>`: the ready-made
//! borrowed views in [`views`] ([`Pod`], [`Workload`], [`NetworkPolicy`],
//! the superset [`Object`] that is the default), a struct of your own, or
//! k8s-openapi's types (feature `k8s-openapi`). The raw JSON of `object`
//! and `oldObject` is always at hand ([`Request::raw_object`]).
//!
//! # Evaluation
//!
//! The host evaluates every rule of one module that a review enters in one
//! fresh instance (ABI v2, `policies-wasm/ABI.md`): the SDK parses the
//! request once and each distinct view once, shared by the rules that read
//! it ([`ParsedRequest`]), runs the rules in the order asked and
//! answers one verdict per rule. Any failure — unreadable settings or
//! object, a panic — fails the whole call, and the host re-runs each rule
//! alone, so one rule's failure never changes another rule's verdict.

mod alloc;
pub mod api;
mod bundle;
mod cluster;
mod export;
pub mod image;
pub mod log;
mod module;
mod packed;
mod query;
mod request;
mod settings;
mod verdict;
pub mod version;
pub mod views;
pub mod wire;

pub use bundle::ParsedRequest;
pub use cluster::{Cluster, LookupError, MemoryCluster, NoCluster, Objects};
pub use module::{EvalError, Invoke, RuleEntry, RuleError, Rules};
pub use request::{
    GroupVersionKind, GroupVersionResource, Operation, Request, RequestError, UserInfo, ViewError,
};
pub use settings::{NoSettings, Settings};
pub use verdict::{PatchOp, Verdict};
pub use views::*;

/// k8s-openapi, the version this SDK is built and tested with: its types
/// are views like any other (`Request<'_, k8s_openapi::api::core::v1::Pod>`).
/// As for any library, select the Kubernetes version in your policy crate
/// (`k8s-openapi = { version = "0.29", features = ["latest"] }`).
#[cfg(feature = "k8s-openapi")]
pub use k8s_openapi;

/// The ABI version this SDK implements (see `policies-wasm/ABI.md`).
pub const ABI_VERSION: i32 = 2;

#[doc(hidden)]
pub mod __private {
    #[cfg(target_arch = "wasm32")]
    pub use crate::export::{alloc, describe, evaluate, validate_settings};
    pub use crate::module::parse_settings;
    pub use serde_json;
}
