//! The admission server: `tollgate serve`.
//!
//! [`runtime`] turns `serve`'s flags ([`ServeArgs`]) into a running server:
//! it loads the policy set (reloading it when its files change), starts the
//! cluster context and the serving certificate (`tollgate_certs`), and
//! serves the admission endpoints over [`http`]. Each review is parsed once
//! and judged by the policy host (`tollgate-host`'s judgement API, the one
//! `check`, `audit` and `test` use); the [`admission`] service adds the
//! clock (the deadline), the queue and the thread, records
//! [`metrics`] and answers.

#![deny(unsafe_code)]

pub mod admission;
pub mod http;
pub mod metrics;
pub mod runtime;

pub use runtime::{Runtime, ServeArgs};
