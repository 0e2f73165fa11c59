//! The test data carried in the repository (`testdata/`, provenance in
//! `testdata/README.md`): the manifests Calico published, its upgrade guides
//! and the AdmissionReviews a real kube-apiserver sent during the upgrade
//! steps.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

/// `testdata/` at the top of the repository.
pub fn testdata_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata"))
}

/// `testdata/corpus/<rel>`.
pub fn corpus_path(rel: &str) -> PathBuf {
    testdata_dir().join("corpus").join(rel)
}

/// `testdata/reviews/<file>`: a captured AdmissionReview as stored.
pub fn review_path(file: &str) -> PathBuf {
    testdata_dir().join("reviews").join(file)
}

/// `testdata/corpus/manifests/<rel>`.
pub fn manifest_path(rel: &str) -> PathBuf {
    corpus_path("manifests").join(rel)
}

/// The text of `corpus/manifests/<rel>`, as published (for tests that hand
/// the file itself to the server).
pub fn manifest_text(rel: &str) -> String {
    read_text(&manifest_path(rel))
}

/// Every non-empty YAML document of a file, as JSON.
pub fn read_docs(path: &Path) -> Vec<Value> {
    serde_yaml_ng::Deserializer::from_str(&read_text(path))
        .map(|doc| Value::deserialize(doc).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .filter(|v| !v.is_null())
        .collect()
}

/// The documents of `corpus/manifests/<rel>`.
pub fn manifest(rel: &str) -> Vec<Value> {
    read_docs(&manifest_path(rel))
}

/// Every manifest file of the corpus (`v2.6/etcd/calico.yaml`, ...) with its
/// documents, sorted by path so that generated tables are stable.
pub fn all_manifests() -> Vec<(String, Vec<Value>)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "yaml") {
                out.push(path);
            }
        }
    }
    let root = manifest_path("");
    let mut files = Vec::new();
    walk(&root, &mut files);
    files.sort();
    files
        .into_iter()
        .map(|f| {
            let rel = f.strip_prefix(&root).expect("under root");
            (rel.to_string_lossy().into_owned(), read_docs(&f))
        })
        .collect()
}

/// The `kind` named `name` among `docs`, if there is one.
pub fn try_find(docs: &[Value], kind: &str, name: &str) -> Option<Value> {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .cloned()
}

/// The `kind` named `name` among `docs`.
pub fn find(docs: &[Value], kind: &str, name: &str) -> Value {
    try_find(docs, kind, name).unwrap_or_else(|| panic!("no {kind} {name}"))
}

/// The `kind` named `name` in `corpus/manifests/<rel>`, as published.
pub fn doc(rel: &str, kind: &str, name: &str) -> Value {
    try_find(&manifest(rel), kind, name).unwrap_or_else(|| panic!("{rel} has no {kind} {name}"))
}

/// Every captured review (`testdata/reviews/*.json`): its file name and its
/// text as stored, sorted by name.
pub fn captured_files() -> Vec<(String, String)> {
    let dir = testdata_dir().join("reviews");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|f| f.ends_with(".json"))
        .collect();
    files.sort();
    assert!(files.len() > 10, "{} captured reviews", files.len());
    files
        .into_iter()
        .map(|f| {
            let text = read_text(&review_path(&f));
            (f, text)
        })
        .collect()
}

/// A review captured from a real API server (`testdata/reviews/<file>`) and
/// its query string (`timeout=7s`): the capture stored the query as an extra
/// top-level `query` member, which is removed so the review is as sent.
pub fn captured(file: &str) -> (String, Value) {
    let path = review_path(file);
    let mut review: Value = serde_json::from_str(&read_text(&path))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let query = review
        .as_object_mut()
        .and_then(|r| r.remove("query"))
        .and_then(|q| q.as_str().map(str::to_owned))
        .unwrap_or_else(|| panic!("{file} has no query member"));
    (query, review)
}

fn read_text(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
