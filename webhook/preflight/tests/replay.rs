//! The replay with the built-in Calico pack on published manifests: what is
//! stored after each object (the repaired object; the earlier version of an
//! object given twice) and which warnings are transient.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tollgate_context::{ClusterContext, EmptyContext, SnapshotContext};
use tollgate_host::{Config, PolicySet, Sandbox, SandboxLimits};
use tollgate_preflight::{Manifest, Objects, Source, manifest, replay};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
const BUDGET: Duration = Duration::from_secs(10);

fn policies() -> PolicySet {
    let sandbox = Sandbox::new(SandboxLimits::default()).expect("sandbox");
    let text =
        std::fs::read_to_string(format!("{ROOT}/policies-wasm/calico/policies.yaml")).unwrap();
    let config = Config::from_yaml(&text, "policies.yaml").expect("config");
    let builtins: &[(&str, &[u8])] = &[("calico", tollgate_guests::CALICO)];
    PolicySet::load(&config, &sandbox, builtins, Path::new(".")).expect("load")
}

fn testdata(rel: &str) -> PathBuf {
    Path::new(ROOT).join("testdata").join(rel)
}

fn read(paths: &[PathBuf]) -> Vec<Manifest> {
    let sources: Vec<Source> = paths.iter().cloned().map(Source::Path).collect();
    manifest::read(&sources).expect("published manifests read")
}

#[test]
fn a_repaired_object_is_stored_as_repaired() {
    let published =
        std::fs::read_to_string(testdata("corpus/manifests/v2.5/policy-controller.yaml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policy-controller.yaml");
    std::fs::write(
        &file,
        published.replace("type: Recreate", "type: RollingUpdate"),
    )
    .unwrap();
    let manifests = read(&[file.clone(), file]);
    let set = policies();
    let replayed = replay(
        &set,
        BUDGET,
        &EmptyContext::shared(),
        &Objects::default(),
        &manifests,
    )
    .unwrap();
    assert_eq!(replayed.len(), 2);
    assert_eq!(replayed[0].operation(), "CREATE");
    assert!(
        replayed[0].judged.patched.is_some(),
        "{:?}",
        replayed[0].findings
    );
    let second = &replayed[1].review["request"];
    assert_eq!(replayed[1].operation(), "UPDATE");
    assert_eq!(second["oldObject"]["spec"]["strategy"]["type"], "Recreate");
    assert_eq!(
        second["object"]["spec"]["strategy"]["type"],
        "RollingUpdate"
    );
}

#[test]
fn the_skew_of_a_v3_32_1_upgrade_is_transient_and_nothing_counts() {
    let dir = tempfile::tempdir().unwrap();
    let installed = testdata("modern/v3.31.0/calico.yaml");
    std::fs::copy(&installed, dir.path().join("calico.yaml")).unwrap();
    let objects = Objects::load(dir.path()).unwrap();
    let context: Arc<dyn ClusterContext> = Arc::new(SnapshotContext::load(dir.path()).unwrap());
    let manifests = read(&[testdata("modern/v3.32.1/calico.yaml")]);
    let set = policies();
    let replayed = replay(&set, BUDGET, &context, &objects, &manifests).unwrap();
    assert!(replayed.iter().all(|r| r.judged.allowed()));
    let counted: Vec<_> = replayed.iter().flat_map(|r| r.counted()).collect();
    assert!(counted.is_empty(), "{counted:?}");
    let node = replayed
        .iter()
        .find(|r| r.manifest.object["kind"] == "DaemonSet")
        .unwrap();
    assert_eq!(node.operation(), "UPDATE");
    assert_eq!(node.findings[0].policy, "version-skew");
    assert_eq!(node.transient, [true]);
    // Without the replay's store the Deployment would warn as well.
    let controller = replayed
        .iter()
        .find(|r| {
            r.manifest.object["metadata"]["name"] == "calico-kube-controllers"
                && r.manifest.object["kind"] == "Deployment"
        })
        .unwrap();
    assert!(controller.findings.is_empty(), "{:?}", controller.findings);
}
