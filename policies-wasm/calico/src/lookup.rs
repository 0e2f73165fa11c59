//! How rules answer when the cluster cannot be read.
//!
//! A rule that needs context to decide fails closed: the lookup failure is a
//! violation (so `enforce` denies and `warn` warns) whose message names what
//! could not be read. Rules whose context is only advisory (R14) turn the
//! failure into a warning instead; each rule documents its choice.

use tollgate_sdk::{LookupError, Verdict};

use crate::text::{WARNING_MAX, clip};

/// The violation for a failed lookup; the message fits a warning.
pub fn failed(what: &str, error: &LookupError) -> Verdict {
    Verdict::deny(failure_text(what, error))
}

/// The warning for a failed advisory lookup. The host's reason comes first:
/// it says whether the read was outside the policy's `context` or the cache
/// has not synced yet, which the operator fixes differently.
pub fn failure_text(what: &str, error: &LookupError) -> String {
    let cause = match error {
        LookupError::Refused(reason) => reason.as_str(),
        LookupError::Malformed(reason) => reason.as_str(),
    };
    clip(
        format!("cannot verify: reading {what} from the cluster failed: {cause}"),
        WARNING_MAX,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_violations_that_fit_a_warning() {
        let v = failed("apps/v1 ReplicaSet", &LookupError::Refused("x".repeat(400)));
        assert!(!v.allowed);
        let m = v.message.unwrap();
        assert!(
            m.starts_with("cannot verify: reading apps/v1 ReplicaSet from the cluster failed: xxx")
        );
        assert!(m.chars().count() <= WARNING_MAX);
    }
}
