//! Sandboxed evaluation on wasmtime.
//!
//! One [`Sandbox`] per process holds the engine (pooling allocator,
//! copy-on-write memory images, epoch interruption driven by a ticker
//! thread) and the table of compiled modules. Every evaluation runs in a
//! fresh instance created from a pre-linked [`wasmtime::InstancePre`], under
//! a CPU budget (its thread's CPU time), the review's wall-clock deadline and
//! a memory cap, so nothing a guest does survives it or reaches another
//! evaluation. An ABI v2 module evaluates several rules in
//! one such instance ([`CompiledModule::evaluate`]).

mod abi;
mod compiled;
mod cpu_clock;
mod engine;
mod host_calls;
mod instance;
mod module_cache;
mod stats;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

pub use abi::{AbiVersion, ModuleError};
pub use compiled::{CompiledModule, RuleCall, decode_verdicts};
pub use cpu_clock::thread_cpu_time;
pub use stats::SandboxStats;

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
    /// How many evaluations may hold an instance at once. The pool reserves
    /// this many slots (plus a few for load-time calls), and the server
    /// admits no more concurrent evaluations than this, so that overload
    /// queues instead of failing instantiation.
    pub instances: u32,
}

impl SandboxLimits {
    /// The longest epoch tick: deadlines are enforced to within one tick.
    pub const MAX_TICK: Duration = Duration::from_millis(10);

    /// `$XDG_CACHE_HOME/tollgate`, else `$HOME/.cache/tollgate`.
    pub fn default_cache_dir() -> Option<PathBuf> {
        let base = std::env::var_os("XDG_CACHE_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
        Some(base.join("tollgate"))
    }
}

impl Default for SandboxLimits {
    /// 64 MiB per instance, 5 ms ticks, the user's cache directory, 256
    /// concurrent evaluations.
    fn default() -> Self {
        Self {
            memory_bytes: 64 << 20,
            tick: Duration::from_millis(5),
            cache_dir: Self::default_cache_dir(),
            instances: 256,
        }
    }
}

/// What one evaluation may spend: `cpu` of its own thread's CPU time (the
/// policy's `timeout`), and no wall-clock time past `deadline` (the
/// review's). A guest starved of CPU by others is not blamed for the wait;
/// a review is still answered on time.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub cpu: Duration,
    pub deadline: std::time::Instant,
}

impl Budget {
    /// A budget for a call that is its own deadline (load-time calls, tests):
    /// `cpu` of CPU time and as much wall time.
    pub fn within(cpu: Duration) -> Self {
        Self {
            cpu,
            deadline: std::time::Instant::now() + cpu,
        }
    }
}

/// The engine could not be set up (bad limits, no ticker thread).
#[derive(Debug, thiserror::Error)]
#[error("wasm engine: {0}")]
pub struct EngineError(pub String);

/// Why an evaluation produced no verdict; becomes the policy's failure verdict.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EvalError {
    /// Used up its CPU budget (the policy's `timeout`, CPU time of this
    /// evaluation's thread).
    #[error("exceeded its CPU budget of {0:?}")]
    CpuBudget(std::time::Duration),
    /// The review's deadline had passed before the evaluation could start
    /// (queued behind other reviews, or behind the policies evaluated
    /// before it).
    #[error("deadline already passed before the evaluation started")]
    NotStarted,
    /// Every one of the policy's concurrent evaluation slots stayed busy
    /// until the review's deadline (its share of the pool: a spinning
    /// policy saturates only its own share).
    #[error("all {0} of its concurrent evaluation slots were busy until the review deadline")]
    Overloaded(u32),
    /// The sandbox's instance pool had no free slot (wasmtime's
    /// `PoolConcurrencyLimitError`): the host admitted more evaluations
    /// than the pool holds, never the guest's doing.
    #[error("no free sandbox instance: {0}")]
    Pool(String),
    /// The policy's circuit breaker is open: it kept failing at its
    /// deadline, so it is not run again until the cool-down ends.
    #[error("{0}")]
    Breaker(String),
    /// Still running when the review's deadline came: the review was
    /// answered without this verdict.
    #[error("no verdict before the review deadline")]
    Unfinished,
    /// `--max-queued-reviews` reviews were already waiting for an
    /// evaluation slot: refused at once rather than queued.
    #[error("{0} reviews were already waiting for an evaluation slot")]
    QueueFull(u32),
    /// The server was shutting down and its grace period ended first.
    #[error("the server is shutting down and its grace period ended before a verdict")]
    ShuttingDown,
    /// The evaluating thread ended without a verdict (a host bug, never the
    /// guest's doing: guest faults are traps).
    #[error("evaluation aborted")]
    Aborted,
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
    /// The policy's own concurrency share was full.
    Overload,
    /// The sandbox's instance pool was exhausted.
    Pool,
    /// The policy's circuit breaker was open.
    Breaker,
    Memory,
    Trap,
    Output,
}

impl FailureCause {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deadline => "deadline",
            Self::Overload => "overload",
            Self::Pool => "pool",
            Self::Breaker => "breaker",
            Self::Memory => "memory",
            Self::Trap => "trap",
            Self::Output => "output",
        }
    }
}

impl EvalError {
    /// The guest was running when a bound stopped it (its CPU budget or the
    /// review's deadline): what a circuit breaker counts.
    pub fn overran(&self) -> bool {
        matches!(self, Self::CpuBudget(_) | Self::Unfinished)
    }

    pub fn cause(&self) -> FailureCause {
        match self {
            Self::CpuBudget(_) | Self::NotStarted | Self::Unfinished | Self::ShuttingDown => {
                FailureCause::Deadline
            }
            Self::Overloaded(_) | Self::QueueFull(_) => FailureCause::Overload,
            Self::Pool(_) => FailureCause::Pool,
            Self::Breaker(_) => FailureCause::Breaker,
            Self::Aborted => FailureCause::Trap,
            Self::Memory(_) => FailureCause::Memory,
            Self::Trap(_) => FailureCause::Trap,
            Self::Output(_) => FailureCause::Output,
        }
    }
}

/// The wasmtime engine shared by every policy set: pooling allocator,
/// copy-on-write memory images, epoch interruption driven by a ticker thread.
pub struct Sandbox {
    shared: Arc<engine::Shared>,
    linker: wasmtime::Linker<instance::EvalState>,
    /// Compiled modules by sha256. Weak, so a module no policy set uses any
    /// more is freed, while a reload that keeps a module reuses it.
    modules: Mutex<HashMap<[u8; 32], Weak<CompiledModule>>>,
}

impl Sandbox {
    pub fn new(limits: SandboxLimits) -> Result<Arc<Self>, EngineError> {
        let shared = engine::Shared::start(limits)?;
        let linker = host_calls::linker(&shared.engine).map_err(|e| EngineError(e.to_string()))?;
        Ok(Arc::new(Self {
            shared,
            linker,
            modules: Mutex::new(HashMap::new()),
        }))
    }

    pub fn limits(&self) -> &SandboxLimits {
        &self.shared.limits
    }

    /// Instances started and modules loaded so far (exported as metrics;
    /// tests count instances per review with it).
    pub fn stats(&self) -> &SandboxStats {
        &self.shared.stats
    }

    /// Compiles `wasm` (or takes it from the in-memory table or the disk
    /// cache), checks it speaks ABI v1 or v2 and reads its rule list.
    /// Policies that name the same bytes share the result.
    pub fn load_module(&self, wasm: &[u8]) -> Result<Arc<CompiledModule>, ModuleError> {
        let digest = module_cache::digest(wasm);
        // Held across compilation: concurrent loads of one module (two
        // reloads racing) compile it once; loads are rare.
        let mut modules = self.modules.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(module) = modules.get(&digest).and_then(Weak::upgrade) {
            self.shared
                .stats
                .module_loaded(module_cache::Origin::Memory);
            return Ok(module);
        }
        let started = std::time::Instant::now();
        let (module, origin) = module_cache::load_or_compile(&self.shared, wasm, &digest)?;
        let compiled = Arc::new(CompiledModule::new(
            &self.shared,
            &self.linker,
            module,
            digest,
        )?);
        self.shared.stats.module_loaded(origin);
        tracing::info!(
            digest = %hex::encode(digest),
            origin = origin.as_str(),
            abi = compiled.abi().number(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "module loaded"
        );
        modules.retain(|_, m| m.strong_count() > 0);
        modules.insert(digest, Arc::downgrade(&compiled));
        Ok(compiled)
    }
}
