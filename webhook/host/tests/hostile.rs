//! Hostile guests yield their policy's failure cause, promptly, and never
//! disturb other evaluations.

mod common;

use std::time::{Duration, Instant};

use common::{eval, sandbox, single};
use tollgate_host::{EvalError, FailureCause};
use tollgate_sdk::PatchOp;

const SECOND: Duration = Duration::from_secs(1);

#[test]
fn allow_and_deny_answer_their_verdicts() {
    let sandbox = sandbox();
    let allow = eval(&single(&sandbox, "allow", ""), SECOND).unwrap();
    assert!(allow.allowed);
    let deny = eval(&single(&sandbox, "deny", ""), SECOND).unwrap();
    assert!(!deny.allowed);
    assert_eq!(deny.message.as_deref(), Some("denied by the deny rule"));
}

#[test]
fn spin_is_interrupted_at_its_deadline() {
    let sandbox = sandbox();
    let set = single(&sandbox, "spin", "  cpuBudget: 50ms\n");
    let started = Instant::now();
    let err = eval(&set, SECOND).unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err, EvalError::CpuBudget(_)), "{err:?}");
    assert_eq!(err.to_string(), "exceeded its CPU budget of 50ms");
    assert_eq!(err.cause(), FailureCause::Deadline);
    assert!(
        took >= Duration::from_millis(50),
        "interrupted early: {took:?}"
    );
    assert!(took < SECOND, "took {took:?}");
}

#[test]
fn grow_hits_the_memory_cap() {
    let sandbox = sandbox();
    let err = eval(&single(&sandbox, "grow", ""), SECOND).unwrap_err();
    assert!(
        matches!(err, EvalError::Memory(n) if n == 16 << 20),
        "{err:?}"
    );
    assert_eq!(err.cause(), FailureCause::Memory);
}

#[test]
fn panic_message_is_surfaced() {
    let sandbox = sandbox();
    let err = eval(&single(&sandbox, "panic", ""), SECOND).unwrap_err();
    let EvalError::Trap(message) = &err else {
        panic!("{err:?}")
    };
    assert!(
        message.contains("panic: the panic rule always panics"),
        "{message}"
    );
    assert!(message.contains("unreachable"), "{message}");
    assert_eq!(err.cause(), FailureCause::Trap);
}

#[test]
fn garbage_and_out_of_bounds_are_output_errors() {
    let sandbox = sandbox();
    for rule in ["garbage", "out-of-bounds"] {
        let err = eval(&single(&sandbox, rule, ""), SECOND).unwrap_err();
        assert!(matches!(err, EvalError::Output(_)), "{rule}: {err:?}");
    }
    let EvalError::Output(message) =
        eval(&single(&sandbox, "out-of-bounds", ""), SECOND).unwrap_err()
    else {
        unreachable!()
    };
    assert!(message.contains("outside the guest's"), "{message}");
}

#[test]
fn patch_is_returned_with_the_violation() {
    let sandbox = sandbox();
    let set = single(
        &sandbox,
        "patch",
        "  mutate: true\n  settings: [{op: replace, path: /spec/replicas, value: 1}]\n",
    );
    let verdict = eval(&set, SECOND).unwrap();
    assert!(!verdict.allowed);
    assert_eq!(
        verdict.patch,
        Some(vec![PatchOp::replace(
            "/spec/replicas",
            serde_json::json!(1)
        )])
    );
}

#[test]
fn a_patch_that_is_not_rfc6902_is_an_output_error() {
    let sandbox = sandbox();
    let set = single(&sandbox, "patch", "  settings: {not: a patch}\n");
    let err = eval(&set, SECOND).unwrap_err();
    assert!(matches!(err, EvalError::Output(_)), "{err:?}");
}

#[test]
fn no_state_survives_an_evaluation() {
    let sandbox = sandbox();
    let set = single(&sandbox, "counter", "");
    for _ in 0..5 {
        assert_eq!(
            eval(&set, SECOND).unwrap().warnings,
            vec!["count=1".to_owned()]
        );
    }
}

#[test]
fn hostile_evaluations_do_not_disturb_others() {
    let sandbox = sandbox();
    let spin = single(&sandbox, "spin", "  cpuBudget: 300ms\n");
    let grow = single(&sandbox, "grow", "");
    let allow = single(&sandbox, "allow", "");
    let deny = single(&sandbox, "deny", "");
    std::thread::scope(|s| {
        let hostile = [
            s.spawn(|| eval(&spin, Duration::from_millis(300))),
            s.spawn(|| eval(&grow, Duration::from_millis(300))),
        ];
        let ordinary: Vec<_> = (0..4)
            .map(|i| {
                let (allow, deny) = (&allow, &deny);
                s.spawn(move || {
                    let mut answered = 0;
                    let until = Instant::now() + Duration::from_millis(250);
                    while Instant::now() < until {
                        let set = if i % 2 == 0 { allow } else { deny };
                        let verdict = eval(set, SECOND).expect("ordinary evaluation");
                        assert_eq!(verdict.allowed, i % 2 == 0);
                        answered += 1;
                    }
                    answered
                })
            })
            .collect();
        for thread in ordinary {
            assert!(thread.join().unwrap() > 0);
        }
        let [spin, grow] = hostile.map(|t| t.join().unwrap().unwrap_err().cause());
        assert_eq!((spin, grow), (FailureCause::Deadline, FailureCause::Memory));
    });
}

#[test]
fn a_past_deadline_still_interrupts() {
    let sandbox = sandbox();
    let set = single(&sandbox, "spin", "");
    let started = Instant::now();
    let err = eval(&set, Duration::ZERO).unwrap_err();
    assert!(matches!(err, EvalError::Unfinished), "{err:?}");
    assert_eq!(err.to_string(), "no verdict before the review deadline");
    assert!(started.elapsed() < SECOND);
}
