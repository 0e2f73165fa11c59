//! Tollgate: a Kubernetes admission webhook that runs policy rules compiled
//! to WebAssembly.
//!
//! The binary is a thin shell: [`cli`] parses the command line and `main`
//! turns it into a [`runtime::Runtime`], which owns the loaded policies, the
//! cluster context and the metrics, and serves the admission endpoints
//! ([`server`]). Each review is parsed once and judged by the policy host
//! (`tollgate-host`); the [`admission`] service keeps the clock, records and
//! answers. Modules depend one way: cli → rbac → builtin ← runtime → cli.

pub mod admission;
pub mod builtin;
pub mod cli;
pub mod logging;
pub mod metrics;
pub mod rbac;
pub mod runtime;
pub mod server;
pub mod watch;
