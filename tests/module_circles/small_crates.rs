//! The walker itself, on crates small enough to read at a glance.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::cycles::circles;
use crate::graph::ModuleGraph;

fn names(files: &[(&str, &str)]) -> Vec<String> {
    let files: HashMap<PathBuf, String> = files
        .iter()
        .map(|(path, text)| (PathBuf::from(path), text.to_string()))
        .collect();
    let read = |path: &Path| files.get(path).cloned();
    let graph = ModuleGraph::read(Path::new("src/lib.rs"), &read).expect("the example parses");
    circles(&graph).iter().map(|c| c.name()).collect()
}

#[test]
fn a_three_module_circle_is_found_and_named() {
    let found = names(&[
        ("src/lib.rs", "mod sandbox;"),
        (
            "src/sandbox/mod.rs",
            "mod engine; mod stats; mod module_cache; pub use stats::Stats;",
        ),
        ("src/sandbox/engine.rs", "use super::stats::Stats;"),
        (
            "src/sandbox/stats.rs",
            "pub struct Stats; fn f(o: super::module_cache::Origin) {}",
        ),
        (
            "src/sandbox/module_cache.rs",
            "pub enum Origin {} fn g() { crate::sandbox::engine::start(); }",
        ),
    ]);
    assert_eq!(
        found,
        ["sandbox::engine → sandbox::stats → sandbox::module_cache → sandbox::engine"]
    );
}

#[test]
fn a_circle_through_subtrees_is_found_at_the_level_of_the_siblings() {
    let found = names(&[
        ("src/lib.rs", "mod a; mod b;"),
        ("src/a.rs", "mod inner; "),
        ("src/a/inner.rs", "use crate::b::B;"),
        (
            "src/b.rs",
            "pub struct B; mod c { use crate::a::inner::X; }",
        ),
    ]);
    assert_eq!(found, ["a → b → a"]);
}

#[test]
fn a_child_naming_its_parent_is_no_circle() {
    let found = names(&[
        ("src/lib.rs", "mod sandbox; pub use sandbox::Budget;"),
        (
            "src/sandbox/mod.rs",
            "mod engine; pub use engine::Budget; fn f(e: engine::Engine) {}",
        ),
        (
            "src/sandbox/engine.rs",
            "pub struct Budget; pub struct Engine; use super::Budget as B; fn g() -> crate::Budget { todo!() }",
        ),
    ]);
    assert!(found.is_empty(), "{found:?}");
}

#[test]
fn a_tests_module_using_its_parent_is_no_circle() {
    let found = names(&[
        ("src/lib.rs", "mod engine; mod stats;"),
        (
            "src/engine.rs",
            "use crate::stats::Stats; #[cfg(test)] mod tests;",
        ),
        (
            "src/engine/tests.rs",
            "use super::*; use crate::engine::Engine;",
        ),
        (
            "src/stats.rs",
            "pub struct Stats; #[cfg(test)] mod tests { use super::Stats; }",
        ),
    ]);
    assert!(found.is_empty(), "{found:?}");
}

#[test]
fn a_tests_module_counts_for_its_parent() {
    let found = names(&[
        ("src/lib.rs", "mod engine; mod stats;"),
        ("src/engine.rs", "use crate::stats::Stats;"),
        (
            "src/stats.rs",
            "pub struct Stats; #[cfg(test)] mod tests { use crate::engine::Engine; }",
        ),
    ]);
    assert_eq!(found, ["engine → stats → engine"]);
}

#[test]
fn paths_inside_macro_arguments_count() {
    let found = names(&[
        ("src/lib.rs", "mod a; mod b;"),
        ("src/a.rs", "pub fn f() { assert_eq!(crate::b::g(), 1); }"),
        ("src/b.rs", "pub fn g() -> u8 { super::a::f(); 1 }"),
    ]);
    assert_eq!(found, ["a → b → a"]);
}

#[test]
fn a_file_that_does_not_parse_is_an_error_not_a_pass() {
    let files: HashMap<PathBuf, String> =
        HashMap::from([(PathBuf::from("src/lib.rs"), "fn (".to_string())]);
    let read = |path: &Path| files.get(path).cloned();
    assert!(ModuleGraph::read(Path::new("src/lib.rs"), &read).is_err());
}
