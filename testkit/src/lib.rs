//! Test-only helpers shared by the native rule tests (`tollgate-calico`) and
//! the end-to-end tests (`tollgate`), so that both judge the same objects and
//! requests: what a real API server would send, built from the published
//! Calico manifests of the shared corpus.
//!
//! Everything panics on bad input: a broken corpus is a broken test.

#![forbid(unsafe_code)]

pub mod corpus;
#[cfg(feature = "fake-api")]
pub mod fake_api;
pub mod modern;
pub mod objects;
pub mod operator;
pub mod requests;
