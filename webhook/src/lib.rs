//! Tollgate: a Kubernetes admission webhook that runs policy rules compiled
//! to WebAssembly.
//!
//! The binary is a thin shell: [`cli`] parses the command line and `main`
//! turns it into a [`runtime::Runtime`], which owns the loaded policies, the
//! cluster context and the metrics, and serves the admission endpoints
//! ([`server`]). Each review is parsed once and judged by the policy host
//! (`tollgate-host`); the [`admission`] service keeps the clock, records and
//! answers. The serving certificate comes from [`certs`] (files, the
//! development certificate, or a Secret it manages), which hands it to the
//! server's TLS. The offline commands [`check`] (manifests, before `kubectl
//! apply`) and [`audit`] (the stored objects) judge through
//! `tollgate-preflight`'s admission chain, the same judgement `serve` makes.
//! Modules depend one way: cli → rbac → builtin ← runtime →
//! cli; cli → certs → server ← runtime → certs.

pub mod admission;
pub mod audit;
pub mod builtin;
pub mod cases;
pub mod certs;
pub mod check;
pub mod cli;
pub mod file_watch;
pub mod logging;
pub mod manifests;
pub mod metrics;
pub mod rbac;
pub mod runtime;
pub mod scaffold;
pub mod server;
