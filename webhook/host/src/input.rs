//! The request document handed to guests (see ABI.md "Request").

use std::sync::OnceLock;

use serde_json::value::RawValue;

/// The admission `request` of one review, prepared once and shared by every
/// policy that evaluates it: the stripped form (no `managedFields`, no
/// last-applied annotation) is built on first use, the full form is the
/// bytes the API server sent.
pub struct GuestInput<'a> {
    raw: &'a RawValue,
    stripped: OnceLock<Vec<u8>>,
}

impl<'a> GuestInput<'a> {
    pub fn new(raw_request: &'a RawValue) -> Self {
        Self {
            raw: raw_request,
            stripped: OnceLock::new(),
        }
    }

    /// The bytes for a policy (`bulky_fields` from its configuration).
    pub fn bytes(&self, bulky_fields: bool) -> &[u8] {
        let _ = (bulky_fields, &self.stripped, self.raw);
        todo!("host helper")
    }

    /// The object the request carries (`request.object`), for applying and
    /// composing patches.
    pub fn object(&self) -> Option<serde_json::Value> {
        todo!("host helper")
    }
}
