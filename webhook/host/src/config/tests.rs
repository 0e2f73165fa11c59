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
  timeout: 250ms
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
    assert_eq!(p.timeout, Duration::from_millis(250));
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
    assert_eq!(p.timeout, Duration::from_secs(1));
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

#[test]
fn durations() {
    let ok = [
        ("250ms", 250),
        ("2s", 2000),
        ("1.5s", 1500),
        ("1m", 60_000),
        ("0.5ms", 0),
    ];
    for (text, ms) in ok {
        assert_eq!(parse_duration(text).unwrap().as_millis(), ms, "{text}");
    }
    for bad in ["", "5", "ms", "5h", "-1s", "1.2.3s", "s5"] {
        assert!(parse_duration(bad).is_err(), "{bad} should fail");
    }
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

    let message = error("- {id: h, module: h.wasm, timeout: 5h}");
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
fn timeouts_must_be_positive_and_at_most_30s() {
    assert_eq!(
        invalid("- {id: a, module: a.wasm, timeout: 0ms}").1,
        "timeout"
    );
    assert_eq!(
        invalid("- {id: a, module: a.wasm, timeout: 31s}").1,
        "timeout"
    );
    assert!(parse("- {id: a, module: a.wasm, timeout: 30s}").is_ok());
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
