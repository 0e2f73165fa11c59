//! The admission chain on reviews a real API server sent, with the built-in
//! Calico pack: a repair on /mutate then validation of the patched object;
//! a denial naming the TPR→CRD migration.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tollgate_context::{ClusterContext, EmptyContext, SnapshotContext};
use tollgate_host::{Config, PolicySet, Sandbox, SandboxLimits};
use tollgate_preflight::{Chain, findings};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

fn policies() -> PolicySet {
    let sandbox = Sandbox::new(SandboxLimits::default()).expect("sandbox");
    let text =
        std::fs::read_to_string(format!("{ROOT}/policies-wasm/calico/policies.yaml")).unwrap();
    let config = Config::from_yaml(&text, "policies.yaml").expect("config");
    let builtins: &[(&str, &[u8])] = &[("calico", tollgate_guests::CALICO)];
    PolicySet::load(&config, &sandbox, builtins, Path::new(".")).expect("load")
}

fn review(name: &str) -> Value {
    let path = format!("{ROOT}/testdata/reviews/{name}");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn a_rolling_update_controller_is_repaired_and_then_passes_validation() {
    let set = policies();
    let chain = Chain {
        policies: &set,
        context: &EmptyContext::shared(),
        timeout: Duration::from_secs(10),
    };
    let review = review(
        "04-edit-controller-to-rollingupdate--validate--update-deployment-calico-policy-controller.json",
    );
    let judged = chain.judge(&review).unwrap();
    assert!(judged.allowed(), "{judged:?}");
    let patched = judged.patched.as_ref().expect("a repair");
    assert_eq!(patched["spec"]["strategy"]["type"], "Recreate");
    let found = findings(&set, &judged);
    assert!(
        found.iter().any(|f| f.policy == "controller-recreate"
            && f.verdict == "patch"
            && f.patch.is_some()),
        "{found:?}"
    );
    assert!(
        found
            .iter()
            .all(|f| f.endpoint == "mutate" || f.verdict != "deny"),
        "{found:?}"
    );
}

#[test]
fn a_kdd_upgrade_without_the_migration_is_denied_naming_it() {
    let set = policies();
    let snapshot: Arc<dyn ClusterContext> =
        Arc::new(SnapshotContext::load(&Path::new(ROOT).join("docs/examples/snapshot")).unwrap());
    let chain = Chain {
        policies: &set,
        context: &snapshot,
        timeout: Duration::from_secs(10),
    };
    let review = review("02-upgrade-v2.4-to-v2.5-kdd--validate--update-daemonset-calico-node.json");
    let judged = chain.judge(&review).unwrap();
    assert!(!judged.allowed());
    let found = findings(&set, &judged);
    let deny = found
        .iter()
        .find(|f| f.verdict == "deny")
        .expect("a denial");
    assert_eq!(deny.policy, "kdd-v2.5-migration", "{found:?}");
}
