//! Builds guest crates of the workspace for `wasm32-unknown-unknown` from a
//! build script, with a nested cargo invocation into their own target
//! directory, like wasmtime's test-programs artifacts: the policies are
//! built from source in the normal build, never committed, and the build
//! installs the wasm target if it is missing.
//!
//! Shared by `tollgate-guests` (what the binary embeds) and
//! `tollgate-test-artifacts` (the hostile test guests, for tests only).

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

const WASM_TARGET: &str = "wasm32-unknown-unknown";

/// One module to build: a workspace package with some features, whose
/// `.wasm` the calling crate finds in the env var `env` at compile time.
pub struct Guest {
    pub package: &'static str,
    pub features: &'static [&'static str],
    pub env: &'static str,
}

/// Builds `guests` (release, wasm32) and points each one's env var at a copy
/// in `OUT_DIR`.
/// `watched` are the workspace directories whose changes rebuild.
pub fn build(guests: &[Guest], watched: &[&str]) {
    let manifest_dir = PathBuf::from(env("CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(env("OUT_DIR"));
    let workspace = manifest_dir
        .join("../..")
        .canonicalize()
        .expect("workspace root");
    for dir in watched {
        println!("cargo:rerun-if-changed={}", workspace.join(dir).display());
    }
    println!(
        "cargo:rerun-if-changed={}",
        workspace.join("Cargo.lock").display()
    );

    ensure_wasm_target();

    // Shared by every profile and by clippy/test builds, so the guests are
    // compiled once rather than once per host build configuration.
    let guests_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"))
        .join("guests");

    // One cargo invocation per feature set (usually one in all).
    let mut sets: Vec<&[&str]> = Vec::new();
    for guest in guests {
        if !sets.contains(&guest.features) {
            sets.push(guest.features);
        }
    }
    for features in sets {
        let batch: Vec<&Guest> = guests.iter().filter(|g| g.features == features).collect();
        // A target directory per feature set: one package built with other
        // features would overwrite the same output file.
        let target_dir = match features {
            [] => guests_dir.clone(),
            _ => guests_dir.join(format!("features-{}", features.join("-"))),
        };
        cargo_build(&workspace, &target_dir, &batch, features);
        for guest in batch {
            let built = target_dir
                .join(WASM_TARGET)
                .join("release")
                .join(format!("{}.wasm", guest.package.replace('-', "_")));
            assert!(built.exists(), "{} was not produced", built.display());
            let copy = out_dir.join(format!("{}.wasm", guest.env.to_lowercase()));
            std::fs::copy(&built, &copy)
                .unwrap_or_else(|e| panic!("copy {} to {}: {e}", built.display(), copy.display()));
            println!("cargo:rustc-env={}={}", guest.env, copy.display());
        }
    }
}

fn cargo_build(workspace: &Path, target_dir: &Path, guests: &[&Guest], features: &[&str]) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.arg("build")
        .arg("--release")
        .arg("--target")
        .arg(WASM_TARGET)
        .arg("--manifest-path")
        .arg(workspace.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir);
    for guest in guests {
        cmd.arg("-p").arg(guest.package);
    }
    if !features.is_empty() {
        cmd.arg("--features").arg(features.join(","));
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
