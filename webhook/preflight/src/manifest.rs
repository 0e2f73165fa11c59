//! Reading manifests the way `kubectl apply -f` takes them: files,
//! directories (their `.yaml`, `.yml` and `.json` files, recursively, in name
//! order), `-` for stdin; multi-document YAML, JSON, and `kind: List`
//! flattened. Every object keeps where it came from, and every error says
//! file and line.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// Where an object was read from: the file (`-` for stdin), the line its
/// document starts on (1-based) and, inside a `List`, the item index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub file: String,
    pub line: usize,
    pub item: Option<usize>,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)?;
        if let Some(item) = self.item {
            write!(f, " (items[{item}])")?;
        }
        Ok(())
    }
}

/// One object of a manifest.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub object: Value,
    pub origin: Origin,
}

impl Manifest {
    /// `Kind namespace/name` (or `Kind name`), how rows name the object.
    pub fn display_name(&self) -> String {
        crate::served::display_name(&self.object)
    }
}

/// Why a manifest cannot be used. Every variant names the file and line.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{file}: cannot read: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}:{line}:{column}: not valid YAML or JSON: {message}")]
    Syntax {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{at}: {problem}")]
    Object { at: Origin, problem: String },
    #[error("{0}: no objects found")]
    Empty(String),
}

/// A manifest source as given on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Stdin,
    Path(PathBuf),
}

impl From<&Path> for Source {
    fn from(path: &Path) -> Self {
        if path == Path::new("-") {
            Self::Stdin
        } else {
            Self::Path(path.to_owned())
        }
    }
}

/// Reads every object of `sources`, in order. Fails on the first unusable
/// file: a partial answer about an upgrade would mislead.
pub fn read(sources: &[Source]) -> Result<Vec<Manifest>, ManifestError> {
    let mut out = Vec::new();
    for source in sources {
        match source {
            Source::Stdin => {
                let mut text = String::new();
                std::io::stdin()
                    .read_to_string(&mut text)
                    .map_err(|source| ManifestError::Io {
                        file: "-".into(),
                        source,
                    })?;
                out.extend(parse("-", &text)?);
            }
            Source::Path(path) => {
                let mut files = Vec::new();
                collect(path, true, &mut files)?;
                for file in files {
                    let name = file.display().to_string();
                    let text =
                        std::fs::read_to_string(&file).map_err(|source| ManifestError::Io {
                            file: name.clone(),
                            source,
                        })?;
                    out.extend(parse(&name, &text)?);
                }
            }
        }
    }
    Ok(out)
}

/// `path` itself when it is a file (named explicitly: any extension), else
/// the manifest files under it.
fn collect(path: &Path, explicit: bool, out: &mut Vec<PathBuf>) -> Result<(), ManifestError> {
    let io = |source| ManifestError::Io {
        file: path.display().to_string(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if !meta.is_dir() {
        let manifest = matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml" | "json")
        );
        if explicit || manifest {
            out.push(path.to_owned());
        }
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(io)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(io)?;
    entries.sort();
    for entry in entries {
        collect(&entry, false, out)?;
    }
    Ok(())
}

/// The objects of one file's text (`file` names it in errors).
pub fn parse(file: &str, text: &str) -> Result<Vec<Manifest>, ManifestError> {
    let mut out = Vec::new();
    for (first_line, doc) in documents(text) {
        let value: Value = match serde_yaml_ng::from_str(doc) {
            Ok(value) => value,
            Err(error) => {
                let (line, column) = error.location().map_or((1, 1), |l| (l.line(), l.column()));
                return Err(ManifestError::Syntax {
                    file: file.to_owned(),
                    line: first_line + line - 1,
                    column,
                    message: strip_location(&error.to_string()),
                });
            }
        };
        if value.is_null() {
            continue;
        }
        // The line of the document's first content, not of its separator.
        let skipped = doc
            .lines()
            .take_while(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
            .count();
        let at = Origin {
            file: file.to_owned(),
            line: first_line + skipped,
            item: None,
        };
        if value["kind"] == "List" || value["kind"].as_str().is_some_and(|k| k.ends_with("List")) {
            let Some(items) = value["items"].as_array() else {
                return Err(object_error(at, "a List without items"));
            };
            for (i, item) in items.iter().enumerate() {
                let at = Origin {
                    item: Some(i),
                    ..at.clone()
                };
                out.push(checked(item.clone(), at)?);
            }
        } else {
            out.push(checked(value, at)?);
        }
    }
    if out.is_empty() {
        return Err(ManifestError::Empty(file.to_owned()));
    }
    Ok(out)
}

/// An object has an apiVersion, a kind and a name (or a generateName).
fn checked(object: Value, at: Origin) -> Result<Manifest, ManifestError> {
    if !object.is_object() {
        return Err(object_error(at, "a document that is not an object"));
    }
    for field in ["apiVersion", "kind"] {
        if object[field].as_str().is_none_or(str::is_empty) {
            return Err(object_error(at, &format!("object has no {field}")));
        }
    }
    let meta = &object["metadata"];
    let named = ["name", "generateName"]
        .iter()
        .any(|f| meta[f].as_str().is_some_and(|s| !s.is_empty()));
    if !named {
        let kind = object["kind"].as_str().unwrap_or_default();
        return Err(object_error(at, &format!("{kind} has no metadata.name")));
    }
    Ok(Manifest { object, origin: at })
}

fn object_error(at: Origin, problem: &str) -> ManifestError {
    ManifestError::Object {
        at,
        problem: problem.to_owned(),
    }
}

/// serde_yaml_ng appends " at line L column C"; the error prints its own.
fn strip_location(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// The YAML documents of `text` with the line each starts on: split at
/// lines that are `---` (optionally followed by a comment or content) or
/// `...`, the YAML document markers (which cannot occur inside a document at
/// column 0).
fn documents(text: &str) -> Vec<(usize, &str)> {
    let mut docs = Vec::new();
    let mut start = 0;
    let mut start_line = 1;
    let mut offset = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let bare = line.trim_end();
        let marker =
            bare == "---" || bare.starts_with("--- ") || bare.starts_with("---\t") || bare == "...";
        if marker {
            docs.push((start_line, &text[start..offset]));
            // Content after `--- ` on the same line belongs to the next
            // document: keep the line, blank out the marker.
            start = offset + 3.min(line.len());
            start_line = i + 1;
            if bare == "..." || bare == "---" {
                start = offset + line.len();
                start_line = i + 2;
            }
        }
        offset += line.len();
    }
    docs.push((start_line, &text[start..]));
    docs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(objects: &[Manifest]) -> Vec<String> {
        objects.iter().map(Manifest::display_name).collect()
    }

    #[test]
    fn multi_document_yaml_keeps_the_line_of_each_object() {
        let text = "# header\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: x}\n---\n\n# c\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: b\n---\n";
        let objects = parse("m.yaml", text).unwrap();
        assert_eq!(names(&objects), ["ConfigMap x/a", "Namespace b"]);
        assert_eq!(objects[0].origin.to_string(), "m.yaml:3");
        assert_eq!(objects[1].origin.line, 9);
    }

    #[test]
    fn bad_yaml_names_file_and_line() {
        let text =
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: v1\nkind: [\n";
        let error = parse("bad.yaml", text).unwrap_err().to_string();
        assert!(
            error.starts_with("bad.yaml:6:") || error.starts_with("bad.yaml:7:"),
            "{error}"
        );
        assert!(error.contains("not valid YAML"), "{error}");
        let tabs = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n\tname: a\n";
        let error = parse("tabs.yaml", tabs).unwrap_err().to_string();
        assert!(error.starts_with("tabs.yaml:4:"), "{error}");
    }

    #[test]
    fn a_list_is_flattened_with_item_positions() {
        let text = r#"{"apiVersion":"v1","kind":"List","items":[
            {"apiVersion":"v1","kind":"Namespace","metadata":{"name":"a"}},
            {"apiVersion":"v1","kind":"Namespace","metadata":{"name":"b"}}]}"#;
        let objects = parse("l.json", text).unwrap();
        assert_eq!(names(&objects), ["Namespace a", "Namespace b"]);
        assert_eq!(objects[1].origin.to_string(), "l.json:1 (items[1])");
        let error = parse("l.yaml", "apiVersion: v1\nkind: List\n").unwrap_err();
        assert_eq!(error.to_string(), "l.yaml:1: a List without items");
    }

    #[test]
    fn objects_without_kind_or_name_are_refused_with_their_line() {
        let error = parse("n.yaml", "---\napiVersion: v1\nkind: ConfigMap\ndata: {}\n")
            .unwrap_err()
            .to_string();
        assert_eq!(error, "n.yaml:2: ConfigMap has no metadata.name");
        let error = parse("k.yaml", "apiVersion: v1\nmetadata: {name: a}\n").unwrap_err();
        assert_eq!(error.to_string(), "k.yaml:1: object has no kind");
        let error = parse("s.yaml", "just text\n").unwrap_err();
        assert_eq!(
            error.to_string(),
            "s.yaml:1: a document that is not an object"
        );
        let generated = "apiVersion: v1\nkind: Pod\nmetadata: {generateName: p-}\n";
        assert_eq!(parse("g.yaml", generated).unwrap().len(), 1);
    }

    #[test]
    fn an_empty_file_is_an_error() {
        let error = parse("e.yaml", "# nothing\n---\n").unwrap_err();
        assert_eq!(error.to_string(), "e.yaml: no objects found");
    }

    #[test]
    fn directories_are_read_recursively_in_name_order() {
        let dir = tempfile::tempdir().unwrap();
        let ns = |n: &str| format!("apiVersion: v1\nkind: Namespace\nmetadata: {{name: {n}}}\n");
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("b.yaml"), ns("b")).unwrap();
        std::fs::write(
            dir.path().join("a.json"),
            r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"a"}}"#,
        )
        .unwrap();
        std::fs::write(dir.path().join("sub/c.yml"), ns("c")).unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not a manifest").unwrap();
        let objects = read(&[Source::from(dir.path())]).unwrap();
        assert_eq!(
            names(&objects),
            ["Namespace a", "Namespace b", "Namespace c"]
        );
        let missing = read(&[Source::from(dir.path().join("nope.yaml").as_path())]);
        assert!(matches!(missing, Err(ManifestError::Io { .. })));
        assert_eq!(Source::from(Path::new("-")), Source::Stdin);
    }
}
