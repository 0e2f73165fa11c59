//! The request document handed to guests (see ABI.md "Request").

use std::borrow::Cow;
use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::json::Members;

/// The annotation `kubectl apply` stores the whole previous object in.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// The admission `request` of one review, prepared once and shared by every
/// policy that evaluates it: the stripped form (no `managedFields`, no
/// last-applied annotation) is built on first use, the full form is the
/// bytes the API server sent.
pub struct GuestInput<'a> {
    raw: Cow<'a, RawValue>,
    stripped: OnceLock<Vec<u8>>,
}

impl<'a> GuestInput<'a> {
    pub fn new(raw_request: &'a RawValue) -> Self {
        Self {
            raw: Cow::Borrowed(raw_request),
            stripped: OnceLock::new(),
        }
    }

    /// The bytes for a policy (`bulky_fields` from its configuration).
    pub fn bytes(&self, bulky_fields: bool) -> &[u8] {
        if bulky_fields {
            self.raw.get().as_bytes()
        } else {
            self.stripped.get_or_init(|| strip_request(&self.raw))
        }
    }

    /// The request exactly as received (or as rebuilt by [`Self::with_object`]).
    pub fn raw(&self) -> &RawValue {
        &self.raw
    }

    /// The object the request carries (`request.object`), for applying and
    /// composing patches. `None` when absent or `null` (DELETE).
    pub fn object(&self) -> Option<serde_json::Value> {
        #[derive(Deserialize)]
        struct Request<'a> {
            #[serde(borrow, default)]
            object: Option<&'a RawValue>,
        }
        let request: Request<'_> = serde_json::from_str(self.raw.get()).ok()?;
        serde_json::from_str(request.object?.get())
            .ok()
            .filter(|o: &serde_json::Value| !o.is_null())
    }

    /// The same request with `object` replaced, for composing mutating
    /// policies: the admission layer applies policy 1's patch to
    /// [`Self::object`] and evaluates policy 2 on
    /// `input.with_object(&patched)`, so policy 2 sees the object as policy 1
    /// left it. Every other member (`oldObject` included) is kept verbatim;
    /// the stripped form of the new input is again built lazily.
    pub fn with_object(&self, object: &serde_json::Value) -> GuestInput<'static> {
        let rebuilt = (|| {
            let mut members: Members<'_, Cow<'_, RawValue>> = parse_members(&self.raw)?;
            let object = serde_json::value::to_raw_value(object).ok()?;
            match members.get_mut("object") {
                Some(slot) => *slot = Cow::Owned(object),
                None => members
                    .0
                    .push((crate::json::CowStr("object".into()), Cow::Owned(object))),
            }
            serde_json::value::to_raw_value(&members).ok()
        })();
        GuestInput {
            // The raw request is a JSON object (the review parser guarantees
            // it), so rebuilding it cannot fail; keep it unchanged if it does.
            raw: Cow::Owned(rebuilt.unwrap_or_else(|| self.raw.clone().into_owned())),
            stripped: OnceLock::new(),
        }
    }
}

/// Parses a JSON object into its members, each kept raw (borrowed).
fn parse_members<'a>(raw: &'a RawValue) -> Option<Members<'a, Cow<'a, RawValue>>> {
    let members: Members<'a, &'a RawValue> = serde_json::from_str(raw.get()).ok()?;
    Some(Members(
        members
            .0
            .into_iter()
            .map(|(k, v)| (k, Cow::Borrowed(v)))
            .collect(),
    ))
}

/// The request without `managedFields` and the last-applied annotation in
/// `object` and `oldObject`. Only the path down to those members is parsed;
/// everything else is copied as raw text. Anything unexpected (a `null`
/// object, no metadata) is kept as sent.
pub fn strip_request(raw: &RawValue) -> Vec<u8> {
    let stripped = rewrite_members(raw, &|key, value| match key {
        "object" | "oldObject" => strip_object(value),
        _ => None,
    });
    match stripped {
        Some(rebuilt) => rebuilt.get().as_bytes().to_vec(),
        None => raw.get().as_bytes().to_vec(),
    }
}

fn strip_object(object: &RawValue) -> Option<Box<RawValue>> {
    rewrite_members(object, &|key, value| match key {
        "metadata" => strip_metadata(value),
        _ => None,
    })
}

fn strip_metadata(metadata: &RawValue) -> Option<Box<RawValue>> {
    let mut members = parse_members(metadata)?;
    let mut changed = members.remove("managedFields");
    if let Some(annotations) = members.get_mut("annotations") {
        let mut kept = parse_members(annotations)?;
        if kept.remove(LAST_APPLIED) {
            *annotations = Cow::Owned(serde_json::value::to_raw_value(&kept).ok()?);
            changed = true;
        }
    }
    changed
        .then(|| serde_json::value::to_raw_value(&members).ok())
        .flatten()
}

/// Rebuilds a JSON object whose members `rewrite` replaces (returning the new
/// raw value) or keeps (`None`). `None` when nothing changed or `raw` is not
/// an object, so callers keep the original text.
fn rewrite_members(
    raw: &RawValue,
    rewrite: &dyn Fn(&str, &RawValue) -> Option<Box<RawValue>>,
) -> Option<Box<RawValue>> {
    let mut members = parse_members(raw)?;
    let mut changed = false;
    for (key, value) in &mut members.0 {
        if let Some(new) = rewrite(key, value) {
            *value = Cow::Owned(new);
            changed = true;
        }
    }
    changed
        .then(|| serde_json::value::to_raw_value(&members).ok())
        .flatten()
}

#[cfg(test)]
mod tests;
