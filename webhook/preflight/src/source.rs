//! The policy set a command judges with: a configuration file, or the
//! built-in pack with its default configuration. `serve` reloads it when a
//! file changes; `check` and `audit` load it once.

use std::path::{Path, PathBuf};

use tollgate_guests::{BUILTINS, DEFAULT_POLICIES};
use tollgate_host::{Config, LoadError, PolicySet, Sandbox, module_files};

/// Where the policy configuration comes from.
#[derive(Debug, Clone)]
pub enum PolicySource {
    /// `--policies FILE`, watched for changes.
    File(PathBuf),
    /// The built-in pack with its default configuration.
    Builtin,
}

/// A loaded set and the files it was loaded from.
pub struct Loaded {
    pub set: PolicySet,
    /// The configuration file and every module file it names.
    pub files: Vec<PathBuf>,
}

impl PolicySource {
    /// Parses the configuration and compiles its modules (blocking: may
    /// compile Wasm).
    pub fn load(&self, sandbox: &Sandbox) -> Result<Loaded, LoadError> {
        match self {
            Self::File(path) => {
                let config = Config::from_file(path)?;
                let base = path.parent().unwrap_or(Path::new("."));
                let set = PolicySet::load(&config, sandbox, BUILTINS, base)?;
                let modules = set.module_paths().iter().cloned();
                let files = std::iter::once(path.clone()).chain(modules).collect();
                Ok(Loaded { set, files })
            }
            Self::Builtin => {
                let config = Config::from_yaml(DEFAULT_POLICIES, "built-in default configuration")?;
                let set = PolicySet::load(&config, sandbox, BUILTINS, Path::new("."))?;
                Ok(Loaded {
                    set,
                    files: Vec::new(),
                })
            }
        }
    }

    /// The files a failed load depends on: the configuration and, when it
    /// parses, every module file it names (existing or not).
    pub fn named_files(&self) -> Vec<PathBuf> {
        let Self::File(path) = self else {
            return Vec::new();
        };
        let base = path.parent().unwrap_or(Path::new("."));
        let modules = Config::from_file(path)
            .map(|config| module_files(&config, base))
            .unwrap_or_default();
        std::iter::once(path.clone()).chain(modules).collect()
    }
}
