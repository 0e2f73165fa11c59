//! ABI v2 bundles: the rules of one module that a review enters share one
//! instance; a bundle that fails in any way is re-run rule by rule, so a
//! hostile rule never changes a good rule's verdict; repairs compose across
//! a bundle in configuration order; v1 modules keep one instance per rule.

mod common;

use std::time::{Duration, Instant};

use common::{BUILTINS, body, request_of, review, sandbox};
use serde_json::json;
use tollgate_context::EmptyContext;
use tollgate_host::{Config, Decision, Effect, Endpoint, PolicySet, Sandbox};
use tollgate_sdk::PatchOp;

/// One policy of `module` (`guests` or `guests-v2`) running `rule`.
fn policy(id: &str, module: &str, rule: &str, extra: &str) -> String {
    format!("- id: {id}\n  module: builtin:{module}\n  rule: {rule}\n{extra}")
}

fn load(sandbox: &Sandbox, policies: &[String]) -> PolicySet {
    let config = Config::from_yaml(&policies.concat(), "test.yaml").unwrap();
    PolicySet::load(&config, sandbox, BUILTINS, std::path::Path::new(".")).unwrap()
}

/// Judges a Deployment CREATE (`replicas: 3`) and counts the instances it took.
fn judge(
    sandbox: &Sandbox,
    set: &PolicySet,
    endpoint: Endpoint,
    within: Duration,
) -> (Decision, u64) {
    let object = json!({"metadata": {"name": "x"}, "spec": {"replicas": 3}});
    let body = body(&request_of("apps", "Deployment", "CREATE", Some(object)));
    let review = review(&body);
    let before = sandbox.stats().instances.get();
    let decision = set.judge(
        &review,
        endpoint,
        Instant::now() + within,
        &EmptyContext::shared(),
    );
    (decision, sandbox.stats().instances.get() - before)
}

const SECOND: Duration = Duration::from_secs(1);

/// `(policy id, effect)` of every outcome, in configuration order.
fn effects<'d>(set: &'d PolicySet, decision: &'d Decision) -> Vec<(&'d str, &'d Effect)> {
    decision
        .outcomes
        .iter()
        .map(|o| (set.policies()[o.policy].id.as_str(), &o.effect))
        .collect()
}

#[test]
fn each_module_is_instantiated_once_per_review_when_nothing_fails() {
    let sandbox = sandbox();
    let set = load(
        &sandbox,
        &[
            policy("first-count", "guests-v2", "counter", ""),
            policy("v1-allow", "guests", "allow", ""),
            policy("denier", "guests-v2", "deny", ""),
            policy("second-count", "guests-v2", "counter", ""),
            policy("v1-count", "guests", "counter", ""),
        ],
    );
    let (decision, instances) = judge(&sandbox, &set, Endpoint::Validate, SECOND);
    // One instance for the v2 module's three rules, one per v1 rule.
    assert_eq!(instances, 1 + 2);
    assert_eq!(
        decision.denial.as_deref(),
        Some("denier: denied by the deny rule")
    );
    // The two v2 counters ran in the same instance; the v1 one alone.
    assert_eq!(
        decision.warnings,
        [
            "first-count: count=1",
            "second-count: count=2",
            "v1-count: count=1"
        ]
    );
    assert_eq!(decision.outcomes.len(), 5);
}

/// A bundle of good rules around `hostile`: the good verdicts are those the
/// rules give alone, and the hostile one gets its failure verdict.
fn bundle_with(hostile: &str, timeout: &str) -> (PolicySet, Decision, u64, Duration) {
    let sandbox = sandbox();
    let set = load(
        &sandbox,
        &[
            policy("good-deny", "guests-v2", "deny", ""),
            policy(
                "hostile",
                "guests-v2",
                hostile,
                &format!("  cpuBudget: {timeout}\n"),
            ),
            policy("good-count", "guests-v2", "counter", ""),
            policy("good-allow", "guests-v2", "allow", ""),
        ],
    );
    let started = Instant::now();
    let (decision, instances) = judge(&sandbox, &set, Endpoint::Validate, 10 * SECOND);
    (set, decision, instances, started.elapsed())
}

#[test]
fn a_hostile_rule_in_a_bundle_never_changes_a_good_rules_verdict() {
    for (hostile, cause, detail) in [
        ("spin", "deadline", "exceeded its CPU budget of 100ms"),
        ("grow", "memory", "exceeded its memory cap"),
        ("panic", "trap", "panic: the panic rule always panics"),
        ("garbage", "output", "not a list of verdicts"),
        ("out-of-bounds", "output", "outside the guest's"),
    ] {
        let (set, decision, instances, elapsed) = bundle_with(hostile, "100ms");
        let effects = effects(&set, &decision);
        assert_eq!(
            effects[0],
            (
                "good-deny",
                &Effect::Deny("good-deny: denied by the deny rule".into())
            ),
            "{hostile}"
        );
        let (
            "hostile",
            Effect::Failure {
                cause: c,
                message,
                deny: true,
            },
        ) = effects[1]
        else {
            panic!("{hostile}: {:?}", effects[1])
        };
        assert_eq!(c.as_str(), cause, "{hostile}: {message}");
        let prefix = format!("hostile: policy failed ({cause}): ");
        assert!(message.starts_with(&prefix), "{hostile}: {message}");
        assert!(message.contains(detail), "{hostile}: {message}");
        assert_eq!(effects[3], ("good-allow", &Effect::Allow), "{hostile}");
        // The counter ran again alone, in a fresh instance.
        assert_eq!(decision.warnings, ["good-count: count=1"], "{hostile}");
        // The failed bundle, then each of the four rules alone.
        assert_eq!(instances, 1 + 4, "{hostile}");
        // Spin costs its deadline twice (bundle, then alone), no more.
        assert!(elapsed < Duration::from_secs(2), "{hostile}: {elapsed:?}");
    }
}

#[test]
fn a_wrong_number_of_verdicts_fails_the_bundle_not_its_rules() {
    let (set, decision, instances, _) = bundle_with("wrong-count", "1s");
    let effects = effects(&set, &decision);
    assert_eq!(effects[3], ("good-allow", &Effect::Allow));
    let Effect::Failure { message, .. } = effects[1].1 else {
        panic!("{:?}", effects[1])
    };
    // Alone, the rule's answer is no list of one verdict either.
    assert!(
        message.starts_with("hostile: policy failed (output): ")
            && message.contains("returned 0 verdicts for 1 rules"),
        "{message}"
    );
    assert_eq!(decision.warnings, ["good-count: count=1"]);
    assert_eq!(instances, 1 + 4);
}

#[test]
fn a_bundle_runs_under_its_earliest_deadline_and_its_rules_under_their_own() {
    let sandbox = sandbox();
    let set = load(
        &sandbox,
        &[
            policy("quick", "guests-v2", "allow", "  cpuBudget: 50ms\n"),
            policy("slow", "guests-v2", "spin", "  cpuBudget: 300ms\n"),
        ],
    );
    let started = Instant::now();
    let (decision, instances) = judge(&sandbox, &set, Endpoint::Validate, 10 * SECOND);
    let elapsed = started.elapsed();
    let effects = effects(&set, &decision);
    // The bundle stopped at 50 ms (quick's deadline); alone, quick answers
    // and slow spins to its own 300 ms.
    assert_eq!(effects[0], ("quick", &Effect::Allow));
    let Effect::Failure { message, .. } = effects[1].1 else {
        panic!("{:?}", effects[1])
    };
    assert!(message.contains("CPU budget of 300ms"), "{message}");
    assert_eq!(instances, 3);
    assert!(
        elapsed >= Duration::from_millis(350) && elapsed < Duration::from_secs(2),
        "{elapsed:?}"
    );
}

#[test]
fn a_review_past_its_deadline_starts_no_instance() {
    let sandbox = sandbox();
    let set = load(
        &sandbox,
        &[
            policy("a", "guests-v2", "allow", ""),
            policy("b", "guests-v2", "allow", ""),
            policy("c", "guests", "allow", ""),
        ],
    );
    let (decision, instances) = judge(&sandbox, &set, Endpoint::Validate, Duration::ZERO);
    assert_eq!(instances, 0);
    for (id, effect) in effects(&set, &decision) {
        assert_eq!(
            effect,
            &Effect::Failure {
                cause: tollgate_host::FailureCause::Deadline,
                message: format!(
                    "{id}: policy failed (deadline): deadline already passed before the evaluation started"
                ),
                deny: true,
            }
        );
    }
}

#[test]
fn a_repair_in_a_bundle_is_seen_by_the_policies_after_it() {
    let sandbox = sandbox();
    let set = load(
        &sandbox,
        &[
            policy("before", "guests-v2", "replicas", "  mutate: true\n"),
            policy(
                "fix",
                "guests-v2",
                "patch",
                "  mutate: true\n  settings: [{op: replace, path: /spec/replicas, value: 1}]\n",
            ),
            policy("after", "guests-v2", "replicas", "  mutate: true\n"),
            policy("v1-after", "guests", "replicas", "  mutate: true\n"),
        ],
    );
    let (decision, instances) = judge(&sandbox, &set, Endpoint::Mutate, SECOND);
    // `before` is judged on the object as sent, the others after the repair.
    assert_eq!(
        decision.warnings,
        [
            "before: replicas=3",
            "after: replicas=1",
            "v1-after: replicas=1"
        ]
    );
    assert_eq!(
        decision.patch,
        [PatchOp::replace("/spec/replicas", json!(1))]
    );
    assert!(decision.allowed());
    // Round one: the v2 bundle (before, fix, after); the repair by `fix`
    // makes `after`'s verdict stale and leaves the v1 module unevaluated, so
    // round two runs `after` (a bundle of one) and v1-after.
    assert_eq!(instances, 1 + 2);

    // /validate never repairs: one instance per module, all on the object as sent.
    let (decision, instances) = judge(&sandbox, &set, Endpoint::Validate, SECOND);
    assert_eq!(instances, 2);
    assert_eq!(decision.denial.as_deref(), Some("fix: repairable"));
    assert_eq!(
        decision.warnings,
        [
            "before: replicas=3",
            "after: replicas=3",
            "v1-after: replicas=3"
        ]
    );
    assert!(decision.patch.is_empty());
}

#[test]
fn a_repair_that_does_not_apply_fails_its_policy_and_keeps_the_object() {
    let sandbox = sandbox();
    let set = load(
        &sandbox,
        &[
            policy(
                "broken",
                "guests-v2",
                "patch",
                "  mutate: true\n  settings: [{op: remove, path: /spec/missing}]\n",
            ),
            policy("after", "guests-v2", "replicas", "  mutate: true\n"),
        ],
    );
    let (decision, instances) = judge(&sandbox, &set, Endpoint::Mutate, SECOND);
    let denial = decision.denial.as_deref().unwrap();
    assert!(
        denial.starts_with("broken: policy failed (output): ") && denial.contains("does not apply"),
        "{denial}"
    );
    // Nothing was repaired, so `after`'s verdict from the bundle stands.
    assert_eq!(decision.warnings, ["after: replicas=3"]);
    assert_eq!(instances, 1);
}

#[test]
fn policies_differing_in_bulky_fields_never_share_an_instance() {
    let sandbox = sandbox();
    let set = load(
        &sandbox,
        &[
            policy("lean", "guests-v2", "counter", ""),
            policy("bulky", "guests-v2", "counter", "  bulkyFields: true\n"),
        ],
    );
    let (decision, instances) = judge(&sandbox, &set, Endpoint::Validate, SECOND);
    assert_eq!(instances, 2);
    assert_eq!(decision.warnings, ["lean: count=1", "bulky: count=1"]);
}
