//! What one item of a module refers to: the `crate::`, `super::` and
//! `self::` paths in its `use` lines, types and expressions, made absolute.

use std::path::Path;

use syn::punctuated::Punctuated;
use syn::visit::Visit;

/// A module's path inside its crate: `["sandbox", "engine"]`; empty for the root.
pub type ModPath = Vec<String>;

/// A reference before the module tree is complete: the module that wrote it
/// and the absolute path it names.
pub struct RawEdge {
    pub from: ModPath,
    pub target: Vec<String>,
    pub via: String,
}

/// Where the walker is: the module's own path (what `self`/`super` mean)
/// and the module its references count for (a test module counts for its
/// parent, so `tests` using its parent is no circle).
#[derive(Clone)]
pub struct Scope {
    pub path: ModPath,
    pub owner: ModPath,
}

impl Scope {
    pub fn root() -> Self {
        Scope {
            path: Vec::new(),
            owner: Vec::new(),
        }
    }
}

/// Collects the `crate::`/`super::`/`self::` paths of one item: its `use`
/// lines (nested ones too) and the paths in its types and expressions.
pub struct References<'s> {
    pub scope: &'s Scope,
    pub file: &'s Path,
    pub found: Vec<RawEdge>,
}

impl References<'_> {
    fn add(&mut self, segments: &[String]) {
        let Some(target) = absolute(&self.scope.path, segments) else {
            return;
        };
        self.found.push(RawEdge {
            from: self.scope.owner.clone(),
            target,
            via: format!("{} in {}", segments.join("::"), self.file.display()),
        });
    }

    fn use_tree(&mut self, prefix: &mut Vec<String>, tree: &syn::UseTree) {
        match tree {
            syn::UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                self.use_tree(prefix, &p.tree);
                prefix.pop();
            }
            syn::UseTree::Name(n) => self.leaf(prefix, &n.ident),
            syn::UseTree::Rename(r) => self.leaf(prefix, &r.ident),
            syn::UseTree::Glob(_) => self.add(&prefix.clone()),
            syn::UseTree::Group(g) => {
                for tree in &g.items {
                    self.use_tree(prefix, tree);
                }
            }
        }
    }

    fn leaf(&mut self, prefix: &[String], ident: &syn::Ident) {
        let mut full = prefix.to_vec();
        if ident != "self" {
            full.push(ident.to_string());
        }
        self.add(&full);
    }
}

impl<'ast> Visit<'ast> for References<'_> {
    fn visit_item_use(&mut self, item: &'ast syn::ItemUse) {
        if item.leading_colon.is_none() {
            self.use_tree(&mut Vec::new(), &item.tree);
        }
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        if path.leading_colon.is_none() {
            let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
            self.add(&segments);
        }
        syn::visit::visit_path(self, path);
    }

    /// Macro bodies are tokens; most (`assert_eq!`, `format!`, `vec!`)
    /// are expressions separated by commas, so they are read as such.
    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        syn::visit::visit_macro(self, mac);
        let parser = Punctuated::<syn::Expr, syn::Token![,]>::parse_terminated;
        if let Ok(exprs) = mac.parse_body_with(parser) {
            for expr in &exprs {
                self.visit_expr(expr);
            }
        }
    }

    /// `pub(in crate::a)` says who may see an item, not what it uses.
    fn visit_visibility(&mut self, _: &'ast syn::Visibility) {}

    /// A module inside a function body: rare; its items count for the
    /// enclosing module, which is what visiting it does.
    fn visit_item_mod(&mut self, module: &'ast syn::ItemMod) {
        syn::visit::visit_item_mod(self, module);
    }
}

/// `segments` made absolute from module `here`, if it starts with
/// `crate`, `super` or `self` (other paths name extern crates, or children
/// and imports of `here`, whose `use` lines are read on their own).
fn absolute(here: &[String], segments: &[String]) -> Option<Vec<String>> {
    let (mut base, mut next) = match segments.first().map(String::as_str) {
        Some("crate") => (Vec::new(), 1),
        Some("self") => (here.to_vec(), 1),
        Some("super") => (here.to_vec(), 0),
        _ => return None,
    };
    while segments.get(next).is_some_and(|s| s == "super") {
        base.pop()?;
        next += 1;
    }
    base.extend(segments[next..].iter().cloned());
    Some(base)
}
