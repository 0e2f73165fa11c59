//! Host-side matching: which policies a request enters.

use serde_json::value::RawValue;
use tollgate_sdk::Operation;

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

/// What matching needs from a request, borrowed from the parsed review. The
/// objects stay raw: labels are only parsed when some policy's match has a
/// label selector.
#[derive(Debug, Clone, Copy)]
pub struct RequestMeta<'a> {
    pub group: &'a str,
    pub version: &'a str,
    pub kind: &'a str,
    pub sub_resource: Option<&'a str>,
    pub operation: Operation,
    pub namespace: Option<&'a str>,
    pub name: Option<&'a str>,
    pub object: Option<&'a RawValue>,
    pub old_object: Option<&'a RawValue>,
}
