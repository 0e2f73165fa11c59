//! The in-memory object store both backends answer from.
//!
//! Objects are kept pre-serialised, so answering a lookup copies bytes and
//! never serialises: a list is the matching objects joined into a JSON array.
//! A small parsed index (namespace, name, labels) filters without reparsing;
//! only content filters and `distinct` parse the objects the index selected.
//! The meaning is exactly [`LookupQuery::selects`] and
//! [`LookupQuery::answer`] (tested below), so every backend agrees with the
//! SDK. Whole answers are kept until the type's objects change
//! ([`AnswerCache`]).

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, OnceLock, PoisonError};

use serde_json::{Map, Value};

use crate::answers::AnswerCache;
use crate::except::subtract;
use crate::{Answer, LookupError, LookupQuery, ResourceType};
use tollgate_sdk::api::LAST_APPLIED;

/// Why an object cannot be stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ObjectError {
    #[error("not a mapping")]
    NotAnObject,
    #[error("missing {0}")]
    Missing(&'static str),
    #[error("{0} is not a string")]
    NotAString(&'static str),
    #[error("{0} is not a mapping")]
    NotAMapping(&'static str),
}

/// Where an object lives: `namespace` is `None` for cluster-scoped objects.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct ObjectKey {
    pub namespace: Option<String>,
    pub name: String,
}

/// How many distinct `fields` projections of a type are cached per object;
/// further ones are computed on every lookup (correct, only slower). Rules
/// use one or two each, so a pack rarely needs more.
const PROJECTION_SLOTS: usize = 4;

/// One object, serialised once when it is stored.
#[derive(Debug)]
pub(crate) struct StoredObject {
    /// String-valued labels sorted by key. Other label values never match a
    /// query (as in `selects`), so they need no index entry.
    labels: Box<[(Box<str>, Box<str>)]>,
    json: Box<str>,
    /// The object projected to the type's interned field sets, made on the
    /// first lookup that asks: a rule scanning 10,000 objects then costs a
    /// copy of what it reads, not a parse of every object per review. A
    /// watch event replaces the whole `StoredObject`, and with it these.
    projections: [OnceLock<Box<str>>; PROJECTION_SLOTS],
}

impl StoredObject {
    /// Prepares `object` for storage as an object of type `ty`: sets its
    /// apiVersion and kind (list items from the API server carry neither),
    /// drops the fields no rule reads, and indexes it.
    pub fn new(ty: &ResourceType, mut object: Value) -> Result<(ObjectKey, Self), ObjectError> {
        let map = object.as_object_mut().ok_or(ObjectError::NotAnObject)?;
        map.insert("apiVersion".into(), Value::String(ty.api_version.clone()));
        map.insert("kind".into(), Value::String(ty.kind.clone()));
        let meta = match map.get_mut("metadata") {
            Some(Value::Object(meta)) => meta,
            Some(_) => return Err(ObjectError::NotAMapping("metadata")),
            None => return Err(ObjectError::Missing("metadata")),
        };
        strip(meta);
        let key = ObjectKey {
            namespace: optional_string(meta, "namespace", "metadata.namespace")?,
            name: optional_string(meta, "name", "metadata.name")?
                .ok_or(ObjectError::Missing("metadata.name"))?,
        };
        let mut labels: Vec<(Box<str>, Box<str>)> = match meta.get("labels") {
            Some(Value::Object(labels)) => labels
                .iter()
                .filter_map(|(k, v)| Some((k.as_str().into(), v.as_str()?.into())))
                .collect(),
            _ => Vec::new(),
        };
        labels.sort_unstable();
        let json = serde_json::to_string(&object)
            .expect("a serde_json::Value always serialises")
            .into_boxed_str();
        Ok((
            key,
            Self {
                labels: labels.into_boxed_slice(),
                json,
                projections: Default::default(),
            },
        ))
    }

    /// The JSON text `query` receives: the stored text, or its projection to
    /// `query.fields` (cached in `slot`, the field set's interned index).
    fn answer(&self, query: &LookupQuery, slot: Option<usize>) -> Cow<'_, str> {
        if query.fields.is_empty() {
            return Cow::Borrowed(&self.json);
        }
        let project = || {
            serde_json::to_string(&query.project(&self.value()))
                .expect("a serde_json::Value always serialises")
        };
        match slot.and_then(|i| self.projections.get(i)) {
            Some(cell) => Cow::Borrowed(cell.get_or_init(|| project().into_boxed_str())),
            None => Cow::Owned(project()),
        }
    }

    /// The stored object, parsed (for content filters and `distinct`).
    fn value(&self) -> Value {
        serde_json::from_str(&self.json).expect("the store holds the JSON it wrote")
    }

    fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .binary_search_by(|(k, _)| k.as_ref().cmp(key))
            .ok()
            .map(|i| self.labels[i].1.as_ref())
    }

    fn has_labels(&self, wanted: &BTreeMap<String, String>) -> bool {
        wanted
            .iter()
            .all(|(k, v)| self.label(k) == Some(v.as_str()))
    }

    /// The stored JSON text.
    #[cfg(test)]
    pub fn json(&self) -> &str {
        &self.json
    }
}

/// Removes what no rule reads but costs memory on every object.
pub(crate) fn strip(meta: &mut Map<String, Value>) {
    meta.remove("managedFields");
    if let Some(Value::Object(annotations)) = meta.get_mut("annotations") {
        annotations.remove(LAST_APPLIED);
        if annotations.is_empty() {
            meta.remove("annotations");
        }
    }
}

fn optional_string(
    meta: &Map<String, Value>,
    key: &str,
    field: &'static str,
) -> Result<Option<String>, ObjectError> {
    match meta.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ObjectError::NotAString(field)),
    }
}

/// All objects of one resource type, ordered by namespace (cluster-scoped
/// first) and name, so answers are deterministic.
#[derive(Debug, Default)]
pub(crate) struct TypeStore {
    cluster: BTreeMap<Box<str>, StoredObject>,
    namespaced: BTreeMap<Box<str>, BTreeMap<Box<str>, StoredObject>>,
    len: usize,
    /// The `fields` sets queries have asked for, in order of first use; an
    /// entry's index is its projection slot in every object.
    field_sets: Mutex<Vec<Vec<String>>>,
    answers: AnswerCache,
}

impl TypeStore {
    pub fn len(&self) -> usize {
        self.len
    }

    /// Stores `object`, returning the one it replaces.
    pub fn insert(&mut self, key: ObjectKey, object: StoredObject) -> Option<StoredObject> {
        self.answers.clear();
        let names = match key.namespace {
            None => &mut self.cluster,
            Some(ns) => self.namespaced.entry(ns.into()).or_default(),
        };
        let old = names.insert(key.name.into(), object);
        if old.is_none() {
            self.len += 1;
        }
        old
    }

    pub fn remove(&mut self, key: &ObjectKey) -> Option<StoredObject> {
        self.answers.clear();
        let old = match &key.namespace {
            None => self.cluster.remove(key.name.as_str()),
            Some(ns) => {
                let names = self.namespaced.get_mut(ns.as_str())?;
                let old = names.remove(key.name.as_str());
                if names.is_empty() {
                    self.namespaced.remove(ns.as_str());
                }
                old
            }
        };
        if old.is_some() {
            self.len -= 1;
        }
        old
    }

    /// Every object with its key (to merge a listing into a store that
    /// other watches also fill).
    pub fn into_objects(self) -> impl Iterator<Item = (ObjectKey, StoredObject)> {
        let cluster = self.cluster.into_iter().map(|(name, object)| {
            let key = ObjectKey {
                namespace: None,
                name: name.into(),
            };
            (key, object)
        });
        let namespaced = self.namespaced.into_iter().flat_map(|(namespace, names)| {
            names.into_iter().map(move |(name, object)| {
                let key = ObjectKey {
                    namespace: Some(namespace.to_string()),
                    name: name.into(),
                };
                (key, object)
            })
        });
        cluster.chain(namespaced)
    }

    #[cfg(test)]
    pub fn get(&self, key: &ObjectKey) -> Option<&StoredObject> {
        match &key.namespace {
            None => self.cluster.get(key.name.as_str()),
            Some(ns) => self.namespaced.get(ns.as_str())?.get(key.name.as_str()),
        }
    }

    /// The answer to `query` (its apiVersion and kind, and its `except`,
    /// are the caller's business: see [`TypeStore::select_after`]): a JSON
    /// array of the objects it selects, projected, or of their distinct
    /// values.
    pub fn select(&self, query: &LookupQuery) -> Answer {
        self.answers
            .get_or_compute(query, None, || self.compute(query))
    }

    /// The answer to `query`, which has `except`, given `left_out`, the
    /// answer to its `except` (asked of its own type's store first): kept
    /// until this type changes or `left_out` is no longer that store's
    /// answer.
    pub fn select_after(
        &self,
        query: &LookupQuery,
        left_out: &Answer,
    ) -> Result<Answer, LookupError> {
        if let Some(answer) = self.answers.get(query, Some(left_out)) {
            return Ok(answer);
        }
        let answer = self.select(&query.without_except());
        self.answers
            .try_get_or_compute(query, Some(left_out), || subtract(&answer, left_out))
    }

    fn compute(&self, query: &LookupQuery) -> Vec<u8> {
        let mut hits: Vec<&StoredObject> = Vec::new();
        let name = query.name.as_deref();
        match &query.namespace {
            Some(ns) => {
                if let Some(names) = self.namespaced.get(ns.as_str()) {
                    take(&mut hits, names, name);
                }
            }
            None => {
                take(&mut hits, &self.cluster, name);
                for names in self.namespaced.values() {
                    take(&mut hits, names, name);
                }
            }
        }
        if !query.labels.is_empty() {
            hits.retain(|o| o.has_labels(&query.labels));
        }
        // Each object is parsed on its own and dropped at once: a type of
        // 10,000 objects never lives parsed in memory.
        if !query.distinct.is_empty() {
            let values = hits.into_iter().filter_map(|o| {
                let object = o.value();
                query
                    .selects(&object)
                    .then(|| query.distinct_value(&object))
                    .flatten()
            });
            let answer = LookupQuery::distinct_answer(values);
            return serde_json::to_vec(&answer).expect("a serde_json::Value always serialises");
        }
        if query.reads_content() {
            hits.retain(|o| query.selects(&o.value()));
        }
        let slot = self.slot(&query.fields);
        let answers: Vec<Cow<'_, str>> = hits.iter().map(|o| o.answer(query, slot)).collect();
        join(&answers)
    }

    /// The projection slot of `fields`, interning it on first use; `None`
    /// for whole objects or when every slot is taken.
    fn slot(&self, fields: &[String]) -> Option<usize> {
        if fields.is_empty() {
            return None;
        }
        let mut sets = self
            .field_sets
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(i) = sets.iter().position(|s| s.as_slice() == fields) {
            return Some(i);
        }
        (sets.len() < PROJECTION_SLOTS).then(|| {
            sets.push(fields.to_vec());
            sets.len() - 1
        })
    }
}

/// Adds the object called `name` in `names`, or all of them.
fn take<'a>(
    hits: &mut Vec<&'a StoredObject>,
    names: &'a BTreeMap<Box<str>, StoredObject>,
    name: Option<&str>,
) {
    match name {
        Some(name) => hits.extend(names.get(name)),
        None => hits.extend(names.values()),
    }
}

/// `[a,b,...]` in one exactly sized allocation.
fn join(objects: &[Cow<'_, str>]) -> Vec<u8> {
    let size = 2 + objects.len().saturating_sub(1) + objects.iter().map(|o| o.len()).sum::<usize>();
    let mut out = Vec::with_capacity(size);
    out.push(b'[');
    for (i, o) in objects.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(o.as_bytes());
    }
    out.push(b']');
    out
}

/// A map keyed by apiVersion and kind that a query's borrowed strings can
/// index without allocating.
#[derive(Debug)]
pub(crate) struct ByType<V>(HashMap<String, HashMap<String, V>>);

impl<V> Default for ByType<V> {
    fn default() -> Self {
        Self(HashMap::new())
    }
}

impl<V> ByType<V> {
    pub fn get(&self, api_version: &str, kind: &str) -> Option<&V> {
        self.0.get(api_version)?.get(kind)
    }

    pub fn entry(&mut self, ty: &ResourceType) -> &mut V
    where
        V: Default,
    {
        self.0
            .entry(ty.api_version.clone())
            .or_default()
            .entry(ty.kind.clone())
            .or_default()
    }

    pub fn insert(&mut self, ty: &ResourceType, value: V) {
        self.0
            .entry(ty.api_version.clone())
            .or_default()
            .insert(ty.kind.clone(), value);
    }

    pub fn remove(&mut self, ty: &ResourceType) -> Option<V> {
        let kinds = self.0.get_mut(&ty.api_version)?;
        let old = kinds.remove(&ty.kind);
        if kinds.is_empty() {
            self.0.remove(&ty.api_version);
        }
        old
    }

    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.0.values().flat_map(HashMap::values)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use super::*;

    fn pod_type() -> ResourceType {
        ResourceType::new("v1", "Pod")
    }

    fn objects() -> Vec<Value> {
        let mut out = Vec::new();
        for ns in [
            None,
            Some(""),
            Some("kube-system"),
            Some("default"),
            Some("a"),
        ] {
            for name in ["calico-node", "other", "x"] {
                for labels in [
                    json!(null),
                    json!({}),
                    json!({"k8s-app": "calico-node"}),
                    json!({"k8s-app": "calico-node", "tier": "1"}),
                    json!({"k8s-app": "kube-dns", "tier": 1}),
                ] {
                    let mut meta = json!({"name": name, "labels": labels});
                    if let Some(ns) = ns {
                        meta["namespace"] = json!(ns);
                    }
                    // Several objects may share namespace and name here; give
                    // each a unique name suffix so all of them are stored.
                    let suffix = out.len();
                    meta["name"] = json!(format!("{name}-{suffix}"));
                    if suffix.is_multiple_of(7) {
                        meta["name"] = json!(name);
                    }
                    out.push(json!({"metadata": meta, "spec": {"n": suffix}}));
                }
            }
        }
        out
    }

    fn queries() -> Vec<LookupQuery> {
        let mut out = Vec::new();
        for ns in [
            None,
            Some(""),
            Some("kube-system"),
            Some("a"),
            Some("missing"),
        ] {
            for name in [
                None,
                Some("calico-node"),
                Some("x"),
                Some("other-1"),
                Some("nope"),
            ] {
                for labels in [
                    vec![],
                    vec![("k8s-app", "calico-node")],
                    vec![("k8s-app", "calico-node"), ("tier", "1")],
                    vec![("tier", "1")],
                    vec![("k8s-app", "nope")],
                ] {
                    let mut q = LookupQuery::list("v1", "Pod");
                    q.namespace = ns.map(str::to_owned);
                    q.name = name.map(str::to_owned);
                    for (k, v) in labels {
                        q = q.with_label(k, v);
                    }
                    // Whole objects, then more projections than there are
                    // slots (the later ones take the uncached path).
                    for fields in FIELD_SETS {
                        out.push(q.clone().with_fields(fields));
                    }
                    // Content filters and distinct values parse the
                    // objects the index selected.
                    out.push(q.clone().where_empty(&["/metadata/labels"]));
                    out.push(
                        q.clone()
                            .where_non_empty(&["/metadata/labels/tier"])
                            .with_fields(&["/spec"]),
                    );
                    out.push(q.clone().distinct(&["/metadata/labels/tier"]));
                    out.push(
                        q.clone()
                            .distinct(&["/metadata/namespace", "/metadata/labels/tier"]),
                    );
                    out.push(
                        q.clone()
                            .where_empty(&["/spec/n"])
                            .distinct(&["/metadata/name"]),
                    );
                    out.push(
                        q.clone()
                            .where_one_of("/metadata/labels/tier", [json!("1"), json!(null)])
                            .distinct(&["/metadata/name"]),
                    );
                    out.push(q.clone().where_one_of("/metadata/labels/tier", [json!(1)]));
                }
            }
        }
        out
    }

    const FIELD_SETS: [&[&str]; PROJECTION_SLOTS + 3] = [
        &[],
        &["/spec"],
        &["/metadata/labels"],
        &["/spec/n", "/metadata/labels/tier"],
        &["/spec/missing"],
        &["/metadata"],
        &["/metadata/labels/k8s-app"],
    ];

    /// The index answers exactly what `LookupQuery::selects` and
    /// `LookupQuery::project` say, for every combination of namespace
    /// (absent, empty, set), name, labels (absent, empty, matching, partial,
    /// non-string) and fields (none, cached and uncached projections).
    #[test]
    fn select_agrees_with_sdk_selects() {
        let ty = pod_type();
        let mut store = TypeStore::default();
        let mut stored = Vec::new();
        for object in objects() {
            let (key, obj) = StoredObject::new(&ty, object).unwrap();
            stored.push(serde_json::from_str::<Value>(obj.json()).unwrap());
            assert!(store.insert(key, obj).is_none(), "test objects are unique");
        }
        assert_eq!(store.len(), stored.len());
        let (mut non_empty, mut distinct) = (0, 0);
        for query in queries() {
            let got: Vec<Value> = serde_json::from_slice(&store.select(&query)).unwrap();
            let mut want: Vec<&Value> = stored.iter().filter(|o| query.selects(o)).collect();
            let key = |o: &Value| {
                (
                    o["metadata"]["namespace"].as_str().map(str::to_owned),
                    o["metadata"]["name"].as_str().unwrap().to_owned(),
                )
            };
            want.sort_by_key(|o| key(o));
            if query.distinct.is_empty() {
                let got_keys: Vec<_> = got.iter().map(key).collect();
                let want_keys: Vec<_> = want.iter().map(|o| key(o)).collect();
                assert_eq!(got_keys, want_keys, "query {query:?}");
            }
            assert_eq!(
                Value::Array(got.clone()),
                query.answer(want.iter().copied()),
                "query {query:?}"
            );
            // Asked again, the kept answer is the same.
            assert_eq!(
                serde_json::from_slice::<Vec<Value>>(&store.select(&query)).unwrap(),
                got
            );
            non_empty += usize::from(!got.is_empty());
            distinct += usize::from(!query.distinct.is_empty() && got.len() > 1);
        }
        assert!(non_empty > 20, "the queries exercise real matches");
        assert!(distinct > 5, "and several distinct values");
        assert_eq!(store.field_sets.lock().unwrap().len(), PROJECTION_SLOTS);
    }

    /// An answer with `except` is the SDK's, and is made again when the
    /// objects of either type change, never served from before.
    #[test]
    fn except_answers_follow_both_types() {
        let (pods, namespaces) = (pod_type(), ResourceType::new("v1", "Namespace"));
        let mut pod_store = TypeStore::default();
        let mut ns_store = TypeStore::default();
        let mut all = Vec::new();
        for ns in ["a", "b", "c"] {
            add(
                &mut ns_store,
                &namespaces,
                json!({"metadata": {"name": ns}}),
                &mut all,
            );
        }
        let pod_key = add(
            &mut pod_store,
            &pods,
            json!({"metadata": {"name": "p", "namespace": "b"}}),
            &mut all,
        );
        let names = LookupQuery::list("v1", "Namespace").distinct(&["/metadata/name"]);
        let holding = LookupQuery::list("v1", "Pod").distinct(&["/metadata/namespace"]);
        let empty = names.clone().except(holding.clone());
        let answer = |ns_store: &TypeStore, pod_store: &TypeStore, all: &[Value]| {
            let left_out = pod_store.select(&holding);
            let got = ns_store.select_after(&empty, &left_out).unwrap();
            let got: Value = serde_json::from_slice(&got).unwrap();
            assert_eq!(got, empty.answer_among(all));
            got
        };
        assert_eq!(answer(&ns_store, &pod_store, &all), json!(["a", "c"]));
        // Kept: the same allocation while neither type changes.
        let left_out = pod_store.select(&holding);
        let first = ns_store.select_after(&empty, &left_out).unwrap();
        let again = ns_store.select_after(&empty, &left_out).unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        // The other type changes: a pod in `a`.
        add(
            &mut pod_store,
            &pods,
            json!({"metadata": {"name": "q", "namespace": "a"}}),
            &mut all,
        );
        assert_eq!(answer(&ns_store, &pod_store, &all), json!(["c"]));
        // This type changes: namespace `d`.
        add(
            &mut ns_store,
            &namespaces,
            json!({"metadata": {"name": "d"}}),
            &mut all,
        );
        assert_eq!(answer(&ns_store, &pod_store, &all), json!(["c", "d"]));
        // A removal on the other side.
        pod_store.remove(&pod_key);
        all.retain(|o| o["metadata"]["name"] != "p");
        assert_eq!(answer(&ns_store, &pod_store, &all), json!(["b", "c", "d"]));
    }

    /// Stores `object` in `store` and adds it, as stored, to `all`.
    fn add(
        store: &mut TypeStore,
        ty: &ResourceType,
        object: Value,
        all: &mut Vec<Value>,
    ) -> ObjectKey {
        let (key, obj) = StoredObject::new(ty, object).unwrap();
        all.push(serde_json::from_str::<Value>(obj.json()).unwrap());
        store.insert(key.clone(), obj);
        key
    }

    /// A replaced object answers its new content, never a projection or an
    /// answer kept for the one it replaced.
    #[test]
    fn a_replaced_object_drops_its_cached_projections() {
        let ty = pod_type();
        let mut store = TypeStore::default();
        let pod = |n: i64| json!({"metadata": {"name": "p", "namespace": "a"}, "spec": {"n": n}});
        let query = LookupQuery::list("v1", "Pod").with_fields(&["/spec/n"]);
        let spec_of = |store: &TypeStore| -> Vec<Value> {
            let got: Vec<Value> = serde_json::from_slice(&store.select(&query)).unwrap();
            got.iter().map(|o| o["spec"].clone()).collect()
        };
        let (key, obj) = StoredObject::new(&ty, pod(1)).unwrap();
        store.insert(key, obj);
        assert_eq!(spec_of(&store), [json!({"n": 1})]);
        let (key, obj) = StoredObject::new(&ty, pod(2)).unwrap();
        assert!(store.insert(key.clone(), obj).is_some());
        assert_eq!(spec_of(&store), [json!({"n": 2})]);
        // Kept answers go with any change, a removal too.
        store.remove(&key);
        assert_eq!(spec_of(&store), Vec::<Value>::new());
    }

    #[test]
    fn stored_objects_carry_type_and_lose_bulky_fields() {
        let object = json!({
            "metadata": {
                "name": "n", "namespace": "kube-system",
                "managedFields": [{"manager": "kubectl"}],
                "annotations": {LAST_APPLIED: "{...}", "keep": "me"},
            },
            "spec": {"replicas": 1},
        });
        let (key, obj) = StoredObject::new(&pod_type(), object).unwrap();
        assert_eq!(key.namespace.as_deref(), Some("kube-system"));
        let v: Value = serde_json::from_str(obj.json()).unwrap();
        assert_eq!(
            v,
            json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "n", "namespace": "kube-system", "annotations": {"keep": "me"}},
                "spec": {"replicas": 1},
            })
        );

        let only_last_applied =
            json!({"metadata": {"name": "n", "annotations": {LAST_APPLIED: "x"}}});
        let (key, obj) = StoredObject::new(&pod_type(), only_last_applied).unwrap();
        assert_eq!(key.namespace, None);
        assert_eq!(
            serde_json::from_str::<Value>(obj.json()).unwrap()["metadata"],
            json!({"name": "n"})
        );
    }

    #[test]
    fn malformed_objects_are_refused() {
        let ty = pod_type();
        let err = |v: Value| StoredObject::new(&ty, v).unwrap_err();
        assert_eq!(err(json!([])), ObjectError::NotAnObject);
        assert_eq!(err(json!({})), ObjectError::Missing("metadata"));
        assert_eq!(
            err(json!({"metadata": 3})),
            ObjectError::NotAMapping("metadata")
        );
        assert_eq!(
            err(json!({"metadata": {}})),
            ObjectError::Missing("metadata.name")
        );
        assert_eq!(
            err(json!({"metadata": {"name": 1}})),
            ObjectError::NotAString("metadata.name")
        );
        assert_eq!(
            err(json!({"metadata": {"name": "a", "namespace": ["x"]}})),
            ObjectError::NotAString("metadata.namespace")
        );
    }

    #[test]
    fn insert_replace_remove_keep_count() {
        let ty = pod_type();
        let mut store = TypeStore::default();
        let make = |ns: Option<&str>, name: &str, n: i32| {
            StoredObject::new(
                &ty,
                json!({"metadata": {"name": name, "namespace": ns}, "n": n}),
            )
            .unwrap()
        };
        let (k1, o1) = make(Some("a"), "x", 1);
        let (k2, o2) = make(Some("a"), "x", 2);
        let (k3, o3) = make(None, "x", 3);
        assert!(store.insert(k1.clone(), o1).is_none());
        assert!(store.insert(k2, o2).is_some());
        assert!(store.insert(k3.clone(), o3).is_none());
        assert_eq!(store.len(), 2);
        assert!(store.get(&k1).unwrap().json().contains("\"n\":2"));
        assert!(store.remove(&k1).is_some());
        assert!(store.remove(&k1).is_none());
        assert_eq!(store.len(), 1);
        assert_eq!(
            &*store.select(&LookupQuery::list("v1", "Pod").in_namespace("a")),
            b"[]"
        );
        assert!(store.remove(&k3).is_some());
        assert_eq!(store.len(), 0);
        assert_eq!(&*store.select(&LookupQuery::list("v1", "Pod")), b"[]");
    }
}
