//! The module tree of one crate and the module-to-module references in it,
//! read from the source files with `syn` (nothing is compiled, so a crate
//! that does not build yet is still read).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use syn::visit::Visit;

use crate::references::{ModPath, RawEdge, References, Scope};

/// One reference from a module to another, with what was written, so a
/// report can say where to look.
#[derive(Debug, Clone)]
pub struct Edge {
    pub from: ModPath,
    pub to: ModPath,
    /// The path as written (`super::stats::SandboxStats`) and its file.
    pub via: String,
}

/// Why a crate could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{file}: cannot read")]
    Missing { file: PathBuf },
    #[error("{file}: does not parse: {error}")]
    Parse { file: PathBuf, error: syn::Error },
}

/// The modules of one crate, test-only modules folded into their parents.
#[derive(Debug, Default)]
pub struct ModuleGraph {
    /// Every non-test module, the root included.
    pub modules: BTreeSet<ModPath>,
    pub edges: Vec<Edge>,
    /// `mod x;` declarations whose file was not found (cfg'd out, generated).
    pub unresolved: Vec<String>,
}

impl ModuleGraph {
    /// Reads the crate whose root file is `root`, through `read` (the file
    /// system in the workspace test, a map in the unit tests).
    pub fn read(root: &Path, read: &dyn Fn(&Path) -> Option<String>) -> Result<Self, ReadError> {
        let mut walker = Walker {
            read,
            owners: BTreeMap::new(),
            raw: Vec::new(),
            unresolved: Vec::new(),
        };
        walker.owners.insert(Vec::new(), Vec::new());
        walker.walk_file(root, &Scope::root(), true)?;
        let edges = walker
            .raw
            .iter()
            .map(|raw| Edge {
                from: raw.from.clone(),
                to: walker.resolve(&raw.target),
                via: raw.via.clone(),
            })
            .filter(|edge| edge.from != edge.to)
            .collect();
        Ok(ModuleGraph {
            modules: walker.owners.values().cloned().collect(),
            edges,
            unresolved: walker.unresolved,
        })
    }
}

struct Walker<'a> {
    read: &'a dyn Fn(&Path) -> Option<String>,
    /// Each module (test modules included) and the module it counts for.
    owners: BTreeMap<ModPath, ModPath>,
    raw: Vec<RawEdge>,
    unresolved: Vec<String>,
}

impl Walker<'_> {
    /// `mod_rs`: the file's children live beside it (crate roots, `mod.rs`,
    /// `#[path]` files) rather than in a folder named after it.
    fn walk_file(&mut self, file: &Path, scope: &Scope, mod_rs: bool) -> Result<(), ReadError> {
        let text = (self.read)(file).ok_or_else(|| ReadError::Missing {
            file: file.to_path_buf(),
        })?;
        let parsed = syn::parse_file(&text).map_err(|error| ReadError::Parse {
            file: file.to_path_buf(),
            error,
        })?;
        let here = file.parent().unwrap_or(Path::new("")).to_path_buf();
        let children = if mod_rs {
            here.clone()
        } else {
            here.join(file.file_stem().unwrap_or_default())
        };
        self.walk_items(&parsed.items, scope, file, &here, &children)
    }

    fn walk_items(
        &mut self,
        items: &[syn::Item],
        scope: &Scope,
        file: &Path,
        here: &Path,
        children: &Path,
    ) -> Result<(), ReadError> {
        for item in items {
            match item {
                syn::Item::Mod(module) => self.walk_mod(module, scope, file, here, children)?,
                other => {
                    let mut refs = References {
                        scope,
                        file,
                        found: Vec::new(),
                    };
                    refs.visit_item(other);
                    self.raw.extend(refs.found);
                }
            }
        }
        Ok(())
    }

    fn walk_mod(
        &mut self,
        module: &syn::ItemMod,
        scope: &Scope,
        file: &Path,
        here: &Path,
        children: &Path,
    ) -> Result<(), ReadError> {
        let name = module.ident.to_string();
        let mut path = scope.path.clone();
        path.push(name.clone());
        let owner = if name == "tests" || is_cfg_test(&module.attrs) {
            scope.owner.clone()
        } else {
            path.clone()
        };
        self.owners.insert(path.clone(), owner.clone());
        let inner = Scope { path, owner };
        if let Some((_, items)) = &module.content {
            let nested = children.join(&name);
            return self.walk_items(items, &inner, file, &nested, &nested);
        }
        let (candidates, mod_rs) = match path_attr(&module.attrs) {
            Some(custom) => (vec![here.join(custom)], true),
            None => (
                vec![
                    children.join(format!("{name}.rs")),
                    children.join(&name).join("mod.rs"),
                ],
                false,
            ),
        };
        for candidate in &candidates {
            if (self.read)(candidate).is_some() {
                let mod_rs = mod_rs || candidate.ends_with("mod.rs");
                return self.walk_file(candidate, &inner, mod_rs);
            }
        }
        self.unresolved
            .push(format!("{}: mod {name}", file.display()));
        Ok(())
    }

    /// The module an absolute path names: its longest prefix that is a
    /// module, counted for that module's owner (`crate::a::B` → `a`).
    fn resolve(&self, target: &[String]) -> ModPath {
        (0..=target.len())
            .rev()
            .find_map(|len| self.owners.get(&target[..len]))
            .cloned()
            .unwrap_or_default()
    }
}

fn is_cfg_test(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|attr| {
        attr.path().is_ident("cfg")
            && attr
                .parse_args::<syn::Ident>()
                .is_ok_and(|ident| ident == "test")
    })
}

fn path_attr(attrs: &[syn::Attribute]) -> Option<String> {
    attrs.iter().find_map(|attr| match &attr.meta {
        syn::Meta::NameValue(nv) if nv.path.is_ident("path") => match &nv.value {
            syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(s),
                ..
            }) => Some(s.value()),
            _ => None,
        },
        _ => None,
    })
}
