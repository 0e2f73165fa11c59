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
mod cache_key;
mod compiled;
mod cpu_clock;
mod engine;
mod host_calls;
mod instance;
mod module_cache;
mod run_queue;
mod stats;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

pub use abi::ModuleError;
pub use compiled::{CompiledModule, RuleCall};
pub use cpu_clock::thread_cpu_time;
pub use instance::Lookups;
pub use run_queue::Lane;
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
    /// Where the key that authenticates cache entries is kept (file
    /// `module-cache.key`, created 0600); never the cache directory.
    /// `None`, or a directory that cannot hold it safely: a key for this
    /// process only, so entries of earlier runs are compiled again.
    pub cache_key_dir: Option<PathBuf>,
    /// How many evaluations may hold an instance at once. The pool reserves
    /// this many slots (plus a few for load-time calls), and the server
    /// admits no more concurrent evaluations than this, so that overload
    /// queues instead of failing instantiation.
    pub instances: u32,
    /// How many long guests (still running after their first epoch tick)
    /// run on the CPUs at once; the others wait for a turn, off the CPU
    /// (see `run_queue`). Default: one per available CPU.
    pub running: u32,
}

impl SandboxLimits {
    /// One running guest per CPU this process may use (cgroup quotas
    /// included).
    pub fn default_running() -> u32 {
        std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
    }

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

    /// `$XDG_STATE_HOME/tollgate`, else `$HOME/.local/state/tollgate`:
    /// where the cache key is kept by default.
    pub fn default_state_dir() -> Option<PathBuf> {
        let base = std::env::var_os("XDG_STATE_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))?;
        Some(base.join("tollgate"))
    }
}

impl Default for SandboxLimits {
    /// 64 MiB per instance, 5 ms ticks, the user's cache directory, 256
    /// concurrent evaluations, one running guest per CPU.
    fn default() -> Self {
        Self {
            memory_bytes: 64 << 20,
            tick: Duration::from_millis(5),
            cache_dir: Self::default_cache_dir(),
            cache_key_dir: Self::default_state_dir(),
            instances: 256,
            running: Self::default_running(),
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
    /// The run-queue lane the evaluation takes turns in; `None` runs it at
    /// once, outside the run queue (load-time calls, which must not wait
    /// behind spinning guests).
    pub lane: Option<Lane>,
    /// The calling thread must not hold a long guest (the server's async
    /// worker, which answers other reviews at their deadlines): a guest of
    /// a lane known to be long does not start, and one that runs a whole
    /// tick of CPU time is stopped, its lane marked long, both with
    /// [`crate::EvalError::HandedOff`]. Most evaluations finish well inside
    /// a tick, and then run where the request is, with no thread hop.
    pub hand_off: bool,
}

impl Budget {
    /// A budget for a call that is its own deadline (load-time calls, tests):
    /// `cpu` of CPU time and as much wall time.
    pub fn within(cpu: Duration) -> Self {
        Self {
            cpu,
            deadline: std::time::Instant::now() + cpu,
            lane: None,
            hand_off: false,
        }
    }
}

/// The engine could not be set up (bad limits, no ticker thread).
#[derive(Debug, thiserror::Error)]
#[error("wasm engine: {0}")]
pub struct EngineError(pub String);

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
            module_cache::Origin::Memory.count(&self.shared.stats);
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
        origin.count(&self.shared.stats);
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
