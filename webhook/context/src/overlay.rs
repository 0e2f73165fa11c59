//! A cluster with objects applied on top of another: what `tollgate check`
//! replays a manifest against, as `kubectl apply -f` leaves the cluster
//! after each object (the DaemonSet of a `calico.yaml` is stored when its
//! Deployment is judged).
//!
//! An applied object replaces the base's object of the same type,
//! namespace and name, and is served under the apiVersion it was applied
//! with (as [`crate::snapshot`] serves objects under the one they were saved
//! with). What a query selects and answers is [`LookupQuery::selects`] and
//! [`LookupQuery::answer`], the one definition every backend shares; the
//! allow-list is checked by the host before any backend is asked.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, PoisonError, RwLock};

use serde_json::Value;

use crate::except::subtract;
use crate::{Answer, ClusterContext, LookupError, LookupQuery, ResourceType};

/// `(namespace, name)`, ordered as the stores order answers: cluster-scoped
/// objects first, then by namespace and name.
type Key = (Option<String>, String);

/// `base` with objects applied over it. Shared with the evaluations that
/// read it (an `Arc`), and applied to between them.
pub struct OverlayContext {
    base: Arc<dyn ClusterContext>,
    applied: RwLock<HashMap<ResourceType, BTreeMap<Key, Value>>>,
}

impl OverlayContext {
    pub fn new(base: Arc<dyn ClusterContext>) -> Self {
        Self {
            base,
            applied: RwLock::default(),
        }
    }

    /// Stores `object` as the cluster holds it after an apply, replacing the
    /// one of the same type, namespace and name. Objects without apiVersion,
    /// kind or name are not stored (the API server would refuse them).
    pub fn apply(&self, object: Value) {
        let text = |v: &Value| v.as_str().map(str::to_owned);
        let (Some(api_version), Some(kind), Some(name)) = (
            text(&object["apiVersion"]),
            text(&object["kind"]),
            text(&object["metadata"]["name"]),
        ) else {
            return;
        };
        let namespace = text(&object["metadata"]["namespace"]);
        self.applied
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(ResourceType { api_version, kind })
            .or_default()
            .insert((namespace, name), object);
    }

    /// The base's answer to `query` with the applied objects of its type
    /// layered over it. The base is asked without `distinct` (each object's
    /// identity and the pointers' members instead), so a replaced object's
    /// values can be left out before the distinct answer is made.
    fn layered(
        &self,
        query: &LookupQuery,
        applied: &BTreeMap<Key, Value>,
    ) -> Result<Value, LookupError> {
        let mut wide = query.clone();
        if !wide.distinct.is_empty() {
            // A pointer not starting with `/` names the whole object, which
            // a projection would not keep.
            let members = wide.distinct.iter().all(|p| p.starts_with('/'));
            wide.fields = if members {
                std::mem::take(&mut wide.distinct)
            } else {
                wide.distinct.clear();
                Vec::new()
            };
        }
        let answer = self.base.lookup(&wide)?;
        let base: Vec<Value> = serde_json::from_slice(&answer)
            .map_err(|e| LookupError::Unavailable(format!("the base answer is not a list: {e}")))?;
        let mut objects: BTreeMap<Key, Value> = base
            .into_iter()
            .filter_map(|o| Some((key(&o)?, o)))
            .filter(|(k, _)| !applied.contains_key(k))
            .collect();
        for (k, object) in applied {
            if query.selects(object) {
                objects.insert(k.clone(), wide.project(object));
            }
        }
        Ok(query.answer(objects.values()))
    }
}

fn key(object: &Value) -> Option<Key> {
    let meta = &object["metadata"];
    let namespace = meta["namespace"].as_str().map(str::to_owned);
    Some((namespace, meta["name"].as_str()?.to_owned()))
}

impl ClusterContext for OverlayContext {
    fn lookup(&self, query: &LookupQuery) -> Result<Answer, LookupError> {
        // Either part may meet applied objects: each is answered layered,
        // then the difference is made here (`check` judges a few objects,
        // so nothing is kept).
        if let Some(except) = &query.except {
            let answer = self.lookup(&query.without_except())?;
            let left_out = self.lookup(except)?;
            return subtract(&answer, &left_out).map(Answer::from);
        }
        let ty = ResourceType {
            api_version: query.api_version.clone(),
            kind: query.kind.clone(),
        };
        let applied = self.applied.read().unwrap_or_else(PoisonError::into_inner);
        match applied.get(&ty) {
            None => self.base.lookup(query),
            Some(applied) => {
                let answer = self.layered(query, applied)?;
                let bytes = serde_json::to_vec(&answer)
                    .map_err(|e| LookupError::Unavailable(e.to_string()))?;
                Ok(Answer::from(bytes))
            }
        }
    }

    fn is_ready(&self) -> bool {
        self.base.is_ready()
    }

    fn stale(&self) -> Vec<String> {
        self.base.stale()
    }
}

#[cfg(test)]
#[path = "overlay_tests.rs"]
mod tests;
