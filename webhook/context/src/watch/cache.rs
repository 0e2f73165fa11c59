//! One resource type's cache: its objects and whether it may serve them.

use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use tokio::sync::Notify;

use crate::metrics::TypeMetrics;
use crate::store::{ObjectKey, StoredObject, TypeStore};
use crate::{Answer, LookupError, LookupQuery, ResourceType};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Not listed yet: lookups are refused rather than answered wrongly.
    Pending,
    /// Listed at least once; kept current by the watch.
    Synced,
    /// The cluster does not serve this type: no objects.
    Absent,
}

#[derive(Debug)]
struct State {
    phase: Phase,
    store: TypeStore,
}

#[derive(Debug)]
pub(crate) struct TypeCache {
    pub ty: ResourceType,
    state: RwLock<State>,
    metrics: TypeMetrics,
    /// Wakes readiness waiters on every phase change.
    changed: std::sync::Arc<Notify>,
}

impl TypeCache {
    pub fn new(ty: ResourceType, metrics: TypeMetrics, changed: std::sync::Arc<Notify>) -> Self {
        metrics.objects.set(0);
        metrics.synced.set(0);
        metrics.absent.set(0);
        Self {
            ty,
            state: RwLock::new(State {
                phase: Phase::Pending,
                store: TypeStore::default(),
            }),
            metrics,
            changed,
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        // A panic while writing leaves a consistent store (each update is
        // one map operation), so a poisoned lock is still safe to use.
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn phase(&self) -> Phase {
        self.read().phase
    }

    pub fn is_ready(&self) -> bool {
        self.phase() != Phase::Pending
    }

    pub fn select(&self, query: &LookupQuery) -> Result<Answer, LookupError> {
        let state = self.read();
        match state.phase {
            Phase::Pending => Err(LookupError::Unavailable(format!(
                "the cache of {} {} has not synced yet",
                self.ty.api_version, self.ty.kind
            ))),
            Phase::Absent => Ok(Answer::from(&b"[]"[..])),
            Phase::Synced => Ok(state.store.select(query)),
        }
    }

    /// Replaces everything with a fresh full list.
    pub fn replace(&self, store: TypeStore) {
        self.set(Phase::Synced, store);
    }

    /// The API went away (or never existed): serve no objects.
    pub fn mark_absent(&self) {
        self.set(Phase::Absent, TypeStore::default());
    }

    fn set(&self, phase: Phase, store: TypeStore) {
        let len = store.len();
        let old = {
            let mut state = self.write();
            state.store = store;
            std::mem::replace(&mut state.phase, phase)
        };
        self.metrics.objects.set(len as i64);
        self.metrics.synced.set(i64::from(phase != Phase::Pending));
        self.metrics.absent.set(i64::from(phase == Phase::Absent));
        if old != phase {
            self.changed.notify_waiters();
        }
    }

    pub fn apply(&self, key: ObjectKey, object: StoredObject) {
        let len = {
            let mut state = self.write();
            state.store.insert(key, object);
            state.store.len()
        };
        self.metrics.objects.set(len as i64);
    }

    pub fn delete(&self, key: &ObjectKey) {
        let len = {
            let mut state = self.write();
            state.store.remove(key);
            state.store.len()
        };
        self.metrics.objects.set(len as i64);
    }

    pub fn restarted(&self) {
        self.metrics.restarts.inc();
    }
}
