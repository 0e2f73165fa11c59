//! The request document handed to guests (see ABI.md "Request").

use std::borrow::Cow;
use std::ops::Range;
use std::sync::OnceLock;

use crate::json::{cut_members, without};
use crate::review::Strip;

pub use tollgate_sdk::api::LAST_APPLIED;

/// The admission `request` of one review as guests get it, prepared once and
/// shared by every policy that evaluates it: the stripped form (no
/// `managedFields`, no last-applied annotation) is built on first use, the
/// full form is the bytes the API server sent (or, after a repair, the
/// request rebuilt around the repaired object: [`crate::Review::with_object`]).
pub struct GuestInput<'a> {
    raw: Cow<'a, str>,
    stripped: OnceLock<Vec<u8>>,
    /// Where the stripped form cuts `raw`, when the review parser found it.
    cuts: Option<&'a [Range<usize>]>,
}

impl<'a> GuestInput<'a> {
    /// `request` is a JSON object (a request rebuilt around a repaired
    /// object); its stripped form is found on first use.
    pub fn new(request: impl Into<Cow<'a, str>>) -> Self {
        Self {
            raw: request.into(),
            stripped: OnceLock::new(),
            cuts: None,
        }
    }

    /// The input of `review` as parsed: its shape check already found what
    /// the stripped form leaves out, so stripping is one copy.
    pub fn of(review: &'a crate::Review<'_>) -> Self {
        Self {
            raw: Cow::Borrowed(review.request()),
            stripped: OnceLock::new(),
            cuts: Some(review.strip_cuts()),
        }
    }

    /// The bytes for a policy (`bulky_fields` from its configuration).
    pub fn bytes(&self, bulky_fields: bool) -> &[u8] {
        if bulky_fields {
            self.raw.as_bytes()
        } else {
            self.stripped.get_or_init(|| match self.cuts {
                Some(cuts) => without(&self.raw, cuts),
                None => strip_request(&self.raw),
            })
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

#[cfg(test)]
mod tests;
