//! The request document handed to guests (see ABI.md "Request").

use std::borrow::Cow;
use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::json::{CutPlan, Member, Members, cut_members};

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
/// `object` and `oldObject`'s metadata, the same members a rewrite through
/// `serde_json::Value` would remove. One serde_json pass finds them and one
/// copy keeps the rest byte for byte; anything unexpected (a `null` object,
/// no metadata, an `annotations` that is not an object) is kept as sent.
pub fn strip_request(raw: &RawValue) -> Vec<u8> {
    let text = raw.get();
    // A RawValue is valid JSON, so the walk cannot fail; keep it whole if it does.
    cut_members(text, Strip::Request).unwrap_or_else(|_| text.as_bytes().to_vec())
}

/// Where [`strip_request`] is in the request, level by level.
#[derive(Clone, Copy)]
enum Strip {
    Request,
    Object,
    Metadata,
    Annotations,
}

impl CutPlan for Strip {
    fn member(self, key: &str) -> Member<Self> {
        match (self, key) {
            (Strip::Request, "object" | "oldObject") => Member::Descend(Strip::Object),
            (Strip::Object, "metadata") => Member::Descend(Strip::Metadata),
            (Strip::Metadata, "managedFields") => Member::Cut,
            (Strip::Metadata, "annotations") => Member::Descend(Strip::Annotations),
            (Strip::Annotations, LAST_APPLIED) => Member::Cut,
            _ => Member::Keep,
        }
    }
}

/// What stripping means, spelled with `serde_json::Value`: the reference the
/// one-pass splice must agree with (its tests) and must beat (the benchmark).
#[doc(hidden)]
pub fn strip_value(request: &serde_json::Value) -> serde_json::Value {
    let mut value = request.clone();
    for key in ["object", "oldObject"] {
        if let Some(meta) = value
            .get_mut(key)
            .and_then(|o| o.get_mut("metadata"))
            .and_then(serde_json::Value::as_object_mut)
        {
            meta.remove("managedFields");
            if let Some(annotations) = meta
                .get_mut("annotations")
                .and_then(serde_json::Value::as_object_mut)
            {
                annotations.remove(LAST_APPLIED);
            }
        }
    }
    value
}

#[cfg(test)]
mod tests;
