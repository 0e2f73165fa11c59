//! The fuzz targets' seed corpus (`fuzz/seeds/<target>/`), derived from
//! `testdata/` (the captured reviews and the corpus manifests) and the
//! repository's policy files. This test fails when the committed seeds
//! differ from what the data gives; regenerate them with
//!
//! ```text
//! TOLLGATE_WRITE_FUZZ_SEEDS=1 cargo test -p tollgate-testkit --test fuzz_seeds
//! ```
//!
//! Seeds are kept small (a few hundred KB in all): libFuzzer mutates
//! small inputs faster, and each one only has to reach a shape.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use tollgate_testkit::corpus::{all_manifests, captured, corpus_path, testdata_dir};

/// A review larger than this (compact JSON) is left out.
const MAX_SEED: usize = 12 * 1024;

type Seeds = BTreeMap<String, Vec<u8>>;

/// A target and the function that writes its seeds.
type Generator = (&'static str, fn(&mut Seeds));

fn repo() -> PathBuf {
    testdata_dir().join("..")
}

fn fuzz_seeds_dir() -> PathBuf {
    repo().join("fuzz/seeds")
}

/// The captured reviews (query member removed), by file stem, compact.
fn reviews() -> Vec<(String, Value)> {
    let mut files: Vec<String> = std::fs::read_dir(testdata_dir().join("reviews"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|f| f.ends_with(".json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|f| {
            let (_, review) = captured(&f);
            (f.trim_end_matches(".json").to_owned(), review)
        })
        .filter(|(_, r)| serde_json::to_vec(r).unwrap().len() <= MAX_SEED)
        .collect()
}

fn review_parse(seeds: &mut Seeds) {
    for (name, review) in reviews()
        .into_iter()
        .filter(|(n, _)| n.contains("--validate--"))
    {
        seeds.insert(name, serde_json::to_vec(&review).unwrap());
    }
    // The shapes the decoder must refuse or answer with a 400.
    let hand = [
        ("v1beta1", json!({"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview",
            "request": {"uid": "u", "operation": "CREATE", "object": {"kind": "Pod"}}}).to_string()),
        ("duplicate-uid", r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"a","uid":"b","operation":"CREATE"}}"#.to_owned()),
        ("no-uid", r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"operation":"CREATE"}}"#.to_owned()),
        ("deep", format!(r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{{"uid":"u","operation":"CREATE","object":{}{}}}}}"#, "[".repeat(101), "]".repeat(101))),
    ];
    for (name, text) in hand {
        seeds.insert(format!("hand-{name}"), text.into_bytes());
    }
}

fn strip_request(seeds: &mut Seeds) {
    for (name, review) in reviews()
        .into_iter()
        .filter(|(n, _)| n.contains("--mutate--"))
    {
        seeds.insert(name, serde_json::to_vec(&review["request"]).unwrap());
    }
}

fn patch_compose(seeds: &mut Seeds) {
    // The object, a NUL, then bytes that drive the operations.
    for (name, review) in reviews()
        .into_iter()
        .filter(|(n, r)| n.contains("--mutate--") && r["request"]["object"].is_object())
        .step_by(2)
    {
        let mut seed = serde_json::to_vec(&review["request"]["object"]).unwrap();
        seed.push(0);
        seed.extend((0u8..64).map(|i| i.wrapping_mul(37)));
        seeds.insert(name, seed);
    }
    // Found by CI: a float that serde_json's default parsing read one ulp
    // off, so a `test` op copying it failed (webhook/host/src/patch.rs).
    seeds.insert(
        "15-float-copied-into-a-test--found-by-ci".to_owned(),
        b"999990.199999900000\0q\0\0\0\0\0\0\0quest\"7691&99{".to_vec(),
    );
}

fn image_version(seeds: &mut Seeds) {
    // Every image the corpus names, each with the next one of its repository.
    let mut images = BTreeSet::new();
    for (_, docs) in all_manifests() {
        for doc in &docs {
            collect_images(doc, &mut images);
        }
    }
    let images: Vec<&String> = images.iter().collect();
    for (i, pair) in images.windows(2).enumerate() {
        seeds.insert(
            format!("pair-{i:03}"),
            format!("{}\n{}", pair[0], pair[1]).into_bytes(),
        );
    }
    for (name, text) in [
        ("pre-release", "v3.0.0-alpha1-rc1\nv3.0.0-alpha1.2"),
        (
            "build",
            "quay.io/calico/node:v2.6.5+build.1@sha256:00\nlocalhost:5000/calico/node",
        ),
        (
            "unrendered",
            "quay.io/calico/ctl:{% include version component=\"calico/node\" %}\nv1.3.0",
        ),
    ] {
        seeds.insert(format!("hand-{name}"), text.as_bytes().to_vec());
    }
}

fn collect_images(value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                match child {
                    Value::String(image) if key == "image" => {
                        out.insert(image.clone());
                    }
                    _ => collect_images(child, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| collect_images(i, out)),
        _ => {}
    }
}

fn snapshot_load(seeds: &mut Seeds) {
    // First byte: 0 reads the rest as YAML, 1 as JSON.
    let small = [
        "manifests/v3.0/etcd/rbac.yaml",
        "manifests/v2.2/policy-controller.yaml",
        "manifests/v3.0/calico-kube-controllers.yaml",
        "upgrade-v2.5/manifests/globalbgpconfig.yaml",
        "upgrade-v2.5/manifests/tprs.yaml",
    ];
    for rel in small {
        let text = std::fs::read(corpus_path(rel)).unwrap();
        let name = rel.trim_end_matches(".yaml").replace('/', "-");
        let docs = tollgate_testkit::corpus::read_docs(&corpus_path(rel));
        let mut yaml = vec![0];
        yaml.extend(text);
        seeds.insert(format!("{name}-yaml"), yaml);
        let mut stream = vec![1];
        for doc in &docs {
            stream.extend(serde_json::to_vec(doc).unwrap());
            stream.push(b'\n');
        }
        seeds.insert(format!("{name}-json"), stream);
        let list = json!({"apiVersion": "v1", "kind": "List", "items": docs});
        let mut list_seed = vec![1];
        list_seed.extend(serde_json::to_vec(&list).unwrap());
        seeds.insert(format!("{name}-list"), list_seed);
    }
    saved_snapshots(seeds);
}

/// Snapshots saved from a real API server (`testdata/snapshots/`), as YAML.
fn saved_snapshots(seeds: &mut Seeds) {
    for rel in [
        "kdd-v2.4-migrated/crd-data.yaml",
        "kdd-v2.4-not-migrated/tpr-data.yaml",
        "audit-violations/web.yaml",
    ] {
        let mut seed = vec![0];
        seed.extend(std::fs::read(testdata_dir().join("snapshots").join(rel)).unwrap());
        seeds.insert(
            format!("saved-{}", rel.trim_end_matches(".yaml").replace('/', "-")),
            seed,
        );
    }
}

fn config_load(seeds: &mut Seeds) {
    for rel in [
        "policies-wasm/calico/policies.yaml",
        "policies-wasm/examples/pod-privileged/policies.yaml",
        "deploy/base/policies.yaml",
        "docs/examples/my-policies.yaml",
    ] {
        let text = std::fs::read(repo().join(rel)).unwrap();
        seeds.insert(rel.trim_end_matches(".yaml").replace('/', "-"), text);
    }
    seeds.insert("empty-set".to_owned(), b"[]\n".to_vec());
}

fn guest_output(seeds: &mut Seeds) {
    // First byte: bit 0 the ABI (0: v1, 1: v2), bits 1-2 the rules - 1.
    let repair = json!({"allowed": false, "message": "use Recreate",
        "patch": [{"op": "replace", "path": "/spec/strategy", "value": {"type": "Recreate"}}]});
    let deny = json!({"allowed": false, "message": "no", "warnings": ["careful"]});
    let allow = json!({"allowed": true});
    for (name, head, doc) in [
        ("v1-allow", 0u8, allow.clone()),
        ("v1-deny", 0, deny.clone()),
        ("v1-repair", 0, repair.clone()),
        ("v2-one", 1, json!({"verdicts": [repair.clone()]})),
        (
            "v2-three",
            1 | (2 << 1),
            json!({"verdicts": [allow, deny, repair]}),
        ),
    ] {
        let mut seed = vec![head];
        seed.extend(serde_json::to_vec(&doc).unwrap());
        seeds.insert(name.to_owned(), seed);
    }
}

fn response_encode(seeds: &mut Seeds) {
    // Unstructured bytes: the uids and messages of real reviews as material.
    for (name, review) in reviews()
        .into_iter()
        .filter(|(n, _)| n.contains("--validate--"))
        .take(4)
    {
        let uid = review["request"]["uid"].as_str().unwrap_or_default();
        let mut seed = vec![0, 2, 1];
        seed.extend(uid.as_bytes());
        seed.extend(name.as_bytes());
        seeds.insert(name, seed);
    }
}

fn all_seeds() -> BTreeMap<&'static str, Seeds> {
    let generators: [Generator; 8] = [
        ("review_parse", review_parse),
        ("response_encode", response_encode),
        ("strip_request", strip_request),
        ("patch_compose", patch_compose),
        ("image_version", image_version),
        ("snapshot_load", snapshot_load),
        ("guest_output", guest_output),
        ("config_load", config_load),
    ];
    generators
        .into_iter()
        .map(|(target, generate)| {
            let mut seeds = Seeds::new();
            generate(&mut seeds);
            (target, seeds)
        })
        .collect()
}

fn committed(dir: &Path) -> Seeds {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Seeds::new();
    };
    entries
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

#[test]
fn committed_fuzz_seeds_are_the_ones_testdata_gives() {
    let all = all_seeds();
    let total: usize = all.values().flat_map(|s| s.values()).map(Vec::len).sum();
    assert!(total < 400 * 1024, "the seed corpus grew to {total} bytes");
    let write = std::env::var_os("TOLLGATE_WRITE_FUZZ_SEEDS").is_some();
    let mut stale = Vec::new();
    for (target, seeds) in &all {
        assert!(!seeds.is_empty(), "{target} has no seeds");
        let dir = fuzz_seeds_dir().join(target);
        if write {
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            for (name, bytes) in seeds {
                std::fs::write(dir.join(name), bytes).unwrap();
            }
        } else if committed(&dir) != *seeds {
            stale.push(*target);
        }
    }
    assert!(
        stale.is_empty(),
        "fuzz/seeds/{{{}}} differ from what testdata/ gives: run \
         TOLLGATE_WRITE_FUZZ_SEEDS=1 cargo test -p tollgate-testkit --test fuzz_seeds",
        stale.join(",")
    );
}
