//! Replays every AdmissionReview a real kube-apiserver sent during the
//! Calico upgrade steps (`/work/shared/reviews`) against the zero-flag
//! default (the built-in pack): each gets a well-formed answer in time.

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Server, apply_patch, patch_of, response};

const REVIEWS: &str = "/work/shared/reviews";

/// The ids of the built-in pack's default configuration.
fn policy_ids() -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies-wasm/calico/policies.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .filter_map(|l| l.strip_prefix("- id: "))
        .map(|id| id.trim().to_owned())
        .collect()
}

fn captured() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(REVIEWS)
        .expect("captured reviews")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 37,
        "expected the captured reviews in {REVIEWS}"
    );
    files
}

/// `(path with query, review)`: the file's extra `query` member becomes the
/// query string, as the API server sent it.
fn replayable(file: &Path) -> (String, Value) {
    let mut review: Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
    let query = review
        .as_object_mut()
        .unwrap()
        .remove("query")
        .and_then(|q| q.as_str().map(str::to_owned))
        .expect("a query member");
    let name = file.file_name().unwrap().to_str().unwrap();
    let endpoint = if name.contains("--mutate--") {
        "/mutate"
    } else {
        "/validate"
    };
    (format!("{endpoint}?{query}"), review)
}

fn starts_with_a_policy_id(text: &str, ids: &[String]) -> bool {
    ids.iter().any(|id| text.starts_with(&format!("{id}: ")))
}

#[tokio::test]
async fn every_captured_review_gets_a_well_formed_answer() {
    let server = Server::start(&[]);
    let ids = policy_ids();
    assert!(ids.len() >= 14, "{ids:?}");
    for file in captured() {
        let (path, request) = replayable(&file);
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
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
            assert!(starts_with_a_policy_id(message, &ids), "{name}: {message}");
        }
        for warning in response["warnings"].as_array().into_iter().flatten() {
            let warning = warning.as_str().unwrap();
            assert!(warning.chars().count() <= 256, "{name}: {warning}");
            assert!(starts_with_a_policy_id(warning, &ids), "{name}: {warning}");
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
        let files: Vec<PathBuf> = captured()
            .into_iter()
            .filter(|f| f.file_name().unwrap().to_string_lossy().starts_with(step))
            .collect();
        assert_eq!(files.len(), 2, "{step}");
        for file in files {
            let (path, request) = replayable(&file);
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
