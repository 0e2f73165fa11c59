//! Which guests run on the CPUs, and in what order.
//!
//! Guests are CPU-bound (host calls answer from memory), so running more of
//! them than there are cores adds no throughput; it only lets the kernel
//! share the cores among them. With 64 spinning guests that sharing
//! starved both the healthy policies beside them and the async workers
//! that accept requests and answer at deadlines. So at most `slots` long
//! guests (still running after their first epoch tick) run at once; the
//! rest wait here, off the CPU. Short evaluations never queue here. A
//! lane is marked long when one of its guests runs a whole tick, and its
//! later evaluations then queue before they start (a burst of spinners
//! would otherwise all run their first tick at once); one that finishes
//! inside a tick marks it short again.
//!
//! Fairness is between *lanes* (policies, or the bundle a set of policies
//! runs in): a free slot goes to the lane whose turn it is, round robin,
//! and a running guest gives its slot to another lane's waiter at its next
//! epoch tick. A lane's own evaluations run to completion in arrival order
//! (time-slicing them would only make every one of them late). A spinning
//! policy therefore delays another policy's evaluation by at most one
//! tick per lane ahead of it, however many of its own reviews are waiting.
//!
//! Waiting costs no CPU budget (that is thread CPU time) and ends at the
//! review's deadline, so a guest starved here is interrupted as one past
//! its deadline, like a guest the kernel starved before.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::Thread;
use std::time::Instant;

use prometheus_client::metrics::counter::Counter;

/// A scheduling lane: evaluations of one policy (or one bundle).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Lane(u64);

impl Lane {
    /// The lane of the policy (or bundle) named `id`.
    pub fn of(id: &str) -> Self {
        use std::hash::{BuildHasher, BuildHasherDefault};
        let hasher = BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default();
        Self(hasher.hash_one(id))
    }
}

/// The run slots of one sandbox.
#[derive(Debug)]
pub struct RunQueue {
    state: Mutex<State>,
    /// Counts every wait for a turn.
    waits: Counter,
    /// Lanes marked long, by hash bucket: read on every evaluation, so no
    /// lock. A collision only makes a short lane queue at its start.
    long: [AtomicBool; LONG_BUCKETS],
}

const LONG_BUCKETS: usize = 64;

#[derive(Debug)]
struct State {
    free: usize,
    /// Lanes with waiters, in the order they get the next slot.
    turn: VecDeque<Lane>,
    waiting: HashMap<Lane, VecDeque<Arc<Waiter>>>,
}

#[derive(Debug)]
struct Waiter {
    thread: Thread,
    granted: AtomicBool,
}

/// A running guest's slot; given back when dropped.
#[derive(Debug)]
pub struct RunSlot {
    queue: Arc<RunQueue>,
    lane: Lane,
    /// False once [`RunSlot::share`] gave the slot away for good.
    held: bool,
}

impl RunQueue {
    /// `slots` guests may run at once (at least one); each wait for a turn
    /// counts in `waits`.
    pub fn new(slots: usize, waits: Counter) -> Arc<Self> {
        Arc::new(Self {
            waits,
            long: std::array::from_fn(|_| AtomicBool::new(false)),
            state: Mutex::new(State {
                free: slots.max(1),
                turn: VecDeque::new(),
                waiting: HashMap::new(),
            }),
        })
    }

    /// Waits for a slot for `lane` until `deadline`; `None` if the
    /// deadline came first.
    pub fn acquire(self: &Arc<Self>, lane: Lane, deadline: Instant) -> Option<RunSlot> {
        let mut state = self.lock();
        // Free slots and waiters never coexist: a freed slot is handed to
        // a waiter directly.
        if state.free > 0 {
            state.free -= 1;
            return Some(self.slot(lane));
        }
        let waiter = state.enqueue(lane, false);
        drop(state);
        self.waits.inc();
        self.wait(lane, &waiter, deadline).then(|| self.slot(lane))
    }

    /// Whether `lane`'s guests recently ran a whole tick.
    pub fn is_long(&self, lane: Lane) -> bool {
        self.bucket(lane).load(Ordering::Relaxed)
    }

    /// Marks `lane` long (a guest ran a whole tick) or short (one finished
    /// inside a tick).
    pub fn mark(&self, lane: Lane, long: bool) {
        let bucket = self.bucket(lane);
        if bucket.load(Ordering::Relaxed) != long {
            bucket.store(long, Ordering::Relaxed);
        }
    }

    fn bucket(&self, lane: Lane) -> &AtomicBool {
        &self.long[(lane.0 % LONG_BUCKETS as u64) as usize]
    }

    fn slot(self: &Arc<Self>, lane: Lane) -> RunSlot {
        RunSlot {
            queue: self.clone(),
            lane,
            held: true,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is consistent between statements: a panic elsewhere
        // cannot leave it half-updated.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Parks until `waiter` is granted a slot or `deadline` passes; true
    /// when granted.
    fn wait(&self, lane: Lane, waiter: &Arc<Waiter>, deadline: Instant) -> bool {
        loop {
            if waiter.granted.load(Ordering::Acquire) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                let mut state = self.lock();
                // Granted between the check and the lock: keep it (the
                // guest then stops at its deadline and gives it back).
                if waiter.granted.load(Ordering::Acquire) {
                    return true;
                }
                state.remove(lane, waiter);
                return false;
            }
            std::thread::park_timeout(deadline - now);
        }
    }

    /// Gives a slot of `from` to the next lane's oldest waiter, or frees it.
    fn hand_off(state: &mut State, from: Option<Lane>) {
        match state.next_waiter(from) {
            Some(waiter) => {
                waiter.granted.store(true, Ordering::Release);
                waiter.thread.unpark();
            }
            None => state.free += 1,
        }
    }
}

impl State {
    /// Adds a waiter for `lane`: at the back of its lane, or at the front
    /// for a guest that was running (it is older than its lane's waiters).
    fn enqueue(&mut self, lane: Lane, front: bool) -> Arc<Waiter> {
        let waiter = Arc::new(Waiter {
            thread: std::thread::current(),
            granted: AtomicBool::new(false),
        });
        let queue = self.waiting.entry(lane).or_default();
        if queue.is_empty() {
            self.turn.push_back(lane);
        }
        if front {
            queue.push_front(waiter.clone());
        } else {
            queue.push_back(waiter.clone());
        }
        waiter
    }

    fn remove(&mut self, lane: Lane, waiter: &Arc<Waiter>) {
        if let Some(queue) = self.waiting.get_mut(&lane) {
            queue.retain(|w| !Arc::ptr_eq(w, waiter));
            if queue.is_empty() {
                self.waiting.remove(&lane);
                self.turn.retain(|l| *l != lane);
            }
        }
    }

    /// Whether a lane other than `lane` is waiting.
    fn others_wait(&self, lane: Lane) -> bool {
        self.turn.iter().any(|l| *l != lane)
    }

    /// The oldest waiter of the first lane in turn, skipping `skip` (a
    /// running guest gives its slot to another lane, not its own); that
    /// lane goes to the back of the turn if it still has waiters.
    fn next_waiter(&mut self, skip: Option<Lane>) -> Option<Arc<Waiter>> {
        let position = self.turn.iter().position(|l| Some(*l) != skip)?;
        let lane = self.turn.remove(position)?;
        let queue = self.waiting.get_mut(&lane)?;
        let waiter = queue.pop_front()?;
        if queue.is_empty() {
            self.waiting.remove(&lane);
        } else {
            self.turn.push_back(lane);
        }
        Some(waiter)
    }
}

impl RunSlot {
    /// Called by the running guest at each tick: if another lane is
    /// waiting, gives it this slot and waits for a turn again. False when
    /// `deadline` passed while waiting (the slot is then not held, and the
    /// guest must stop).
    pub fn share(&mut self, deadline: Instant) -> bool {
        if !self.held {
            return false;
        }
        let mut state = self.queue.lock();
        if !state.others_wait(self.lane) {
            return true;
        }
        RunQueue::hand_off(&mut state, Some(self.lane));
        let waiter = state.enqueue(self.lane, true);
        drop(state);
        self.queue.waits.inc();
        // Not held any more when the wait failed: `Drop` must not give it
        // back twice.
        self.held = self.queue.wait(self.lane, &waiter, deadline);
        self.held
    }
}

impl Drop for RunSlot {
    fn drop(&mut self) {
        if !self.held {
            return;
        }
        let mut state = self.queue.lock();
        RunQueue::hand_off(&mut state, None);
    }
}

#[cfg(test)]
mod tests;
