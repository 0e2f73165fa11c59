//! The Tollgate policy SDK.
//!
//! A policy is a plain Rust function from the admission request (and its typed
//! settings, and read access to the cluster) to a [`Verdict`]:
//!
//! ```
//! use tollgate_sdk::{Cluster, NoSettings, Request, Verdict};
//!
//! pub fn no_latest(req: &Request<'_>, _: &NoSettings, _: &dyn Cluster) -> Verdict {
//!     match req.object.as_ref().and_then(|o| o.metadata.name.as_deref()) {
//!         Some("forbidden") => Verdict::deny("this name is reserved"),
//!         _ => Verdict::allow(),
//!     }
//! }
//! ```
//!
//! Because rules are ordinary functions they are unit-tested natively with
//! `cargo test`; [`export_rules!`] is the only line that knows about Wasm. The
//! contract with the host is `policies-wasm/ABI.md`.

#[cfg(target_arch = "wasm32")]
mod alloc;
mod cluster;
mod export;
pub mod image;
pub mod log;
mod object;
mod request;
mod settings;
mod verdict;
pub mod version;
pub mod wire;
mod workload;

pub use cluster::{Cluster, LookupError, MemoryCluster, NoCluster, Objects};
pub use export::RuleEntry;
pub use object::*;
pub use request::{GroupVersionKind, GroupVersionResource, Operation, Request, UserInfo};
pub use settings::{NoSettings, Settings};
pub use verdict::{PatchOp, Verdict};
pub use workload::DEFAULT_DEPLOYMENT_STRATEGY;

/// The ABI version this SDK implements (see `policies-wasm/ABI.md`).
pub const ABI_VERSION: i32 = 1;

#[doc(hidden)]
pub mod __private {
    pub use crate::export::*;
    pub use serde_json;
}
