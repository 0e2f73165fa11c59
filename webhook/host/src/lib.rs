//! Tollgate's policy host: everything that judges a review.
//!
//! A configuration ([`config`]) loads into an immutable [`PolicySet`]: each
//! distinct Wasm module compiled once (deduplicated by sha256, cached on
//! disk), each policy's settings validated by its module, each `match:`
//! compiled. A review body is parsed once ([`Review::parse`]: the envelope
//! and routing fields, objects kept as raw spans); a [`Judgement`] starts
//! with the policies it enters ([`matcher`]), collects one [`Outcome`] per
//! policy as each becomes final ([`PolicySet::evaluate`]: every module's
//! rules in one fresh, isolated instance under a CPU budget and a memory cap
//! ([`sandbox`]), modes and failure policies applied, repairs composed in
//! configuration order) and ends in the [`Decision`]. The server and the
//! offline commands ([`PolicySet::judge`]) share that one API.
//!
//! Stage by stage: [`Review`] → selection → [`Verdict`] (the guest's
//! answer) → [`Outcome`] (what it means for the review) → [`Decision`] →
//! the answer's bytes ([`response`]), so the wire format in and out sits in
//! one crate.
//!
//! The `sandbox` feature (default) brings wasmtime and everything that runs
//! guests: [`sandbox`], [`PolicySet`] and the judge. Without it the wire
//! formats, matching, configuration and the decoding of guest output still
//! build (what the fuzz targets exercise).

#![deny(unsafe_code)]

pub mod config;
pub mod decision;
pub mod duration;
pub mod evaluation;
pub mod input;
mod json;
pub mod matcher;
pub mod outcome;
pub mod patch;
#[cfg(feature = "sandbox")]
pub mod policy;
#[cfg(feature = "sandbox")]
pub mod policy_set;
pub mod response;
pub mod review;
#[cfg(feature = "sandbox")]
pub mod sandbox;

pub use config::{BreakerConfig, Config, ConfigError, FailurePolicy, Mode, PolicyConfig};
pub use decision::Decision;
pub use evaluation::{AbiVersion, EvalError, FailureCause};
pub use input::GuestInput;
pub use matcher::{Endpoint, Matcher};
pub use outcome::{Effect, Outcome};
#[cfg(feature = "sandbox")]
pub use policy::{LoadError, Policy, module_files};
#[cfg(feature = "sandbox")]
pub use policy_set::{HandedOff, Judgement, PolicySet, Run};
pub use review::{Parsed, RequestMeta, Review, ReviewError};
#[cfg(feature = "sandbox")]
pub use sandbox::{Budget, EngineError, Sandbox, SandboxLimits, SandboxStats};
pub use tollgate_sdk::Verdict;
