//! Custom resources of the published `operator-crds.yaml` and `calico.yaml`.

use std::path::Path;

use serde_json::json;

use super::*;
use crate::manifest::{self, Source};

/// The objects of a published Calico file under `testdata/modern` (the
/// review tests read it too).
pub(crate) fn published(tag: &str, file: &str) -> Vec<Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/modern")
        .join(tag)
        .join(file);
    manifest::read(&[Source::Path(path)])
        .unwrap()
        .into_iter()
        .map(|m| m.object)
        .collect()
}

#[test]
fn calicos_own_crds_say_which_of_its_kinds_are_namespaced() {
    let crds = Crds::new(&published("v3.31.0", "calico.yaml"));
    assert_eq!(
        crds.namespaced("crd.projectcalico.org", "NetworkPolicy"),
        Some(true)
    );
    assert_eq!(
        crds.namespaced("crd.projectcalico.org", "IPPool"),
        Some(false)
    );
    assert_eq!(
        crds.plural("crd.projectcalico.org", "IPPool"),
        Some("ippools")
    );
}

#[test]
fn schema_defaults_fill_what_is_missing_and_keep_what_is_set() {
    // v3.32 added `default: Info` to the BGPConfiguration schema.
    let crds = Crds::new(&published("v3.32.1", "calico.yaml"));
    let config = |spec: Value| {
        json!({"apiVersion": "crd.projectcalico.org/v1", "kind": "BGPConfiguration",
               "metadata": {"name": "default"}, "spec": spec})
    };
    let mut object = config(json!({"asNumber": 64512}));
    crds.fill_defaults(&mut object);
    assert_eq!(object["spec"]["logSeverityScreen"], "Info");
    assert_eq!(object["spec"]["asNumber"], 64512);
    assert_eq!(object["metadata"], json!({"name": "default"}));
    let mut set = config(json!({"logSeverityScreen": "Debug"}));
    crds.fill_defaults(&mut set);
    assert_eq!(set["spec"]["logSeverityScreen"], "Debug");
    // A version the CRD does not define, or no spec at all: nothing to do.
    let mut other = config(json!({}));
    other["apiVersion"] = json!("crd.projectcalico.org/v9");
    let before = other.clone();
    crds.fill_defaults(&mut other);
    assert_eq!(other, before);
}

#[test]
fn defaults_reach_into_nested_objects_and_array_items() {
    let schema = json!({"properties": {
        "spec": {"properties": {
            "pools": {"items": {"properties": {"nat": {"default": "Enabled"}}}},
            "labels": {"additionalProperties": {"properties": {"v": {"default": 1}}}},
            "nested": {"default": {}, "properties": {"x": {"default": "y"}}},
        }},
    }});
    let mut value = json!({"pools": [{}, {"nat": "Disabled"}], "labels": {"a": {}}});
    apply_defaults(&mut value, &schema["properties"]["spec"]);
    assert_eq!(
        value,
        json!({"pools": [{"nat": "Enabled"}, {"nat": "Disabled"}], "labels": {"a": {"v": 1}},
               "nested": {"x": "y"}})
    );
    let mut scalar = json!(3);
    apply_defaults(&mut scalar, &schema);
    assert_eq!(scalar, json!(3));
}
