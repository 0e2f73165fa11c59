//! Documents exchanged across the Wasm boundary (see `policies-wasm/ABI.md`).
//!
//! Host and guest both use these types, so the two sides cannot drift apart.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

pub use crate::query::{LookupQuery, is_empty_value};
use crate::verdict::Verdict;

/// What `tollgate_describe` returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Description {
    pub abi: i32,
    pub rules: Vec<RuleInfo>,
}

/// One rule a module exports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleInfo {
    pub name: String,
    /// Whether the rule can answer with a patch.
    #[serde(default)]
    pub mutating: bool,
}

/// What `tollgate_validate_settings` returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsCheck {
    pub valid: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// One entry of the `rules` argument of `tollgate_evaluate` (ABI v2): a
/// rule and the settings of the policy that runs it. A rule may appear more
/// than once, with different settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleCall<'a> {
    #[serde(borrow)]
    pub rule: Cow<'a, str>,
    /// The policy's validated settings; absent or `null` means `{}`.
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<&'a RawValue>,
}

impl RuleCall<'_> {
    /// The settings as JSON bytes (empty when none were given).
    pub fn settings_json(&self) -> &[u8] {
        self.settings.map_or(b"".as_slice(), |s| s.get().as_bytes())
    }
}

/// What `tollgate_evaluate` returns (ABI v2): exactly one verdict per entry
/// of `rules`, in the same order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Verdicts {
    pub verdicts: Vec<Verdict>,
}

/// The answer to a lookup, as the host writes it into guest memory.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LookupResult<'a> {
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub objects: Option<&'a serde_json::value::RawValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl LookupResult<'_> {
    /// How the host frames a successful answer: `{"objects":` + array + `}`.
    pub const OBJECTS_PREFIX: &'static [u8] = br#"{"objects":"#;

    /// The array of an answer framed exactly as the host frames objects
    /// ([`Self::OBJECTS_PREFIX`], an array, `}`), unvalidated: the caller
    /// parses it, which validates it. `None` for anything else (an error,
    /// other spacing), which the caller parses as a whole.
    pub fn framed_objects(answer: &[u8]) -> Option<&[u8]> {
        let array = answer
            .strip_prefix(Self::OBJECTS_PREFIX)?
            .strip_suffix(b"}")?;
        (array.first() == Some(&b'[') && array.last() == Some(&b']')).then_some(array)
    }
}

/// Log levels of the `log` host call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum LogLevel {
    Error = 0,
    Warn = 1,
    Info = 2,
    Debug = 3,
}

impl LogLevel {
    pub fn from_i32(v: i32) -> Option<Self> {
        Some(match v {
            0 => Self::Error,
            1 => Self::Warn,
            2 => Self::Info,
            3 => Self::Debug,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_host_framing_yields_its_array_and_nothing_else_does() {
        use super::LookupResult;
        assert_eq!(
            LookupResult::framed_objects(br#"{"objects":[{"a":1}]}"#),
            Some(br#"[{"a":1}]"#.as_slice())
        );
        assert_eq!(
            LookupResult::framed_objects(br#"{"objects":[]}"#),
            Some(b"[]".as_slice())
        );
        for other in [
            br#"{"error":"refused"}"#.as_slice(),
            br#"{ "objects":[]}"#,
            br#"{"objects":null}"#,
            br#"{"objects":[]"#,
            br#"{"objects":}"#,
            b"",
        ] {
            assert_eq!(LookupResult::framed_objects(other), None, "{other:?}");
        }
    }
}
