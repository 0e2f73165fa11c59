//! Shared helpers: a sandbox and policy sets over the test guests.
#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tollgate_context::EmptyContext;
use tollgate_host::{
    Config, EvalError, Parsed, PolicySet, Review, Sandbox, SandboxLimits, Verdict,
};

/// The test guests as the built-in modules `builtin:guests` (ABI v1) and
/// `builtin:guests-v2` (the same rules, ABI v2).
pub const BUILTINS: &[(&str, &[u8])] = &[
    ("guests", tollgate_test_artifacts::TEST_GUESTS),
    ("guests-v2", tollgate_test_artifacts::TEST_GUESTS_V2),
];

/// A sandbox with a small memory cap and no disk cache.
pub fn sandbox() -> Arc<Sandbox> {
    sandbox_running(SandboxLimits::default_running())
}

/// [`sandbox`], with `running` guests on the CPUs at once.
pub fn sandbox_running(running: u32) -> Arc<Sandbox> {
    Sandbox::new(SandboxLimits {
        memory_bytes: 16 << 20,
        tick: Duration::from_millis(5),
        cache_dir: None,
        running,
        ..SandboxLimits::default()
    })
    .expect("sandbox")
}

/// An admission request of `operation` on a `group`/`kind` object.
pub fn request_of(group: &str, kind: &str, operation: &str, object: Option<Value>) -> Value {
    json!({
        "uid": "u1",
        "kind": {"group": group, "version": "v1", "kind": kind},
        "operation": operation,
        "namespace": "kube-system",
        "name": "x",
        "object": object.unwrap_or_else(|| json!({"metadata": {"name": "x"}})),
        "oldObject": null,
    })
}

/// The AdmissionReview body carrying `request`.
pub fn body(request: &Value) -> String {
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request})
        .to_string()
}

/// Parses a body that must be a valid review.
pub fn review(body: &str) -> Review<'_> {
    match Review::parse(body.as_bytes()).expect("a review") {
        Parsed::Review(review) => review,
        other => panic!("expected a review, got {other:?}"),
    }
}

/// Loads a YAML configuration against the test guests.
pub fn load(sandbox: &Sandbox, yaml: &str) -> Result<PolicySet, tollgate_host::LoadError> {
    let config = Config::from_yaml(yaml, "test.yaml")?;
    PolicySet::load(&config, sandbox, BUILTINS, Path::new("."))
}

/// One policy running `rule` of the test guests, with optional extra YAML
/// lines (indented by four spaces).
pub fn policy_yaml(rule: &str, extra: &str) -> String {
    format!("- id: {rule}-policy\n  module: builtin:guests\n  rule: {rule}\n{extra}")
}

pub fn single(sandbox: &Sandbox, rule: &str, extra: &str) -> PolicySet {
    load(sandbox, &policy_yaml(rule, extra)).unwrap_or_else(|e| panic!("loading {rule}: {e}"))
}

/// A small admission request.
pub const REQUEST: &[u8] = br#"{"uid":"u1","kind":{"group":"apps","version":"v1","kind":"Deployment"},"operation":"CREATE","namespace":"kube-system","name":"x","object":{"metadata":{"name":"x"}}}"#;

/// Evaluates the only policy of `set` on [`REQUEST`] within `timeout`.
pub fn eval(set: &PolicySet, timeout: Duration) -> Result<Verdict, EvalError> {
    set.policies()[0].evaluate(REQUEST, Instant::now() + timeout, &EmptyContext::shared())
}
