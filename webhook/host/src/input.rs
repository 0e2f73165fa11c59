//! The request document handed to guests (see ABI.md "Request").

use std::borrow::Cow;
use std::sync::OnceLock;

use crate::json::{CutPlan, Member, cut_members};

/// The annotation `kubectl apply` stores the whole previous object in.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// The admission `request` of one review as guests get it, prepared once and
/// shared by every policy that evaluates it: the stripped form (no
/// `managedFields`, no last-applied annotation) is built on first use, the
/// full form is the bytes the API server sent (or, after a repair, the
/// request rebuilt around the repaired object: [`crate::Review::with_object`]).
pub struct GuestInput<'a> {
    raw: Cow<'a, str>,
    stripped: OnceLock<Vec<u8>>,
}

impl<'a> GuestInput<'a> {
    /// `request` is a JSON object (the review parser's request span).
    pub fn new(request: impl Into<Cow<'a, str>>) -> Self {
        Self {
            raw: request.into(),
            stripped: OnceLock::new(),
        }
    }

    /// The bytes for a policy (`bulky_fields` from its configuration).
    pub fn bytes(&self, bulky_fields: bool) -> &[u8] {
        if bulky_fields {
            self.raw.as_bytes()
        } else {
            self.stripped.get_or_init(|| strip_request(&self.raw))
        }
    }
}

/// The request without `managedFields` and the last-applied annotation in
/// `object` and `oldObject`'s metadata, the same members a rewrite through
/// `serde_json::Value` would remove. One serde_json pass finds them and one
/// copy keeps the rest byte for byte; anything unexpected (a `null` object,
/// no metadata, an `annotations` that is not an object) is kept as sent.
pub fn strip_request(text: &str) -> Vec<u8> {
    // The request is valid JSON, so the walk cannot fail; keep it whole if it does.
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

#[cfg(test)]
mod tests;
