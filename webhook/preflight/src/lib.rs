//! Pre-flight: what the API server would do with a manifest, offline.
//!
//! [`manifest`] reads files as `kubectl apply -f` does (file:line in every
//! error); [`served`] turns an object into what the API server hands
//! webhooks (served apiVersion, defaults); [`review`] builds the
//! AdmissionReview of applying it (CREATE, or UPDATE against the stored
//! object from [`store`]); [`chain`] judges that review through the host's
//! judgement API the way the API server chains admission (mutate, patch,
//! validate); [`crd`] serves custom resources as their CRDs define them;
//! [`replay`] judges a whole input in order as `kubectl apply -f` applies
//! it, each object against the cluster with the earlier ones stored.
//! `tollgate check`, `audit` and `test` are built on these, and on
//! [`source`], the policy set a command loads (which `serve` loads too);
//! the test kit reuses [`served`] and [`review`] so tests judge the same
//! input.

#![forbid(unsafe_code)]

#[cfg(feature = "chain")]
pub mod chain;
pub mod crd;
pub mod manifest;
#[cfg(feature = "chain")]
pub mod replay;
pub mod review;
pub mod served;
#[cfg(feature = "chain")]
pub mod source;
pub mod store;

#[cfg(feature = "chain")]
pub use chain::{Chain, ChainError, Finding, Judged, findings};
pub use crd::Crds;
pub use manifest::{Manifest, ManifestError, Origin, Source};
#[cfg(feature = "chain")]
pub use replay::{ReplayError, Replayed, replay};
pub use store::Objects;
