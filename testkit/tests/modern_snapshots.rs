//! The saved clusters of today's Calico under `testdata/snapshots/` that the
//! README tour and the end-to-end tests run `tollgate check` against, built
//! from the published files by [`tollgate_testkit::modern`]. This test fails
//! when a committed snapshot differs from what the files give; regenerate
//! them with
//!
//! ```text
//! TOLLGATE_BLESS=1 cargo test -p tollgate-testkit --test modern_snapshots
//! ```

use std::path::PathBuf;

use serde_json::{Value, json};
use tollgate_testkit::corpus::testdata_dir;
use tollgate_testkit::modern::{manifest_install, operator_install};

/// Each snapshot: its directory under `testdata/snapshots/` and its objects.
fn snapshots() -> Vec<(&'static str, Vec<Value>)> {
    vec![
        (
            "operator-v3.31.7",
            with_namespaces(operator_install("v3.31.7")),
        ),
        (
            "manifest-v3.31.7",
            with_namespaces(manifest_install("v3.31.7", "calico.yaml")),
        ),
    ]
}

/// What every cluster has beside Calico: the namespaces its objects live in.
fn with_namespaces(mut objects: Vec<Value>) -> Vec<Value> {
    let mut names: Vec<&str> = objects
        .iter()
        .filter_map(|o| o["metadata"]["namespace"].as_str())
        .chain(["default", "kube-system"])
        .collect();
    names.sort_unstable();
    names.dedup();
    let present = |n: &&str| {
        objects
            .iter()
            .any(|o| o["kind"] == "Namespace" && o["metadata"]["name"] == *n)
    };
    names.retain(|n| !present(n));
    let namespaces: Vec<Value> = names
        .iter()
        .map(|n| json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}}))
        .collect();
    objects.splice(0..0, namespaces);
    objects
}

fn path(dir: &str) -> PathBuf {
    testdata_dir()
        .join("snapshots")
        .join(dir)
        .join("cluster.json")
}

/// A `v1 List`, as `kubectl get -o json` prints one.
fn render(objects: &[Value]) -> String {
    let list = json!({"apiVersion": "v1", "kind": "List", "items": objects});
    serde_json::to_string_pretty(&list).expect("a snapshot serialises") + "\n"
}

#[test]
fn committed_modern_snapshots_are_the_ones_the_published_files_give() {
    let bless = std::env::var_os("TOLLGATE_BLESS").is_some_and(|v| v == "1");
    for (dir, objects) in snapshots() {
        let (file, text) = (path(dir), render(&objects));
        if bless {
            std::fs::create_dir_all(file.parent().expect("a directory")).expect("mkdir");
            std::fs::write(&file, text).expect("write the snapshot");
            continue;
        }
        let committed = std::fs::read_to_string(&file).unwrap_or_default();
        assert!(
            committed == text,
            "{} is out of date: run TOLLGATE_BLESS=1 cargo test -p tollgate-testkit --test modern_snapshots",
            file.display()
        );
    }
}
