//! Offline cluster context: objects saved in a directory.
//!
//! Every `*.yaml`, `*.yml` and `*.json` file under the directory is read
//! (recursively, in name order): multi-document YAML, JSON (one value or
//! several concatenated), and `kind: List` / `*List` documents as printed by
//! `kubectl get -o yaml|json`, whose items are flattened. Hidden entries
//! (names starting with `.`, such as the `..data` links of a mounted
//! ConfigMap) are skipped, and symlinked directories are not followed (no
//! loops); symlinked files are read.
//!
//! An object is served under the apiVersion it was saved with: a query for
//! `apps/v1 ReplicaSet` does not see a ReplicaSet saved as
//! `extensions/v1beta1` (the API server converts between versions; a
//! snapshot cannot). Objects are matched by `metadata.namespace` exactly as
//! saved: a manifest that omits the namespace is not in `default`.
//!
//! Loading either takes every object or fails with every problem found, each
//! naming its file and document number: a half-loaded snapshot would give
//! silently wrong verdicts.

use std::collections::HashMap;
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use crate::lean::{LeanDocument, parse_own};
use crate::store::{ByType, ObjectError, ObjectKey, StoredObject, TypeStore};
use crate::{Answer, ClusterContext, LookupError, LookupQuery, ResourceType};

/// Cluster objects loaded from a snapshot directory.
#[derive(Debug, Default)]
pub struct SnapshotContext {
    types: ByType<TypeStore>,
    objects: usize,
    files: usize,
}

/// Why a snapshot directory could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The directory (or a directory below it) cannot be listed.
    #[error("cannot read snapshot directory {}: {source}", path.display())]
    Dir { path: PathBuf, source: io::Error },
    /// Some documents are bad; nothing was loaded.
    #[error("snapshot {} has {} bad document(s):{}", dir.display(), problems.len(), ProblemList(problems))]
    Invalid {
        dir: PathBuf,
        problems: Vec<Problem>,
    },
}

/// Where a document sits in the snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: PathBuf,
    /// 1-based document number within the file; `None` for the whole file.
    pub document: Option<usize>,
    /// 0-based index in the `items` of a List document.
    pub item: Option<usize>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(d) = self.document {
            write!(f, ": document {d}")?;
        }
        if let Some(i) = self.item {
            write!(f, ", items[{i}]")?;
        }
        Ok(())
    }
}

/// One bad file or document.
#[derive(Debug, thiserror::Error)]
#[error("{at}: {error}")]
pub struct Problem {
    pub at: Location,
    pub error: ProblemKind,
}

/// What is wrong with a file or document.
#[derive(Debug, thiserror::Error)]
pub enum ProblemKind {
    #[error("cannot read: {0}")]
    Read(#[source] io::Error),
    #[error("invalid YAML: {0}")]
    Yaml(#[source] serde_yaml_ng::Error),
    #[error("invalid JSON: {0}")]
    Json(#[source] serde_json::Error),
    #[error("{0}")]
    Object(#[from] ObjectError),
    #[error("items is not a sequence")]
    ListItems,
    #[error("{api_version} {kind} {key} is also defined at {first}")]
    Duplicate {
        api_version: String,
        kind: String,
        key: String,
        first: Location,
    },
}

struct ProblemList<'a>(&'a [Problem]);

impl fmt::Display for ProblemList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|p| write!(f, "\n  {p}"))
    }
}

impl SnapshotContext {
    /// Loads every object under `dir`.
    pub fn load(dir: &Path) -> Result<Self, SnapshotError> {
        let mut files = Vec::new();
        collect_files(dir, &mut files)?;
        let mut loader = Loader::default();
        for file in &files {
            loader.file(file);
        }
        loader.finish(dir, files.len())
    }

    /// Loads the objects of one file's text as [`Self::load`] reads each
    /// file, `file` naming it (JSON when it ends in `.json`, otherwise YAML):
    /// the loader without the directory walk, for the fuzz target and for
    /// callers that hold the text already.
    pub fn from_text(file: &Path, text: &str) -> Result<Self, SnapshotError> {
        let mut loader = Loader::default();
        loader.text(file, text);
        loader.finish(file, 1)
    }

    /// Number of objects loaded.
    pub fn object_count(&self) -> usize {
        self.objects
    }

    /// Number of files read.
    pub fn file_count(&self) -> usize {
        self.files
    }
}

impl ClusterContext for SnapshotContext {
    fn lookup(&self, query: &LookupQuery) -> Result<Answer, LookupError> {
        let left_out = query
            .except
            .as_deref()
            .map(|q| self.lookup(q))
            .transpose()?;
        let Some(store) = self.types.get(&query.api_version, &query.kind) else {
            return Ok(Answer::from(&b"[]"[..]));
        };
        match &left_out {
            Some(left_out) => store.select_after(query, left_out),
            None => Ok(store.select(query)),
        }
    }
}

fn is_snapshot_file(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| {
        ["yaml", "yml", "json"]
            .iter()
            .any(|x| e.eq_ignore_ascii_case(x))
    })
}

/// Appends the snapshot files under `dir`, sorted by path.
fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), SnapshotError> {
    let dir_error = |source| SnapshotError::Dir {
        path: dir.to_owned(),
        source,
    };
    let mut entries = fs::read_dir(dir)
        .and_then(|rd| rd.collect::<Result<Vec<_>, _>>())
        .map_err(dir_error)?;
    entries.sort_by_key(fs::DirEntry::file_name);
    for entry in entries {
        if entry.file_name().as_encoded_bytes().starts_with(b".") {
            continue;
        }
        let path = entry.path();
        let file_type = entry.file_type().map_err(dir_error)?;
        if file_type.is_dir() {
            collect_files(&path, out)?;
        } else if is_snapshot_file(&path) && !fs::metadata(&path).is_ok_and(|m| m.is_dir()) {
            // Dangling links are kept: reading them reports the problem.
            out.push(path);
        }
    }
    Ok(())
}

#[derive(Default)]
struct Loader {
    types: ByType<TypeStore>,
    /// Where each object was defined, to name both places of a duplicate.
    seen: HashMap<(ResourceType, ObjectKey), Location>,
    problems: Vec<Problem>,
}

impl Loader {
    fn file(&mut self, path: &Path) {
        let at = |document| Location {
            file: path.to_owned(),
            document,
            item: None,
        };
        match fs::read_to_string(path) {
            Ok(text) => self.text(path, &text),
            Err(e) => self.problem(at(None), ProblemKind::Read(e)),
        }
    }

    /// The documents of one file's text (JSON by a `.json` extension,
    /// otherwise YAML).
    fn text(&mut self, path: &Path, text: &str) {
        let at = |document| Location {
            file: path.to_owned(),
            document,
            item: None,
        };
        let is_json = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"));
        if is_json {
            let documents = serde_json::Deserializer::from_str(text).into_iter::<LeanDocument>();
            for (i, doc) in documents.enumerate() {
                match doc {
                    Ok(doc) => self.document(at(Some(i + 1)), doc),
                    // The stream cannot resume after a syntax error.
                    Err(e) => return self.problem(at(Some(i + 1)), ProblemKind::Json(e)),
                }
            }
        } else {
            for (i, doc) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
                match LeanDocument::deserialize(doc) {
                    Ok(doc) => self.document(at(Some(i + 1)), doc),
                    // The parser repeats a syntax error for every later
                    // document: the rest of the file is unreadable.
                    Err(e) => return self.problem(at(Some(i + 1)), ProblemKind::Yaml(e)),
                }
            }
        }
    }

    fn document(&mut self, at: Location, lean: LeanDocument) {
        if lean.doc.is_null() {
            return; // an empty document: `---` with nothing (or only comments) after it
        }
        let ty = match type_of(&lean.doc) {
            Ok(ty) => ty,
            Err(e) => return self.problem(at, e.into()),
        };
        match (list_item_kind(&ty), lean.items) {
            (Some(item_kind), Some(items)) => self.list(at, ty.api_version, item_kind, items),
            (Some(_), None) if lean.doc.get("items").is_some() => {
                self.problem(at, ProblemKind::ListItems)
            }
            (_, items) => {
                let doc = LeanDocument {
                    doc: lean.doc,
                    items,
                }
                .into_value();
                self.object(at, ty, doc)
            }
        }
    }

    /// Flattens a List; items that lack apiVersion or kind (typed lists from
    /// the API server) take them from the list.
    fn list(
        &mut self,
        at: Location,
        api_version: String,
        item_kind: Option<String>,
        items: Vec<Box<str>>,
    ) {
        for (i, text) in items.into_iter().enumerate() {
            let at = Location {
                item: Some(i),
                ..at.clone()
            };
            let mut item = parse_own(&text);
            drop(text);
            if let (Some(map), Some(kind)) = (item.as_object_mut(), &item_kind) {
                map.entry("apiVersion")
                    .or_insert_with(|| api_version.clone().into());
                map.entry("kind").or_insert_with(|| kind.clone().into());
            }
            match type_of(&item) {
                Ok(ty) => self.object(at, ty, item),
                Err(e) => self.problem(at, e.into()),
            }
        }
    }

    fn object(&mut self, at: Location, ty: ResourceType, doc: Value) {
        let (key, object) = match StoredObject::new(&ty, doc) {
            Ok(stored) => stored,
            Err(e) => return self.problem(at, e.into()),
        };
        let seen_key = (ty, key);
        if let Some(first) = self.seen.get(&seen_key) {
            let ((ty, key), first) = (seen_key, first.clone());
            let key = match key.namespace {
                Some(ns) => format!("{ns}/{}", key.name),
                None => key.name,
            };
            return self.problem(
                at,
                ProblemKind::Duplicate {
                    api_version: ty.api_version,
                    kind: ty.kind,
                    key,
                    first,
                },
            );
        }
        self.types
            .entry(&seen_key.0)
            .insert(seen_key.1.clone(), object);
        self.seen.insert(seen_key, at);
    }

    /// Everything loaded, or every problem found (`dir` names the snapshot).
    fn finish(self, dir: &Path, files: usize) -> Result<SnapshotContext, SnapshotError> {
        if !self.problems.is_empty() {
            return Err(SnapshotError::Invalid {
                dir: dir.to_owned(),
                problems: self.problems,
            });
        }
        Ok(SnapshotContext {
            objects: self.seen.len(),
            files,
            types: self.types,
        })
    }

    fn problem(&mut self, at: Location, error: ProblemKind) {
        self.problems.push(Problem { at, error });
    }
}

fn type_of(doc: &Value) -> Result<ResourceType, ObjectError> {
    let field = |key: &str, name: &'static str| match doc.get(key) {
        None | Some(Value::Null) => Err(ObjectError::Missing(name)),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(ObjectError::NotAString(name)),
    };
    if !doc.is_object() {
        return Err(ObjectError::NotAnObject);
    }
    Ok(ResourceType {
        api_version: field("apiVersion", "apiVersion")?,
        kind: field("kind", "kind")?,
    })
}

/// `Some` when `doc` is a list: `Some(Some(kind))` for a typed `FooList`
/// (whose items are `Foo`), `Some(None)` for a plain `List`.
fn list_item_kind(ty: &ResourceType) -> Option<Option<String>> {
    let item_kind = ty.kind.strip_suffix("List")?;
    Some((!item_kind.is_empty()).then(|| item_kind.to_owned()))
}
