//! A policy's `timeout` is CPU time of its own evaluation; the review's
//! deadline is wall time; each failure says which bound it hit; an
//! exhausted instance pool is its own cause, recognised by type.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{REQUEST, eval, single};
use tollgate_context::EmptyContext;
use tollgate_host::{Config, EvalError, FailureCause, PolicySet, Sandbox, SandboxLimits};

const SECOND: Duration = Duration::from_secs(1);

/// Busy threads, more than there are cores, spinning until `until`.
fn hog_cores<'scope>(s: &'scope std::thread::Scope<'scope, '_>, until: Instant) {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()) * 2;
    for _ in 0..threads {
        s.spawn(move || {
            while Instant::now() < until {
                std::hint::black_box(0u64);
            }
        });
    }
}

#[test]
fn a_fast_rule_keeps_its_cpu_budget_while_spinners_hog_the_cores() {
    let sandbox = common::sandbox();
    // 20 ms of CPU is a hundred times what the rule needs, yet a thread
    // that waits for a core can easily spend 20 ms of wall time.
    let allow = single(&sandbox, "allow", "  cpuBudget: 20ms\n");
    let spin = single(&sandbox, "spin", "  cpuBudget: 400ms\n");
    std::thread::scope(|s| {
        let until = Instant::now() + Duration::from_millis(700);
        hog_cores(s, until);
        let spinners: Vec<_> = (0..4)
            .map(|_| s.spawn(|| eval(&spin, SECOND * 5)))
            .collect();
        let mut evaluations = 0;
        while Instant::now() < until {
            let verdict = eval(&allow, SECOND * 5).expect("a fast rule within its CPU budget");
            assert!(verdict.allowed);
            evaluations += 1;
        }
        assert!(evaluations > 0);
        // Their budget, or the wall-clock bound if the shared machine is
        // that busy: the point is the fast rule above.
        for spinner in spinners {
            let err = spinner.join().unwrap().unwrap_err();
            assert!(
                matches!(err, EvalError::CpuBudget(_) | EvalError::Unfinished),
                "{err:?}"
            );
            assert_eq!(err.cause(), FailureCause::Deadline);
        }
    });
}

#[test]
fn a_spinner_starved_of_cpu_is_still_stopped_at_the_review_deadline() {
    let sandbox = common::sandbox();
    let spin = single(&sandbox, "spin", "  cpuBudget: 10s\n");
    let started = Instant::now();
    let err = eval(&spin, Duration::from_millis(100)).unwrap_err();
    assert!(matches!(err, EvalError::Unfinished), "{err:?}");
    assert_eq!(err.to_string(), "no verdict before the review deadline");
    assert!(started.elapsed() < SECOND, "{:?}", started.elapsed());
}

#[test]
fn the_cpu_budget_counts_only_the_evaluations_own_thread() {
    // Wall time well past the budget (other threads hogging the cores),
    // CPU time of the spinner at the budget: it stops at its budget, which
    // took at least that long in wall time.
    let sandbox = common::sandbox();
    let spin = single(&sandbox, "spin", "  cpuBudget: 100ms\n");
    std::thread::scope(|s| {
        hog_cores(s, Instant::now() + Duration::from_millis(600));
        let started = Instant::now();
        let err = eval(&spin, SECOND * 5).unwrap_err();
        assert!(matches!(err, EvalError::CpuBudget(b) if b == Duration::from_millis(100)));
        assert!(started.elapsed() >= Duration::from_millis(100));
    });
}

#[test]
fn an_exhausted_instance_pool_is_its_own_cause() {
    // One evaluation slot (plus the load-time reserve): spinners hold every
    // pooled instance, so the next instantiation fails inside wasmtime.
    // (Enough running slots that every spinner gets as far as its instance.)
    let sandbox = Sandbox::new(SandboxLimits {
        memory_bytes: 16 << 20,
        cache_dir: None,
        instances: 1,
        running: 16,
        ..SandboxLimits::default()
    })
    .unwrap();
    let yaml = "- id: spin\n  module: builtin:guests\n  cpuBudget: 2s\n\
                - id: allow\n  module: builtin:guests\n";
    let config = Config::from_yaml(yaml, "test.yaml").unwrap();
    let set = PolicySet::load(&config, &sandbox, common::BUILTINS, Path::new(".")).unwrap();
    let [spin, allow] = [&set.policies()[0], &set.policies()[1]];
    let pool = 1 + 4;
    std::thread::scope(|s| {
        let spinners: Vec<_> = (0..pool)
            .map(|_| {
                s.spawn(|| spin.evaluate(REQUEST, Instant::now() + SECOND, &EmptyContext::shared()))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(300));
        let err = allow
            .evaluate(REQUEST, Instant::now() + SECOND, &EmptyContext::shared())
            .unwrap_err();
        assert!(matches!(err, EvalError::Pool(_)), "{err:?}");
        assert_eq!(err.cause(), FailureCause::Pool);
        assert!(
            err.to_string().starts_with("no free sandbox instance: "),
            "{err}"
        );
        for spinner in spinners {
            assert!(spinner.join().unwrap().is_err());
        }
    });
}
