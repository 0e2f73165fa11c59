//! Replays every AdmissionReview a real kube-apiserver sent during the
//! Calico upgrade steps (`testdata/reviews`) against the zero-flag
//! default (the built-in pack): each gets a well-formed answer in time.

use tollgate_tests as support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Server, apply_patch, patch_of, response};

/// Every captured review file name, in step order.
fn captured_files() -> Vec<String> {
    let dir = tollgate_testkit::corpus::testdata_dir().join("reviews");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".json"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 37,
        "expected the captured reviews in {}",
        dir.display()
    );
    files
}

fn starts_with_a_policy_id(text: &str, ids: &[String]) -> bool {
    ids.iter().any(|id| text.starts_with(&format!("{id}: ")))
}

#[tokio::test]
async fn every_captured_review_gets_a_well_formed_answer() {
    let server = Server::start(&[]);
    let ids = support::verdict::builtin_ids();
    assert!(ids.len() >= 14, "{ids:?}");
    for name in captured_files() {
        let (path, request) = support::corpus::captured(&name);
        let started = Instant::now();
        let answer = server.review(&path, &request).await;
        assert!(
            started.elapsed() < Duration::from_secs(7),
            "{name}: answered late"
        );
        let response = response(&request, &answer);
        let allowed = response["allowed"]
            .as_bool()
            .unwrap_or_else(|| panic!("{name}: {answer}"));
        if !allowed {
            let message = response["status"]["message"].as_str().unwrap();
            assert!(
                response["status"]["code"].as_u64().unwrap() >= 400,
                "{name}"
            );
            assert!(starts_with_a_policy_id(message, ids), "{name}: {message}");
        }
        for warning in response["warnings"].as_array().into_iter().flatten() {
            let warning = warning.as_str().unwrap();
            assert!(warning.chars().count() <= 256, "{name}: {warning}");
            assert!(starts_with_a_policy_id(warning, ids), "{name}: {warning}");
        }
        let patch = patch_of(response);
        let operation = request["request"]["operation"].as_str().unwrap();
        if path.starts_with("/validate") || operation == "DELETE" {
            assert!(patch.is_none(), "{name}: unexpected patch {answer}");
        }
        if let Some(patch) = patch {
            assert!(allowed, "{name}: a patch on a denial");
            apply_patch(&request, &patch);
        }
    }
}

/// Steps 04 and 05 break the guide's rules for the policy controller.
#[tokio::test]
async fn the_controller_steps_are_denied_on_validate_and_repaired_on_mutate() {
    let server = Server::start(&[]);
    for (step, policy, repaired) in [
        (
            "04-edit-controller-to-rollingupdate",
            "controller-recreate",
            "/spec/strategy/type",
        ),
        (
            "05-scale-controller-to-3",
            "controller-single-replica",
            "/spec/replicas",
        ),
    ] {
        let files: Vec<String> = captured_files()
            .into_iter()
            .filter(|name| name.starts_with(step))
            .collect();
        assert_eq!(files.len(), 2, "{step}");
        for file in files {
            let (path, request) = support::corpus::captured(&file);
            let answer = server.review(&path, &request).await;
            let response = response(&request, &answer);
            if path.starts_with("/validate") {
                assert_eq!(response["allowed"], false, "{step}: {answer}");
                let message = response["status"]["message"].as_str().unwrap();
                assert!(
                    message.contains(&format!("{policy}: ")),
                    "{step}: {message}"
                );
            } else {
                assert_eq!(response["allowed"], true, "{step}: {answer}");
                let patch = patch_of(response).unwrap_or_else(|| panic!("{step}: no patch"));
                let object = apply_patch(&request, &patch);
                let value = object
                    .pointer(repaired)
                    .unwrap_or_else(|| panic!("{step}: {object}"));
                let expected = if policy == "controller-recreate" {
                    "Recreate".into()
                } else {
                    Value::from(1)
                };
                assert_eq!(value, &expected, "{step}");
            }
        }
    }
}
