//! Long guests take turns on the CPUs (`SandboxLimits::running` at once):
//! a policy whose guests hold every running slot cannot keep another
//! policy off the CPUs, waiting for a turn costs no CPU budget, and short
//! evaluations never wait.

mod common;

use std::time::{Duration, Instant};

use common::{REQUEST, eval, load, sandbox_running};
use tollgate_context::EmptyContext;
use tollgate_host::{EvalError, FailureCause, PolicySet, Sandbox};

const SECOND: Duration = Duration::from_secs(1);

/// The spinners of one test would slow the short evaluations of another
/// past a tick: one test at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// A policy `id` whose guest spins until its CPU budget `timeout` is spent.
fn spinner(sandbox: &Sandbox, id: &str, timeout: &str) -> PolicySet {
    load(
        sandbox,
        &format!("- id: {id}\n  module: builtin:guests\n  rule: spin\n  cpuBudget: {timeout}\n"),
    )
    .unwrap()
}

#[test]
fn a_healthy_policy_gets_a_turn_while_spinners_hold_every_running_slot() {
    let _serial = serial();
    // One running slot and three spinning reviews of one policy: without
    // turns between policies `allow` would wait for all of them.
    let sandbox = sandbox_running(1);
    let set = load(
        &sandbox,
        "- id: spin\n  module: builtin:guests\n  rule: spin\n  cpuBudget: 10s\n\
         - id: allow\n  module: builtin:guests\n  rule: allow\n",
    )
    .unwrap();
    let [spin, allow] = [&set.policies()[0], &set.policies()[1]];
    std::thread::scope(|s| {
        let deadline = Instant::now() + SECOND * 2;
        // Each spinner's deadline counts from when its thread runs (so never
        // before the test's own): on a loaded machine a thread may start
        // late, and a review whose deadline passed before it started tests
        // nothing about turns.
        let spinners: Vec<_> = (0..3)
            .map(|_| {
                s.spawn(move || {
                    let own = Instant::now() + SECOND * 2;
                    spin.evaluate(REQUEST, own, &EmptyContext::shared())
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(200));
        for _ in 0..5 {
            let verdict = allow
                .evaluate(REQUEST, Instant::now() + SECOND, &EmptyContext::shared())
                .expect("a turn before the deadline");
            assert!(verdict.allowed);
        }
        assert!(Instant::now() < deadline, "the spinners outlived the test");
        // The running spinner is stopped at the deadline; the other two of
        // its lane waited for a turn behind it after their first tick (a
        // lane runs its own evaluations to completion) until the deadline.
        for spinner in spinners {
            let err = spinner.join().unwrap().unwrap_err();
            assert_eq!(err.to_string(), "no verdict before the review deadline");
        }
    });
    assert!(sandbox.stats().cpu_waits.get() >= 2);
}

#[test]
fn short_evaluations_never_wait_for_a_turn() {
    let _serial = serial();
    // Faster than one tick: they run at once, however many run together,
    // and never touch the run queue (each wait costs a thread wake-up).
    let sandbox = sandbox_running(1);
    let allow = load(
        &sandbox,
        "- id: allow\n  module: builtin:guests\n  rule: allow\n  cpuBudget: 1s\n",
    )
    .unwrap();
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..25 {
                    assert!(eval(&allow, SECOND * 5).unwrap().allowed);
                }
            });
        }
    });
    assert_eq!(sandbox.stats().cpu_waits.get(), 0);
}

#[test]
fn waiting_for_a_turn_costs_no_cpu_budget() {
    let _serial = serial();
    // Two policies spinning on one running slot: each is charged only its
    // own CPU time, so each stops at its 200 ms budget, and together they
    // cannot have finished in much less than the sum (each runs its first
    // tick or two, up to 10 ms, before it needs a slot).
    let sandbox = sandbox_running(1);
    let (a, b) = (
        spinner(&sandbox, "spin-a", "200ms"),
        spinner(&sandbox, "spin-b", "200ms"),
    );
    let started = Instant::now();
    let (ra, rb) = std::thread::scope(|s| {
        let ta = s.spawn(|| eval(&a, SECOND * 10));
        let tb = s.spawn(|| eval(&b, SECOND * 10));
        (ta.join().unwrap(), tb.join().unwrap())
    });
    for result in [ra, rb] {
        let err = result.unwrap_err();
        assert!(
            matches!(err, EvalError::CpuBudget(b) if b == Duration::from_millis(200)),
            "{err:?}"
        );
        assert_eq!(err.cause(), FailureCause::Deadline);
    }
    assert!(
        started.elapsed() >= Duration::from_millis(350),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn load_time_calls_do_not_wait_for_a_turn() {
    let _serial = serial();
    // A reload compiles and describes modules while spinners hold the one
    // running slot: it is not queued behind them.
    let sandbox = sandbox_running(1);
    let spin = spinner(&sandbox, "spin", "10s");
    std::thread::scope(|s| {
        let spinning = s.spawn(|| eval(&spin, SECOND * 2));
        std::thread::sleep(Duration::from_millis(100));
        let started = Instant::now();
        load(
            &sandbox,
            "- id: other\n  module: builtin:guests-v2\n  rule: allow\n",
        )
        .expect("a load beside a spinner");
        assert!(
            !spinning.is_finished(),
            "the spinner should still hold its slot"
        );
        assert!(started.elapsed() < SECOND * 2);
        assert!(spinning.join().unwrap().is_err());
    });
}

#[test]
fn a_long_policy_queues_before_it_starts() {
    // Once a lane's guest ran a whole tick its next evaluations wait for a
    // slot before they take an instance: a burst of a spinning policy's
    // reviews does not put each of them on a CPU for a tick first.
    let _serial = serial();
    let sandbox = sandbox_running(1);
    let spin = spinner(&sandbox, "spin", "10s");
    std::thread::scope(|s| {
        let running = s.spawn(|| eval(&spin, SECOND * 2));
        std::thread::sleep(Duration::from_millis(200));
        let instances = sandbox.stats().instances.get();
        let err = eval(&spin, Duration::from_millis(200)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "deadline already passed before the evaluation started"
        );
        assert_eq!(
            sandbox.stats().instances.get(),
            instances,
            "it took no instance"
        );
        assert!(running.join().unwrap().is_err());
    });
}
