//! R1–R4: the policy controller, on the corpus manifests and captured reviews.

mod support;

use serde_json::{Value, json};
use support::*;
use tollgate_calico::rules::IdentitySettings;
use tollgate_calico::rules::r01_controller_recreate::controller_recreate;
use tollgate_calico::rules::r02_controller_single_replica::controller_single_replica;
use tollgate_calico::rules::r03_controller_one_active::controller_one_active;
use tollgate_calico::rules::r04_controller_replicaset_first::{
    ReplicaSetFirstSettings, controller_replicaset_first,
};
use tollgate_sdk::NoCluster;

/// Every controller Deployment Calico published, with where it came from.
fn published_controllers() -> Vec<(String, Value)> {
    let files = [
        "v2.0/policy-controller.yaml",
        "v2.1/policy-controller.yaml",
        "v2.2/policy-controller.yaml",
        "v2.3/policy-controller.yaml",
        "v2.4/policy-controller.yaml",
        "v2.5/policy-controller.yaml",
        "v2.6.2/calico-kube-controllers.yaml",
        "v2.6/calico-kube-controllers.yaml",
        "v3.0/calico-kube-controllers.yaml",
        "v3.1/calico-kube-controllers.yaml",
        "v2.4/etcd/calico.yaml",
        "v2.6/etcd/calico.yaml",
        "v3.1/etcd-kubeadm-1.7/calico.yaml",
    ];
    files
        .iter()
        .flat_map(|f| {
            manifest(f)
                .into_iter()
                .filter(|d| {
                    d["kind"] == "Deployment"
                        && d["metadata"]["name"]
                            .as_str()
                            .is_some_and(|n| n.starts_with("calico-") && n != "calico-typha")
                })
                .map(move |d| (f.to_string(), d))
        })
        .collect()
}

fn v16_replicaset() -> Value {
    doc(
        "v1.6/policy-controller.yaml",
        "ReplicaSet",
        "calico-policy-controller",
    )
}

fn v25_controller() -> Value {
    doc(
        "v2.5/policy-controller.yaml",
        "Deployment",
        "calico-policy-controller",
    )
}

// ---- R1 controller-recreate ------------------------------------------------

#[test]
fn r1_every_published_controller_uses_recreate() {
    let all = published_controllers();
    assert!(all.len() >= 14, "{}", all.len());
    for (file, d) in all {
        for obj in [d.clone(), served(&d)] {
            let v = run("controller-recreate", &create(&obj), &NoCluster);
            assert!(v.allowed, "{file}: {v:?}");
        }
    }
}

#[test]
fn r1_repairs_the_captured_edit_to_rolling_update() {
    let request = review(
        "04-edit-controller-to-rollingupdate--mutate--update-deployment-calico-policy-controller.json",
    );
    let v = run("controller-recreate", &request, &NoCluster);
    assert_violation(
        &v,
        &[
            "kube-system/calico-policy-controller",
            "RollingUpdate",
            "Recreate",
        ],
    );
    assert_eq!(
        serde_json::to_value(v.patch.as_ref().unwrap()).unwrap(),
        json!([{"op": "replace", "path": "/spec/strategy", "value": {"type": "Recreate"}}])
    );
    let fixed = patched(&request["object"], &v);
    assert_eq!(fixed["spec"]["strategy"], json!({"type": "Recreate"}));
    let mut again = request.clone();
    again["object"] = fixed;
    assert_allowed(&run("controller-recreate", &again, &NoCluster));
    // The install before the edit was fine.
    let created = review(
        "03-install-policy-controller-v2.5--validate--create-deployment-calico-policy-controller.json",
    );
    assert_allowed(&run("controller-recreate", &created, &NoCluster));
}

#[test]
fn r1_absent_strategy_is_rolling_update_in_every_api_version() {
    for api in [
        "extensions/v1beta1",
        "apps/v1beta1",
        "apps/v1beta2",
        "apps/v1",
    ] {
        let mut manifest = v25_controller();
        manifest["apiVersion"] = json!(api);
        manifest["spec"].as_object_mut().unwrap().remove("strategy");
        // As written: the patch adds the missing member.
        let v = run("controller-recreate", &create(&manifest), &NoCluster);
        assert_violation(&v, &["RollingUpdate"]);
        let fixed = patched(&manifest, &v);
        assert_eq!(
            fixed["spec"]["strategy"],
            json!({"type": "Recreate"}),
            "{api}"
        );
        assert_allowed(&run("controller-recreate", &create(&fixed), &NoCluster));
        // As served with defaults: rollingUpdate is dropped.
        let defaulted = served(&manifest);
        assert!(defaulted["spec"]["strategy"]["rollingUpdate"].is_object());
        let v = run(
            "controller-recreate",
            &update(&served(&v25_controller()), &defaulted),
            &NoCluster,
        );
        let fixed = patched(&defaulted, &v);
        assert_eq!(fixed["spec"]["strategy"], json!({"type": "Recreate"}));
    }
}

#[test]
fn r1_adds_a_missing_spec() {
    let bare = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "calico-kube-controllers", "namespace": "kube-system"}});
    let v = run("controller-recreate", &create(&bare), &NoCluster);
    let fixed = patched(&bare, &v);
    assert_eq!(fixed["spec"], json!({"strategy": {"type": "Recreate"}}));
}

#[test]
fn r1_only_concerns_controllers() {
    // calico-typha (v3.0 KDD) has no strategy but is no controller.
    let typha = doc("v3.0/kdd/calico.yaml", "Deployment", "calico-typha");
    assert_allowed(&run(
        "controller-recreate",
        &create(&served(&typha)),
        &NoCluster,
    ));
    // Another name with the controller image is a controller.
    let mut renamed = served(&doc(
        "v3.1/calico-kube-controllers.yaml",
        "Deployment",
        "calico-kube-controllers",
    ));
    renamed["metadata"]["name"] = json!("my-controllers");
    renamed["spec"]["strategy"] = json!({"type": "RollingUpdate"});
    assert_violation(
        &run("controller-recreate", &create(&renamed), &NoCluster),
        &["my-controllers"],
    );
    // A DELETE and a scale are not about the strategy.
    let deleted =
        review("17-delete-controller--validate--delete-deployment-calico-policy-controller.json");
    assert_allowed(&run("controller-recreate", &deleted, &NoCluster));
    let scaled = review(
        "05-scale-controller-to-3--validate--update-scale-scale-calico-policy-controller.json",
    );
    assert_allowed(&run("controller-recreate", &scaled, &NoCluster));
}

#[test]
fn r1_direct_call_matches_the_exported_entry() {
    let request = review(
        "04-edit-controller-to-rollingupdate--validate--update-deployment-calico-policy-controller.json",
    );
    let direct = controller_recreate(
        &parse_request(&request),
        &IdentitySettings::default(),
        &NoCluster,
    );
    assert_eq!(direct, run("controller-recreate", &request, &NoCluster));
}

// ---- R2 controller-single-replica -------------------------------------------

#[test]
fn r2_repairs_the_captured_scale_to_three() {
    let request = review(
        "05-scale-controller-to-3--mutate--update-scale-scale-calico-policy-controller.json",
    );
    let v = run("controller-single-replica", &request, &cluster([]));
    assert_violation(
        &v,
        &[
            "Deployment kube-system/calico-policy-controller (scale)",
            "3 replicas",
        ],
    );
    let fixed = patched(&request["object"], &v);
    assert_eq!(fixed["spec"]["replicas"], 1);
    let mut again = request.clone();
    again["object"] = fixed;
    assert_allowed(&run("controller-single-replica", &again, &cluster([])));
}

#[test]
fn r2_allows_the_captured_scale_to_zero_and_the_v1_6_replicaset() {
    let to_zero = review(
        "07-scale-replicaset-to-0--validate--update-scale-scale-calico-policy-controller.json",
    );
    assert_allowed(&run("controller-single-replica", &to_zero, &cluster([])));
    let rs = review(
        "06-install-v1.6-replicaset--validate--create-replicaset-calico-policy-controller.json",
    );
    assert_allowed(&run("controller-single-replica", &rs, &cluster([])));
}

#[test]
fn r2_manifests_with_more_replicas_are_repaired_in_every_form() {
    let mut three = v25_controller();
    three["spec"]["replicas"] = json!(3);
    for obj in [three.clone(), served(&three)] {
        let v = run("controller-single-replica", &create(&obj), &cluster([]));
        assert_violation(&v, &["3 replicas"]);
        let fixed = patched(&obj, &v);
        assert_allowed(&run(
            "controller-single-replica",
            &create(&fixed),
            &cluster([]),
        ));
    }
    let mut rs = v16_replicaset();
    rs["spec"]["replicas"] = json!(2);
    let v = run("controller-single-replica", &create(&rs), &cluster([]));
    assert_violation(&v, &["ReplicaSet kube-system/calico-policy-controller"]);
    assert_eq!(patched(&rs, &v)["spec"]["replicas"], 1);
}

#[test]
fn r2_zero_replica_stub_and_published_manifests_pass() {
    let stub = doc(
        "v2.6/etcd/calico.yaml",
        "Deployment",
        "calico-policy-controller",
    );
    assert_eq!(stub["spec"]["replicas"], 0);
    assert_allowed(&run(
        "controller-single-replica",
        &create(&served(&stub)),
        &cluster([]),
    ));
    for (file, d) in published_controllers() {
        assert!(
            run("controller-single-replica", &create(&d), &cluster([])).allowed,
            "{file}"
        );
    }
}

#[test]
fn r2_scale_of_another_name_reads_the_owner() {
    let mut mine = stored(&doc(
        "v3.1/calico-kube-controllers.yaml",
        "Deployment",
        "calico-kube-controllers",
    ));
    mine["metadata"]["name"] = json!("my-controllers");
    let web = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "kube-system"},
        "spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.25"}]}}}});
    let c = cluster([mine, web]);
    let v = run(
        "controller-single-replica",
        &scale("deployments", "kube-system", "my-controllers", 1, 2),
        &c,
    );
    assert_violation(&v, &["my-controllers"]);
    assert_allowed(&run(
        "controller-single-replica",
        &scale("deployments", "kube-system", "web", 1, 5),
        &c,
    ));
    // The owner cannot be read: fail closed.
    let v = run(
        "controller-single-replica",
        &scale("deployments", "kube-system", "web", 1, 5),
        &Refusing,
    );
    assert_violation(&v, &["cannot verify"]);
    // A controller name needs no lookup.
    let v = run(
        "controller-single-replica",
        &scale(
            "replicasets",
            "kube-system",
            "calico-policy-controller",
            1,
            2,
        ),
        &Refusing,
    );
    assert_violation(&v, &["ReplicaSet kube-system/calico-policy-controller"]);
}

#[test]
fn r2_leaves_deployment_owned_replicasets_to_their_deployment() {
    let mut rs = served(&v16_replicaset());
    rs["metadata"]["name"] = json!("calico-kube-controllers-6d4b9d6b5b");
    rs["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "Deployment", "name": "calico-kube-controllers", "uid": "u"}]);
    rs["spec"]["replicas"] = json!(2);
    assert_allowed(&run(
        "controller-single-replica",
        &create(&rs),
        &cluster([]),
    ));
}

#[test]
fn r2_direct_call() {
    let request = scale(
        "deployments",
        "kube-system",
        "calico-kube-controllers",
        1,
        4,
    );
    let v = controller_single_replica(
        &parse_request(&request),
        &IdentitySettings::default(),
        &NoCluster,
    );
    assert!(!v.allowed && v.patch.is_some());
}

// ---- R3 controller-one-active -----------------------------------------------

fn v26_etcd() -> Vec<Value> {
    manifest("v2.6/etcd/calico.yaml")
}

#[test]
fn r3_kube_controllers_wait_for_the_old_policy_controller() {
    let old = stored(&doc(
        "v2.5/etcd/calico.yaml",
        "Deployment",
        "calico-policy-controller",
    ));
    let new = served(&find(&v26_etcd(), "Deployment", "calico-kube-controllers"));
    let v = run(
        "controller-one-active",
        &create(&new),
        &cluster([old.clone()]),
    );
    assert_violation(
        &v,
        &[
            "Deployment kube-system/calico-kube-controllers",
            "Deployment kube-system/calico-policy-controller (spec 1, status 1)",
            "kubectl scale deploy -n kube-system calico-policy-controller --replicas=0",
        ],
    );
    // Scaled down but pods still terminating: still active.
    let v = run(
        "controller-one-active",
        &create(&new),
        &cluster([with_replicas(old.clone(), 0, 1)]),
    );
    assert_violation(&v, &["status 1"]);
    // Fully stopped: fine.
    assert_allowed(&run(
        "controller-one-active",
        &create(&new),
        &cluster([with_replicas(old, 0, 0)]),
    ));
}

#[test]
fn r3_the_v2_6_zero_replica_stub_never_conflicts() {
    let docs = v26_etcd();
    let kube = stored(&find(&docs, "Deployment", "calico-kube-controllers"));
    let stub = find(&docs, "Deployment", "calico-policy-controller");
    let running_old = stored(&doc(
        "v2.5/etcd/calico.yaml",
        "Deployment",
        "calico-policy-controller",
    ));
    // Applying the stub over the running v2.5 controller scales it to 0.
    let v = run(
        "controller-one-active",
        &update(&running_old, &served(&stub)),
        &cluster([kube.clone(), running_old.clone()]),
    );
    assert_allowed(&v);
    // Once stopped, the stub does not block the kube-controllers.
    let mut updated = served(&find(&docs, "Deployment", "calico-kube-controllers"));
    updated["spec"]["template"]["spec"]["containers"][0]["image"] =
        json!("quay.io/calico/kube-controllers:v1.0.3");
    let c = cluster([kube.clone(), stored(&stub)]);
    assert_allowed(&run("controller-one-active", &update(&kube, &updated), &c));
}

#[test]
fn r3_the_v1_6_replicaset_blocks_the_deployment() {
    let rs = stored(&v16_replicaset());
    let deployment = served(&doc(
        "v2.0/policy-controller.yaml",
        "Deployment",
        "calico-policy-controller",
    ));
    let v = run(
        "controller-one-active",
        &create(&deployment),
        &cluster([rs.clone()]),
    );
    assert_violation(
        &v,
        &[
            "ReplicaSet kube-system/calico-policy-controller",
            "kubectl scale rs -n kube-system calico-policy-controller --replicas=0",
        ],
    );
    assert_allowed(&run(
        "controller-one-active",
        &create(&deployment),
        &cluster([with_replicas(rs, 0, 0)]),
    ));
}

#[test]
fn r3_scale_subresource_and_self_exclusion() {
    let old = stored(&doc(
        "v2.5/etcd/calico.yaml",
        "Deployment",
        "calico-policy-controller",
    ));
    let kube = with_replicas(
        stored(&find(&v26_etcd(), "Deployment", "calico-kube-controllers")),
        0,
        0,
    );
    let c = cluster([old.clone(), kube]);
    let up = scale(
        "deployments",
        "kube-system",
        "calico-kube-controllers",
        0,
        1,
    );
    assert_violation(
        &run("controller-one-active", &up, &c),
        &["calico-policy-controller"],
    );
    let down = scale(
        "deployments",
        "kube-system",
        "calico-policy-controller",
        1,
        0,
    );
    assert_allowed(&run("controller-one-active", &down, &c));
    // Updating the running controller itself is no conflict with itself.
    let v24 = stored(&doc(
        "v2.4/etcd/calico.yaml",
        "Deployment",
        "calico-policy-controller",
    ));
    let v25 = served(&doc(
        "v2.5/etcd/calico.yaml",
        "Deployment",
        "calico-policy-controller",
    ));
    assert_allowed(&run(
        "controller-one-active",
        &update(&v24, &v25),
        &cluster([v24.clone()]),
    ));
    // Its own Deployment-owned ReplicaSet does not count either.
    let mut own_rs = stored(&v16_replicaset());
    own_rs["metadata"]["name"] = json!("calico-policy-controller-5c8f");
    own_rs["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "Deployment", "name": "calico-policy-controller", "uid": "u"}]);
    assert_allowed(&run(
        "controller-one-active",
        &update(&v24, &v25),
        &cluster([v24, own_rs]),
    ));
}

#[test]
fn r3_fails_closed_and_direct_call_agrees() {
    let new = served(&find(&v26_etcd(), "Deployment", "calico-kube-controllers"));
    assert_violation(
        &run("controller-one-active", &create(&new), &Refusing),
        &["cannot verify", "may not read apps/v1 Deployment"],
    );
    let request = create(&new);
    let old = stored(&doc(
        "v2.5/etcd/calico.yaml",
        "Deployment",
        "calico-policy-controller",
    ));
    let c = cluster([old]);
    assert_eq!(
        controller_one_active(&parse_request(&request), &IdentitySettings::default(), &c),
        run("controller-one-active", &request, &c)
    );
}

// ---- R4 controller-replicaset-first -----------------------------------------

#[test]
fn r4_the_pre_2_0_replicaset_must_be_scaled_to_zero_first() {
    let rs = stored(&v16_replicaset());
    for deployment in [
        doc(
            "v2.0/policy-controller.yaml",
            "Deployment",
            "calico-policy-controller",
        ),
        served(&doc(
            "v2.0/etcd/calico.yaml",
            "Deployment",
            "calico-policy-controller",
        )),
    ] {
        let v = run(
            "controller-replicaset-first",
            &create(&deployment),
            &cluster([rs.clone()]),
        );
        assert_violation(
            &v,
            &[
                "pre-2.0 ReplicaSet kube-system/calico-policy-controller",
                "kubectl scale rs -n kube-system calico-policy-controller --replicas=0",
            ],
        );
    }
    let deployment = served(&doc(
        "v2.0/policy-controller.yaml",
        "Deployment",
        "calico-policy-controller",
    ));
    assert_allowed(&run(
        "controller-replicaset-first",
        &create(&deployment),
        &cluster([with_replicas(rs.clone(), 0, 0)]),
    ));
    assert_violation(
        &run(
            "controller-replicaset-first",
            &create(&deployment),
            &cluster([with_replicas(rs.clone(), 0, 1)]),
        ),
        &["status 1"],
    );
    assert_allowed(&run(
        "controller-replicaset-first",
        &create(&deployment),
        &cluster([]),
    ));
    // Adopted by a Deployment: no longer the pre-2.0 ReplicaSet.
    let mut adopted = rs.clone();
    adopted["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "Deployment", "name": "calico-policy-controller", "uid": "u"}]);
    assert_allowed(&run(
        "controller-replicaset-first",
        &create(&deployment),
        &cluster([adopted]),
    ));
    // Only the creation of the Deployment is checked.
    assert_allowed(&run(
        "controller-replicaset-first",
        &update(&deployment, &deployment),
        &cluster([rs]),
    ));
}

#[test]
fn r4_settings_and_failures() {
    let mut rs = stored(&v16_replicaset());
    rs["metadata"]["name"] = json!("old-controller");
    let deployment = served(&v25_controller());
    let settings = json!({"replicaSetName": "old-controller"});
    let v = run_with(
        "controller-replicaset-first",
        &create(&deployment),
        &settings,
        &cluster([rs.clone()]),
    );
    assert_violation(&v, &["kube-system/old-controller"]);
    assert_allowed(&run(
        "controller-replicaset-first",
        &create(&deployment),
        &cluster([rs]),
    ));
    assert_violation(
        &run(
            "controller-replicaset-first",
            &create(&deployment),
            &Refusing,
        ),
        &["cannot verify"],
    );
    let check = entry("controller-replicaset-first").check_settings(br#"{"replicaSetName": ""}"#);
    assert!(!check.valid);
    assert!(
        !entry("controller-replicaset-first")
            .check_settings(br#"{"replicaset": "x"}"#)
            .valid
    );
    let request = create(&deployment);
    let direct = controller_replicaset_first(
        &parse_request(&request),
        &ReplicaSetFirstSettings::default(),
        &Refusing,
    );
    assert!(!direct.allowed);
}
