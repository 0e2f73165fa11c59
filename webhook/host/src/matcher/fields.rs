//! The match criteria that read an object's content: container images and
//! changed fields. Both read only their own members from the raw JSON, and
//! only after a plain-text search found what they look for: most reviews
//! (an nginx Deployment, a Node relabelled) are answered without a parse.

use serde::Deserialize;
use serde_json::value::RawValue;
use tollgate_sdk::image::ImageRef;

use crate::json::{CowStr, Members};
use crate::review::RequestMeta;

/// Whether the object has a container or init container (pod template or
/// own pod spec) whose image repository ends in one of `images`, as
/// [`ImageRef::is`] decides for the rules. An object that cannot be read
/// holds: narrowing must never hide an object from its rule.
pub(super) fn runs_image(images: &[String], request: &RequestMeta<'_>) -> bool {
    let Some(text) = super::subject(request) else {
        return false;
    };
    // An image repository appears verbatim unless the JSON escapes one of
    // its characters, which the API server never does (Go escapes only
    // `<`, `>`, `&` and controls, as `\u00XX`).
    if request.plain_text && !images.iter().any(|i| contains(text, i)) {
        return false;
    }
    match serde_json::from_str::<Option<Workload<'_>>>(text) {
        Ok(workload) => workload.is_some_and(|w| {
            w.images()
                .any(|image| images.iter().any(|i| ImageRef::parse(image).is(i)))
        }),
        Err(_) => true,
    }
}

fn contains(haystack: &str, needle: &str) -> bool {
    memchr::memmem::find(haystack.as_bytes(), needle.as_bytes()).is_some()
}

/// Exactly the members that hold containers: `spec.template.spec` of a
/// workload and `spec` of a Pod, each with `containers` and
/// `initContainers` (the SDK's `Object::containers`).
#[derive(Deserialize)]
struct Workload<'a> {
    #[serde(borrow, default)]
    spec: Option<WorkloadSpec<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WorkloadSpec<'a> {
    #[serde(borrow, default)]
    template: Option<Template<'a>>,
    #[serde(borrow, default)]
    containers: Option<Vec<Container<'a>>>,
    #[serde(borrow, default)]
    init_containers: Option<Vec<Container<'a>>>,
}

#[derive(Deserialize)]
struct Template<'a> {
    #[serde(borrow, default)]
    spec: Option<PodSpec<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PodSpec<'a> {
    #[serde(borrow, default)]
    containers: Option<Vec<Container<'a>>>,
    #[serde(borrow, default)]
    init_containers: Option<Vec<Container<'a>>>,
}

#[derive(Deserialize)]
struct Container<'a> {
    #[serde(borrow, default)]
    image: Option<CowStr<'a>>,
}

impl Workload<'_> {
    fn images(&self) -> impl Iterator<Item = &str> {
        let spec = self.spec.as_ref();
        let template = spec
            .and_then(|s| s.template.as_ref())
            .and_then(|t| t.spec.as_ref())
            .map(|p| [&p.init_containers, &p.containers]);
        let own = spec.map(|s| [&s.init_containers, &s.containers]);
        template
            .into_iter()
            .chain(own)
            .flatten()
            .flatten()
            .flatten()
            .filter_map(|c| c.image.as_deref())
    }
}

/// A `changed:` entry: the keys from the object's root, dot-separated
/// (`spec.unschedulable`); a key in brackets may hold dots and slashes, as
/// label and annotation keys do
/// (`metadata.labels[projectcalico.org/operator-node-migration]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldPath(Vec<String>);

impl FieldPath {
    /// Parses a `changed:` entry; the error says what a path looks like.
    pub fn parse(path: &str) -> Result<Self, String> {
        let error = || {
            format!(
                "{path:?} is not a field path such as spec.unschedulable or \
                 metadata.labels[example.com/key] (dot-separated keys of letters, \
                 digits, '_' and '-'; any other key in brackets)"
            )
        };
        let plain = |k: &str| {
            !k.is_empty()
                && k.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
        };
        let mut keys = Vec::new();
        let mut rest = path;
        loop {
            // A plain key, then `.`, `[` or the end.
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            let (key, after) = rest.split_at(end);
            if !plain(key) {
                return Err(error());
            }
            keys.push(key.to_owned());
            rest = after;
            // Bracketed keys, each closed before the next separator.
            while let Some(inner) = rest.strip_prefix('[') {
                let close = inner.find(']').ok_or_else(error)?;
                let key = &inner[..close];
                if key.is_empty() || key.contains('[') || key.chars().any(char::is_control) {
                    return Err(error());
                }
                keys.push(key.to_owned());
                rest = &inner[close + 1..];
            }
            match rest.strip_prefix('.') {
                Some(next) => rest = next,
                None if rest.is_empty() => return Ok(Self(keys)),
                None => return Err(error()),
            }
        }
    }

    /// The keys from the object's root.
    pub fn keys(&self) -> &[String] {
        &self.0
    }

    /// The value at this path, `None` when the object or a key is missing;
    /// `Err` when the object cannot be read.
    fn value(&self, object: Option<&str>) -> Result<Option<serde_json::Value>, ()> {
        let Some(mut raw) = object else {
            return Ok(None);
        };
        for key in &self.0 {
            // Not an object (a string where a map was expected, `null`):
            // the path does not exist.
            if !raw.trim_start().starts_with('{') {
                return Ok(None);
            }
            let members: Members<'_, &RawValue> = serde_json::from_str(raw).map_err(|_| ())?;
            match members.0.iter().rev().find(|(k, _)| **k == **key) {
                Some((_, inner)) => raw = inner.get(),
                None => return Ok(None),
            }
        }
        let value: serde_json::Value = serde_json::from_str(raw).map_err(|_| ())?;
        Ok((!value.is_null()).then_some(value))
    }
}

/// Whether one of `paths` has a different value in the old and the new
/// object. A path whose last key appears in neither object is absent from
/// both: unchanged, without a parse.
pub(super) fn changed(paths: &[FieldPath], request: &RequestMeta<'_>) -> bool {
    let texts = [request.old_object, request.object].map(Option::unwrap_or_default);
    paths.iter().any(|path| {
        let last = path.0.last().map_or("", String::as_str);
        let quoted = format!("\"{last}\"");
        if request.plain_text && !texts.iter().any(|t| contains(t, &quoted)) {
            return false;
        }
        match (path.value(request.old_object), path.value(request.object)) {
            (Ok(old), Ok(new)) => old != new,
            // Unreadable: let the rule see it.
            _ => true,
        }
    })
}
