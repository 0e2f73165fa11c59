//! The compiled-module cache cannot plant code: a server whose cache
//! entries were swapped between modules (as in issue 21, where the pack's
//! code was loaded for another module and the server refused to start)
//! starts, compiles the modules again and judges as before.

use tollgate_tests as support;

use std::path::PathBuf;

use support::{Launch, metric, object, response, review};

/// Two modules: the test guests in their ABI v1 and v2 builds.
const POLICIES: &str = r#"
- id: denier
  module: guests.wasm
  rule: deny
  match: {kinds: [{kind: Secret}]}
- id: allower
  module: guests-v2.wasm
  rule: allow
  match: {kinds: [{kind: ConfigMap}]}
"#;

fn entries(cache: &std::path::Path) -> Vec<PathBuf> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(cache)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    entries.retain(|p| p.extension().is_some_and(|e| e == "cwasm"));
    entries.sort();
    entries
}

async fn judges_right(server: &support::Server) {
    let secret = review(
        "s",
        ("", "v1", "Secret"),
        "CREATE",
        object("v1", "Secret", "s"),
    );
    let answer = server.review("/validate?timeout=5s", &secret).await;
    assert_eq!(response(&secret, &answer)["allowed"], false, "{answer}");
    let config = review(
        "c",
        ("", "v1", "ConfigMap"),
        "CREATE",
        object("v1", "ConfigMap", "c"),
    );
    let answer = server.review("/validate?timeout=5s", &config).await;
    assert_eq!(response(&config, &answer)["allowed"], true, "{answer}");
}

#[tokio::test]
async fn a_server_starts_and_judges_right_with_swapped_cache_entries() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache/tollgate");
    {
        // Entries are written when the modules compile, before listening.
        let first = Launch::in_dir(dir.path()).policies(POLICIES).start();
        judges_right(&first).await;
    }
    let [a, b] = <[PathBuf; 2]>::try_from(entries(&cache)).expect("two cache entries");
    let (code_a, code_b) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    std::fs::write(&a, code_b).unwrap();
    std::fs::write(&b, code_a).unwrap();

    let second = Launch::in_dir(dir.path()).policies(POLICIES).start();
    judges_right(&second).await;
    let text = second.metrics().await;
    assert_eq!(
        metric(
            &text,
            r#"tollgate_module_cache_rejected_total{reason="unauthenticated"}"#
        ),
        2.0,
        "{text}"
    );
    assert_eq!(
        metric(&text, r#"tollgate_modules_loaded_total{origin="compiled"}"#),
        2.0
    );
    assert!(
        second.logs().contains("fails its authentication"),
        "{}",
        second.logs()
    );
}
