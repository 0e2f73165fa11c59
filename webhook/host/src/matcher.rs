//! Host-side matching: which policies a request enters.

use serde::Deserialize;
use tollgate_sdk::Operation;

use crate::config::{LabelSelectorConfig, MatchConfig};
use crate::json::{CowStr, Members};
use crate::review::RequestMeta;

pub mod cel;
mod fields;

pub use fields::FieldPath;

/// The endpoint a review arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `/validate`: every policy; violations deny/warn/audit by mode, never a patch.
    Validate,
    /// `/mutate`: only policies with `mutate: true`; repairable violations patch.
    Mutate,
}

impl Endpoint {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Validate => "validate",
            Self::Mutate => "mutate",
        }
    }
}

/// A policy's `match:` compiled for fast checks. Absent criteria hold.
///
/// The criteria that read the objects (labels, images, changed fields) are
/// checked last and read only their own members from the raw JSON; images
/// and fields are first looked for as plain text, so an unrelated object is
/// answered without being parsed at all.
#[derive(Debug, Clone, Default)]
pub struct Matcher {
    kinds: Vec<KindPattern>,
    operations: Vec<Operation>,
    namespaces: Vec<String>,
    names: Vec<String>,
    selector: Option<LabelSelector>,
    images: Vec<String>,
    changed: Vec<fields::FieldPath>,
    any_of: Vec<Matcher>,
}

/// A `match:` that cannot be compiled, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct MatchError {
    pub field: &'static str,
    pub message: String,
}

#[derive(Debug, Clone, Default)]
struct KindPattern {
    group: Option<String>,
    version: Option<String>,
    kind: Option<String>,
    subresource: Subresource,
}

/// What a kind pattern says about subresources.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
enum Subresource {
    /// No `subresource`: the pattern matches the request's kind.
    #[default]
    Unspecified,
    /// `subresource: '*'`.
    Any,
    Named(String),
}

impl KindPattern {
    fn matches(&self, request: &RequestMeta<'_>) -> bool {
        let holds =
            |pattern: &Option<String>, value: &str| pattern.as_deref().is_none_or(|p| p == value);
        match &self.subresource {
            Subresource::Unspecified => {
                holds(&self.group, request.group)
                    && holds(&self.version, request.version)
                    && holds(&self.kind, request.kind)
            }
            // The object of a subresource request (a Scale) does not name
            // its owner's kind: the webhook rule narrows the owner.
            Subresource::Any => request.sub_resource.is_some(),
            Subresource::Named(name) => request.sub_resource == Some(name.as_str()),
        }
    }
}

#[derive(Debug, Clone, Default)]
struct LabelSelector {
    match_labels: Vec<(String, String)>,
    expressions: Vec<Requirement>,
}

#[derive(Debug, Clone)]
struct Requirement {
    key: String,
    op: SelectorOp,
    values: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SelectorOp {
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

impl Matcher {
    /// Compiles a `match:`; errors name the offending field.
    pub fn compile(config: &MatchConfig) -> Result<Self, MatchError> {
        for image in &config.images {
            check_image(image).map_err(|message| MatchError {
                field: "match.images",
                message,
            })?;
        }
        Ok(Self {
            kinds: config
                .kinds
                .iter()
                .map(|k| KindPattern {
                    group: pattern(&k.group),
                    version: pattern(&k.version),
                    kind: pattern(&k.kind),
                    subresource: match k.subresource.as_deref() {
                        None => Subresource::Unspecified,
                        Some("*") => Subresource::Any,
                        Some(name) => Subresource::Named(name.to_owned()),
                    },
                })
                .collect(),
            operations: config.operations.clone(),
            namespaces: config.namespaces.clone(),
            names: config.names.clone(),
            selector: config
                .label_selector
                .as_ref()
                .map(LabelSelector::compile)
                .transpose()?,
            images: config.images.clone(),
            changed: config
                .changed
                .iter()
                .map(|path| fields::FieldPath::parse(path))
                .collect::<Result<_, _>>()
                .map_err(|message| MatchError {
                    field: "match.changed",
                    message,
                })?,
            any_of: config
                .any_of
                .iter()
                .map(Self::compile)
                .collect::<Result<_, _>>()?,
        })
    }

    /// Whether every criterion holds for `request`. The cheap ones (routing
    /// fields) are checked first; the ones reading an object last.
    pub fn matches(&self, request: &RequestMeta<'_>) -> bool {
        let listed = |list: &[String], value: Option<&str>| {
            list.is_empty() || value.is_some_and(|v| list.iter().any(|l| l == v))
        };
        (self.kinds.is_empty() || self.kinds.iter().any(|k| k.matches(request)))
            && (self.operations.is_empty() || self.operations.contains(&request.operation))
            && listed(&self.namespaces, request.namespace)
            && listed(&self.names, request.name)
            && (self.any_of.is_empty() || self.any_of.iter().any(|m| m.matches(request)))
            && self.selector.as_ref().is_none_or(|s| s.matches(request))
            && (self.changed.is_empty() || fields::changed(&self.changed, request))
            && (self.images.is_empty() || fields::runs_image(&self.images, request))
    }
}

/// The object a criterion reads: the old object of a DELETE (which has no
/// `object`), else the new one.
fn subject<'a>(request: &RequestMeta<'a>) -> Option<&'a str> {
    match request.operation {
        Operation::Delete => request.old_object.or(request.object),
        _ => request.object.or(request.old_object),
    }
}

/// An `images` entry is a repository path (`calico/node`): the registry is
/// never part of what is matched, so an entry naming one would match nothing.
fn check_image(image: &str) -> Result<(), String> {
    let segment_ok = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    };
    if !image.split('/').all(segment_ok) {
        return Err(format!(
            "{image:?} is not an image repository path such as calico/node \
             (segments of letters, digits, '.', '_' and '-'; no tag or digest)"
        ));
    }
    let first = image.split('/').next().unwrap_or_default();
    if image.contains('/') && (first.contains('.') || first == "localhost") {
        return Err(format!(
            "{image:?} names a registry: images match the repository path \
             whatever the registry (write {:?})",
            image.split_once('/').map_or(image, |(_, rest)| rest)
        ));
    }
    Ok(())
}

/// `*` and absent both mean "any".
fn pattern(value: &Option<String>) -> Option<String> {
    value.as_ref().filter(|v| v.as_str() != "*").cloned()
}

impl LabelSelector {
    fn compile(config: &LabelSelectorConfig) -> Result<Self, MatchError> {
        let invalid = |message: String| MatchError {
            field: "match.labelSelector.matchExpressions",
            message,
        };
        let expressions = config
            .match_expressions
            .iter()
            .map(|e| {
                let op = match e.operator.as_str() {
                    "In" => SelectorOp::In,
                    "NotIn" => SelectorOp::NotIn,
                    "Exists" => SelectorOp::Exists,
                    "DoesNotExist" => SelectorOp::DoesNotExist,
                    other => {
                        return Err(invalid(format!(
                            "key {}: unknown operator {other:?} (In, NotIn, Exists, DoesNotExist)",
                            e.key
                        )));
                    }
                };
                let needs_values = matches!(op, SelectorOp::In | SelectorOp::NotIn);
                if needs_values == e.values.is_empty() {
                    return Err(invalid(format!(
                        "key {}: operator {} {} values",
                        e.key,
                        e.operator,
                        if needs_values { "needs" } else { "takes no" }
                    )));
                }
                Ok(Requirement {
                    key: e.key.clone(),
                    op,
                    values: e.values.clone(),
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            match_labels: config.match_labels.clone().into_iter().collect(),
            expressions,
        })
    }

    /// Applies to the object's labels (`oldObject`'s for DELETE, which has
    /// no `object`). Only `metadata.labels` is parsed from the raw object.
    fn matches(&self, request: &RequestMeta<'_>) -> bool {
        let labels = subject(request).map(object_labels).unwrap_or_default();
        let get = |key: &str| labels.iter().find(|(k, _)| **k == *key).map(|(_, v)| &**v);
        self.match_labels
            .iter()
            .all(|(k, v)| get(k) == Some(v.as_str()))
            && self.expressions.iter().all(|r| {
                let value = get(&r.key);
                match r.op {
                    SelectorOp::In => value.is_some_and(|v| r.values.iter().any(|x| x == v)),
                    SelectorOp::NotIn => value.is_none_or(|v| r.values.iter().all(|x| x != v)),
                    SelectorOp::Exists => value.is_some(),
                    SelectorOp::DoesNotExist => value.is_none(),
                }
            })
    }
}

/// `metadata.labels` of a raw object; an object without labels (or not an
/// object at all, e.g. `null`) has none. Everything else is skipped by the
/// parser, not materialised.
fn object_labels(raw: &str) -> Vec<(CowStr<'_>, CowStr<'_>)> {
    #[derive(Deserialize)]
    struct Object<'a> {
        #[serde(borrow, default)]
        metadata: Option<Metadata<'a>>,
    }
    #[derive(Deserialize)]
    struct Metadata<'a> {
        #[serde(borrow, default)]
        labels: Option<Members<'a, CowStr<'a>>>,
    }
    serde_json::from_str::<Option<Object<'_>>>(raw)
        .ok()
        .flatten()
        .and_then(|o| o.metadata)
        .and_then(|m| m.labels)
        .map(|l| l.0)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;
