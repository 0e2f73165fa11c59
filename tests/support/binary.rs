//! The binary under test: the `tollgate` that `cargo build -p tollgate`
//! produces, in the profile the tests themselves were built in.
//!
//! The suites live in a crate of their own, so cargo does not hand them
//! `CARGO_BIN_EXE_tollgate`. They build the binary once per test process
//! (cargo is not holding its lock while tests run) unless `TOLLGATE_BIN`
//! names one to test instead, such as the binary inside the container image.
//!
//! The build selects the whole workspace with all its targets, as
//! `cargo test` does: cargo unifies dependency features over what is
//! selected, and `-p tollgate` alone would resolve other features and
//! compile a second copy of every dependency.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The `tollgate` executable to run.
pub fn tollgate_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| match std::env::var_os("TOLLGATE_BIN") {
        Some(bin) => PathBuf::from(bin),
        None => build(),
    })
}

/// `target/tmp`: scratch space that survives between test runs (module
/// caches shared by the servers of a suite).
pub fn target_tmp() -> PathBuf {
    let dir = profile_dir()
        .parent()
        .map_or_else(std::env::temp_dir, |target| target.join("tmp"));
    std::fs::create_dir_all(&dir).expect("create target/tmp");
    dir
}

/// `target/<profile>`: the test executable runs from `target/<profile>/deps`.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    exe.parent()
        .and_then(Path::parent)
        .expect("test executables live in target/<profile>/deps")
        .to_path_buf()
}

fn build() -> PathBuf {
    let profile_dir = profile_dir();
    let profile = profile_dir
        .file_name()
        .and_then(|n| n.to_str())
        .expect("profile directory name");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut command = Command::new(cargo);
    command
        .current_dir(&workspace)
        .args(["build", "--quiet", "--workspace", "--all-targets"])
        .arg("--target-dir")
        .arg(profile_dir.parent().expect("target directory"));
    // `debug` is the dev profile's directory; any other is named as is.
    if profile != "debug" {
        command.args(["--profile", profile]);
    }
    let status = command
        .status()
        .unwrap_or_else(|e| panic!("cannot run cargo to build tollgate: {e}"));
    assert!(
        status.success(),
        "cargo build --workspace --all-targets failed"
    );
    let bin = profile_dir.join(format!("tollgate{}", std::env::consts::EXE_SUFFIX));
    assert!(bin.exists(), "{} was not built", bin.display());
    bin
}
