//! Loading a configuration: module sources, ABI checks, rules, settings,
//! the compiled-module cache.

mod common;
#[path = "common/wat.rs"]
mod wat;

use std::path::Path;
use std::time::Duration;

use common::{BUILTINS, load, policy_yaml, sandbox};
use tollgate_host::sandbox::ModuleError;
use tollgate_host::{Config, Endpoint, LoadError, PolicySet, Sandbox, SandboxLimits};
use wat::Wat;

/// Loads one policy running rule `r` of `wasm`, written to a temp dir and
/// named by a relative path.
fn load_wasm(sandbox: &Sandbox, wasm: &[u8], extra: &str) -> Result<PolicySet, LoadError> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("m.wasm"), wasm).unwrap();
    let config =
        Config::from_yaml(&format!("- {{id: p, module: m.wasm, rule: r{extra}}}"), "t").unwrap();
    PolicySet::load(&config, sandbox, &[], dir.path())
}

fn module_message(result: Result<PolicySet, LoadError>) -> String {
    match result {
        Err(e @ LoadError::Module { .. }) => {
            let LoadError::Module { policy, module, .. } = &e else {
                unreachable!()
            };
            assert_eq!(policy, "p");
            assert_eq!(module, "m.wasm");
            e.to_string()
        }
        Err(other) => panic!("expected a module error, got {other}"),
        Ok(_) => panic!("expected a module error, got a set"),
    }
}

#[test]
fn a_hand_written_module_loads_and_evaluates() {
    let sandbox = sandbox();
    let set = load_wasm(&sandbox, &Wat::default().wasm(), "").unwrap();
    let verdict = common::eval(&set, Duration::from_secs(1)).unwrap();
    assert_eq!(verdict.warnings, ["from wat"]);
    assert_eq!(set.module_paths().len(), 1);
    assert!(set.module_paths()[0].ends_with("m.wasm"));
}

#[test]
fn a_hand_written_v2_module_loads_and_evaluates() {
    let sandbox = sandbox();
    let wat = Wat {
        version: 2,
        describe: r#"{"abi":2,"rules":[{"name":"r"}]}"#,
        ..Wat::default()
    };
    let set = load_wasm(&sandbox, &wat.wasm(), "").unwrap();
    assert_eq!(
        set.policies()[0].module().abi(),
        tollgate_host::AbiVersion::V2
    );
    let verdict = common::eval(&set, Duration::from_secs(1)).unwrap();
    assert_eq!(verdict.warnings, ["from wat"]);
}

#[test]
fn another_abi_version_is_refused_naming_both() {
    let sandbox = sandbox();
    let wat = Wat {
        version: 3,
        // A v3 module may differ in anything else: the version is read first.
        evaluate: false,
        ..Wat::default()
    };
    let message = module_message(load_wasm(&sandbox, &wat.wasm(), ""));
    assert!(
        message.contains("version 3") && message.contains("version 1 or 2"),
        "{message}"
    );
}

#[test]
fn a_v2_module_needs_the_v2_evaluate_signature() {
    let sandbox = sandbox();
    // A v1 module that claims version 2: its evaluate takes six parameters.
    let v1 = Wat::default()
        .text()
        .replace("(result i32) i32.const 1)", "(result i32) i32.const 2)");
    let message = module_message(load_wasm(&sandbox, &::wat::parse_str(v1).unwrap(), ""));
    assert!(
        message.contains("`tollgate_evaluate` must be func [i32, i32, i32, i32] -> [i64]"),
        "{message}"
    );
}

#[test]
fn describe_must_report_the_same_abi_version() {
    let sandbox = sandbox();
    let wat = Wat {
        describe: r#"{"abi":3,"rules":[{"name":"r"}]}"#,
        ..Wat::default()
    };
    let message = module_message(load_wasm(&sandbox, &wat.wasm(), ""));
    assert!(
        message.contains("tollgate_abi_version says 1") && message.contains("abi 3"),
        "{message}"
    );
}

#[test]
fn wasi_and_unknown_imports_are_refused() {
    let sandbox = sandbox();
    for (imports, named) in [
        (
            r#"(import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))"#,
            "wasi_snapshot_preview1.fd_write",
        ),
        (
            r#"(import "tollgate" "clock" (func (result i64)))"#,
            "tollgate.clock",
        ),
        (r#"(import "env" "memory" (memory 1))"#, "env.memory"),
    ] {
        let wat = Wat {
            imports,
            ..Wat::default()
        };
        let message = module_message(load_wasm(&sandbox, &wat.wasm(), ""));
        assert!(message.contains(named), "{message}");
    }
}

#[test]
fn permitted_imports_with_wrong_signatures_are_refused() {
    let sandbox = sandbox();
    let wat = Wat {
        imports: r#"(import "tollgate" "log" (func (param i32 i32)))"#,
        ..Wat::default()
    };
    let message = module_message(load_wasm(&sandbox, &wat.wasm(), ""));
    assert!(message.contains("tollgate.log"), "{message}");
    let ok = Wat {
        imports: r#"(import "tollgate" "log" (func (param i32 i32 i32))) (import "tollgate" "lookup" (func (param i32 i32) (result i64)))"#,
        ..Wat::default()
    };
    assert!(load_wasm(&sandbox, &ok.wasm(), "").is_ok());
}

#[test]
fn missing_exports_and_wrong_signatures_are_refused() {
    let sandbox = sandbox();
    let missing = Wat {
        evaluate: false,
        ..Wat::default()
    };
    let message = module_message(load_wasm(&sandbox, &missing.wasm(), ""));
    assert!(
        message.contains("missing export `tollgate_evaluate`"),
        "{message}"
    );

    let wrong = Wat {
        alloc: r#"(func (export "tollgate_alloc") (param i64) (result i32) i32.const 0)"#,
        ..Wat::default()
    };
    let message = module_message(load_wasm(&sandbox, &wrong.wasm(), ""));
    assert!(message.contains("tollgate_alloc"), "{message}");
}

#[test]
fn a_describe_that_is_not_a_description_is_refused() {
    let sandbox = sandbox();
    let wat = Wat {
        describe: r#"{"abi":1,"rules":"all of them"}"#,
        ..Wat::default()
    };
    let message = module_message(load_wasm(&sandbox, &wat.wasm(), ""));
    assert!(message.contains("tollgate_describe"), "{message}");
}

#[test]
fn bytes_that_are_not_wasm_are_refused() {
    let sandbox = sandbox();
    let message = module_message(load_wasm(&sandbox, b"\0asm but not really", ""));
    assert!(
        message.contains("not a valid WebAssembly module"),
        "{message}"
    );
}

#[test]
fn unreadable_module_paths_name_policy_and_path() {
    let sandbox = sandbox();
    let config = Config::from_yaml("- {id: p, module: nowhere/m.wasm}", "t").unwrap();
    let err = PolicySet::load(&config, &sandbox, BUILTINS, Path::new("/base"))
        .err()
        .unwrap();
    let message = err.to_string();
    assert!(
        message.contains("policy p") && message.contains("/base/nowhere/m.wasm"),
        "{message}"
    );
}

#[test]
fn unknown_builtins_are_refused_listing_the_known() {
    let sandbox = sandbox();
    let message = load(&sandbox, "- {id: p, module: 'builtin:nope'}")
        .err()
        .unwrap()
        .to_string();
    assert!(
        message.contains("policy p") && message.contains("builtin:guests"),
        "{message}"
    );
}

#[test]
fn unknown_rules_are_refused_listing_the_rules() {
    let sandbox = sandbox();
    let message = load(&sandbox, &policy_yaml("nope", ""))
        .err()
        .unwrap()
        .to_string();
    assert!(
        message.contains("no rule \"nope\"") && message.contains("allow"),
        "{message}"
    );
}

#[test]
fn mutate_needs_a_mutating_rule() {
    let sandbox = sandbox();
    let message = load(&sandbox, &policy_yaml("deny", "  mutate: true\n"))
        .err()
        .unwrap()
        .to_string();
    assert!(message.contains("mutate: true"), "{message}");
    assert!(
        load(
            &sandbox,
            &policy_yaml("patch", "  mutate: true\n  settings: []\n")
        )
        .is_ok()
    );
}

#[test]
fn invalid_settings_fail_the_load_naming_the_policy() {
    let sandbox = sandbox();
    let err = load(
        &sandbox,
        &policy_yaml("allow", "  settings: {invalid: true}\n"),
    )
    .err()
    .unwrap();
    let LoadError::Settings { policy, message } = &err else {
        panic!("{err}")
    };
    assert_eq!(policy, "allow-policy");
    assert_eq!(message, "the settings ask to be refused");
    assert!(
        load(
            &sandbox,
            &policy_yaml("allow", "  settings: {invalid: false}\n")
        )
        .is_ok()
    );
}

#[test]
fn hand_built_configurations_are_validated_too() {
    let sandbox = sandbox();
    let mut config = Config::from_yaml(&policy_yaml("allow", ""), "t").unwrap();
    config.policies.push(config.policies[0].clone());
    let err = PolicySet::load(&config, &sandbox, BUILTINS, Path::new("."))
        .err()
        .unwrap();
    assert!(matches!(err, LoadError::Config(_)), "{err}");
}

#[test]
fn policies_share_a_module_and_reloads_reuse_it() {
    let sandbox = sandbox();
    let yaml = format!(
        "{}{}",
        policy_yaml("allow", ""),
        policy_yaml("deny", "").replace("deny-policy", "d")
    );
    let first = load(&sandbox, &yaml).unwrap();
    // Read and compiled once for both policies.
    assert_eq!(loads(&sandbox), Loads(1, 0, 0));
    assert!(std::sync::Arc::ptr_eq(
        first.policies()[0].module(),
        first.policies()[1].module()
    ));
    assert_eq!(
        first.policies()[0].module_digest(),
        first.policies()[1].module_digest()
    );
    let reload = load(&sandbox, &yaml).unwrap();
    assert_eq!(loads(&sandbox), Loads(1, 0, 1));
    assert!(std::sync::Arc::ptr_eq(
        first.policies()[0].module(),
        reload.policies()[0].module()
    ));
}

/// Modules compiled, deserialised from the disk cache, found in memory.
#[derive(Debug, PartialEq)]
struct Loads(u64, u64, u64);

fn loads(sandbox: &Sandbox) -> Loads {
    let stats = sandbox.stats();
    Loads(
        stats.compiled.get(),
        stats.from_disk_cache.get(),
        stats.from_memory.get(),
    )
}

fn cached_sandbox(dir: &Path) -> std::sync::Arc<Sandbox> {
    Sandbox::new(SandboxLimits {
        cache_dir: Some(dir.to_owned()),
        ..SandboxLimits::default()
    })
    .unwrap()
}

#[test]
fn a_restart_loads_compiled_modules_from_the_disk_cache() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let first = cached_sandbox(&cache);
    first
        .load_module(tollgate_test_artifacts::TEST_GUESTS)
        .unwrap();
    assert_eq!(loads(&first), Loads(1, 0, 0));
    let entries: Vec<_> = std::fs::read_dir(&cache)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0].extension().unwrap(), "cwasm");

    let second = cached_sandbox(&cache);
    let set = load(&second, &policy_yaml("allow", "")).unwrap();
    assert_eq!(loads(&second), Loads(0, 1, 0));
    let verdict = common::eval(&set, Duration::from_secs(1)).unwrap();
    assert!(verdict.allowed);

    // A corrupt entry is recompiled and overwritten.
    std::fs::write(&entries[0], b"not a compiled module").unwrap();
    let third = cached_sandbox(&cache);
    third
        .load_module(tollgate_test_artifacts::TEST_GUESTS)
        .unwrap();
    assert_eq!(loads(&third), Loads(1, 0, 0));
    let fourth = cached_sandbox(&cache);
    fourth
        .load_module(tollgate_test_artifacts::TEST_GUESTS)
        .unwrap();
    assert_eq!(loads(&fourth), Loads(0, 1, 0));
}

#[test]
fn an_unwritable_cache_does_not_fail_the_load() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, b"").unwrap();
    let sandbox = cached_sandbox(&blocker.join("cache"));
    sandbox
        .load_module(tollgate_test_artifacts::TEST_GUESTS)
        .unwrap();
    assert_eq!(loads(&sandbox), Loads(1, 0, 0));
}

#[test]
fn sandbox_limits_are_checked() {
    for tick in [Duration::ZERO, Duration::from_millis(11)] {
        let err = Sandbox::new(SandboxLimits {
            tick,
            cache_dir: None,
            ..SandboxLimits::default()
        })
        .err()
        .unwrap();
        assert!(
            err.to_string().starts_with("wasm engine: epoch tick"),
            "{err}"
        );
    }
    for instances in [0, 100_000] {
        let err = Sandbox::new(SandboxLimits {
            instances,
            cache_dir: None,
            ..SandboxLimits::default()
        })
        .err()
        .unwrap();
        assert!(err.to_string().contains("concurrent evaluations"), "{err}");
    }
}

#[test]
fn module_errors_are_typed() {
    let sandbox = sandbox();
    let err = sandbox
        .load_module(
            &Wat {
                version: 7,
                ..Wat::default()
            }
            .wasm(),
        )
        .err()
        .unwrap();
    assert!(matches!(err, ModuleError::AbiVersion { found: 7 }), "{err}");
}

#[test]
fn mutate_endpoint_selects_only_mutating_policies() {
    let sandbox = sandbox();
    let yaml = format!(
        "{}{}",
        policy_yaml("patch", "  mutate: true\n  settings: []\n"),
        policy_yaml("allow", "  match: {kinds: [{kind: Deployment}]}\n")
    );
    let set = load(&sandbox, &yaml).unwrap();
    let body = |kind: &str| common::body(&common::request_of("apps", kind, "CREATE", None));
    let deployment = body("Deployment");
    let review = common::review(&deployment);
    let ids = |e| {
        set.select(e, &review)
            .into_iter()
            .map(|i| set.policies()[i].id.as_str())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(Endpoint::Mutate), ["patch-policy"]);
    assert_eq!(ids(Endpoint::Validate), ["patch-policy", "allow-policy"]);
    let daemonset = body("DaemonSet");
    assert_eq!(
        set.select(Endpoint::Validate, &common::review(&daemonset))
            .len(),
        1
    );
}

#[test]
fn grants_and_resource_types_are_the_union_of_allow_lists() {
    let sandbox = sandbox();
    let yaml = format!(
        "{}{}",
        policy_yaml(
            "allow",
            "  context: [{apiVersion: apps/v1, kind: ReplicaSet, namespaces: [kube-system]}]\n"
        ),
        policy_yaml(
            "deny",
            "  context: [{apiVersion: apps/v1, kind: ReplicaSet}, {apiVersion: v1, kind: Pod}]\n"
        )
    );
    let set = load(&sandbox, &yaml).unwrap();
    assert_eq!(set.grants().count(), 3);
    let types: Vec<_> = set
        .resource_types()
        .into_iter()
        .map(|t| format!("{} {}", t.api_version, t.kind))
        .collect();
    assert_eq!(types, ["apps/v1 ReplicaSet", "v1 Pod"]);
    assert_eq!(set.get("deny-policy").unwrap().allow.policy, "deny-policy");
    assert!(set.module_paths().is_empty());
}
