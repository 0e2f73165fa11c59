//! Sandboxed evaluation on wasmtime.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use tollgate_context::{AllowList, ClusterContext};
use tollgate_sdk::Verdict;

/// Resource limits of every evaluation.
#[derive(Debug, Clone)]
pub struct SandboxLimits {
    /// Linear memory cap per instance (bytes).
    pub memory_bytes: usize,
    /// Epoch tick (≤ 10 ms).
    pub tick: std::time::Duration,
    /// Where compiled modules are cached (`$XDG_CACHE_HOME/tollgate`); `None`
    /// disables the disk cache.
    pub cache_dir: Option<PathBuf>,
}

/// Why an evaluation produced no verdict; becomes the policy's failure verdict.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("exceeded its CPU deadline of {0:?}")]
    Deadline(std::time::Duration),
    #[error("exceeded its memory cap of {0} bytes")]
    Memory(usize),
    #[error("trapped: {0}")]
    Trap(String),
    #[error("returned unusable output: {0}")]
    Output(String),
}

/// The metric label of a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureCause {
    Deadline,
    Memory,
    Trap,
    Output,
}

impl FailureCause {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deadline => "deadline",
            Self::Memory => "memory",
            Self::Trap => "trap",
            Self::Output => "output",
        }
    }
}

impl EvalError {
    pub fn cause(&self) -> FailureCause {
        match self {
            Self::Deadline(_) => FailureCause::Deadline,
            Self::Memory(_) => FailureCause::Memory,
            Self::Trap(_) => FailureCause::Trap,
            Self::Output(_) => FailureCause::Output,
        }
    }
}

/// The wasmtime engine shared by every policy set: pooling allocator,
/// copy-on-write memory images, epoch interruption driven by a ticker thread.
pub struct Sandbox {
    // host helper: engine, ticker, in-memory module table keyed by sha256, limits
    _private: (),
}

/// A compiled module, shared by every policy that names the same bytes.
pub struct CompiledModule {
    // host helper: digest, InstancePre, description (rules + mutating)
    _private: (),
}

impl Sandbox {
    pub fn new(limits: SandboxLimits) -> anyhow_free::Result<Arc<Self>> {
        let _ = limits;
        todo!("host helper")
    }
}

impl CompiledModule {
    /// Runs one rule on one request in a fresh instance.
    pub fn evaluate(
        &self,
        rule: &str,
        request: &[u8],
        settings: &[u8],
        deadline: Instant,
        allow: &AllowList,
        context: &dyn ClusterContext,
    ) -> Result<Verdict, EvalError> {
        let _ = (rule, request, settings, deadline, allow, context);
        todo!("host helper")
    }
}

mod anyhow_free {
    pub type Result<T> = std::result::Result<T, crate::policy::LoadError>;
}
