//! Circles among sibling modules: at every level of the tree, each child's
//! subtree is collapsed into the child, and a cycle among the children is a
//! circle (`sandbox::engine → sandbox::stats → sandbox::engine`). A child
//! naming its parent or an ancestor (`super::Budget`, re-exported in
//! `mod.rs`) is the normal shape of a Rust crate and not counted.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;

use crate::graph::{Edge, ModuleGraph};
use crate::references::ModPath;

/// One circle: the modules in order (the first repeated at the end) and,
/// for each step, one reference that makes it.
#[derive(Debug)]
pub struct Circle {
    pub cycle: Vec<ModPath>,
    pub evidence: Vec<String>,
    /// Every module tangled with these (the strongly connected set), when
    /// it is larger than the cycle shown.
    pub tangled: Vec<ModPath>,
}

impl Circle {
    /// `sandbox::engine → sandbox::stats → sandbox::engine`.
    pub fn name(&self) -> String {
        self.cycle
            .iter()
            .map(|m| show(m))
            .collect::<Vec<_>>()
            .join(" → ")
    }
}

impl fmt::Display for Circle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.name())?;
        for line in &self.evidence {
            writeln!(f, "    {line}")?;
        }
        if !self.tangled.is_empty() {
            let all: Vec<String> = self.tangled.iter().map(|m| show(m)).collect();
            writeln!(f, "    (all tangled: {})", all.join(", "))?;
        }
        Ok(())
    }
}

/// A module path as a reader writes it; the root is `crate`.
pub fn show(module: &[String]) -> String {
    if module.is_empty() {
        "crate".to_string()
    } else {
        module.join("::")
    }
}

/// Every circle of the crate, one per tangled set of siblings.
pub fn circles(graph: &ModuleGraph) -> Vec<Circle> {
    let mut found = Vec::new();
    for parent in &graph.modules {
        let mut steps: BTreeMap<ModPath, BTreeMap<ModPath, &Edge>> = BTreeMap::new();
        for edge in &graph.edges {
            let (Some(from), Some(to)) = (child_of(parent, &edge.from), child_of(parent, &edge.to))
            else {
                continue;
            };
            if from != to {
                steps.entry(from).or_default().entry(to).or_insert(edge);
            }
        }
        let mut seen: BTreeSet<ModPath> = BTreeSet::new();
        for start in steps.keys() {
            if seen.contains(start) {
                continue;
            }
            let tangled = tangled_with(&steps, start);
            seen.extend(tangled.iter().cloned());
            if tangled.len() < 2 {
                continue;
            }
            let cycle = shortest_cycle(&steps, start, &tangled);
            let evidence = cycle
                .windows(2)
                .map(|pair| {
                    let edge = steps[&pair[0]][&pair[1]];
                    format!("{} uses {}", show(&edge.from), edge.via)
                })
                .collect();
            let tangled = if tangled.len() + 1 > cycle.len() {
                tangled.into_iter().collect()
            } else {
                Vec::new()
            };
            found.push(Circle {
                cycle,
                evidence,
                tangled,
            });
        }
    }
    found
}

/// The child of `parent` whose subtree holds `module`, if any.
fn child_of(parent: &[String], module: &[String]) -> Option<ModPath> {
    (module.len() > parent.len() && module.starts_with(parent))
        .then(|| module[..=parent.len()].to_vec())
}

type Steps<'e> = BTreeMap<ModPath, BTreeMap<ModPath, &'e Edge>>;

fn reachable(steps: &Steps<'_>, start: &ModPath) -> BTreeSet<ModPath> {
    let mut reached = BTreeSet::new();
    let mut todo = vec![start.clone()];
    while let Some(node) = todo.pop() {
        for next in steps.get(&node).into_iter().flat_map(|n| n.keys()) {
            if reached.insert(next.clone()) {
                todo.push(next.clone());
            }
        }
    }
    reached
}

/// The modules that reach `start` and that `start` reaches (itself included).
fn tangled_with(steps: &Steps<'_>, start: &ModPath) -> BTreeSet<ModPath> {
    let mut set: BTreeSet<ModPath> = reachable(steps, start)
        .into_iter()
        .filter(|other| reachable(steps, other).contains(start))
        .collect();
    set.insert(start.clone());
    set
}

/// The shortest way from `start` back to itself inside `within`.
fn shortest_cycle(steps: &Steps<'_>, start: &ModPath, within: &BTreeSet<ModPath>) -> Vec<ModPath> {
    let mut came_from: BTreeMap<ModPath, ModPath> = BTreeMap::new();
    let mut queue = VecDeque::from([start.clone()]);
    while let Some(node) = queue.pop_front() {
        for next in steps.get(&node).into_iter().flat_map(|n| n.keys()) {
            if !within.contains(next) {
                continue;
            }
            if next == start {
                let mut path = vec![node.clone()];
                while let Some(prev) = path
                    .last()
                    .filter(|n| *n != start)
                    .and_then(|n| came_from.get(n))
                {
                    path.push(prev.clone());
                }
                path.reverse();
                path.push(start.clone());
                return path;
            }
            if !came_from.contains_key(next) {
                came_from.insert(next.clone(), node.clone());
                queue.push_back(next.clone());
            }
        }
    }
    vec![start.clone()]
}
