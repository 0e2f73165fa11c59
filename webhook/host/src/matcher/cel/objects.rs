//! The criteria of a `match:` that read an object (labels, changed
//! fields, images) as CEL: apart from the routing criteria because each
//! must guard every step into an unstructured object.

use super::{Containers, any, every, list, quote};
use crate::config::LabelSelectorConfig;
use crate::matcher::FieldPath;

pub(super) fn labels(o: &str, s: &LabelSelectorConfig) -> String {
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
pub(super) fn changed(path: &str) -> String {
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

pub(super) fn images(o: &str, pattern: &str, containers: Containers) -> String {
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
