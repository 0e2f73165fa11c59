//! Hot reload of the policy configuration (SPEC §2.2): a change is picked
//! up without a restart; a configuration or module that fails to load is
//! reported and the previous set keeps serving.

use tollgate_tests as support;

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use support::{Launch, Server, eventually, metric, object, response, review};

const ENFORCE: &str = "- id: gate\n  module: guests.wasm\n  rule: deny\n  mode: enforce\n  match: {kinds: [{kind: Secret}]}\n";

fn secret_review(uid: &str) -> Value {
    review(
        uid,
        ("", "v1", "Secret"),
        "CREATE",
        object("v1", "Secret", "s"),
    )
}

async fn verdict(server: &Server, uid: &str) -> Value {
    let request = secret_review(uid);
    let answer = server.review("/validate", &request).await;
    response(&request, &answer).clone()
}

async fn reload_count(server: &Server, result: &str) -> f64 {
    let metrics = server.metrics().await;
    metric(
        &metrics,
        &format!(r#"tollgate_reloads_total{{result="{result}"}}"#),
    )
}

/// Writes `text` to `path` via a rename, as editors and ConfigMap mounts do.
fn replace(path: &Path, text: &[u8]) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

async fn wait_for_reload(server: &Server, result: &str, at_least: f64) {
    eventually(
        Duration::from_secs(15),
        &format!("a reload with result {result}"),
        || async { reload_count(server, result).await >= at_least },
    )
    .await;
}

#[tokio::test]
async fn changing_a_mode_flips_the_verdict_without_a_restart() {
    let server = Launch::new().policies(ENFORCE).start();
    let config = server.dir.join("policies.yaml");
    assert_eq!(verdict(&server, "before").await["allowed"], false);
    let pid = server.pid();

    std::fs::write(&config, ENFORCE.replace("mode: enforce", "mode: warn")).unwrap();
    wait_for_reload(&server, "ok", 1.0).await;
    let after = verdict(&server, "after").await;
    assert_eq!(after["allowed"], true);
    assert_eq!(after["warnings"][0], "gate: denied by the deny rule");
    assert_eq!(server.pid(), pid);

    // A second policy: the gauge follows the serving set.
    let two = format!("{ENFORCE}- id: other\n  module: guests.wasm\n  rule: allow\n");
    replace(&config, two.as_bytes());
    wait_for_reload(&server, "ok", 2.0).await;
    assert_eq!(
        metric(&server.metrics().await, "tollgate_policies_loaded"),
        2.0
    );
    assert_eq!(verdict(&server, "enforced-again").await["allowed"], false);
}

#[tokio::test]
async fn a_broken_configuration_leaves_the_old_verdicts_in_place() {
    let server = Launch::new().policies(ENFORCE).start();
    let config = server.dir.join("policies.yaml");
    let broken = [
        "- id: gate\n  module: guests.wasm\n  mode: sometimes\n".to_owned(),
        "not: [valid".to_owned(),
        ENFORCE.replace("guests.wasm", "missing.wasm"),
        ENFORCE.replace("rule: deny", "rule: no-such-rule"),
        format!("{ENFORCE}  settings: {{invalid: true}}\n"),
    ];
    for (i, text) in broken.iter().enumerate() {
        replace(&config, text.as_bytes());
        wait_for_reload(&server, "error", (i + 1) as f64).await;
        let still = verdict(&server, &format!("still-{i}")).await;
        assert_eq!(still["allowed"], false, "after broken config {i}: {still}");
        assert_eq!(still["status"]["message"], "gate: denied by the deny rule");
    }
    assert_eq!(reload_count(&server, "ok").await, 0.0);
    let logs = server.logs();
    assert!(logs.contains("policy reload failed"), "{logs}");
}

#[tokio::test]
async fn a_changed_module_is_reloaded_and_a_broken_one_refused() {
    let server = Launch::new().policies(ENFORCE).start();
    let module = server.dir.join("guests.wasm");

    // The same module rewritten: reloaded.
    replace(&module, tollgate_test_artifacts::TEST_GUESTS);
    wait_for_reload(&server, "ok", 1.0).await;

    // Not Wasm at all: refused, the compiled module keeps serving.
    replace(&module, b"\0asm garbage");
    wait_for_reload(&server, "error", 1.0).await;
    assert_eq!(verdict(&server, "kept").await["allowed"], false);
}

/// Issue 10: truncating the file during a rewrite reloaded `policies=0` and
/// allowed every review with no policy run. An empty, whitespace-only or
/// comment-only file is a reload error; `[]` is an intentional empty set.
#[tokio::test]
async fn an_empty_file_is_a_reload_error_and_an_explicit_empty_list_is_not() {
    let server = Launch::new().policies(ENFORCE).start();
    let config = server.dir.join("policies.yaml");
    for (i, text) in ["", "  \n \n", "# being rewritten\n"].iter().enumerate() {
        // In place, as a truncating rewrite does (not via a rename).
        std::fs::write(&config, text).unwrap();
        wait_for_reload(&server, "error", (i + 1) as f64).await;
        let still = verdict(&server, &format!("still-{i}")).await;
        assert_eq!(still["allowed"], false, "after {text:?}: {still}");
        assert_eq!(still["status"]["message"], "gate: denied by the deny rule");
    }
    assert_eq!(
        metric(&server.metrics().await, "tollgate_policies_loaded"),
        1.0
    );
    let logs = server.logs();
    assert!(
        logs.contains("write `[]` for an intentionally empty set"),
        "{logs}"
    );

    replace(&config, b"# no policies on purpose\n[]\n");
    wait_for_reload(&server, "ok", 1.0).await;
    assert_eq!(
        metric(&server.metrics().await, "tollgate_policies_loaded"),
        0.0
    );
    assert_eq!(verdict(&server, "none").await["allowed"], true);
}

/// Issue 10: a module that did not exist when a reload failed was not
/// watched, so writing it later changed nothing.
#[tokio::test]
async fn a_module_missing_at_a_failed_reload_is_picked_up_when_it_appears() {
    let server = Launch::new().policies(ENFORCE).start();
    let config = server.dir.join("policies.yaml");
    let later = ENFORCE
        .replace("guests.wasm", "later.wasm")
        .replace("mode: enforce", "mode: warn");
    replace(&config, later.as_bytes());
    wait_for_reload(&server, "error", 1.0).await;
    assert_eq!(verdict(&server, "before").await["allowed"], false);

    replace(
        &server.dir.join("later.wasm"),
        tollgate_test_artifacts::TEST_GUESTS,
    );
    wait_for_reload(&server, "ok", 1.0).await;
    let after = verdict(&server, "after").await;
    assert_eq!(after["allowed"], true, "{after}");
    assert_eq!(after["warnings"][0], "gate: denied by the deny rule");
}
