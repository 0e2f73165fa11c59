//! No module import circles in any workspace crate (module A uses B and B
//! uses A, directly or through a chain): a circle means neither module can
//! be read, tested or moved without the other. The crates come from `cargo
//! metadata` at run time, so a crate added to the workspace is checked
//! without editing this test; files are only parsed, never compiled.

mod cycles;
mod graph;
mod references;
mod small_crates;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use graph::ModuleGraph;

/// One crate to read: a target of a workspace package.
struct Target {
    label: String,
    root: PathBuf,
}

fn workspace() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate is inside the workspace")
}

fn workspace_targets() -> Vec<Target> {
    let workspace = workspace();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let output = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(workspace)
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "cargo metadata failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("cargo metadata prints JSON");
    let mut seen = BTreeSet::new();
    let mut targets = Vec::new();
    let packages = metadata["packages"].as_array().cloned().unwrap_or_default();
    for package in &packages {
        let name = package["name"].as_str().unwrap_or("?");
        for target in package["targets"].as_array().into_iter().flatten() {
            let Some(root) = target["src_path"].as_str() else {
                continue;
            };
            if !seen.insert(root.to_string()) {
                continue;
            }
            let kind = target["kind"][0].as_str().unwrap_or("?");
            let target_name = target["name"].as_str().unwrap_or("?");
            targets.push(Target {
                label: format!("{name} ({kind} {target_name})"),
                root: PathBuf::from(root),
            });
        }
    }
    targets
}

#[test]
fn no_module_circles_in_any_workspace_crate() {
    let read = |path: &Path| std::fs::read_to_string(path).ok();
    let mut failures = Vec::new();
    let targets = workspace_targets();
    let prefix = format!("{}/", workspace().display());
    assert!(!targets.is_empty(), "cargo metadata lists no targets");
    for target in &targets {
        let graph = match ModuleGraph::read(&target.root, &read) {
            Ok(graph) => graph,
            Err(error) => {
                failures.push(format!("{}: {error}", target.label));
                continue;
            }
        };
        let found = cycles::circles(&graph);
        println!(
            "{}: {} modules, {} references, {} circles",
            target.label,
            graph.modules.len(),
            graph.edges.len(),
            found.len()
        );
        for missing in &graph.unresolved {
            println!("    not found (cfg'd out or generated?): {missing}");
        }
        for circle in found {
            // Paths relative to the workspace, as a reader types them.
            let circle = circle.to_string().replace(&prefix, "");
            println!("    circle: {circle}");
            failures.push(format!("{}: {circle}", target.label));
        }
    }
    assert!(
        failures.is_empty(),
        "{} module import circles (break each by moving the shared item to the module that owns it):\n{}",
        failures.len(),
        failures.join("\n")
    );
}
