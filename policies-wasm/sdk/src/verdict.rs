//! What a rule answers.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A rule's answer about one admission request (the `Verdict` document of
/// `policies-wasm/ABI.md`).
///
/// `allowed: false` is a violation; the host decides, from the policy's mode,
/// whether it denies, warns or is only recorded. A violation that carries a
/// `patch` is repairable: the host applies the patch on `/mutate` when the
/// policy is configured to mutate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Verdict {
    pub allowed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patch: Option<Vec<PatchOp>>,
}

impl Verdict {
    /// Nothing to say.
    pub fn allow() -> Self {
        Self {
            allowed: true,
            message: None,
            warnings: Vec::new(),
            patch: None,
        }
    }

    /// A violation that cannot be repaired.
    pub fn deny(message: impl Into<String>) -> Self {
        Self {
            allowed: false,
            message: Some(message.into()),
            ..Self::allow()
        }
    }

    /// Allowed, with advice for the user.
    pub fn warn(message: impl Into<String>) -> Self {
        Self::allow().with_warning(message)
    }

    /// A violation that `ops` repairs.
    pub fn repair(message: impl Into<String>, ops: Vec<PatchOp>) -> Self {
        Self {
            patch: Some(ops),
            ..Self::deny(message)
        }
    }

    pub fn with_warning(mut self, message: impl Into<String>) -> Self {
        self.warnings.push(message.into());
        self
    }

    pub fn is_violation(&self) -> bool {
        !self.allowed
    }
}

/// One RFC 6902 operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase", deny_unknown_fields)]
pub enum PatchOp {
    Add { path: String, value: Value },
    Remove { path: String },
    Replace { path: String, value: Value },
    Move { from: String, path: String },
    Copy { from: String, path: String },
    Test { path: String, value: Value },
}

impl PatchOp {
    pub fn add(path: impl Into<String>, value: Value) -> Self {
        Self::Add {
            path: path.into(),
            value,
        }
    }

    pub fn replace(path: impl Into<String>, value: Value) -> Self {
        Self::Replace {
            path: path.into(),
            value,
        }
    }

    pub fn remove(path: impl Into<String>) -> Self {
        Self::Remove { path: path.into() }
    }
}
