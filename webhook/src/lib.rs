//! Tollgate: a Kubernetes admission webhook that runs policy rules compiled
//! to WebAssembly.
//!
//! The binary is a thin shell: [`cli`] parses the command line into a
//! [`runtime::Runtime`], which owns the loaded policies, the cluster context
//! and the metrics, and serves the admission endpoints ([`server`]). Each
//! review is parsed lazily and judged by the [`admission`] service.

pub mod admission;
pub mod cli;
pub mod logging;
pub mod manifests;
pub mod metrics;
pub mod rbac;
pub mod runtime;
pub mod server;
pub mod watch;
