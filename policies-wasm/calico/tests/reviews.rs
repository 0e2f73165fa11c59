//! Every AdmissionReview captured from a real kube-apiserver, through every
//! rule: what fires is exactly what the upgrade guide would say at that step.

mod support;

use serde_json::Value;
use support::*;

/// The cluster while the captures were taken: calico-node v2.5.1 on the
/// Kubernetes datastore, its TPR data not yet copied to CRDs, node-01
/// cordoned and without the new image pulled.
fn cluster_at_capture() -> tollgate_sdk::MemoryCluster {
    let ds = review("02-upgrade-v2.4-to-v2.5-kdd--validate--update-daemonset-calico-node.json")["object"].clone();
    cluster([
        ds,
        node("node-01", true, &[]),
        namespace("default", false),
        namespace("kube-system", false),
        calico_data("projectcalico.org/v1", "GlobalConfig", "clusterguid"),
        calico_data("projectcalico.org/v1", "IpPool", "192-168-0-0-16"),
    ])
}

fn expected(step: &str) -> &'static [&'static str] {
    match step {
        "02" => &["kdd-v2.5-migration"],
        "04" => &["controller-recreate+patch"],
        "05" => &["controller-single-replica+patch"],
        "06" => &["version-skew"],
        "08" => &["config-restart"],
        "14" => &["node-pod-cordoned~warning"],
        "15" => &["node-uncordon-ready"],
        _ => &[],
    }
}

#[test]
fn captured_reviews_fire_exactly_the_expected_rules() {
    let dir = testdata_dir().join("reviews");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .expect("reviews dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|f| f.ends_with(".json"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 38);
    let c = cluster_at_capture();
    for file in files {
        let request = review(&file);
        assert!(request["uid"].is_string(), "{file}");
        let got = outcomes(&request, &c);
        assert_eq!(got, expected(&file[..2]), "{file}");
    }
}

#[test]
fn captured_reviews_carry_bulky_fields_that_rules_ignore() {
    // The host strips managedFields and last-applied; rules must not care.
    let request =
        review("02-upgrade-v2.4-to-v2.5-kdd--validate--update-daemonset-calico-node.json");
    let mut stripped = request.clone();
    for key in ["object", "oldObject"] {
        let meta = stripped[key]["metadata"].as_object_mut().unwrap();
        meta.remove("managedFields");
        if let Some(a) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
            a.remove("kubectl.kubernetes.io/last-applied-configuration");
        }
    }
    let c = cluster_at_capture();
    assert_eq!(outcomes(&request, &c), outcomes(&stripped, &c));
}
