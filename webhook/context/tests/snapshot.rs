//! The snapshot backend on directories built from the Calico corpus, on
//! `kubectl get -o yaml|json` output, and on bad files.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use tollgate_context::snapshot::{Location, ProblemKind};
use tollgate_context::{ClusterContext, LookupQuery, ObjectError, SnapshotContext, SnapshotError};

fn corpus() -> PathBuf {
    tollgate_testkit::corpus::corpus_path("")
}

fn copy(from: &str, dir: &Path, to: &str) {
    let target = dir.join(to);
    fs::create_dir_all(target.parent().unwrap()).unwrap();
    fs::copy(corpus().join(from), target).unwrap();
}

fn write(dir: &Path, name: &str, text: &str) {
    let target = dir.join(name);
    fs::create_dir_all(target.parent().unwrap()).unwrap();
    fs::write(target, text).unwrap();
}

fn lookup(ctx: &SnapshotContext, query: &LookupQuery) -> Vec<Value> {
    serde_json::from_slice(&ctx.lookup(query).unwrap()).unwrap()
}

/// Top-level `kind:` lines: one per object in the corpus manifests.
fn kinds_in(path: &Path) -> usize {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("kind:"))
        .count()
}

fn problems(err: SnapshotError) -> Vec<(String, Option<usize>, Option<usize>, ProblemKind)> {
    let SnapshotError::Invalid { problems, .. } = err else {
        panic!("expected bad documents, got {err}");
    };
    problems
        .into_iter()
        .map(|p| {
            let file =
                p.at.file
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
            (file, p.at.document, p.at.item, p.error)
        })
        .collect()
}

#[test]
fn corpus_manifests_serve_the_objects_rules_read() {
    let dir = tempfile::tempdir().unwrap();
    copy(
        "manifests/v1.6/policy-controller.yaml",
        dir.path(),
        "policy-controller.yaml",
    );
    copy(
        "manifests/v2.6/kdd/calico.yaml",
        dir.path(),
        "kdd/calico.yaml",
    );
    copy(
        "upgrade-v2.5/manifests/upgrade-job.yaml",
        dir.path(),
        "migration/job.yml",
    );
    let ctx = SnapshotContext::load(dir.path()).unwrap();
    assert_eq!(ctx.file_count(), 3);
    let expected: usize = [
        "policy-controller.yaml",
        "kdd/calico.yaml",
        "migration/job.yml",
    ]
    .iter()
    .map(|f| kinds_in(&dir.path().join(f)))
    .sum();
    assert_eq!(ctx.object_count(), expected);

    // The real pre-2.0 ReplicaSet, under the apiVersion it was saved with.
    let rs = lookup(
        &ctx,
        &LookupQuery::get(
            "extensions/v1beta1",
            "ReplicaSet",
            Some("kube-system"),
            "calico-policy-controller",
        ),
    );
    assert_eq!(rs.len(), 1);
    assert_eq!(
        rs[0]["spec"]["template"]["spec"]["containers"][0]["image"],
        "calico/kube-policy-controller:v0.4.0"
    );
    assert_eq!(rs[0]["spec"]["replicas"], 1);
    // Exact apiVersion match: a snapshot cannot convert between versions.
    assert!(lookup(&ctx, &LookupQuery::list("apps/v1", "ReplicaSet")).is_empty());

    let ds = LookupQuery::list("extensions/v1beta1", "DaemonSet")
        .in_namespace("kube-system")
        .with_label("k8s-app", "calico-node");
    let ds = lookup(&ctx, &ds);
    assert_eq!(ds.len(), 1);
    assert_eq!(ds[0]["metadata"]["name"], "calico-node");

    let job = lookup(&ctx, &LookupQuery::list("batch/v1", "Job"));
    assert_eq!(job.len(), 1);
    assert_eq!(job[0]["metadata"]["name"], "calico-upgrade-v2.5");

    let crds = lookup(
        &ctx,
        &LookupQuery::list("apiextensions.k8s.io/v1beta1", "CustomResourceDefinition"),
    );
    let names: Vec<_> = crds
        .iter()
        .map(|c| c["metadata"]["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"ippools.crd.projectcalico.org"),
        "{names:?}"
    );
    assert!(
        names.windows(2).all(|w| w[0] < w[1]),
        "sorted by name: {names:?}"
    );

    assert!(lookup(&ctx, &LookupQuery::list("v1", "Pod")).is_empty());
}

#[test]
fn every_published_corpus_manifest_loads() {
    let mut files = Vec::new();
    for sub in [
        "manifests",
        "upgrade-v2.5/manifests",
        "kube-controllers-repo",
    ] {
        collect_yaml(&corpus().join(sub), &mut files);
    }
    assert!(files.len() > 50, "found {} corpus manifests", files.len());
    for file in files {
        let dir = tempfile::tempdir().unwrap();
        fs::copy(&file, dir.path().join("m.yaml")).unwrap();
        let ctx =
            SnapshotContext::load(dir.path()).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        assert_eq!(ctx.object_count(), kinds_in(&file), "{}", file.display());
    }
}

fn collect_yaml(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect_yaml(&path, out);
        } else if path.extension().is_some_and(|e| e == "yaml") {
            out.push(path);
        }
    }
}

#[test]
fn an_unrendered_jekyll_template_is_reported_at_its_front_matter() {
    let dir = tempfile::tempdir().unwrap();
    copy(
        "jekyll-source/v2.6/kdd/calico.yaml",
        dir.path(),
        "calico.yaml",
    );
    let err = SnapshotContext::load(dir.path()).unwrap_err();
    let message = err.to_string();
    let found = problems(err);
    assert_eq!(found.len(), 1, "{message}");
    let (file, document, item, kind) = &found[0];
    assert_eq!(
        (file.as_str(), *document, *item),
        ("calico.yaml", Some(1), None)
    );
    assert!(matches!(
        kind,
        ProblemKind::Object(ObjectError::Missing("apiVersion"))
    ));
    assert!(
        message.contains("calico.yaml: document 1: missing apiVersion"),
        "{message}"
    );
}

#[test]
fn kubectl_list_output_is_flattened() {
    let dir = tempfile::tempdir().unwrap();
    // `kubectl get ns -o json`: a List whose items carry apiVersion/kind.
    let list = json!({
        "apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""},
        "items": [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {
                "name": "kube-system",
                "annotations": {"net.beta.kubernetes.io/network-policy": "{\"ingress\":{\"isolation\":\"DefaultDeny\"}}"},
                "managedFields": [{"manager": "kubectl"}]}},
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}},
            {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-1"}, "spec": {"unschedulable": true}},
        ],
    });
    write(
        dir.path(),
        "ns.json",
        &serde_json::to_string_pretty(&list).unwrap(),
    );
    // Raw API output: a typed list whose items carry neither.
    write(
        dir.path(),
        "nested/policies.YAML",
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicyList\nmetadata:\n  resourceVersion: \"7\"\nitems:\n\
         - metadata: {name: default-deny, namespace: kube-system}\n  spec: {podSelector: {}}\n\
         - metadata: {name: allow, namespace: default, labels: {a: b}}\n  spec: {podSelector: {}}\n",
    );
    // Several JSON documents in one file, and a YAML file with empty documents.
    write(
        dir.path(),
        "stream.json",
        r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p1","namespace":"kube-system"}}
           {"apiVersion":"v1","kind":"Pod","metadata":{"name":"p2","namespace":"kube-system"}}"#,
    );
    write(
        dir.path(),
        "empty-docs.yml",
        "---\n# only a comment\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: calico-config, namespace: kube-system}\ndata: {x: y}\n---\n",
    );
    // Not read: other extensions and hidden entries.
    write(dir.path(), "notes.txt", "not: [yaml");
    write(dir.path(), ".hidden.yaml", "not: [yaml");
    write(dir.path(), "..data/dup.yaml", "not: [yaml");

    let ctx = SnapshotContext::load(dir.path()).unwrap();
    assert_eq!(ctx.file_count(), 4);
    assert_eq!(ctx.object_count(), 8);

    let ns = lookup(&ctx, &LookupQuery::list("v1", "Namespace"));
    let names: Vec<_> = ns
        .iter()
        .map(|n| n["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["default", "kube-system"]);
    assert!(ns[1]["metadata"].get("managedFields").is_none());
    assert!(ns[1]["metadata"]["annotations"]["net.beta.kubernetes.io/network-policy"].is_string());
    assert_eq!(
        lookup(&ctx, &LookupQuery::get("v1", "Node", None, "node-1"))[0]["spec"]["unschedulable"],
        true
    );

    let nps = lookup(
        &ctx,
        &LookupQuery::list("networking.k8s.io/v1", "NetworkPolicy").in_namespace("kube-system"),
    );
    assert_eq!(nps.len(), 1);
    assert_eq!(nps[0]["apiVersion"], "networking.k8s.io/v1");
    assert_eq!(nps[0]["kind"], "NetworkPolicy");
    let labelled = LookupQuery::list("networking.k8s.io/v1", "NetworkPolicy").with_label("a", "b");
    assert_eq!(lookup(&ctx, &labelled)[0]["metadata"]["name"], "allow");

    assert_eq!(
        lookup(
            &ctx,
            &LookupQuery::list("v1", "Pod").in_namespace("kube-system")
        )
        .len(),
        2
    );
    assert_eq!(
        lookup(&ctx, &LookupQuery::list("v1", "ConfigMap"))[0]["data"]["x"],
        "y"
    );
}

#[test]
fn every_bad_document_is_reported_with_file_and_number() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "a-syntax.json",
        r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"#,
    );
    write(
        dir.path(),
        "b-docs.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: ok, namespace: x}\n---\napiVersion: v1\nkind: Pod\nmetadata: {namespace: x}\n---\n- a list\n---\nkind: Pod\nmetadata: {name: n}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: ok, namespace: x}\n",
    );
    write(
        dir.path(),
        "c-list.yaml",
        "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Pod\n  metadata: {name: fine, namespace: x}\n- metadata: {name: untyped}\n---\napiVersion: v1\nkind: PodList\nitems: {not: a list}\n",
    );
    // A syntax error ends the file: later documents cannot be parsed.
    write(
        dir.path(),
        "d-broken.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: before, namespace: x}\n---\nmetadata: [unclosed\n---\nkind: X\n",
    );
    write(
        dir.path(),
        "e-dup.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: fine, namespace: x}\n",
    );
    std::os::unix::fs::symlink(
        dir.path().join("missing"),
        dir.path().join("f-dangling.yaml"),
    )
    .unwrap();

    let err = SnapshotContext::load(dir.path()).unwrap_err();
    let message = err.to_string();
    let found = problems(err);
    let summary: Vec<_> = found
        .iter()
        .map(|(f, d, i, k)| (f.as_str(), *d, *i, k.to_string()))
        .collect();
    let expect = [
        ("a-syntax.json", Some(1), None, "invalid JSON"),
        ("b-docs.yaml", Some(2), None, "missing metadata.name"),
        ("b-docs.yaml", Some(3), None, "not a mapping"),
        ("b-docs.yaml", Some(4), None, "missing apiVersion"),
        (
            "b-docs.yaml",
            Some(5),
            None,
            "v1 Pod x/ok is also defined at",
        ),
        ("c-list.yaml", Some(1), Some(1), "missing apiVersion"),
        ("c-list.yaml", Some(2), None, "items is not a sequence"),
        ("d-broken.yaml", Some(2), None, "invalid YAML"),
        (
            "e-dup.yaml",
            Some(1),
            None,
            "v1 Pod x/fine is also defined at",
        ),
        ("f-dangling.yaml", None, None, "cannot read"),
    ];
    assert_eq!(summary.len(), expect.len(), "{message}");
    for (got, want) in summary.iter().zip(expect) {
        assert_eq!((got.0, got.1, got.2), (want.0, want.1, want.2), "{message}");
        assert!(
            got.3.starts_with(want.3),
            "{} does not start with {}",
            got.3,
            want.3
        );
    }
    // A duplicate names where the first copy is.
    let ProblemKind::Duplicate { first, .. } = &found[8].3 else {
        panic!("duplicate expected");
    };
    assert_eq!(
        *first,
        Location {
            file: dir.path().join("c-list.yaml"),
            document: Some(1),
            item: Some(0),
        }
    );
    assert!(
        message.contains("c-list.yaml: document 1, items[1]: missing apiVersion"),
        "{message}"
    );
    assert!(message.contains("has 10 bad document(s)"), "{message}");
}

#[test]
fn a_missing_directory_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let err = SnapshotContext::load(&missing).unwrap_err();
    assert!(matches!(err, SnapshotError::Dir { ref path, .. } if *path == missing));
}

#[test]
fn an_empty_directory_is_an_empty_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = SnapshotContext::load(dir.path()).unwrap();
    assert_eq!(ctx.object_count(), 0);
    assert_eq!(
        &*ctx.lookup(&LookupQuery::list("v1", "Pod")).unwrap(),
        b"[]"
    );
    assert!(ctx.is_ready());
}
