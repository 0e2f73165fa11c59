//! Builds the guest crates for `wasm32-unknown-unknown` with a nested cargo
//! invocation into their own target directory, like wasmtime's test-programs
//! artifacts: the policies are built from source in the normal build, never
//! committed, and the build installs the wasm target if it is missing.

use std::path::{Path, PathBuf};
use std::process::Command;

const WASM_TARGET: &str = "wasm32-unknown-unknown";
/// Guest crate → the env var naming its built module for `lib.rs`.
const GUESTS: &[(&str, &str)] = &[
    ("tollgate-calico", "TOLLGATE_CALICO_WASM"),
    ("tollgate-test-guests", "TOLLGATE_TEST_GUESTS_WASM"),
    ("pod-privileged", "TOLLGATE_POD_PRIVILEGED_WASM"),
];

fn main() {
    let manifest_dir = PathBuf::from(env("CARGO_MANIFEST_DIR"));
    let workspace = manifest_dir
        .join("../..")
        .canonicalize()
        .expect("workspace root");
    for dir in [
        "policies-wasm/sdk",
        "policies-wasm/calico",
        "policies-wasm/test-guests",
        "policies-wasm/examples/pod-privileged",
    ] {
        println!("cargo:rerun-if-changed={}", workspace.join(dir).display());
    }
    println!(
        "cargo:rerun-if-changed={}",
        workspace.join("Cargo.lock").display()
    );

    ensure_wasm_target();

    // Shared by every profile and by clippy/test builds, so the guests are
    // compiled once rather than once per host build configuration.
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"))
        .join("guests");

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.arg("build")
        .arg("--release")
        .arg("--target")
        .arg(WASM_TARGET)
        .arg("--manifest-path")
        .arg(workspace.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir);
    for (krate, _) in GUESTS {
        cmd.arg("-p").arg(krate);
    }
    // The outer build's flags and wrappers are for the host, not for wasm
    // (clippy's wrapper, target-cpu=native, coverage instrumentation...).
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_BUILD_RUSTFLAGS",
    ] {
        cmd.env_remove(var);
    }
    let output = cmd.output().expect("run cargo for the wasm guests");
    if !output.status.success() {
        panic!(
            "building the wasm guests failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    for (krate, var) in GUESTS {
        let file = target_dir
            .join(WASM_TARGET)
            .join("release")
            .join(format!("{}.wasm", krate.replace('-', "_")));
        assert!(file.exists(), "{} was not produced", file.display());
        println!("cargo:rustc-env={var}={}", file.display());
    }
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"))
}

/// Installs the wasm target through rustup when the toolchain lacks it, or
/// fails with the exact command to run.
fn ensure_wasm_target() {
    if has_wasm_target() {
        return;
    }
    let installed = Command::new("rustup")
        .args(["target", "add", WASM_TARGET])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !installed || !has_wasm_target() {
        panic!(
            "the {WASM_TARGET} target is not installed and could not be added; run:\n    rustup target add {WASM_TARGET}"
        );
    }
}

fn has_wasm_target() -> bool {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let Ok(out) = Command::new(rustc).args(["--print", "sysroot"]).output() else {
        return false;
    };
    let sysroot = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    Path::new(&sysroot)
        .join("lib/rustlib")
        .join(WASM_TARGET)
        .join("lib")
        .is_dir()
}
