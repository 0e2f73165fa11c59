//! A policy's `match:` as a CEL expression for a webhook's
//! `matchConditions`: the API server evaluates it before calling Tollgate,
//! so the requests it lets through are exactly the ones the host-side
//! [`super::Matcher`] selects (same criteria, same order of
//! fallbacks, same image rule). A test (`agreement`) evaluates both on the
//! same requests, the CEL with a CEL interpreter.
//!
//! The API server evaluates match conditions on unstructured values, where
//! a missing key is an error and an error applies the webhook's
//! failurePolicy; every member access is therefore guarded (`has`, `in`):
//! `request` omits `subResource`, `namespace` and `name` when they are
//! empty, `object` is null on DELETE and `oldObject` on CREATE.

use std::collections::{BTreeMap, BTreeSet};

use tollgate_sdk::Operation;

use crate::config::{KindMatch, MatchConfig};

mod objects;

pub use objects::image_regex;
use objects::{changed, images, labels};

/// `m` split into its guard (kinds and operations, which the webhook rules
/// already approximate) and the rest (what narrows within those). A
/// webhook ORs the guards of policies that share the rest.
pub fn parts(m: &MatchConfig) -> (String, String) {
    let subject = Subject::of(&m.operations, Subject::ByOperation);
    let containers = Containers::of(&m.kinds, Containers::Both);
    parts_in(m, subject, containers)
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
mod agreement;
#[cfg(test)]
mod tests;
