//! The SDK's `k8s-openapi` feature: the same rule written over k8s-openapi's
//! complete `Pod`, bundled with the borrowed-view rule of this crate, must
//! agree with it on every pod shape; both views are parsed once per
//! evaluation, side by side in one bundle.

use serde_json::{Value, json};
use tollgate_sdk::k8s_openapi::api::core::v1::Pod;
use tollgate_sdk::{Cluster, NoCluster, Request, Verdict};
use tollgate_testkit::corpus::captured;

use pod_privileged::PodPrivilegedSettings;

fn pod_privileged_k8s(
    req: &Request<'_, Pod>,
    s: &PodPrivilegedSettings,
    _: &dyn Cluster,
) -> Verdict {
    let namespace = req.namespace.as_deref().unwrap_or_default();
    let spec = req.object.as_ref().and_then(|p| p.spec.as_ref());
    if s.exempt_namespaces.iter().any(|n| n == namespace) {
        return Verdict::allow();
    }
    let privileged = |sc: Option<&tollgate_sdk::k8s_openapi::api::core::v1::SecurityContext>| {
        sc.and_then(|sc| sc.privileged).unwrap_or(false)
    };
    let old = req.old_object.as_ref().and_then(|p| p.spec.as_ref());
    let names = |spec: &tollgate_sdk::k8s_openapi::api::core::v1::PodSpec| -> Vec<String> {
        let init = spec.init_containers.iter().flatten();
        let main = spec.containers.iter();
        let regular = init
            .chain(main)
            .filter(|c| privileged(c.security_context.as_ref()));
        let ephemeral = spec.ephemeral_containers.iter().flatten();
        let ephemeral = ephemeral.filter(|c| privileged(c.security_context.as_ref()));
        regular
            .map(|c| c.name.clone())
            .chain(ephemeral.map(|c| c.name.clone()))
            .collect()
    };
    let before = old.map(names).unwrap_or_default();
    let added: Vec<String> = spec
        .map(names)
        .unwrap_or_default()
        .into_iter()
        .filter(|n| !before.contains(n))
        .collect();
    match added.is_empty() {
        true => Verdict::allow(),
        false => Verdict::deny(format!("privileged: {}", added.join(", "))),
    }
}

tollgate_sdk::export_rules! {
    "borrowed" => pod_privileged::pod_privileged,
    "k8s-openapi" => pod_privileged_k8s,
}

fn shapes() -> Vec<Value> {
    let captured = captured(
        "13-create-calico-node-pod--validate--create-pod-calico-node-x7k2p.json",
    )
    .1["request"]
        .take();
    let with = |field: &str, privileged: Value| {
        let mut r = captured.clone();
        r["object"]["spec"][field] = json!([{"name": "x", "image": "busybox", "securityContext": {"privileged": privileged}}]);
        r
    };
    let mut update = with("containers", json!(true));
    update["operation"] = json!("UPDATE");
    update["oldObject"] = update["object"].clone();
    let mut in_apps = with("initContainers", json!(true));
    in_apps["namespace"] = json!("apps");
    vec![
        captured.clone(),
        with("containers", json!(true)),
        with("initContainers", json!(true)),
        with("ephemeralContainers", json!(true)),
        with("containers", json!(false)),
        with("containers", Value::Null),
        update,
        in_apps,
    ]
}

#[test]
fn borrowed_and_k8s_openapi_views_agree_in_one_bundle() {
    let calls = json!([
        {"rule": "borrowed", "settings": {}},
        {"rule": "k8s-openapi", "settings": {}},
        {"rule": "borrowed", "settings": {"exemptNamespaces": ["kube-system"]}},
        {"rule": "k8s-openapi", "settings": {"exemptNamespaces": ["kube-system"]}},
    ])
    .to_string();
    let mut denied = 0;
    for request in shapes() {
        let text = request.to_string();
        let parsed = tollgate_sdk::ParsedRequest::new(text.as_bytes());
        let calls: Vec<tollgate_sdk::wire::RuleCall<'_>> = serde_json::from_str(&calls).unwrap();
        let v = rules().evaluate_calls(&parsed, &calls, &NoCluster).unwrap();
        assert_eq!(
            parsed.views_parsed(),
            2,
            "one borrowed Pod, one k8s-openapi Pod"
        );
        assert_eq!(v[0].allowed, v[1].allowed, "{request}");
        assert_eq!(v[2].allowed, v[3].allowed, "{request}");
        denied += usize::from(!v[0].allowed);
    }
    assert_eq!(denied, 4, "three privileged lists and the pod in apps");
}

#[test]
fn a_k8s_openapi_view_reads_every_field() {
    let request = captured(
        "13-create-calico-node-pod--validate--create-pod-calico-node-x7k2p.json",
    )
    .1["request"]
        .to_string();
    let req: Request<'_, Pod> = Request::parse(request.as_bytes()).unwrap();
    let spec = req.object.unwrap().spec.unwrap();
    assert_eq!(spec.dns_policy.as_deref(), Some("ClusterFirst"));
    assert_eq!(spec.tolerations.unwrap().len(), 2);
}
