//! Typed policy settings.

use serde::Deserialize;
use serde::de::DeserializeOwned;

/// A rule's settings: deserialised from the policy configuration's
/// `settings` (JSON, `{}` when absent) and checked once when the
/// configuration loads, so a typo fails the load instead of every review.
pub trait Settings: DeserializeOwned {
    /// Checks beyond what the types already enforce.
    fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}

/// Settings of a rule that has none: any key is an error.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoSettings {}

impl Settings for NoSettings {}
