//! The lookup query a rule sends through the `lookup` host call, and the
//! one definition of what it selects and what its answer holds, which every
//! backend (the host's store, the SDK's `MemoryCluster`) uses.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A read of cluster objects through the `lookup` host call.
///
/// `name` present means get-one; absent means list, optionally restricted to
/// one namespace and to objects carrying all of `labels`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LookupQuery {
    pub api_version: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// ABI v2: the index in the bundle of the rule asking, so the host
    /// checks that member's allow-list (the SDK sets it; absent in v1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<u32>,
    /// The parts of each object the rule reads, as JSON Pointers (RFC 6901,
    /// e.g. `/spec/podSelector`); empty means whole objects. The answer keeps
    /// only these members (and the object's name and namespace; the query
    /// names the type), so a rule that scans thousands of objects receives and
    /// parses a fraction of them. See [`LookupQuery::project`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
    /// Keeps only objects in which each of these JSON Pointers names nothing
    /// or an empty value (see [`is_empty_value`]): the host filters, so a rule
    /// looking for the few objects of a shape among thousands receives those.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub empty: Vec<String>,
    /// Keeps only objects in which each of these JSON Pointers names a value
    /// that is not empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub non_empty: Vec<String>,
    /// Answers, instead of objects, what these JSON Pointers name in the
    /// selected objects, each distinct answer once, ordered by its JSON text.
    /// One pointer: the values it names (objects where it names nothing add
    /// nothing). Several: one array per object, `null` where a pointer names
    /// nothing. "Which namespaces hold a NetworkPolicy" is then a few
    /// thousand names, not the policies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub distinct: Vec<String>,
    /// Keeps only objects in which each of these JSON Pointers names one of
    /// its values (compared as JSON; `null` also stands for a pointer that
    /// names nothing, as in a `distinct` tuple). A rule classifies the few
    /// `distinct` values of a member itself, then asks for the objects of
    /// the classes it wants.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub one_of: BTreeMap<String, Vec<Value>>,
    /// Leaves out of the answer every element the answer to this query also
    /// holds (compared as JSON; see [`LookupQuery::answer_among`]). With
    /// `distinct` on both sides it is a set difference the host computes
    /// and keeps until the objects of either type change: "annotated
    /// namespaces without a default-deny policy" reaches the guest as the
    /// few names it is, not as thousands on each side.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub except: Option<Box<LookupQuery>>,
}

impl LookupQuery {
    /// List every object of a type.
    pub fn list(api_version: &str, kind: &str) -> Self {
        Self {
            api_version: api_version.to_owned(),
            kind: kind.to_owned(),
            ..Self::default()
        }
    }

    /// Get one object by name (`namespace` is `None` for cluster-scoped kinds).
    pub fn get(api_version: &str, kind: &str, namespace: Option<&str>, name: &str) -> Self {
        Self {
            namespace: namespace.map(str::to_owned),
            name: Some(name.to_owned()),
            ..Self::list(api_version, kind)
        }
    }

    pub fn in_namespace(mut self, namespace: &str) -> Self {
        self.namespace = Some(namespace.to_owned());
        self
    }

    pub fn with_label(mut self, key: &str, value: &str) -> Self {
        self.labels.insert(key.to_owned(), value.to_owned());
        self
    }

    /// Keeps only the members of `fields` (see [`LookupQuery::fields`]).
    pub fn with_fields(self, fields: &[&str]) -> Self {
        Self {
            fields: owned(fields),
            ..self
        }
    }

    /// Keeps only objects where every one of `pointers` is empty (see
    /// [`LookupQuery::empty`]).
    pub fn where_empty(self, pointers: &[&str]) -> Self {
        Self {
            empty: owned(pointers),
            ..self
        }
    }

    /// Keeps only objects where every one of `pointers` is not empty.
    pub fn where_non_empty(self, pointers: &[&str]) -> Self {
        Self {
            non_empty: owned(pointers),
            ..self
        }
    }

    /// Answers the distinct values (one pointer) or tuples (several) that
    /// `pointers` name (see [`LookupQuery::distinct`]).
    pub fn distinct(self, pointers: &[&str]) -> Self {
        Self {
            distinct: owned(pointers),
            ..self
        }
    }

    /// Keeps only objects where `pointer` names one of `values` (see
    /// [`LookupQuery::one_of`]).
    pub fn where_one_of(mut self, pointer: &str, values: impl IntoIterator<Item = Value>) -> Self {
        self.one_of
            .insert(pointer.to_owned(), values.into_iter().collect());
        self
    }

    /// Leaves out what `other` answers (see [`LookupQuery::except`]).
    pub fn except(self, other: LookupQuery) -> Self {
        Self {
            except: Some(Box::new(other)),
            ..self
        }
    }

    /// This query without its `except`: what it leaves out from.
    pub fn without_except(&self) -> Self {
        Self {
            except: None,
            ..self.clone()
        }
    }

    /// Whether answering needs each object's content, not only the index of
    /// namespace, name and labels every backend keeps.
    pub fn reads_content(&self) -> bool {
        !self.empty.is_empty()
            || !self.non_empty.is_empty()
            || !self.distinct.is_empty()
            || !self.one_of.is_empty()
    }

    /// The answer to this query, `except` included, over `objects` of any
    /// types (in the backend's order): the definition of `except` that the
    /// host's backends agree with (tested there).
    pub fn answer_among(&self, objects: &[Value]) -> Value {
        let selected = objects.iter().filter(|o| {
            o["apiVersion"].as_str() == Some(self.api_version.as_str())
                && o["kind"].as_str() == Some(self.kind.as_str())
                && self.selects(o)
        });
        let answer = self.answer(selected);
        let Some(except) = &self.except else {
            return answer;
        };
        match (answer, except.answer_among(objects)) {
            (Value::Array(answer), Value::Array(left_out)) => {
                Value::Array(Self::except_answer(answer, &left_out))
            }
            (answer, _) => answer,
        }
    }

    /// The elements of `answer` that `left_out` does not hold, in their
    /// order: an answer with `except`, given the answers of its two parts.
    pub fn except_answer(answer: Vec<Value>, left_out: &[Value]) -> Vec<Value> {
        let left_out: HashSet<&Value> = left_out.iter().collect();
        answer
            .into_iter()
            .filter(|v| !left_out.contains(v))
            .collect()
    }

    /// The answer to this query over the objects it selects (in the
    /// backend's order): their projections, or the distinct values. Every
    /// backend answers with this function or agrees with it (tested in the
    /// host's store).
    pub fn answer<'o>(&self, selected: impl IntoIterator<Item = &'o Value>) -> Value {
        if self.distinct.is_empty() {
            return Value::Array(selected.into_iter().map(|o| self.project(o)).collect());
        }
        Self::distinct_answer(selected.into_iter().filter_map(|o| self.distinct_value(o)))
    }

    /// What `object` adds to a `distinct` answer: the value its pointer
    /// names (one pointer), or the tuple of them (several).
    pub fn distinct_value(&self, object: &Value) -> Option<Value> {
        match self.distinct.as_slice() {
            [] => None,
            [pointer] => object.pointer(pointer).cloned(),
            pointers => Some(Value::Array(
                pointers
                    .iter()
                    .map(|p| object.pointer(p).cloned().unwrap_or(Value::Null))
                    .collect(),
            )),
        }
    }

    /// A `distinct` answer: each value once, ordered by its JSON text.
    pub fn distinct_answer(values: impl IntoIterator<Item = Value>) -> Value {
        let answers: BTreeMap<String, Value> =
            values.into_iter().map(|v| (v.to_string(), v)).collect();
        Value::Array(answers.into_values().collect())
    }

    /// What of `object` the answer carries: the whole object without
    /// `fields`, otherwise its identity and the members the pointers name.
    /// Pointers step through mappings only (a member inside an array is kept
    /// with its whole array); a pointer that names nothing adds nothing.
    /// Every backend projects with this function, so they agree on meaning.
    pub fn project(&self, object: &Value) -> Value {
        if self.fields.is_empty() {
            return object.clone();
        }
        // The query names the type; each object is named by these.
        const IDENTITY: [&str; 2] = ["/metadata/name", "/metadata/namespace"];
        let mut out = Value::Object(Map::new());
        for pointer in IDENTITY
            .iter()
            .copied()
            .chain(self.fields.iter().map(String::as_str))
        {
            let Some(path) = pointer_keys(pointer) else {
                continue;
            };
            let (mut from, mut to) = (object, &mut out);
            let mut keys = path.iter().peekable();
            while let Some(key) = keys.next() {
                let key = key.decoded();
                let Some(next) = from.as_object().and_then(|m| m.get(key.as_ref())) else {
                    break;
                };
                let Value::Object(map) = to else { break };
                if keys.peek().is_none() || next.is_array() {
                    map.insert(key.to_string(), next.clone());
                    break;
                }
                if !next.is_object() {
                    break;
                }
                from = next;
                to = map
                    .entry(key.to_string())
                    .or_insert_with(|| Value::Object(Map::new()));
            }
        }
        out
    }

    /// Whether an object (of this query's type) is selected by the query's
    /// namespace, name, labels and content filters. Backends use this so
    /// they agree on meaning.
    pub fn selects(&self, object: &Value) -> bool {
        self.selects_by_index(object)
            && self.empty.iter().all(|p| is_empty_value(object.pointer(p)))
            && self
                .non_empty
                .iter()
                .all(|p| !is_empty_value(object.pointer(p)))
            && self
                .one_of
                .iter()
                .all(|(p, values)| values.contains(object.pointer(p).unwrap_or(&Value::Null)))
    }

    /// The part of [`LookupQuery::selects`] that namespace, name and labels
    /// decide.
    fn selects_by_index(&self, object: &Value) -> bool {
        let meta = &object["metadata"];
        let field = |k: &str| meta[k].as_str();
        if let Some(ns) = &self.namespace
            && field("namespace") != Some(ns.as_str())
        {
            return false;
        }
        if let Some(name) = &self.name
            && field("name") != Some(name.as_str())
        {
            return false;
        }
        self.labels
            .iter()
            .all(|(k, v)| meta["labels"][k].as_str() == Some(v.as_str()))
    }
}

fn owned(pointers: &[&str]) -> Vec<String> {
    pointers.iter().map(|p| (*p).to_owned()).collect()
}

/// Empty, for the content filters: nothing, `null`, `""`, `[]`, or a mapping
/// whose members are all empty (`{}`, `{"matchLabels": {}}`). Any other
/// value, `false` and `0` included, is not empty. A selector is empty in
/// this sense exactly when it selects everything.
pub fn is_empty_value(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        Some(Value::Object(m)) => m.values().all(|v| is_empty_value(Some(v))),
        Some(Value::Bool(_) | Value::Number(_)) => false,
    }
}

/// The member names of a JSON Pointer (still escaped: `~1` is `/`, `~0`
/// is `~`); `None` for the empty pointer, one not starting with `/` or one
/// with an invalid escape (`~2`), which name no member.
fn pointer_keys(pointer: &str) -> Option<Vec<jsonptr::Token<'_>>> {
    let pointer = jsonptr::Pointer::parse(pointer).ok()?;
    (!pointer.is_root()).then(|| pointer.tokens().collect())
}

#[cfg(test)]
#[path = "query_tests.rs"]
mod tests;
