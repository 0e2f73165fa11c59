//! A judgement evaluated where its request is ([`Judgement::evaluate_here`],
//! what the server does first, on its async worker): short guests finish
//! there with the same decision [`PolicySet::judge`] gives; a guest that
//! runs a whole tick is handed off with nothing recorded or settled, and
//! its policy's next reviews are handed off before they start.

mod common;

use std::time::{Duration, Instant};

use common::{body, load, request_of, review, sandbox};
use serde_json::json;
use tollgate_context::EmptyContext;
use tollgate_host::{Endpoint, EvalError, HandedOff, PolicySet};

const SECOND: Duration = Duration::from_secs(1);

fn request() -> String {
    body(&request_of(
        "apps",
        "Deployment",
        "CREATE",
        Some(json!({"metadata": {"name": "x"}})),
    ))
}

/// Policies of `rules` (in order), all of the ABI v2 test module, so that
/// they share one instance (a bundle).
fn bundle(rules: &[&str]) -> String {
    rules
        .iter()
        .map(|rule| {
            format!("- id: {rule}\n  module: builtin:guests-v2\n  rule: {rule}\n  cpuBudget: 2s\n")
        })
        .collect()
}

#[test]
fn short_guests_are_judged_here_as_judge_judges_them() {
    let sandbox = sandbox();
    let set = load(&sandbox, &bundle(&["allow", "deny"])).unwrap();
    let body = request();
    let review = review(&body);
    let deadline = Instant::now() + SECOND * 5;
    let mut judgement = set.start(Endpoint::Validate, &review);
    assert_eq!(judgement.selected(), [0, 1]);
    let selected = judgement.selected().to_vec();
    let mut settled = Vec::new();
    judgement
        .evaluate_here(
            &review,
            &selected,
            deadline,
            &EmptyContext::shared(),
            &mut |o| settled.push(o.policy),
        )
        .expect("short guests are not handed off");
    assert_eq!(settled, [0, 1]);
    assert_eq!(sandbox.stats().handed_off.get(), 0);
    let here = judgement.decide(&EvalError::Unfinished);
    let judged = set.judge(
        &review,
        Endpoint::Validate,
        deadline,
        &EmptyContext::shared(),
    );
    assert_eq!(here.denial, judged.denial);
    assert_eq!(
        here.denial.as_deref(),
        Some("deny: denied by the deny rule")
    );
    let labels = |d: &tollgate_host::Decision| -> Vec<&str> {
        d.outcomes.iter().map(|o| o.effect.label()).collect()
    };
    assert_eq!(labels(&here), labels(&judged));
}

/// A spinner beside a healthy rule in one bundle: the bundle is handed off
/// whole (its rules are not run alone on the async worker), nothing is
/// settled or recorded, and the review can then be judged elsewhere.
#[test]
fn a_guest_running_a_whole_tick_is_handed_off_with_nothing_recorded() {
    let sandbox = sandbox();
    let set = load(&sandbox, &bundle(&["allow", "spin"])).unwrap();
    let body = request();
    let review = review(&body);
    let mut judgement = set.start(Endpoint::Validate, &review);
    let selected = judgement.selected().to_vec();
    let mut settled = 0;
    let started = Instant::now();
    let here = judgement.evaluate_here(
        &review,
        &selected,
        Instant::now() + SECOND * 5,
        &EmptyContext::shared(),
        &mut |_| settled += 1,
    );
    let held = started.elapsed();
    assert_eq!(here, Err(HandedOff));
    assert_eq!(settled, 0);
    assert_eq!(sandbox.stats().handed_off.get(), 1);
    // Handed off after about a tick of CPU (5 ms), far from the 2 s budget.
    assert!(held < SECOND, "held the thread for {held:?}");
    // Nothing was recorded: deciding now fails both policies for the reason
    // given, as the server does when the handed-off evaluation never reports.
    let decision = judgement.decide(&EvalError::Aborted);
    assert_eq!(decision.outcomes.len(), 2);
    assert!(decision.outcomes.iter().all(|o| o.failure().is_some()));
}

#[test]
fn a_policy_known_to_run_long_is_handed_off_before_it_starts() {
    let sandbox = sandbox();
    let set = load(&sandbox, &bundle(&["spin"])).unwrap();
    let body = request();
    let review = review(&body);
    let here = |set: &PolicySet| {
        let mut judgement = set.start(Endpoint::Validate, &review);
        let selected = judgement.selected().to_vec();
        let deadline = Instant::now() + SECOND * 5;
        judgement.evaluate_here(
            &review,
            &selected,
            deadline,
            &EmptyContext::shared(),
            &mut |_| {},
        )
    };
    assert_eq!(here(&set), Err(HandedOff));
    let instances = sandbox.stats().instances.get();
    assert_eq!(here(&set), Err(HandedOff));
    assert_eq!(
        sandbox.stats().instances.get(),
        instances,
        "a lane known to be long must not start an instance on the async worker"
    );
    assert_eq!(sandbox.stats().handed_off.get(), 2);
}

/// The offline path never hands off: a spinner gets its verdict (its CPU
/// budget failure) on the calling thread.
#[test]
fn judge_runs_long_guests_to_their_budget() {
    let sandbox = sandbox();
    let set = load(
        &sandbox,
        "- id: spin\n  module: builtin:guests-v2\n  rule: spin\n  cpuBudget: 50ms\n",
    )
    .unwrap();
    let body = request();
    let review = review(&body);
    let decision = set.judge(
        &review,
        Endpoint::Validate,
        Instant::now() + SECOND * 5,
        &EmptyContext::shared(),
    );
    let cause = decision.outcomes[0].failure().map(|c| c.as_str());
    assert_eq!(cause, Some("deadline"), "{decision:?}");
}
