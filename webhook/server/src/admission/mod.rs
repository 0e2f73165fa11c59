//! The admission endpoints' service: from an AdmissionReview body to its
//! answer, on time.
//!
//! The review is parsed once by the host ([`tollgate_host::Review::parse`]);
//! [`service::Admission`] starts its [`tollgate_host::Judgement`] (the
//! policies it enters), waits for an evaluation slot ([`queue`]), evaluates
//! it where the request is and hands it to a blocking thread only if a guest
//! runs long, while keeping the clock ([`deadline`]; the budget itself comes
//! from `?timeout=`, [`budget`]), records every policy's
//! outcome, and [`response`] encodes the decision. Judgement itself
//! (modes, failure policies, bundles, patch composition, the failure
//! outcomes of policies without a verdict) is the host's.

mod body;
pub mod budget;
mod deadline;
mod queue;
pub use tollgate_host::response;
mod service;

pub use deadline::Cutoff;
pub use service::{Admission, Reply};
