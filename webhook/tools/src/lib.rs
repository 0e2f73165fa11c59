//! The offline commands, each with its flags, on top of the pre-flight
//! library (`tollgate-preflight`): [`check`] judges manifests before
//! `kubectl apply` and [`audit`] the stored objects, both through the
//! admission chain, the judgement `serve` makes; [`cases`] runs policy test
//! cases (`tollgate test`); [`scaffold`] writes a new policy crate
//! (`tollgate new`); [`manifests`] renders the install and [`rbac`] the
//! ClusterRole the policies' lookups need.

#![forbid(unsafe_code)]

pub mod audit;
pub mod cases;
pub mod check;
pub mod manifests;
pub mod rbac;
pub mod scaffold;
