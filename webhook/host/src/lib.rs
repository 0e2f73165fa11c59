//! Tollgate's policy host.
//!
//! Loads a policy configuration ([`config`]) into an immutable [`PolicySet`]:
//! each distinct Wasm module compiled once (deduplicated by sha256, cached on
//! disk), each policy's settings validated by its module. At admission time
//! the set selects the policies whose [`matcher`] accepts a request — without
//! deserialising the objects — and evaluates each one in a fresh, isolated
//! instance under a CPU deadline and a memory cap ([`sandbox`]).

pub mod config;
pub mod input;
mod json;
pub mod matcher;
pub mod policy;
pub mod sandbox;

pub use config::{Config, ConfigError, FailurePolicy, Mode, PolicyConfig};
pub use input::GuestInput;
pub use matcher::{Endpoint, Matcher, RequestMeta};
pub use policy::{LoadError, Policy, PolicySet};
pub use sandbox::{EvalError, FailureCause, ModuleOrigin, Sandbox, SandboxLimits};
pub use tollgate_sdk::Verdict;
