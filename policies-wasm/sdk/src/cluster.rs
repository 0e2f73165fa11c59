//! Read access to other cluster objects.
//!
//! In Wasm, [`Cluster`] is served by the host's `lookup` import (watch-backed
//! caches in a cluster, a snapshot directory offline). Natively, tests use
//! [`MemoryCluster`] or [`NoCluster`], so context-aware rules are unit-tested
//! like any other function.

use crate::views::Object;
use crate::wire::LookupQuery;

/// A lookup that could not be served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LookupError {
    /// The host refused the query (outside the policy's `context` allow-list)
    /// or failed to answer.
    Refused(String),
    /// The answer was not the documented JSON.
    Malformed(String),
}

impl std::fmt::Display for LookupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Refused(m) => write!(f, "cluster lookup refused: {m}"),
            Self::Malformed(m) => write!(f, "cluster lookup answer malformed: {m}"),
        }
    }
}

impl std::error::Error for LookupError {}

/// The objects a lookup returned, kept as the JSON array the host sent and
/// parsed on demand into borrowed [`Object`]s.
#[derive(Debug, Clone, Default)]
pub struct Objects {
    json: std::borrow::Cow<'static, [u8]>,
}

impl Objects {
    /// Wraps a JSON array of objects.
    pub fn from_json(json: Vec<u8>) -> Self {
        Self { json: json.into() }
    }

    /// Wraps a JSON array that lives for the rest of the evaluation (the
    /// host's answer in guest memory), without copying it.
    pub fn from_static(json: &'static [u8]) -> Self {
        Self { json: json.into() }
    }

    /// Parses the objects; they borrow from `self`.
    pub fn parse(&self) -> Result<Vec<Object<'_>>, LookupError> {
        self.parse_as()
    }

    /// Parses the objects into a view of the rule's own that holds only what
    /// it reads: scanning thousands of objects then costs little memory in
    /// the guest's arena (see also [`LookupQuery::fields`]).
    pub fn parse_as<'a, T: serde::Deserialize<'a>>(&'a self) -> Result<Vec<T>, LookupError> {
        if self.json.is_empty() {
            return Ok(Vec::new());
        }
        serde_json::from_slice(&self.json).map_err(|e| LookupError::Malformed(e.to_string()))
    }

    /// The raw JSON array.
    pub fn json(&self) -> &[u8] {
        &self.json
    }
}

/// Read access to cluster objects.
pub trait Cluster {
    /// Runs one query (see [`LookupQuery`]).
    fn lookup(&self, query: &LookupQuery) -> Result<Objects, LookupError>;

    /// Gets one object; `namespace` is `None` for cluster-scoped kinds.
    fn get(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Objects, LookupError> {
        self.lookup(&LookupQuery::get(api_version, kind, namespace, name))
    }

    /// Lists the objects of a type, optionally in one namespace.
    fn list(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
    ) -> Result<Objects, LookupError> {
        let mut q = LookupQuery::list(api_version, kind);
        q.namespace = namespace.map(str::to_owned);
        self.lookup(&q)
    }
}

/// A cluster with nothing in it, for rules that read no context.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoCluster;

impl Cluster for NoCluster {
    fn lookup(&self, _: &LookupQuery) -> Result<Objects, LookupError> {
        Ok(Objects::default())
    }
}

/// An in-memory cluster for native tests: a list of objects, queried with
/// the same meaning as the host's backends ([`LookupQuery::selects`]).
#[derive(Debug, Clone, Default)]
pub struct MemoryCluster {
    objects: Vec<serde_json::Value>,
}

impl MemoryCluster {
    pub fn new(objects: impl IntoIterator<Item = serde_json::Value>) -> Self {
        Self {
            objects: objects.into_iter().collect(),
        }
    }

    pub fn insert(&mut self, object: serde_json::Value) {
        self.objects.push(object);
    }
}

impl Cluster for MemoryCluster {
    fn lookup(&self, query: &LookupQuery) -> Result<Objects, LookupError> {
        let json = serde_json::to_vec(&query.answer_among(&self.objects))
            .map_err(|e| LookupError::Malformed(e.to_string()))?;
        Ok(Objects::from_json(json))
    }
}

/// The cluster as the host serves it to a Wasm guest.
#[cfg(target_arch = "wasm32")]
#[derive(Debug, Clone, Copy, Default)]
pub struct HostCluster;

#[cfg(target_arch = "wasm32")]
impl Cluster for HostCluster {
    fn lookup(&self, query: &LookupQuery) -> Result<Objects, LookupError> {
        #[link(wasm_import_module = "tollgate")]
        unsafe extern "C" {
            fn lookup(ptr: *const u8, len: usize) -> u64;
        }
        let q = serde_json::to_vec(query).map_err(|e| LookupError::Malformed(e.to_string()))?;
        // SAFETY: the host reads `q`, then writes its answer into a buffer it
        // obtained from `tollgate_alloc`, which this instance never frees.
        let answer = unsafe {
            let packed = lookup(q.as_ptr(), q.len());
            crate::packed::take_packed(packed)
        };
        // The host frames objects exactly so: take the array without a
        // validating pass over what may be megabytes (parsing it validates).
        if let Some(objects) = crate::wire::LookupResult::framed_objects(answer) {
            return Ok(Objects::from_static(objects));
        }
        let result: crate::wire::LookupResult<'_> =
            serde_json::from_slice(answer).map_err(|e| LookupError::Malformed(e.to_string()))?;
        match (result.objects, result.error) {
            (_, Some(e)) => Err(LookupError::Refused(e)),
            (Some(objects), None) => Ok(Objects::from_static(objects.get().as_bytes())),
            (None, None) => Ok(Objects::default()),
        }
    }
}
