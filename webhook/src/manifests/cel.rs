//! A policy's `match:` as a CEL expression for a webhook's
//! `matchConditions`: the API server evaluates it before calling Tollgate,
//! so the requests it lets through are exactly the ones the host-side
//! [`tollgate_host::Matcher`] selects (same criteria, same order of
//! fallbacks, same image rule).
//!
//! The API server evaluates match conditions on unstructured values, where
//! a missing key is an error and an error applies the webhook's
//! failurePolicy; every member access is therefore guarded (`has`, `in`):
//! `request` omits `subResource`, `namespace` and `name` when they are
//! empty, `object` is null on DELETE and `oldObject` on CREATE.

use std::collections::{BTreeMap, BTreeSet};

use tollgate_host::config::{KindMatch, LabelSelectorConfig, MatchConfig};
use tollgate_host::matcher::FieldPath;
use tollgate_sdk::Operation;

/// `m` split into its guard (kinds and operations, which the webhook rules
/// already approximate) and the rest (what narrows within those). A
/// webhook ORs the guards of policies that share the rest.
pub fn parts(m: &MatchConfig) -> (String, String) {
    let subject = Subject::of(&m.operations, Subject::ByOperation);
    let containers = Containers::of(&m.kinds, Containers::Both);
    let mut guard = Vec::new();
    if !m.kinds.is_empty() {
        guard.push(kinds(&m.kinds));
    }
    if !m.operations.is_empty() {
        guard.push(format!(
            "request.operation in {}",
            list(m.operations.iter().map(|o| operation_name(*o)))
        ));
    }
    (every(guard), rest(m, subject, containers))
}

/// Which variable a criterion reading "the object" uses: the host reads the
/// old object of a DELETE and the new object otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Subject {
    Object,
    OldObject,
    ByOperation,
}

impl Subject {
    /// Narrowed by the operations a match allows (an alternative inherits
    /// its parent's).
    fn of(operations: &[Operation], inherited: Subject) -> Subject {
        let deletes = operations
            .iter()
            .filter(|o| **o == Operation::Delete)
            .count();
        match (operations.is_empty(), deletes) {
            (true, _) => inherited,
            (false, 0) => Subject::Object,
            (false, n) if n == operations.len() => Subject::OldObject,
            _ => Subject::ByOperation,
        }
    }

    /// `f` applied to the subject variable.
    fn apply(self, f: impl Fn(&str) -> String) -> String {
        match self {
            Subject::Object => f("object"),
            Subject::OldObject => f("oldObject"),
            Subject::ByOperation => format!(
                "(request.operation == 'DELETE' ? {} : {})",
                f("oldObject"),
                f("object")
            ),
        }
    }
}

/// Where the containers of the matched kinds can be. The host reads both a
/// pod template and a pod's own spec; the API server never sends a
/// workload with a pod's fields or a Pod with a template (it drops unknown
/// fields of built-in kinds), so a match on known kinds reads only theirs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Containers {
    Template,
    Pod,
    Both,
}

impl Containers {
    fn of(kinds: &[KindMatch], inherited: Containers) -> Containers {
        let place = |k: &KindMatch| match (k.subresource.as_deref(), k.kind.as_deref()) {
            // A subresource's object (a Scale) has no containers at all.
            (Some(_), _) => None,
            (None, Some("Deployment" | "ReplicaSet" | "DaemonSet" | "StatefulSet")) => {
                Some(Containers::Template)
            }
            (None, Some("Pod")) => Some(Containers::Pod),
            _ => Some(Containers::Both),
        };
        let places: BTreeSet<_> = kinds.iter().filter_map(place).map(|p| p as u8).collect();
        match places.len() {
            0 => inherited,
            1 if places.contains(&(Containers::Template as u8)) => Containers::Template,
            1 if places.contains(&(Containers::Pod as u8)) => Containers::Pod,
            _ => Containers::Both,
        }
    }
}

fn rest(m: &MatchConfig, inherited: Subject, containers: Containers) -> String {
    let subject = Subject::of(&m.operations, inherited);
    let containers = Containers::of(&m.kinds, containers);
    let mut all = Vec::new();
    if !m.namespaces.is_empty() {
        all.push(format!(
            "(has(request.namespace) && request.namespace in {})",
            list(&m.namespaces)
        ));
    }
    if !m.names.is_empty() {
        all.push(format!(
            "(has(request.name) && request.name in {})",
            list(&m.names)
        ));
    }
    if !m.any_of.is_empty() {
        all.push(any(m.any_of.iter().map(|a| {
            let (guard, rest) = parts_in(a, subject, containers);
            every([guard, rest].into_iter().filter(|p| p != "true").collect())
        })));
    }
    if let Some(selector) = &m.label_selector {
        all.push(subject.apply(|o| labels(o, selector)));
    }
    if !m.changed.is_empty() {
        all.push(any(m.changed.iter().map(|p| changed(p))));
    }
    if !m.images.is_empty() {
        let pattern = image_regex(&m.images);
        all.push(subject.apply(|o| images(o, &pattern, containers)));
    }
    every(all)
}

/// [`parts`] of an alternative, inheriting its parent's subject and
/// container places.
fn parts_in(m: &MatchConfig, subject: Subject, containers: Containers) -> (String, String) {
    let mut guard = Vec::new();
    if !m.kinds.is_empty() {
        guard.push(kinds(&m.kinds));
    }
    if !m.operations.is_empty() {
        guard.push(format!(
            "request.operation in {}",
            list(m.operations.iter().map(|o| operation_name(*o)))
        ));
    }
    (every(guard), rest(m, subject, containers))
}

fn every(parts: Vec<String>) -> String {
    match parts.len() {
        0 => "true".to_owned(),
        1 => parts.into_iter().next().unwrap_or_default(),
        _ => format!("({})", parts.join(" && ")),
    }
}

/// `(a || b)`; `false` when there is nothing to choose from.
pub fn any(parts: impl IntoIterator<Item = String>) -> String {
    let parts: Vec<String> = parts.into_iter().collect();
    match parts.len() {
        0 => "false".to_owned(),
        1 => parts.into_iter().next().unwrap_or_default(),
        _ => format!("({})", parts.join(" || ")),
    }
}

/// The kind patterns, compressed where they form a product (`group in
/// [apps, extensions] && kind in [Deployment, ReplicaSet]`).
fn kinds(patterns: &[KindMatch]) -> String {
    let named = |v: &Option<String>| v.as_deref().filter(|v| *v != "*").map(str::to_owned);
    let mut parts = BTreeSet::new();
    // kind -> the groups it is matched in (patterns without a version).
    let mut product: BTreeMap<Option<String>, BTreeSet<Option<String>>> = BTreeMap::new();
    for k in patterns {
        match (k.subresource.as_deref(), named(&k.version)) {
            (None, None) => {
                product
                    .entry(named(&k.kind))
                    .or_default()
                    .insert(named(&k.group));
            }
            (None, Some(version)) => {
                let fields = [
                    named(&k.group).map(|g| format!("request.kind.group == {}", quote(&g))),
                    Some(format!("request.kind.version == {}", quote(&version))),
                    named(&k.kind).map(|x| format!("request.kind.kind == {}", quote(&x))),
                ];
                parts.insert(every(fields.into_iter().flatten().collect()));
            }
            (Some("*"), _) => {
                parts.insert("(has(request.subResource) && request.subResource != '')".to_owned());
            }
            (Some(name), _) => {
                parts.insert(format!(
                    "(has(request.subResource) && request.subResource == {})",
                    quote(name)
                ));
            }
        }
    }
    // Kinds matched in the same groups share one test.
    let mut by_groups: BTreeMap<BTreeSet<Option<String>>, BTreeSet<Option<String>>> =
        BTreeMap::new();
    for (kind, groups) in product {
        by_groups.entry(groups).or_default().insert(kind);
    }
    for (groups, kinds) in by_groups {
        let test = |field: &str, values: &BTreeSet<Option<String>>| {
            if values.contains(&None) {
                None
            } else {
                Some(format!(
                    "request.kind.{field} in {}",
                    list(values.iter().flatten())
                ))
            }
        };
        parts.insert(every(
            [test("group", &groups), test("kind", &kinds)]
                .into_iter()
                .flatten()
                .collect(),
        ));
    }
    any(parts)
}

pub fn operation_name(op: Operation) -> &'static str {
    match op {
        Operation::Create => "CREATE",
        Operation::Update => "UPDATE",
        Operation::Delete => "DELETE",
        Operation::Connect => "CONNECT",
    }
}

fn labels(o: &str, s: &LabelSelectorConfig) -> String {
    let present = format!("{o} != null && has({o}.metadata) && has({o}.metadata.labels)");
    let l = format!("{o}.metadata.labels");
    let has_key = |k: &str| format!("({present} && {} in {l})", quote(k));
    let mut all: Vec<String> = s
        .match_labels
        .iter()
        .map(|(k, v)| {
            format!(
                "({present} && {key} in {l} && {l}[{key}] == {value})",
                key = quote(k),
                value = quote(v)
            )
        })
        .collect();
    for e in &s.match_expressions {
        let key = quote(&e.key);
        let within = format!(
            "({present} && {key} in {l} && {l}[{key}] in {})",
            list(&e.values)
        );
        all.push(match e.operator.as_str() {
            "In" => within,
            "NotIn" => format!("!{within}"),
            "Exists" => has_key(&e.key),
            // `DoesNotExist`; the host refuses any other operator at load.
            _ => format!("!{}", has_key(&e.key)),
        });
    }
    every(all)
}

/// A field path is present in `o`, step by step (keys may hold `-`, so
/// they are indexed, not selected).
fn path_present(o: &str, keys: &[&str]) -> String {
    let mut parts = vec![format!("{o} != null")];
    let mut at = o.to_owned();
    for key in keys {
        parts.push(format!("{} in {at}", quote(key)));
        at = format!("{at}[{}]", quote(key));
    }
    // The host treats an explicit null as absent.
    parts.push(format!("{at} != null"));
    format!("({})", parts.join(" && "))
}

/// `path` (a `changed:` entry, bracketed keys included) differs between
/// `oldObject` and `object`.
fn changed(path: &str) -> String {
    // The host refuses a path it cannot parse before anything is generated.
    let parsed = FieldPath::parse(path);
    let keys: Vec<&str> = match &parsed {
        Ok(p) => p.keys().iter().map(String::as_str).collect(),
        Err(_) => path.split('.').collect(),
    };
    let index = |o: &str| {
        keys.iter()
            .fold(o.to_owned(), |at, k| format!("{at}[{}]", quote(k)))
    };
    let (old, new) = (
        path_present("oldObject", &keys),
        path_present("object", &keys),
    );
    format!(
        "({old} != {new} || ({old} && {new} && {} != {}))",
        index("oldObject"),
        index("object")
    )
}

fn images(o: &str, pattern: &str, containers: Containers) -> String {
    let list = |at: &str, field: &str| {
        format!(
            "(has({at}.{field}) && {at}.{field}.exists(c, has(c.image) && c.image.matches({pattern})))"
        )
    };
    let pod = |at: &str| any([list(at, "initContainers"), list(at, "containers")]);
    let template = format!(
        "(has({o}.spec.template) && has({o}.spec.template.spec) && {})",
        pod(&format!("{o}.spec.template.spec"))
    );
    let places = match containers {
        Containers::Template => template,
        Containers::Pod => pod(&format!("{o}.spec")),
        Containers::Both => any([template, pod(&format!("{o}.spec"))]),
    };
    format!("({o} != null && has({o}.spec) && {places})")
}

/// A regular expression (RE2, as a CEL raw string) that holds for an image
/// reference exactly when [`tollgate_sdk::image::ImageRef::is`] holds for
/// one of `repositories`: the first path segment is a registry when it
/// looks like a host (letters, digits, `.` and `-`, with an optional
/// numeric port); the repository path ends at the first `:` (tag) or `@`
/// (digest) and must end in a repository on a segment boundary. (The host
/// refuses repositories whose first segment is a registry, which could
/// otherwise match here; and the SDK's trimming of surrounding whitespace
/// is not repeated, since the API server refuses such image references.)
pub fn image_regex(repositories: &[String]) -> String {
    let alternatives: Vec<String> = repositories.iter().map(|r| r.replace('.', r"\.")).collect();
    format!(
        r"r'(?s)^(?:[A-Za-z0-9.-]+(?::[0-9]+)?/)?(?:[^:@]*/)?(?:{})(?:[:@].*)?$'",
        alternatives.join("|")
    )
}

/// A CEL list of string literals.
fn list<S: AsRef<str>>(items: impl IntoIterator<Item = S>) -> String {
    let items: Vec<String> = items.into_iter().map(|i| quote(i.as_ref())).collect();
    format!("[{}]", items.join(", "))
}

/// A CEL single-quoted string literal.
pub fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('\'');
    for c in text.chars() {
        match c {
            '\\' => out.push_str(r"\\"),
            '\'' => out.push_str(r"\'"),
            '\n' => out.push_str(r"\n"),
            '\r' => out.push_str(r"\r"),
            '\t' => out.push_str(r"\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
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
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/corpus");
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
            cel.contains(
                "'projectcalico.org/operator-node-migration' in object['metadata']['labels']"
            ),
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
}
