//! One evaluation: a fresh store and instance, its limits, and the mapping
//! of whatever went wrong to an [`EvalError`].

use std::sync::Arc;
use std::time::Instant;

use tollgate_context::{AllowList, ClusterContext, EmptyContext};
use wasmtime::{
    Instance, InstancePre, Memory, ModuleExport, ResourceLimiter, Store, Trap, TypedFunc,
    UpdateDeadline, WasmParams,
};

use super::Budget;
use super::abi::Exports;
use super::cpu_clock::thread_cpu_time;
use super::engine::Shared;
use super::run_queue::{RunQueue, RunSlot};
use crate::evaluation::EvalError;

/// The most log lines one evaluation forwards, and their longest length.
pub const MAX_LOG_LINES: u32 = 32;
pub const MAX_LOG_LINE: usize = 1024;

/// Per-evaluation store data.
pub struct EvalState {
    budget: Budget,
    /// The thread's CPU clock when the evaluation started.
    cpu_start: std::time::Duration,
    /// Which bound stopped the guest, once one did.
    stopped: Option<Bound>,
    /// Its turn on a CPU, once it ran a whole tick (evaluations only; see
    /// `run_queue`).
    slot: Option<RunSlot>,
    run_queue: Option<Arc<RunQueue>>,
    /// The epoch tick: a guest that ran longer is a long one, and deadlines
    /// are checked in ticks.
    tick: std::time::Duration,
    per_rule: bool,
    limiter: Limiter,
    lookups: Lookups,
    /// Set once the instance's exports are bound; host calls need them.
    pub memory: Option<Memory>,
    pub alloc: Option<TypedFunc<i32, i32>>,
    /// Log lines forwarded so far.
    pub log_lines: u32,
    /// The last error-level log line (the SDK's panic hook logs the panic
    /// message there before trapping).
    pub last_error: Option<String>,
}

/// The bound an interrupted guest hit.
#[derive(Debug, Clone, Copy)]
enum Bound {
    Cpu,
    Wall,
    /// A whole tick on a thread that hands long guests off.
    Tick,
}

impl EvalState {
    /// The review's wall-clock deadline.
    pub fn deadline(&self) -> Instant {
        self.budget.deadline
    }

    /// Which bound has been hit now, if any: the wall clock first (the
    /// review must be answered), then this thread's CPU time.
    fn exhausted(&self, now: Instant) -> Option<Bound> {
        if now >= self.budget.deadline {
            Some(Bound::Wall)
        } else if thread_cpu_time().saturating_sub(self.cpu_start) >= self.budget.cpu {
            Some(Bound::Cpu)
        } else {
            None
        }
    }

    /// Wall time until the earlier bound could be hit: CPU time never runs
    /// faster than the wall clock, so the CPU left is a lower bound on when
    /// it can run out.
    fn left(&self, now: Instant) -> std::time::Duration {
        let cpu_left = self
            .budget
            .cpu
            .saturating_sub(thread_cpu_time().saturating_sub(self.cpu_start));
        self.budget
            .deadline
            .saturating_duration_since(now)
            .min(cpu_left)
    }

    /// At a tick. A guest that has run a whole tick of CPU time is a long
    /// one: its lane is marked long and it waits for a running slot. One
    /// that holds a slot lets another lane's waiting guest run, if one
    /// waits, and waits for a turn again. The bound hit instead: `Wall` if
    /// the deadline passed while waiting, `Tick` if long guests are handed
    /// off from this thread ([`Budget::hand_off`]).
    ///
    /// Short evaluations (most finish well inside one tick) never touch
    /// the run queue's lock: waiting for a slot and handing it on cost a
    /// thread wake-up each, a fifth of the throughput when every
    /// evaluation did.
    fn take_turns(&mut self) -> Result<(), Bound> {
        let (deadline, lane) = (self.budget.deadline, self.budget.lane);
        let (Some(queue), Some(lane)) = (&self.run_queue, lane) else {
            return Ok(());
        };
        let granted = match &mut self.slot {
            Some(slot) => slot.share(deadline),
            // Ticks are wall time: a short guest descheduled across two of
            // them has not run a tick. Only CPU time makes a guest long.
            None if thread_cpu_time().saturating_sub(self.cpu_start) < self.tick => true,
            None => {
                queue.mark(lane, true);
                if self.budget.hand_off {
                    // Waiting for a slot would park the async worker.
                    return Err(Bound::Tick);
                }
                self.slot = queue.acquire(lane, deadline);
                self.slot.is_some()
            }
        };
        if granted { Ok(()) } else { Err(Bound::Wall) }
    }

    /// Ticks until the callback must look again: every tick for a guest
    /// that takes turns with others, else when a bound could be hit.
    fn next_check(&self, now: Instant) -> u64 {
        if self.run_queue.is_some() {
            // The first check two epochs on: at least one whole tick of
            // running, however close to an epoch boundary it started.
            return if self.slot.is_some() { 1 } else { 2 };
        }
        (self.left(now).as_nanos() / self.tick.as_nanos()).max(1) as u64
    }

    /// Whether lookups name the asking member (`"rule"`, ABI v2).
    pub fn per_rule(&self) -> bool {
        self.per_rule
    }

    /// The allow-lists of the policies being evaluated: one, or every
    /// member of a bundle, in bundle order.
    pub fn allow(&self) -> &[Arc<AllowList>] {
        &self.lookups.allow
    }

    pub fn context(&self) -> &dyn ClusterContext {
        &*self.lookups.context
    }
}

impl Drop for EvalState {
    /// An evaluation of a long lane that finished inside a tick of CPU
    /// time marks its lane short again.
    fn drop(&mut self) {
        if let (Some(queue), Some(lane)) = (&self.run_queue, self.budget.lane)
            && queue.is_long(lane)
            && thread_cpu_time().saturating_sub(self.cpu_start) < self.tick
        {
            queue.mark(lane, false);
        }
    }
}

/// What an evaluation's lookups are served from: the allow-lists of the
/// policies being evaluated (one, or every member of a bundle, in bundle
/// order) and the cluster context. Owned, because wasmtime's store data
/// must be `'static`: an `Arc` each, cloned per evaluation.
pub struct Lookups {
    pub allow: Vec<Arc<AllowList>>,
    pub context: Arc<dyn ClusterContext>,
}

impl Lookups {
    /// No policy and an empty cluster: for the calls made at load.
    pub fn none() -> Self {
        Self {
            allow: Vec::new(),
            context: Arc::new(EmptyContext),
        }
    }
}

/// Caps linear memory and remembers that the cap was hit, so the failure is
/// reported as [`EvalError::Memory`] however the guest reacts to it.
struct Limiter {
    cap: usize,
    exceeded: bool,
}

/// The error that stops a guest growing its memory past the cap.
#[derive(Debug, thiserror::Error)]
#[error("memory cap of {0} bytes reached")]
struct MemoryCapReached(usize);

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.cap {
            self.exceeded = true;
            // Trap rather than fail the grow: a guest that ignores a failed
            // `memory.grow` would only fail later and less clearly.
            return Err(MemoryCapReached(self.cap).into());
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        _desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // The pool's `table_elements` bounds tables.
        Ok(true)
    }
}

/// Guest output the host cannot use, detected inside a host call or when
/// reading a result. Classified as [`EvalError::Output`].
#[derive(Debug, thiserror::Error)]
pub enum GuestFault {
    #[error("{what} at {ptr}+{len} is outside the guest's {size}-byte memory")]
    OutOfBounds {
        what: &'static str,
        ptr: u32,
        len: u32,
        size: usize,
    },
    #[error("tollgate_alloc({0}) failed")]
    AllocFailed(usize),
    #[error("the module's exports are not bound")]
    Unbound,
}

/// The guest memory range `ptr..ptr+len`, bounds-checked.
pub fn guest_slice<'m>(
    memory: &'m [u8],
    ptr: u32,
    len: u32,
    what: &'static str,
) -> Result<&'m [u8], GuestFault> {
    let start = ptr as usize;
    memory
        .get(start..start + len as usize)
        .ok_or(GuestFault::OutOfBounds {
            what,
            ptr,
            len,
            size: memory.len(),
        })
}

/// Splits a packed `(ptr << 32) | len` result.
pub fn unpack(packed: i64) -> (u32, u32) {
    let packed = packed as u64;
    ((packed >> 32) as u32, packed as u32)
}

/// A fresh instance with its store, alive for one evaluation (or one
/// load-time call).
pub struct Session {
    store: Store<EvalState>,
    instance: Instance,
    /// Counts a guest stopped at a tick to be handed off.
    handed_off: prometheus_client::metrics::counter::Counter,
}

impl Session {
    pub fn start(
        shared: &Shared,
        pre: &InstancePre<EvalState>,
        budget: Budget,
        per_rule: bool,
        lookups: Lookups,
    ) -> Result<Self, EvalError> {
        let started = Instant::now();
        let run_queue = budget.lane.map(|_| shared.run_queue.clone());
        // A lane known to be long queues before it starts, so that a burst
        // of its reviews does not put every one of them on the CPUs.
        let slot = match budget.lane {
            Some(lane) if shared.run_queue.is_long(lane) && budget.hand_off => {
                shared.stats.handed_off.inc();
                return Err(EvalError::HandedOff);
            }
            Some(lane) if shared.run_queue.is_long(lane) => Some(
                shared
                    .run_queue
                    .acquire(lane, budget.deadline)
                    .ok_or(EvalError::NotStarted)?,
            ),
            _ => None,
        };
        shared.stats.instances.inc();
        let state = EvalState {
            budget,
            cpu_start: thread_cpu_time(),
            stopped: None,
            slot,
            run_queue,
            tick: shared.limits.tick,
            per_rule,
            limiter: Limiter {
                cap: shared.limits.memory_bytes,
                exceeded: false,
            },
            lookups,
            memory: None,
            alloc: None,
            log_lines: 0,
            last_error: None,
        };
        let mut store = Store::new(&shared.engine, state);
        store.limiter(|s| &mut s.limiter);
        store.set_epoch_deadline(store.data().next_check(started));
        // Ticks are a hint (the ticker may run early or late); the clocks
        // decide: interrupt only once a bound has really been hit, at most
        // one tick late.
        store.epoch_deadline_callback(move |mut ctx| {
            let state = ctx.data_mut();
            let bound = state
                .exhausted(Instant::now())
                .or_else(|| state.take_turns().err());
            Ok(match bound {
                Some(bound) => {
                    state.stopped = Some(bound);
                    UpdateDeadline::Interrupt
                }
                None => UpdateDeadline::Continue(state.next_check(Instant::now())),
            })
        });
        let instance = pre
            .instantiate(&mut store)
            .map_err(|e| classify(&store, e))?;
        Ok(Self {
            store,
            instance,
            handed_off: shared.stats.handed_off.clone(),
        })
    }

    /// Makes the memory and `tollgate_alloc` available to host calls.
    pub fn bind(&mut self, exports: &Exports) -> Result<(), EvalError> {
        let memory = self
            .instance
            .get_module_export(&mut self.store, &exports.memory)
            .and_then(|e| e.into_memory());
        let alloc = self.func::<i32, i32>(&exports.alloc)?;
        let state = self.store.data_mut();
        state.memory = memory;
        state.alloc = Some(alloc);
        Ok(())
    }

    /// Copies `parts` into one guest allocation; returns each part's
    /// `(ptr, len)`. One `tollgate_alloc` call instead of one per part.
    pub fn write<const N: usize>(
        &mut self,
        parts: [&[u8]; N],
    ) -> Result<[(i32, i32); N], EvalError> {
        let total: usize = parts.iter().map(|p| p.len()).sum();
        let mut placed = [(0, 0); N];
        let (Some(memory), Some(alloc)) =
            (self.store.data().memory, self.store.data().alloc.clone())
        else {
            return Err(EvalError::Output(GuestFault::Unbound.to_string()));
        };
        let len = i32::try_from(total)
            .map_err(|_| EvalError::Output(format!("input of {total} bytes is too large")))?;
        let base = alloc
            .call(&mut self.store, len)
            .map_err(|e| self.error(e))?;
        if base == 0 && total > 0 {
            return Err(self.error(GuestFault::AllocFailed(total).into()));
        }
        let mut offset = base as u32 as usize;
        for (part, slot) in parts.iter().zip(&mut placed) {
            memory.write(&mut self.store, offset, part).map_err(|_| {
                self.error(out_of_bounds(
                    "tollgate_alloc result",
                    offset,
                    part.len(),
                    &memory,
                    &self.store,
                ))
            })?;
            *slot = (offset as i32, part.len() as i32);
            offset += part.len();
        }
        Ok(placed)
    }

    /// Calls an export that returns a packed document and returns the
    /// document's bytes (bounds-checked).
    pub fn call_packed<P: WasmParams>(
        &mut self,
        export: &ModuleExport,
        params: P,
    ) -> Result<&[u8], EvalError> {
        let func = self.func::<P, i64>(export)?;
        let packed = func
            .call(&mut self.store, params)
            .map_err(|e| self.error(e))?;
        let (ptr, len) = unpack(packed);
        let memory = self
            .store
            .data()
            .memory
            .ok_or(EvalError::Output(GuestFault::Unbound.to_string()))?;
        guest_slice(memory.data(&self.store), ptr, len, "result")
            .map_err(|e| EvalError::Output(e.to_string()))
    }

    /// Calls an export returning an `i32`.
    pub fn call_i32(&mut self, export: &ModuleExport) -> Result<i32, EvalError> {
        let func = self.func::<(), i32>(export)?;
        func.call(&mut self.store, ()).map_err(|e| self.error(e))
    }

    fn func<P: WasmParams, R: wasmtime::WasmResults>(
        &mut self,
        export: &ModuleExport,
    ) -> Result<TypedFunc<P, R>, EvalError> {
        self.instance
            .get_module_export(&mut self.store, export)
            .and_then(|e| e.into_func())
            .ok_or_else(|| EvalError::Output(GuestFault::Unbound.to_string()))?
            .typed(&self.store)
            // The load-time ABI check makes a mismatch here impossible.
            .map_err(|e| EvalError::Output(e.to_string()))
    }

    fn error(&self, error: wasmtime::Error) -> EvalError {
        let error = classify(&self.store, error);
        if matches!(error, EvalError::HandedOff) {
            self.handed_off.inc();
        }
        error
    }
}

fn out_of_bounds(
    what: &'static str,
    offset: usize,
    len: usize,
    memory: &Memory,
    store: &Store<EvalState>,
) -> wasmtime::Error {
    GuestFault::OutOfBounds {
        what,
        ptr: offset as u32,
        len: len as u32,
        size: memory.data_size(store),
    }
    .into()
}

/// Maps a wasmtime error to its cause by type, never by message: the memory
/// flag first (however the guest reacted to the cap), then our own faults,
/// then the trap code.
fn classify(store: &Store<EvalState>, error: wasmtime::Error) -> EvalError {
    let state = store.data();
    if state.limiter.exceeded {
        return EvalError::Memory(state.limiter.cap);
    }
    // Typed, wherever in the chain wasmtime put it.
    if let Some(limit) = error
        .chain()
        .find_map(|e| e.downcast_ref::<wasmtime::PoolConcurrencyLimitError>())
    {
        return EvalError::Pool(limit.to_string());
    }
    if let Some(fault) = error.downcast_ref::<GuestFault>() {
        return EvalError::Output(fault.to_string());
    }
    let what = match error.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => {
            return match state.stopped {
                Some(Bound::Cpu) => EvalError::CpuBudget(state.budget.cpu),
                Some(Bound::Tick) => EvalError::HandedOff,
                Some(Bound::Wall) | None => EvalError::Unfinished,
            };
        }
        Some(trap) => trap.to_string(),
        None => format!("{error:#}"),
    };
    EvalError::Trap(match &state.last_error {
        Some(line) => format!("{line} ({what})"),
        None => what,
    })
}
