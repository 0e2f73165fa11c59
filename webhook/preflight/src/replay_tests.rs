//! Which findings are transient. The replay itself runs the Calico pack on
//! published manifests in `tests/replay.rs`.

use super::*;

fn finding(policy: &str, endpoint: &'static str, verdict: &'static str, message: &str) -> Finding {
    Finding {
        policy: policy.to_owned(),
        endpoint,
        verdict,
        message: message.to_owned(),
        patch: None,
    }
}

fn skew(message: &str) -> Finding {
    finding("version-skew", "validate", "warn", message)
}

#[test]
fn a_warning_gone_from_the_final_cluster_is_transient() {
    let first = [
        skew("controller v3.31.0"),
        finding("config-restart", "validate", "warn", "restart"),
    ];
    let last = [finding("config-restart", "validate", "warn", "restart")];
    assert_eq!(transient(&first, &last), [true, false]);
    assert_eq!(transient(&first, &[]), [true, true]);
}

#[test]
fn a_warning_that_stays_with_another_message_is_not_transient() {
    let first = [skew("controller v3.31.0")];
    assert_eq!(transient(&first, &[skew("typha v3.31.0")]), [false]);
    // The same policy warning on the other stage does not keep it.
    let elsewhere = finding("version-skew", "mutate", "warn", "controller v3.31.0");
    assert_eq!(transient(&first, &[elsewhere]), [true]);
    // Nor does another verdict of the same policy.
    let denied = finding("version-skew", "validate", "deny", "controller v3.31.0");
    assert_eq!(transient(&first, &[denied]), [true]);
}

#[test]
fn denials_repairs_and_failures_are_never_transient() {
    let first = [
        finding("kdd-v2.5-migration", "validate", "deny", "migrate first"),
        finding("controller-recreate", "mutate", "patch", "repaired"),
        finding("version-skew", "validate", "failure", "lookup failed"),
        finding("version-skew", "validate", "audit", "recorded"),
    ];
    assert_eq!(transient(&first, &[]), [false; 4]);
}
