//! `tollgate new` end to end, as an author uses it: scaffold a policy crate
//! in a temporary directory, `cargo test` it, build it for the wasm target,
//! `tollgate test` its cases, and serve it with `--policies`.
//!
//! It compiles a fresh crate (the SDK and serde, native and wasm), so it is
//! one test, and its build output goes to a directory under `target/tmp`
//! that survives between runs.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::json;
use support::{Launch, response};
use tollgate_tests as support;

fn run(what: &str, command: &mut Command) -> Output {
    let output = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn cargo(dir: &Path, target_dir: &Path) -> Command {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command.current_dir(dir).env("CARGO_TARGET_DIR", target_dir);
    command
}

#[tokio::test]
async fn a_new_policy_builds_tests_and_serves() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("team-label");
    let tollgate = support::tollgate_bin();
    let said = run(
        "tollgate new",
        Command::new(tollgate)
            .args(["new", "team-label", "--dir"])
            .arg(&dir),
    );
    assert!(String::from_utf8_lossy(&said.stdout).contains("created policy crate team-label"));

    // The workspace's lockfile pins the scaffold's dependencies to versions
    // this checkout already builds with (cargo drops the entries it does
    // not need), so the build needs nothing new from the registry.
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    std::fs::copy(workspace.join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    let target_dir = support::target_tmp().join("new-policy-target");

    let tested = run("cargo test", cargo(&dir, &target_dir).arg("test"));
    let tested = String::from_utf8_lossy(&tested.stdout).into_owned();
    assert!(tested.contains("test result: ok. 2 passed"), "{tested}");

    run(
        "cargo build --release --target wasm32-unknown-unknown",
        cargo(&dir, &target_dir).args(["build", "--release", "--target", "wasm32-unknown-unknown"]),
    );
    // Where policies.yaml expects the module: cargo's own target directory.
    let module = "wasm32-unknown-unknown/release/team_label.wasm";
    let expected = dir.join("target").join(module);
    std::fs::create_dir_all(expected.parent().unwrap()).unwrap();
    std::fs::copy(target_dir.join(module), &expected).unwrap();

    let cases = run(
        "tollgate test tests",
        Command::new(tollgate)
            .args(["test", "tests"])
            .current_dir(&dir)
            .env("XDG_CACHE_HOME", tmp.path().join("cache"))
            .env("RUST_LOG", "warn"),
    );
    let cases = String::from_utf8_lossy(&cases.stdout).into_owned();
    assert!(cases.ends_with("2 passed, 0 failed\n"), "{cases}");

    let server = Launch::new()
        .arg("--policies")
        .arg(dir.join("policies.yaml").display().to_string())
        .start();
    let deployment = |labels| {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "web", "namespace": "apps", "labels": labels}})
    };
    let unowned = support::review(
        "new-1",
        ("apps", "v1", "Deployment"),
        "CREATE",
        deployment(json!({"app": "web"})),
    );
    let answer = server.review("/validate?timeout=10s", &unowned).await;
    let denied = response(&unowned, &answer);
    assert_eq!(denied["allowed"], false, "{answer}");
    let message = denied["status"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("web has no \"team\" label"), "{answer}");
    let owned = support::review(
        "new-2",
        ("apps", "v1", "Deployment"),
        "CREATE",
        deployment(json!({"team": "payments"})),
    );
    let answer = server.review("/validate?timeout=10s", &owned).await;
    assert_eq!(response(&owned, &answer)["allowed"], true, "{answer}");
}
