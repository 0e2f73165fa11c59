//! R13 config-restart and R14 default-deny-shape.

mod support;

use serde_json::{Value, json};
use support::*;
use tollgate_calico::rules::r13_config_restart::{ConfigRestartSettings, config_restart};
use tollgate_calico::rules::r14_default_deny_shape::{DefaultDenySettings, default_deny_shape};
use tollgate_sdk::NoCluster;

// ---- R13 config-restart -------------------------------------------------------

#[test]
fn r13_the_captured_edit_warns_to_restart() {
    let request = review("08-edit-calico-config--validate--update-configmap-calico-config.json");
    let v = run("config-restart", &request, &NoCluster);
    assert_violation(
        &v,
        &[
            "kube-system/calico-config changed (veth_mtu)",
            "restart the Calico controller and every calico-node pod",
        ],
    );
    let created = review("01-install-v2.4-kdd--validate--create-configmap-calico-config.json");
    assert_allowed(&run("config-restart", &created, &NoCluster));
}

#[test]
fn r13_any_data_change_of_calico_config_only() {
    for (file, docs) in all_manifests() {
        let Some(config) = try_find(&docs, "ConfigMap", "calico-config") else {
            continue;
        };
        assert_allowed(&run(
            "config-restart",
            &update(&config, &config),
            &NoCluster,
        ));
        let mut removed = config.clone();
        let first = removed["data"]
            .as_object()
            .unwrap()
            .keys()
            .next()
            .unwrap()
            .clone();
        removed["data"].as_object_mut().unwrap().remove(&first);
        let v = run("config-restart", &update(&config, &removed), &NoCluster);
        assert_violation(&v, &[&first]);
        let mut other = config.clone();
        other["metadata"]["name"] = json!("other");
        let mut other_changed = removed.clone();
        other_changed["metadata"]["name"] = json!("other");
        assert_allowed(&run(
            "config-restart",
            &update(&other, &other_changed),
            &NoCluster,
        ));
        let _ = file;
    }
    let settings = json!({"name": "canal-config"});
    let canal = |data: Value| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "canal-config", "namespace": "kube-system"}, "data": data});
    let request = update(&canal(json!({"a": "1"})), &canal(json!({"a": "2"})));
    assert!(!run_with("config-restart", &request, &settings, &NoCluster).allowed);
    assert!(
        !entry("config-restart")
            .check_settings(br#"{"name": ""}"#)
            .valid
    );
    let direct = config_restart(
        &parse_request(&request),
        &ConfigRestartSettings::default(),
        &NoCluster,
    );
    assert!(direct.allowed);
}

// ---- R14 default-deny-shape -------------------------------------------------------

fn calico(dir: &str) -> Value {
    stored(&doc(
        &format!("{dir}/calico.yaml"),
        "DaemonSet",
        "calico-node",
    ))
}

#[test]
fn r14_the_guides_null_selector_is_repaired() {
    let mut tutorial = doc(
        "v2.4/tutorials/stars-policy/default-deny.yaml",
        "NetworkPolicy",
        "default-deny",
    );
    tutorial["metadata"]["namespace"] = json!("secure");
    assert!(tutorial["spec"]["podSelector"].is_null());
    let v = run("default-deny-shape", &create(&tutorial), &cluster([]));
    assert_violation(
        &v,
        &["secure/default-deny", "null podSelector", "podSelector: {}"],
    );
    assert_eq!(
        serde_json::to_value(v.patch.as_ref().unwrap()).unwrap(),
        json!([{"op": "replace", "path": "/spec/podSelector", "value": {}}])
    );
    let fixed = patched(&tutorial, &v);
    assert_eq!(fixed["spec"]["podSelector"], json!({}));
    assert_allowed(&run("default-deny-shape", &create(&fixed), &cluster([])));
    // Missing selector, missing spec.
    let mut missing = tutorial.clone();
    missing["spec"] = json!({});
    let v = run("default-deny-shape", &create(&missing), &cluster([]));
    assert_violation(&v, &["missing podSelector"]);
    assert_eq!(patched(&missing, &v)["spec"], json!({"podSelector": {}}));
    missing.as_object_mut().unwrap().remove("spec");
    let v = run("default-deny-shape", &create(&missing), &cluster([]));
    assert_eq!(patched(&missing, &v)["spec"], json!({"podSelector": {}}));
}

#[test]
fn r14_the_api_server_already_normalised_the_captured_policy() {
    let request = review(
        "10-guide-default-deny-null-selector--mutate--create-networkpolicy-default-deny.json",
    );
    let v = run(
        "default-deny-shape",
        &request,
        &cluster([calico("v2.5/kdd")]),
    );
    assert!(v.allowed && v.warnings.is_empty(), "{v:?}");
}

#[test]
fn r14_warns_while_calico_predates_v1_semantics() {
    let request = review(
        "10-guide-default-deny-null-selector--validate--create-networkpolicy-default-deny.json",
    );
    for (dir, warns) in [
        ("v2.2/kdd", true),
        ("v2.3/kdd", false),
        ("v2.3/etcd", true),
        ("v2.4/etcd", false),
        ("v1.6/etcd", true),
        ("v3.1/kdd", false),
    ] {
        let v = run("default-deny-shape", &request, &cluster([calico(dir)]));
        assert!(v.allowed, "{dir}");
        assert_eq!(v.warnings.len(), usize::from(warns), "{dir}: {v:?}");
        if warns {
            assert!(
                v.warnings[0].contains("DefaultDeny-annotated"),
                "{:?}",
                v.warnings
            );
        }
    }
    // No calico-node DaemonSet: nothing to say.
    assert!(
        run("default-deny-shape", &request, &cluster([]))
            .warnings
            .is_empty()
    );
}

#[test]
fn r14_lookup_failure_is_only_a_warning() {
    let mut tutorial = doc(
        "v2.4/tutorials/stars-policy/default-deny.yaml",
        "NetworkPolicy",
        "default-deny",
    );
    tutorial["metadata"]["namespace"] = json!("secure");
    let v = run("default-deny-shape", &create(&tutorial), &Refusing);
    assert!(v.patch.is_some());
    assert!(v.warnings[0].starts_with("cannot verify"), "{v:?}");
    let fine = review(
        "10-guide-default-deny-null-selector--validate--create-networkpolicy-default-deny.json",
    );
    let v = run("default-deny-shape", &fine, &Refusing);
    assert!(v.allowed && v.warnings.len() == 1);
    let direct = default_deny_shape(
        &parse_request(&create(&tutorial)),
        &DefaultDenySettings::default(),
        &cluster([]),
    );
    assert!(!direct.allowed);
    // Not a NetworkPolicy: nothing to do.
    let ns = review("09-namespace-with-defaultdeny--validate--create-namespace-secure.json");
    assert_allowed(&run("default-deny-shape", &ns, &Refusing));
}
