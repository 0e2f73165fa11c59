use tollgate_sdk::image::ImageRef;

use super::*;

fn compiled(repositories: &[&str]) -> regex::Regex {
    let owned: Vec<String> = repositories.iter().map(|r| (*r).to_owned()).collect();
    let cel = image_regex(&owned);
    let body = cel
        .strip_prefix("r'")
        .and_then(|s| s.strip_suffix('\''))
        .unwrap();
    regex::Regex::new(body).unwrap()
}

/// The regex and the SDK's image rule agree on every image in the
/// corpus and on the awkward references the SDK documents.
#[test]
fn image_regex_agrees_with_the_sdk() {
    let mut images: Vec<String> = [
        "calico/node",
        "calico/node:v3.1.3",
        "quay.io/calico/node:v2.6.5",
        "docker.io/calico/node@sha256:abcd",
        "localhost/calico/node",
        "localhost:5000/calico/node",
        "registry.example.com:443/mirror/calico/node:v3",
        "my-org/calico/node:v1",
        "a//calico/node",
        "xcalico/node:v1",
        "calico/node-exporter",
        "calico/nodes",
        "calico/node/extra",
        "x:y/calico/node",
        "calico:v1/node",
        "quay.io/calico/ctl:{% include version component=\"calico/node\" %}",
        "calico/node:tag/with/slashes",
        "calico/node:\nv1",
        "calico/node @sha256:x",
        "calico/kube-controllers:v3.1.3",
        "quay.io/calico/kube-policy-controller:v0.7.0",
        "",
        "node",
    ]
    .map(str::to_owned)
    .to_vec();
    images.extend(corpus_images());
    // The API server refuses image references with surrounding
    // whitespace (Go's and Rust's trim agree on what that is).
    images.retain(|i| i.trim() == i);
    for repositories in [
        &["calico/node"][..],
        &["calico/kube-policy-controller", "calico/kube-controllers"],
        &["node"],
        &["calico/cni"],
    ] {
        let re = compiled(repositories);
        for image in &images {
            let sdk = repositories.iter().any(|r| ImageRef::parse(image).is(r));
            assert_eq!(re.is_match(image), sdk, "{repositories:?} on {image:?}");
        }
    }
}

/// Every `image:` value in the published manifests.
fn corpus_images() -> Vec<String> {
    let dir = tollgate_testkit::corpus::testdata_dir().join("corpus");
    let mut out = Vec::new();
    let mut stack = vec![dir];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(text) = std::fs::read_to_string(&path) {
                out.extend(text.lines().filter_map(|l| {
                    let value = l.trim().strip_prefix("image:")?.trim();
                    Some(value.trim_matches('"').to_owned())
                }));
            }
        }
    }
    assert!(out.len() > 100, "corpus images: {}", out.len());
    out
}

#[test]
fn a_bracketed_key_is_one_index() {
    let cel = changed("metadata.labels[projectcalico.org/operator-node-migration]");
    assert!(
        cel.contains(
            "oldObject['metadata']['labels']['projectcalico.org/operator-node-migration']"
        ),
        "{cel}"
    );
    assert!(
        cel.contains("'projectcalico.org/operator-node-migration' in object['metadata']['labels']"),
        "{cel}"
    );
    assert_eq!(
        changed("spec.unschedulable"),
        "((oldObject != null && 'spec' in oldObject && 'unschedulable' in oldObject['spec'] \
         && oldObject['spec']['unschedulable'] != null) != (object != null && 'spec' in object \
         && 'unschedulable' in object['spec'] && object['spec']['unschedulable'] != null) \
         || ((oldObject != null && 'spec' in oldObject && 'unschedulable' in oldObject['spec'] \
         && oldObject['spec']['unschedulable'] != null) && (object != null && 'spec' in object \
         && 'unschedulable' in object['spec'] && object['spec']['unschedulable'] != null) \
         && oldObject['spec']['unschedulable'] != object['spec']['unschedulable']))"
    );
}

#[test]
fn quoting() {
    assert_eq!(quote("a'b\\c\n"), r"'a\'b\\c\n'");
    assert_eq!(list(["x", "y"]), "['x', 'y']");
}

#[test]
fn subject_follows_the_operations() {
    use Operation::*;
    assert_eq!(
        Subject::of(&[Create, Update], Subject::ByOperation),
        Subject::Object
    );
    assert_eq!(Subject::of(&[Delete], Subject::Object), Subject::OldObject);
    assert_eq!(Subject::of(&[], Subject::OldObject), Subject::OldObject);
    assert_eq!(
        Subject::of(&[Create, Delete], Subject::Object),
        Subject::ByOperation
    );
}
