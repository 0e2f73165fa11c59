//! `policies.yaml` against the module: ids, mutation, settings, and that each
//! policy's `context` grants exactly the reads its rule makes.

mod support;

use serde_json::{Value, json};
use support::*;
use tollgate_sdk::wire::LookupQuery;
use tollgate_testkit::modern::{
    admin_network_policy, default_ip_pool, felix_default, kubeadm_kube_proxy, manifest_install,
    modern_doc, operator_install, tiered_policy,
};
use tollgate_testkit::operator::{
    MIGRATION_LABEL, find_in, imageset, installation, operator_upgrade,
};

const MUTATING: [&str; 5] = [
    "controller-recreate",
    "controller-single-replica",
    "node-one-at-a-time",
    "default-deny-shape",
    "operator-owned",
];

#[test]
fn one_policy_per_rule_in_order_with_the_spec_ids() {
    let ids: Vec<&str> = policies()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    let rules: Vec<&str> = tollgate_calico::rules().iter().map(|r| r.name).collect();
    assert_eq!(ids, rules);
    assert_eq!(
        ids,
        [
            "controller-recreate",
            "controller-single-replica",
            "controller-one-active",
            "controller-replicaset-first",
            "node-one-at-a-time",
            "node-pod-cordoned",
            "node-uncordon-ready",
            "kdd-v2.5-migration",
            "v1-networkpolicy-semantics",
            "v3-needs-v2.6.5",
            "pinned-images",
            "version-skew",
            "config-restart",
            "default-deny-shape",
            "operator-migration-freeze",
            "operator-migration-same-release",
            "anp-before-v3.32",
            "v3.30.7-before-v3.31",
            "crds-before-operator",
            "imageset-for-release",
            "operator-owned",
            "typha-replicas",
            "ebpf-needs-iptables-kube-proxy",
        ]
    );
    for rule in tollgate_calico::rules() {
        let p = policy(rule.name);
        assert_eq!(p["module"], "builtin:calico");
        assert_eq!(
            rule.mutating,
            MUTATING.contains(&rule.name),
            "{}",
            rule.name
        );
        assert_eq!(
            p["mutate"] == true,
            rule.mutating,
            "{}: mutate only where the rule can",
            rule.name
        );
        assert!(["enforce", "warn", "audit"].contains(&p["mode"].as_str().unwrap()));
        assert!(["fail", "ignore"].contains(&p["failurePolicy"].as_str().unwrap()));
        assert!(
            !p["match"]["kinds"].as_array().unwrap().is_empty(),
            "{}",
            rule.name
        );
        assert!(
            !p["match"]["operations"].as_array().unwrap().is_empty(),
            "{}",
            rule.name
        );
    }
}

#[test]
fn configured_and_default_settings_are_valid_and_typos_are_not() {
    for rule in tollgate_calico::rules() {
        let configured = serde_json::to_vec(&policy(rule.name)["settings"]).unwrap();
        let check = rule.check_settings(&configured);
        assert!(check.valid, "{}: {:?}", rule.name, check.message);
        assert!(rule.check_settings(b"{}").valid, "{}", rule.name);
        assert!(rule.check_settings(b"").valid, "{}", rule.name);
        let typo = rule.check_settings(br#"{"namespacez": "x"}"#);
        assert!(
            !typo.valid && typo.message.unwrap().contains("unknown field"),
            "{}",
            rule.name
        );
        assert!(!rule.check_settings(b"[1]").valid, "{}", rule.name);
        // The rules about Calico's workloads take its `identity`; R13 and
        // R23 read ConfigMaps of their own settings.
        if !["config-restart", "ebpf-needs-iptables-kube-proxy"].contains(&rule.name) {
            assert!(
                !rule
                    .check_settings(br#"{"identity": {"nodeImage": ""}}"#)
                    .valid,
                "{}",
                rule.name
            );
            assert!(
                rule.check_settings(br#"{"identity": {"namespace": "calico-system"}}"#)
                    .valid,
                "{}",
                rule.name
            );
        }
    }
}

#[test]
fn bad_requests_are_errors_not_verdicts() {
    for rule in tollgate_calico::rules() {
        assert!(
            rule.evaluate(b"{not json", b"{}", &cluster([])).is_err(),
            "{}",
            rule.name
        );
        assert!(
            rule.evaluate(b"{}", b"{\"bogus\": 1}", &cluster([]))
                .is_err(),
            "{}",
            rule.name
        );
        // An empty request is readable and concerns nothing.
        assert!(
            rule.evaluate(b"{}", b"{}", &cluster([])).unwrap().allowed,
            "{}",
            rule.name
        );
    }
}

/// The first grant that covers `q`, as the host checks it (namespaces,
/// names, labels and fields included).
fn covered(grants: &[Value], q: &LookupQuery) -> Option<usize> {
    grants.iter().position(|g| {
        serde_json::from_value::<tollgate_context::Grant>(g.clone())
            .unwrap_or_else(|e| panic!("grant {g}: {e}"))
            .covers(q)
    })
}

/// A cluster where every lookup path of every rule is taken.
fn rich_cluster() -> tollgate_sdk::MemoryCluster {
    let mut objects = vec![
        stored(&doc(
            "v2.5/etcd/calico.yaml",
            "Deployment",
            "calico-policy-controller",
        )),
        stored(&doc(
            "v1.6/policy-controller.yaml",
            "ReplicaSet",
            "calico-policy-controller",
        )),
        stored(&doc("v2.5/kdd/calico.yaml", "DaemonSet", "calico-node")),
        node("node-01", true, &[]),
        calico_pod(
            "calico-node-a",
            "node-01",
            "quay.io/calico/node:v2.5.1",
            true,
        ),
        namespace("web", false),
        network_policy("web", "p", json!({"podSelector": {}})),
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "apps"},
               "spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:1"}]}}}}),
    ];
    for kind in ["GlobalConfig", "IpPool", "GlobalBgpConfig", "GlobalBgpPeer"] {
        objects.push(calico_data("projectcalico.org/v1", kind, "x"));
    }
    // Today's Calico (SPEC §5): an operator install migrating a manifest
    // install, with every object R15–R23 look for.
    objects.extend(operator_install("v3.31.7"));
    objects.extend(manifest_install("v3.31.7", "calico-typha.yaml"));
    objects.extend([
        default_ip_pool("v3.31.7", "calico-vxlan.yaml"),
        felix_default(false),
        kubeadm_kube_proxy("ipvs"),
        admin_network_policy("AdminNetworkPolicy", "sensitive"),
        tiered_policy("allow-tigera", None, "allow-tigera.x"),
        imageset("calico-v3.31.7"),
    ]);
    cluster(objects)
}

/// Requests that take every lookup path of R15–R23, from published files.
fn modern_requests() -> Vec<Value> {
    let installed = operator_install("v3.31.7");
    let typha = modern_doc("v3.31.7", "calico-typha.yaml", "Deployment", "calico-typha");
    let node = modern_doc("v3.31.7", "calico.yaml", "DaemonSet", "calico-node");
    let bpf = |tag: &str| modern_doc(tag, "calico-bpf.yaml", "DaemonSet", "calico-node");
    let mut ebpf = installation("v3.31.7");
    ebpf["spec"]["calicoNetwork"]["linuxDataplane"] = json!("BPF");
    let mut labelled = node_object("node-01");
    labelled["metadata"]["labels"][MIGRATION_LABEL] = json!("migrated");
    vec![
        operator_upgrade("v3.31.7", "v3.32.1"),
        update(&stored(&bpf("v3.30.6")), &served(&bpf("v3.31.0"))),
        update(&stored(&node), &with_replicas(served(&node), 1, 1)),
        update(&node_object("node-01"), &labelled),
        create(&installation("v3.31.7")),
        update(&installation("v3.31.7"), &ebpf),
        update(&felix_default(false), &felix_default(true)),
        create(&admin_network_policy("AdminNetworkPolicy", "new")),
        update(&stored(&typha), &with_replicas(served(&typha), 0, 1)),
        scale("deployments", "kube-system", "calico-typha", 1, 30),
        update(
            &find_in(&installed, "DaemonSet", "calico-system", "calico-node"),
            &find_in(&installed, "DaemonSet", "calico-system", "calico-node"),
        ),
    ]
}

fn node_object(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": {}}})
}

fn exercising_requests() -> Vec<Value> {
    let ds = |dir: &str| doc(&format!("{dir}/calico.yaml"), "DaemonSet", "calico-node");
    let mut requests: Vec<Value> = std::fs::read_dir(testdata_dir().join("reviews"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|f| f.ends_with(".json"))
        .map(|f| review(&f))
        .collect();
    requests.extend([
        update(&stored(&ds("v2.4/kdd")), &served(&ds("v2.5/kdd"))),
        update(&stored(&ds("v2.3/etcd")), &served(&ds("v2.4/etcd"))),
        create(&served(&doc(
            "v2.6/etcd/calico.yaml",
            "Deployment",
            "calico-kube-controllers",
        ))),
        scale("deployments", "apps", "web", 1, 2),
        scale("replicasets", "apps", "web-rs", 1, 2),
        // Scales in Calico's namespaces look the owner up.
        scale("deployments", "kube-system", "web", 1, 2),
        scale("replicasets", "kube-system", "web-rs", 1, 2),
    ]);
    requests.extend(modern_requests());
    requests
}

#[test]
fn context_grants_exactly_what_each_rule_reads() {
    // The rich cluster takes the paths where objects are found; the empty
    // one the fallbacks (a FelixConfiguration in the other API version).
    let (rich, empty) = (rich_cluster(), cluster([]));
    let requests = exercising_requests();
    for rule in tollgate_calico::rules() {
        let grants = policy(rule.name)["context"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let (on_rich, on_empty) = (Recording::new(&rich), Recording::new(&empty));
        for request in &requests {
            run(rule.name, request, &on_rich);
            run(rule.name, request, &on_empty);
        }
        let mut used = vec![false; grants.len()];
        let queries = on_rich.queries.borrow();
        for asked in queries.iter().chain(on_empty.queries.borrow().iter()) {
            // What an `except` leaves out is read too.
            let mut next = Some(asked);
            while let Some(q) = next {
                let i = covered(&grants, q)
                    .unwrap_or_else(|| panic!("{}: reads {q:?} without a grant", rule.name));
                used[i] = true;
                next = q.except.as_deref();
            }
        }
        for (grant, used) in grants.iter().zip(used) {
            assert!(used, "{}: grant {grant} is never used", rule.name);
        }
    }
}

#[test]
fn every_violation_in_the_reviews_is_routed_to_its_policy() {
    let c = rich_cluster();
    for request in exercising_requests() {
        for rule in tollgate_calico::rules() {
            let v = run(rule.name, &request, &c);
            if v.allowed && v.warnings.is_empty() {
                continue;
            }
            // The host's own matcher, narrowing (names, images, changed
            // fields) included: it must never hide a violation.
            assert!(
                host_selects(rule.name, &request),
                "{}: the match does not select {} {} {}",
                rule.name,
                request["operation"],
                request["kind"],
                request["name"]
            );
        }
    }
}

/// A request string field; the API server omits empty ones.
fn text(v: &Value) -> Option<&str> {
    v.as_str().filter(|s| !s.is_empty())
}

/// Whether the pack's configured match of policy `id` selects `request`
/// (an AdmissionRequest), as `tollgate serve` decides it.
fn host_selects(id: &str, request: &Value) -> bool {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/policies.yaml");
    let config = tollgate_host::Config::from_file(std::path::Path::new(path)).unwrap();
    let pc = config.policies.iter().find(|p| p.id == id).unwrap();
    let matcher = tollgate_host::Matcher::compile(&pc.matches).unwrap();
    let raw = |v: &Value| (!v.is_null()).then(|| v.to_string());
    let (object, old_object) = (raw(&request["object"]), raw(&request["oldObject"]));
    let meta = tollgate_host::RequestMeta {
        group: request["kind"]["group"].as_str().unwrap_or_default(),
        version: request["kind"]["version"].as_str().unwrap_or_default(),
        kind: request["kind"]["kind"].as_str().unwrap_or_default(),
        sub_resource: text(&request["subResource"]),
        operation: serde_json::from_value(request["operation"].clone()).unwrap(),
        namespace: text(&request["namespace"]),
        name: text(&request["name"]),
        object: object.as_deref(),
        old_object: old_object.as_deref(),
        // Unknown: the matcher reads the objects instead of searching them.
        plain_text: false,
    };
    matcher.matches(&meta)
}
