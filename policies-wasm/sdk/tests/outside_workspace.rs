//! The SDK as a policy author outside this repository gets it: packaged
//! with `cargo package` (what crates.io would serve), unpacked, and used as
//! a dependency of a fresh crate that is its own workspace, holding the
//! pod-privileged example's source. Its unit tests must pass natively and
//! it must build for wasm32.
//!
//! Runs cargo offline against the registry cache the workspace build filled,
//! with the workspace's lockfile, into `target/outside-workspace`, so a
//! second run is incremental.

use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn cargo(dir: &Path, args: &[&str]) -> String {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let target = workspace().join("target/outside-workspace");
    let mut cmd = Command::new(cargo);
    cmd.current_dir(dir)
        .args(args)
        .arg("--offline")
        .arg("--target-dir")
        .arg(&target);
    // The outer build's settings are not an outside author's.
    for var in [
        "CARGO_TARGET_DIR",
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_BUILD_TARGET",
    ] {
        cmd.env_remove(var);
    }
    let out = cmd.output().expect("run cargo");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "cargo {args:?} failed:\n{text}");
    text
}

#[test]
fn the_packaged_sdk_builds_a_policy_outside_the_workspace() {
    let root = workspace();
    let version = env!("CARGO_PKG_VERSION");
    cargo(
        &root,
        &[
            "package",
            "-p",
            "tollgate-sdk",
            "--allow-dirty",
            "--no-verify",
        ],
    );
    let crate_file = root.join(format!(
        "target/outside-workspace/package/tollgate-sdk-{version}.crate"
    ));
    let scratch = tempfile::tempdir().unwrap();
    let unpacked = Command::new("tar")
        .arg("xzf")
        .arg(&crate_file)
        .arg("-C")
        .arg(scratch.path())
        .status()
        .unwrap();
    assert!(unpacked.success(), "cannot unpack {}", crate_file.display());
    let sdk = scratch.path().join(format!("tollgate-sdk-{version}"));
    let manifest = std::fs::read_to_string(sdk.join("Cargo.toml")).unwrap();
    assert!(!manifest.contains(".workspace"), "{manifest}");
    assert!(manifest.contains("readme = \"README.md\""), "{manifest}");
    assert!(sdk.join("README.md").exists() && !sdk.join("tests").exists());

    let policy = scratch.path().join("my-policy");
    std::fs::create_dir_all(policy.join("src")).unwrap();
    std::fs::write(
        policy.join("Cargo.toml"),
        format!(
            "[package]\nname = \"my-policy\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n\
             [lib]\ncrate-type = [\"cdylib\", \"rlib\"]\n\n\
             [dependencies]\ntollgate-sdk = {{ path = {:?} }}\n\
             serde = {{ version = \"1\", features = [\"derive\"] }}\n\n[workspace]\n",
            sdk.display().to_string()
        ),
    )
    .unwrap();
    std::fs::copy(
        root.join("policies-wasm/examples/pod-privileged/src/lib.rs"),
        policy.join("src/lib.rs"),
    )
    .unwrap();
    // Resolve to the versions already in the registry cache.
    std::fs::copy(root.join("Cargo.lock"), policy.join("Cargo.lock")).unwrap();

    let tests = cargo(&policy, &["test", "--lib"]);
    assert!(tests.contains("test result: ok. 2 passed"), "{tests}");
    cargo(
        &policy,
        &[
            "build",
            "--lib",
            "--release",
            "--target",
            "wasm32-unknown-unknown",
        ],
    );
    let module = std::fs::read(
        root.join("target/outside-workspace/wasm32-unknown-unknown/release/my_policy.wasm"),
    )
    .unwrap();
    assert_eq!(&module[..4], b"\0asm");
}
