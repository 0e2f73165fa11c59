//! The CPU time of the calling thread: what a policy's `timeout` measures,
//! so that a guest waiting for a core (spinners elsewhere, a busy node) is
//! not failed for time it never ran.

use std::time::Duration;

/// CPU time consumed so far by the calling thread (`CLOCK_THREAD_CPUTIME_ID`).
#[cfg(unix)]
pub fn thread_cpu_time() -> Duration {
    // This clock cannot fail (rustix's `clock_gettime` is infallible for
    // the clocks every supported Unix provides).
    let ts = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    // A CPU clock never reads negative; 0 would leave the wall-clock review
    // deadline as the bound.
    Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}

/// Without a thread CPU clock the budget degrades to the wall clock.
#[cfg(not(unix))]
pub fn thread_cpu_time() -> Duration {
    use std::sync::OnceLock;
    static START: OnceLock<std::time::Instant> = OnceLock::new();
    START.get_or_init(std::time::Instant::now).elapsed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sleeping_thread_uses_no_cpu_and_a_spinning_one_does() {
        let before = thread_cpu_time();
        std::thread::sleep(Duration::from_millis(50));
        let slept = thread_cpu_time() - before;
        assert!(slept < Duration::from_millis(20), "{slept:?}");
        // Spinning advances it (however busy the machine: bounded by a
        // generous wall-clock cap).
        let started = std::time::Instant::now();
        while thread_cpu_time() - before < Duration::from_millis(20) {
            assert!(started.elapsed() < Duration::from_secs(10));
            std::hint::black_box(0u64);
        }
    }
}
