//! `tollgate new NAME`: a policy crate that uses the SDK, ready to build
//! for the wasm target, with a rule, its native tests, `tollgate test` cases,
//! the configuration that serves it and a README.
//!
//! The SDK dependency: `--sdk PATH` when given; else, when this binary runs
//! from the checkout it was built in, a path dependency on that checkout's
//! SDK (offline, and always the SDK this binary's host speaks); else the
//! published crate by version.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// `tollgate new`'s arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct NewArgs {
    /// The policy's name: the crate, its rule and its policy id
    /// (lowercase letters, digits and `-`, starting with a letter).
    pub name: String,

    /// Where to write the crate (default: ./NAME). Must not exist or be empty.
    #[arg(long)]
    pub dir: Option<PathBuf>,

    /// The `tollgate-sdk` checkout to depend on by path (default: this
    /// binary's own checkout when it is there, else the published crate).
    #[arg(long)]
    pub sdk: Option<PathBuf>,
}

/// The SDK directory of the checkout this binary was built from.
const CHECKOUT_SDK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../policies-wasm/sdk");

const FILES: [(&str, &str); 5] = [
    ("Cargo.toml", include_str!("Cargo.toml.tmpl")),
    ("src/lib.rs", include_str!("lib.rs.tmpl")),
    (
        "tests/cases.test.yaml",
        include_str!("cases.test.yaml.tmpl"),
    ),
    ("policies.yaml", include_str!("policies.yaml.tmpl")),
    ("README.md", include_str!("README.md.tmpl")),
];

/// Writes the crate; returns what to tell the user.
pub fn write(args: &NewArgs) -> anyhow::Result<String> {
    check_name(&args.name)?;
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(&args.name));
    if let Ok(mut entries) = std::fs::read_dir(&dir)
        && entries.next().is_some()
    {
        bail!(
            "{} exists and is not empty: choose another --dir",
            dir.display()
        );
    }
    let sdk = sdk_dependency(args.sdk.as_deref())?;
    let ident = args.name.replace('-', "_");
    for (file, template) in FILES {
        let text = template
            .replace("{{name}}", &args.name)
            .replace("{{ident}}", &ident)
            .replace("{{sdk}}", &sdk);
        let path = dir.join(file);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    std::fs::write(dir.join(".gitignore"), "/target\n")
        .with_context(|| format!("cannot write {}", dir.join(".gitignore").display()))?;
    let mut out = format!("created policy crate {} in {}\n", args.name, dir.display());
    let _ = writeln!(out, "next, in {}:", dir.display());
    for step in [
        "cargo test",
        "cargo build --release --target wasm32-unknown-unknown",
        "tollgate test tests",
        "tollgate serve --policies policies.yaml",
    ] {
        let _ = writeln!(out, "  {step}");
    }
    Ok(out)
}

/// A name that is a crate name, a rule name and a policy id at once.
fn check_name(name: &str) -> anyhow::Result<()> {
    let mut chars = name.chars();
    let starts = chars.next().is_some_and(|c| c.is_ascii_lowercase());
    let rest = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !starts || !rest || name.ends_with('-') {
        bail!(
            "{name:?} is not a policy name: use lowercase letters, digits and '-', starting with a letter"
        );
    }
    Ok(())
}

/// The `tollgate-sdk = …` line of the new crate.
fn sdk_dependency(sdk: Option<&Path>) -> anyhow::Result<String> {
    let path = match sdk {
        Some(path) => {
            if !path.join("Cargo.toml").is_file() {
                bail!("--sdk {}: no Cargo.toml there", path.display());
            }
            path.to_owned()
        }
        None if Path::new(CHECKOUT_SDK).join("Cargo.toml").is_file() => PathBuf::from(CHECKOUT_SDK),
        None => {
            return Ok(format!("tollgate-sdk = \"{}\"", env!("CARGO_PKG_VERSION")));
        }
    };
    let path = path
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", path.display()))?;
    // TOML basic strings: escape what would end or break one.
    let quoted = path
        .display()
        .to_string()
        .replace('\\', "\\\\")
        .replace('"', "\\\"");
    Ok(format!("tollgate-sdk = {{ path = \"{quoted}\" }}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(name: &str, dir: &Path) -> NewArgs {
        NewArgs {
            name: name.to_owned(),
            dir: Some(dir.to_owned()),
            sdk: None,
        }
    }

    #[test]
    fn writes_a_crate_named_for_the_policy() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("team-label");
        let said = write(&args("team-label", &dir)).unwrap();
        assert!(said.contains("cargo build --release --target wasm32-unknown-unknown"));
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        assert!(manifest.contains("name = \"team-label\""), "{manifest}");
        assert!(manifest.contains("[workspace]"), "{manifest}");
        let sdk = Path::new(CHECKOUT_SDK).canonicalize().unwrap();
        assert!(
            manifest.contains(&format!(
                "tollgate-sdk = {{ path = \"{}\" }}",
                sdk.display()
            )),
            "{manifest}"
        );
        let lib = std::fs::read_to_string(dir.join("src/lib.rs")).unwrap();
        assert!(lib.contains("\"team-label\" => team_label,"), "{lib}");
        assert!(
            !lib.contains("{{name}}") && !lib.contains("{{ident}}"),
            "{lib}"
        );
        let policies = std::fs::read_to_string(dir.join("policies.yaml")).unwrap();
        assert!(policies.contains("release/team_label.wasm"), "{policies}");
        assert!(dir.join("tests/cases.test.yaml").is_file());
        assert!(dir.join("README.md").is_file());
    }

    #[test]
    fn refuses_a_non_empty_directory_and_bad_names() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("keep.txt"), "mine").unwrap();
        let error = write(&args("p", tmp.path())).unwrap_err().to_string();
        assert!(error.contains("is not empty"), "{error}");
        assert_eq!(
            std::fs::read_to_string(tmp.path().join("keep.txt")).unwrap(),
            "mine"
        );
        for bad in ["", "Team", "1st", "a_b", "a-", "a b"] {
            let error = write(&args(bad, &tmp.path().join("x"))).unwrap_err();
            assert!(
                error.to_string().contains("is not a policy name"),
                "{bad}: {error}"
            );
        }
        assert!(!tmp.path().join("x").exists());
        let empty = tmp.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        write(&args("p", &empty)).unwrap();
        let missing = NewArgs {
            sdk: Some(tmp.path().join("nowhere")),
            ..args("p", &tmp.path().join("y"))
        };
        assert!(
            write(&missing)
                .unwrap_err()
                .to_string()
                .contains("no Cargo.toml")
        );
    }
}
