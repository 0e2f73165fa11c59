//! The compiled-module cache cannot plant code: entries swapped between
//! modules, forged under the right name, truncated, or kept in a directory
//! another user can write are never deserialised; the module is compiled
//! again and its verdicts stay right.

mod common;
#[path = "common/wat.rs"]
mod wat;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tollgate_context::EmptyContext;
use tollgate_host::{Config, PolicySet, Sandbox, SandboxLimits};

/// A cache directory and a state directory (holding the key) side by side.
struct Dirs {
    _root: tempfile::TempDir,
    cache: PathBuf,
    state: PathBuf,
    modules: PathBuf,
}

impl Dirs {
    fn new() -> Self {
        let root = tempfile::tempdir().unwrap();
        let modules = root.path().join("modules");
        std::fs::create_dir(&modules).unwrap();
        // Two different modules: the test guests (rule `deny`) and a
        // hand-written one (rule `r`, which warns "from wat").
        std::fs::write(modules.join("a.wasm"), tollgate_test_artifacts::TEST_GUESTS).unwrap();
        std::fs::write(modules.join("b.wasm"), wat::Wat::default().wasm()).unwrap();
        Self {
            cache: root.path().join("cache"),
            state: root.path().join("state"),
            modules,
            _root: root,
        }
    }

    fn sandbox(&self) -> Arc<Sandbox> {
        self.sandbox_keyed(&self.state)
    }

    fn sandbox_keyed(&self, state: &Path) -> Arc<Sandbox> {
        Sandbox::new(SandboxLimits {
            memory_bytes: 16 << 20,
            cache_dir: Some(self.cache.clone()),
            cache_key_dir: Some(state.to_owned()),
            ..SandboxLimits::default()
        })
        .unwrap()
    }

    /// Loads both modules and checks both verdicts.
    fn load_and_judge(&self, sandbox: &Sandbox) -> PolicySet {
        let config = Config::from_yaml(
            "- {id: a, module: a.wasm, rule: deny}\n- {id: b, module: b.wasm, rule: r}\n",
            "t",
        )
        .unwrap();
        let set = PolicySet::load(&config, sandbox, &[], &self.modules).unwrap();
        let judge = |i: usize| {
            set.policies()[i]
                .evaluate(
                    common::REQUEST,
                    Instant::now() + Duration::from_secs(5),
                    &EmptyContext::shared(),
                )
                .unwrap()
        };
        assert!(!judge(0).allowed, "the guests' deny rule denies");
        let warned = judge(1);
        assert!(warned.allowed);
        assert_eq!(warned.warnings, ["from wat"]);
        set
    }

    /// The entries of module a and module b.
    fn entries(&self, set: &PolicySet) -> [PathBuf; 2] {
        [0, 1].map(|i| {
            let digest = set.policies()[i].module_digest();
            std::fs::read_dir(&self.cache)
                .unwrap()
                .flatten()
                .map(|e| e.path())
                .find(|p| {
                    p.file_name()
                        .unwrap()
                        .to_string_lossy()
                        .starts_with(&digest)
                })
                .unwrap_or_else(|| panic!("no entry for {digest}"))
        })
    }
}

/// Modules compiled, deserialised from the disk cache; entries rejected
/// unauthenticated, loads that skipped an unsafe directory.
#[derive(Debug, PartialEq)]
struct Counts(u64, u64, u64, u64);

fn counts(sandbox: &Sandbox) -> Counts {
    let s = sandbox.stats();
    Counts(
        s.compiled.get(),
        s.from_disk_cache.get(),
        s.cache_unauthenticated.get(),
        s.cache_unsafe_directory.get(),
    )
}

/// A warm cache: both modules compiled once and their entries written.
fn warm() -> (Dirs, [PathBuf; 2]) {
    let dirs = Dirs::new();
    let first = dirs.sandbox();
    let set = dirs.load_and_judge(&first);
    assert_eq!(counts(&first), Counts(2, 0, 0, 0));
    let entries = dirs.entries(&set);
    let second = dirs.sandbox();
    dirs.load_and_judge(&second);
    assert_eq!(counts(&second), Counts(0, 2, 0, 0), "a warm cache serves");
    (dirs, entries)
}

/// After tampering: both modules compiled again (`rejected` entries
/// counted), then the rewritten entries serve the next start.
fn recompiles_then_serves(dirs: &Dirs, rejected: u64) {
    let sandbox = dirs.sandbox();
    dirs.load_and_judge(&sandbox);
    assert_eq!(counts(&sandbox), Counts(2, 0, rejected, 0));
    let next = dirs.sandbox();
    dirs.load_and_judge(&next);
    assert_eq!(counts(&next), Counts(0, 2, 0, 0), "entries were rewritten");
}

#[test]
fn the_key_lives_in_the_state_directory_not_the_cache() {
    let (dirs, _) = warm();
    assert!(dirs.state.join("module-cache.key").exists());
    for entry in std::fs::read_dir(&dirs.cache).unwrap().flatten() {
        assert_eq!(entry.path().extension().unwrap(), "cwasm", "{entry:?}");
    }
}

#[test]
fn swapped_entries_are_not_loaded() {
    let (dirs, [a, b]) = warm();
    let (code_a, code_b) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    std::fs::write(&a, &code_b).unwrap();
    std::fs::write(&b, &code_a).unwrap();
    recompiles_then_serves(&dirs, 2);
}

#[test]
fn an_entry_forged_under_the_right_name_is_not_loaded() {
    let (dirs, [a, b]) = warm();
    // Real wasmtime output of the right module, sealed under another key
    // (what someone who can write the cache but not read the key makes).
    let other_state = dirs.state.with_file_name("other-state");
    std::fs::remove_file(&a).unwrap();
    dirs.load_and_judge(&dirs.sandbox_keyed(&other_state));
    // And the right entry with one bit of its code changed.
    let mut flipped = std::fs::read(&b).unwrap();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    std::fs::write(&b, flipped).unwrap();
    recompiles_then_serves(&dirs, 2);
}

#[test]
fn a_truncated_entry_is_not_loaded() {
    let (dirs, [a, b]) = warm();
    let code = std::fs::read(&a).unwrap();
    std::fs::write(&a, &code[..code.len() / 2]).unwrap();
    std::fs::write(&b, &code[..10]).unwrap();
    recompiles_then_serves(&dirs, 2);
}

#[test]
fn a_directory_others_can_write_is_not_used() {
    for mode in [0o775, 0o757, 0o1777] {
        let (dirs, [a, _]) = warm();
        std::fs::set_permissions(&dirs.cache, std::fs::Permissions::from_mode(mode)).unwrap();
        let before = std::fs::metadata(&a).unwrap().modified().unwrap();
        let sandbox = dirs.sandbox();
        dirs.load_and_judge(&sandbox);
        assert_eq!(counts(&sandbox), Counts(2, 0, 0, 2), "mode {mode:o}");
        assert_eq!(
            std::fs::metadata(&a).unwrap().modified().unwrap(),
            before,
            "not written either"
        );
        std::fs::set_permissions(&dirs.cache, std::fs::Permissions::from_mode(0o700)).unwrap();
        let fixed = dirs.sandbox();
        dirs.load_and_judge(&fixed);
        assert_eq!(counts(&fixed), Counts(0, 2, 0, 0));
    }
}

#[test]
fn without_a_state_directory_the_key_is_the_process_own() {
    let (dirs, _) = warm();
    // A state "directory" that cannot be one: a per-process key, so the
    // entries of the earlier runs fail the check and are compiled again.
    let blocker = dirs.state.with_file_name("a-file");
    std::fs::write(&blocker, b"").unwrap();
    let sandbox = dirs.sandbox_keyed(&blocker);
    dirs.load_and_judge(&sandbox);
    assert_eq!(counts(&sandbox), Counts(2, 0, 2, 0));
}
