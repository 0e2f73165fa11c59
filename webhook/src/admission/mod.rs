//! The admission endpoints' service: from an AdmissionReview body to its
//! answer, on time.
//!
//! The review is parsed once by the host ([`tollgate_host::Review::parse`]);
//! [`service::Admission`] asks the serving set which policies it enters,
//! waits for an evaluation slot ([`queue`]), has the host judge it on a
//! blocking thread while keeping the clock ([`backstop`]), records every
//! policy's outcome, and [`response`] encodes the decision. Judgement itself
//! (modes, failure policies, bundles, patch composition) is the host's.

mod backstop;
pub mod deadline;
mod queue;
pub use tollgate_host::response;
mod service;

pub use backstop::Cutoff;
pub use service::{Admission, Reply};
