use super::*;

fn parse(yaml: &str) -> Result<Config, ConfigError> {
    Config::from_yaml(yaml, "policies.yaml")
}

fn error(yaml: &str) -> String {
    parse(yaml).unwrap_err().to_string()
}

#[test]
fn full_policy_parses_with_every_field() {
    let config = parse(
        r#"
- id: controller-recreate
  module: builtin:calico
  rule: recreate
  mode: warn
  mutate: true
  failurePolicy: ignore
  cpuBudget: 250ms
  settings: {replicas: 1}
  match:
    kinds: [{group: apps, kind: Deployment}]
    operations: [CREATE, UPDATE]
    namespaces: [kube-system]
    names: [calico-policy-controller]
    labelSelector:
      matchLabels: {k8s-app: calico-policy}
      matchExpressions: [{key: tier, operator: In, values: [a, b]}]
  context:
    - {apiVersion: apps/v1, kind: ReplicaSet, namespaces: [kube-system]}
  bulkyFields: true
"#,
    )
    .unwrap();
    let p = &config.policies[0];
    assert_eq!(p.id, "controller-recreate");
    assert_eq!(p.rule_name(), "recreate");
    assert_eq!(p.mode, Mode::Warn);
    assert!(p.mutate && p.bulky_fields);
    assert_eq!(p.failure_policy, FailurePolicy::Ignore);
    assert_eq!(p.cpu_budget, Duration::from_millis(250));
    assert_eq!(p.settings_json(), br#"{"replicas":1}"#);
    assert_eq!(p.matches.kinds[0].group.as_deref(), Some("apps"));
    assert_eq!(
        p.matches.operations,
        vec![Operation::Create, Operation::Update]
    );
    assert_eq!(
        p.context[0].namespaces.as_deref(),
        Some(&["kube-system".to_owned()][..])
    );
}

#[test]
fn defaults_apply() {
    let config = parse("- {id: a, module: a.wasm}").unwrap();
    let p = &config.policies[0];
    assert_eq!(p.rule_name(), "a");
    assert_eq!(p.mode, Mode::Enforce);
    assert_eq!(p.failure_policy, FailurePolicy::Fail);
    assert_eq!(p.cpu_budget, Duration::from_secs(1));
    assert!(!p.mutate && !p.bulky_fields);
    assert_eq!(p.settings_json(), b"{}");
    assert!(p.context.is_empty());
}

#[test]
fn only_an_explicit_list_is_an_empty_configuration() {
    assert!(parse("[]").unwrap().policies.is_empty());
    assert!(
        parse("# none on purpose\n[]\n")
            .unwrap()
            .policies
            .is_empty()
    );
}

/// Issue 10: a file truncated during a rewrite must not load as "no
/// policies" (that failed open); the error names the file and says how to
/// write an intentionally empty set.
#[test]
fn an_empty_whitespace_or_comment_only_file_is_an_error() {
    for text in [
        "",
        "   ",
        "\n \n  \n",
        "# truncated\n",
        "  # a\n# b\n",
        "~",
        "null",
    ] {
        let message = error(text);
        assert!(
            message.starts_with("policies.yaml: "),
            "{text:?}: {message}"
        );
        assert!(message.contains("empty"), "{text:?}: {message}");
        assert!(message.contains("`[]`"), "{text:?}: {message}");
    }
}

/// The grammar is Go's (`crate::duration`): compound durations load.
#[test]
fn compound_durations_load() {
    let config =
        parse("- {id: a, module: a.wasm, cpuBudget: 1.5s, breaker: {coolDown: 1m30s}}").unwrap();
    let policy = &config.policies[0];
    assert_eq!(policy.cpu_budget, Duration::from_millis(1500));
    assert_eq!(policy.breaker.cool_down, Duration::from_secs(90));
    let (_, field, message) = invalid("- {id: a, module: a.wasm, cpuBudget: 1m30s}");
    assert_eq!(field, "cpuBudget");
    assert!(message.contains("outside"), "{message}");
}

#[test]
fn not_a_list_is_refused() {
    assert!(error("id: a").contains("expected a list of policies"));
    assert!(error("- [").starts_with("policies.yaml: "));
}

#[test]
fn serde_errors_name_the_policy_and_field() {
    let yaml = "- {id: a, module: a.wasm}\n- {id: b, module: b.wasm, mode: block}\n";
    let message = error(yaml);
    assert!(
        message.contains("policy b") && message.contains("mode"),
        "{message}"
    );
    assert!(message.contains("block"), "{message}");

    let message = error("- {id: c, module: c.wasm, match: {operations: [CREATE, PATCH]}}");
    assert!(
        message.contains("policy c") && message.contains("match.operations[1]"),
        "{message}"
    );

    let message = error("- {id: d, module: d.wasm, colour: blue}");
    assert!(
        message.contains("policy d") && message.contains("colour"),
        "{message}"
    );

    let message = error("- {module: e.wasm, mode: enforce}\n- {module: f.wasm}");
    assert!(
        message.contains("policy #1") && message.contains("id"),
        "{message}"
    );

    let message = error("- {id: g, module: g.wasm, timeout: 5}");
    assert!(
        message.contains("policy g") && message.contains("timeout"),
        "{message}"
    );

    // `h` is a unit since the grammar is Go's; `d` is not.
    let message = error("- {id: h, module: h.wasm, timeout: 5d}");
    assert!(
        message.contains("policy h") && message.contains("unknown unit"),
        "{message}"
    );
}

fn invalid(yaml: &str) -> (String, &'static str, String) {
    match parse(yaml).unwrap_err() {
        ConfigError::Invalid {
            policy,
            field,
            message,
        } => (policy, field, message),
        other => panic!("expected Invalid, got {other}"),
    }
}

#[test]
fn duplicate_and_empty_ids_are_refused() {
    let (policy, field, _) = invalid("- {id: a, module: a.wasm}\n- {id: a, module: b.wasm}");
    assert_eq!((policy.as_str(), field), ("a", "id"));
    let (policy, field, _) = invalid("- {id: '', module: a.wasm}");
    assert_eq!((policy.as_str(), field), ("#1", "id"));
}

#[test]
fn empty_module_and_rule_are_refused() {
    assert_eq!(invalid("- {id: a, module: ''}").1, "module");
    assert_eq!(invalid("- {id: a, module: a.wasm, rule: ''}").1, "rule");
}

#[test]
fn cpu_budgets_must_be_positive_and_at_most_30s() {
    assert_eq!(
        invalid("- {id: a, module: a.wasm, cpuBudget: 0ms}").1,
        "cpuBudget"
    );
    assert_eq!(
        invalid("- {id: a, module: a.wasm, cpuBudget: 31s}").1,
        "cpuBudget"
    );
    // The deprecated name is checked the same way.
    assert_eq!(
        invalid("- {id: a, module: a.wasm, timeout: 31s}").1,
        "cpuBudget"
    );
    assert!(parse("- {id: a, module: a.wasm, cpuBudget: 30s}").is_ok());
}

/// `timeout` was the name of `cpuBudget`: it still loads, with one warning
/// per policy naming the file, the policy and the new name.
#[test]
fn the_old_timeout_name_loads_with_a_warning() {
    let config = parse(
        "- {id: old, module: a.wasm, timeout: 250ms}\n\
         - {id: new, module: a.wasm, cpuBudget: 300ms}\n\
         - {id: old2, module: a.wasm, timeout: 2s}\n",
    )
    .unwrap();
    let budgets: Vec<_> = config.policies.iter().map(|p| p.cpu_budget).collect();
    assert_eq!(
        budgets,
        [
            Duration::from_millis(250),
            Duration::from_millis(300),
            Duration::from_secs(2)
        ]
    );
    assert_eq!(
        config.warnings,
        [
            "policies.yaml: policy old: `timeout` is deprecated, write `cpuBudget` (CPU time per evaluation)",
            "policies.yaml: policy old2: `timeout` is deprecated, write `cpuBudget` (CPU time per evaluation)",
        ]
    );
    assert!(
        parse("- {id: a, module: a.wasm}")
            .unwrap()
            .warnings
            .is_empty()
    );
}

#[test]
fn both_budget_names_are_refused() {
    let message = error("- {id: a, module: a.wasm, timeout: 1s, cpuBudget: 1s}");
    assert!(
        message.starts_with("policies.yaml: policy a: "),
        "{message}"
    );
    assert!(
        message.contains("`cpuBudget`") && message.contains("`timeout`"),
        "{message}"
    );
}

#[test]
fn from_file_reads_and_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.yaml");
    std::fs::write(&path, "- {id: a, module: a.wasm, mode: nope}").unwrap();
    let message = Config::from_file(&path).unwrap_err().to_string();
    assert!(
        message.starts_with(&path.display().to_string()),
        "{message}"
    );
    let missing = Config::from_file(&dir.path().join("missing.yaml")).unwrap_err();
    assert!(matches!(missing, ConfigError::Read { .. }));
}

#[test]
fn grants_that_grant_nothing_are_refused_with_the_type() {
    let (policy, field, message) =
        invalid("- {id: a, module: a.wasm, context: [{apiVersion: v1, kind: Pod, names: []}]}");
    assert_eq!((policy.as_str(), field), ("a", "context"));
    assert!(
        message.contains("v1 Pod: `names: []` grants nothing"),
        "{message}"
    );
}
