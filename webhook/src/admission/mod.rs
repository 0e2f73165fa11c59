//! The admission service: from an AdmissionReview body to its answer.
//!
//! [`review`] parses lazily, [`service::Admission`] selects the policies a
//! review enters and evaluates them off the async runtime ([`evaluate`]),
//! [`decide`] turns their verdicts into one answer, [`patch`] composes
//! repairs and [`response`] encodes the answer.

pub mod deadline;
pub mod decide;
mod evaluate;
pub mod patch;
pub mod response;
pub mod review;
mod service;

pub use service::{Admission, Reply};
