//! One resource type's cache: its objects, filled by one watch per planned
//! selection, and whether it may serve them.
//!
//! A cache serves only a view it can vouch for: before every watch has
//! listed once, and once a watch has been broken longer than the staleness
//! bound, lookups fail (the policy's failure verdict, with the reason)
//! rather than answer from a past the cluster has left.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::cache_metrics::TypeMetrics;
use crate::store::{ObjectKey, StoredObject, TypeStore};
use crate::{Answer, LookupError, LookupQuery, ResourceType, TypePlan};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Not listed yet: lookups are refused rather than answered wrongly.
    Pending,
    /// Listed at least once; kept current by the watch.
    Synced,
    /// The cluster does not serve this type: no objects.
    Absent,
}

/// Since when, and why, a watch has not been following the server.
#[derive(Debug, Clone)]
struct Broken {
    since: Instant,
    cause: String,
}

#[derive(Debug, Default)]
struct WatchState {
    listed: bool,
    broken: Option<Broken>,
}

#[derive(Debug)]
struct State {
    phase: Phase,
    store: TypeStore,
    /// With several watches, which of them (bit i: watch i) hold each
    /// object: one drops it only when none does.
    holders: HashMap<ObjectKey, u64>,
    watches: Vec<WatchState>,
}

#[derive(Debug)]
pub(crate) struct TypeCache {
    pub ty: ResourceType,
    pub plan: TypePlan,
    state: RwLock<State>,
    metrics: TypeMetrics,
    /// How long a broken watch's objects may still be served.
    max_staleness: Duration,
    /// Wakes readiness waiters on every phase change.
    changed: Arc<Notify>,
}

/// Selections beyond this share a type's last watch bit (and so may keep a
/// deleted object until the type relists); no grant list comes near it.
const MAX_WATCHES: usize = 64;

impl TypeCache {
    pub fn new(
        ty: ResourceType,
        plan: TypePlan,
        metrics: TypeMetrics,
        max_staleness: Duration,
        changed: Arc<Notify>,
    ) -> Self {
        metrics.objects.set(0);
        metrics.synced.set(0);
        metrics.absent.set(0);
        metrics.connected.set(0);
        metrics.stale_seconds.set(0.0);
        let watches = (0..plan.selections.len())
            .map(|_| WatchState::default())
            .collect();
        Self {
            ty,
            plan,
            state: RwLock::new(State {
                phase: Phase::Pending,
                store: TypeStore::default(),
                holders: HashMap::new(),
                watches,
            }),
            metrics,
            max_staleness,
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

    /// The answer to `query`; `left_out` is the answer to its `except`,
    /// if it has one (see [`TypeStore::select_after`]).
    pub fn select(
        &self,
        query: &LookupQuery,
        left_out: Option<&Answer>,
    ) -> Result<Answer, LookupError> {
        let state = self.read();
        match state.phase {
            Phase::Pending => Err(LookupError::Unavailable(format!(
                "the cache of {} {} has not synced yet",
                self.ty.api_version, self.ty.kind
            ))),
            Phase::Absent => Ok(Answer::from(&b"[]"[..])),
            Phase::Synced => match self.too_stale(&state) {
                Some(why) => Err(LookupError::Unavailable(why)),
                None => match left_out {
                    Some(left_out) => state.store.select_after(query, left_out),
                    None => Ok(state.store.select(query)),
                },
            },
        }
    }

    /// Why the cache may not serve, when its oldest broken watch has been
    /// broken longer than the bound.
    fn too_stale(&self, state: &State) -> Option<String> {
        let broken = state
            .watches
            .iter()
            .filter_map(|w| w.broken.as_ref())
            .min_by_key(|b| b.since)?;
        let age = broken.since.elapsed();
        (age > self.max_staleness).then(|| {
            format!(
                "the cache of {} {} is stale: its watch broke {}s ago and has not recovered ({}), longer than --max-context-staleness {}s allows",
                self.ty.api_version,
                self.ty.kind,
                age.as_secs(),
                broken.cause,
                self.max_staleness.as_secs_f64()
            )
        })
    }

    /// [`TypeCache::too_stale`] for `/readyz`.
    pub fn staleness(&self) -> Option<String> {
        let state = self.read();
        // Only a synced view is served, so only it can be stale.
        if state.phase != Phase::Synced {
            return None;
        }
        self.too_stale(&state)
    }

    /// Watch `watch` listed: its objects become `listing`, and it follows
    /// the server again. Returns how long it had been broken, if it was.
    pub fn replace(&self, watch: usize, listing: TypeStore) -> Option<Duration> {
        let mut state = self.write();
        if state.watches.len() <= 1 {
            state.store = listing;
        } else {
            let bit = bit(watch);
            let mut only_here = Vec::new();
            for (key, holders) in &mut state.holders {
                if *holders & bit != 0 {
                    *holders &= !bit;
                    if *holders == 0 {
                        only_here.push(key.clone());
                    }
                }
            }
            for key in only_here {
                state.holders.remove(&key);
                state.store.remove(&key);
            }
            for (key, object) in listing.into_objects() {
                *state.holders.entry(key.clone()).or_default() |= bit;
                state.store.insert(key, object);
            }
        }
        let was_broken = state.watches.get_mut(watch).and_then(|w| {
            w.listed = true;
            w.broken.take().map(|b| b.since.elapsed())
        });
        let phase = if state.watches.iter().all(|w| w.listed) {
            Phase::Synced
        } else {
            Phase::Pending
        };
        let old = std::mem::replace(&mut state.phase, phase);
        self.publish(&state);
        drop(state);
        if old != phase {
            self.changed.notify_waiters();
        }
        was_broken
    }

    /// The API went away (or never existed): serve no objects.
    pub fn mark_absent(&self) {
        let mut state = self.write();
        state.store = TypeStore::default();
        state.holders.clear();
        for w in &mut state.watches {
            *w = WatchState::default();
        }
        let old = std::mem::replace(&mut state.phase, Phase::Absent);
        self.publish(&state);
        drop(state);
        if old != Phase::Absent {
            self.changed.notify_waiters();
        }
    }

    pub fn apply(&self, watch: usize, key: ObjectKey, object: StoredObject) {
        let mut state = self.write();
        if state.watches.len() > 1 {
            *state.holders.entry(key.clone()).or_default() |= bit(watch);
        }
        state.store.insert(key, object);
        self.metrics.objects.set(state.store.len() as i64);
    }

    pub fn delete(&self, watch: usize, key: &ObjectKey) {
        let mut state = self.write();
        if state.watches.len() > 1 {
            let Some(holders) = state.holders.get_mut(key) else {
                return;
            };
            *holders &= !bit(watch);
            if *holders != 0 {
                return;
            }
            state.holders.remove(key);
        }
        state.store.remove(key);
        self.metrics.objects.set(state.store.len() as i64);
    }

    /// Watch `watch` (every watch with `None`: discovery) cannot follow the
    /// server. Returns how long it has been broken: zero when this is the
    /// first failure (the caller logs that one loudly).
    pub fn broken(&self, watch: Option<usize>, cause: &str) -> Duration {
        let mut state = self.write();
        let now = Instant::now();
        let mut oldest = Duration::ZERO;
        for (i, w) in state.watches.iter_mut().enumerate() {
            if watch.is_some_and(|only| only != i) {
                continue;
            }
            let broken = w.broken.get_or_insert_with(|| Broken {
                since: now,
                cause: String::new(),
            });
            broken.cause = cause.to_owned();
            oldest = oldest.max(now - broken.since);
        }
        self.metrics.restarts.inc();
        self.publish(&state);
        oldest
    }

    /// The metrics of `state`: objects, phase, connection and staleness
    /// (refreshed at every change and every reconnect attempt).
    fn publish(&self, state: &State) {
        let broken = state.watches.iter().filter_map(|w| w.broken.as_ref());
        let oldest = broken.map(|b| b.since.elapsed()).max();
        self.metrics.objects.set(state.store.len() as i64);
        self.metrics
            .synced
            .set(i64::from(state.phase != Phase::Pending));
        self.metrics
            .absent
            .set(i64::from(state.phase == Phase::Absent));
        self.metrics.connected.set(i64::from(oldest.is_none()));
        self.metrics
            .stale_seconds
            .set(oldest.unwrap_or_default().as_secs_f64());
    }
}

fn bit(watch: usize) -> u64 {
    1 << watch.min(MAX_WATCHES - 1)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::Selection;
    use crate::cache_metrics::ContextMetrics;

    fn pod_type() -> ResourceType {
        ResourceType::new("v1", "Pod")
    }

    fn cache(watches: usize, max_staleness: Duration) -> TypeCache {
        let plan = TypePlan {
            selections: (0..watches)
                .map(|i| Selection {
                    namespace: Some(format!("ns{i}")),
                    ..Selection::all()
                })
                .collect(),
            fields: None,
        };
        let metrics = ContextMetrics::default().for_type(&pod_type());
        TypeCache::new(pod_type(), plan, metrics, max_staleness, Arc::default())
    }

    fn listing(names: &[&str]) -> TypeStore {
        let mut store = TypeStore::default();
        for name in names {
            let (key, object) = StoredObject::new(
                &pod_type(),
                json!({"metadata": {"name": name, "namespace": "a"}}),
            )
            .unwrap();
            store.insert(key, object);
        }
        store
    }

    fn names(cache: &TypeCache) -> Vec<String> {
        let answer = cache.select(&LookupQuery::list("v1", "Pod"), None).unwrap();
        let objects: Vec<serde_json::Value> = serde_json::from_slice(&answer).unwrap();
        objects
            .iter()
            .map(|o| o["metadata"]["name"].as_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn a_broken_watch_serves_its_last_view_until_the_bound_then_fails_with_the_reason() {
        let c = cache(1, Duration::from_millis(50));
        assert!(c.select(&LookupQuery::list("v1", "Pod"), None).is_err());
        assert_eq!(c.replace(0, listing(&["a"])), None);
        assert_eq!(c.broken(Some(0), "connection refused"), Duration::ZERO);
        assert_eq!(names(&c), ["a"], "within the bound");
        assert_eq!(c.metrics.connected.get(), 0);
        std::thread::sleep(Duration::from_millis(60));
        assert!(c.broken(Some(0), "connection refused") >= Duration::from_millis(50));
        let error = c
            .select(&LookupQuery::list("v1", "Pod"), None)
            .unwrap_err()
            .to_string();
        assert!(error.contains("the cache of v1 Pod is stale"), "{error}");
        assert!(error.contains("connection refused"), "{error}");
        assert!(c.staleness().is_some());
        assert!(c.metrics.stale_seconds.get() >= 0.05);
        // A relist makes it current again and says how long it was broken.
        assert!(c.replace(0, listing(&["b"])).is_some());
        assert_eq!(names(&c), ["b"]);
        assert_eq!(c.staleness(), None);
        assert_eq!(c.metrics.connected.get(), 1);
        assert_eq!(c.metrics.stale_seconds.get(), 0.0);
    }

    #[test]
    fn with_several_watches_an_object_goes_when_no_watch_holds_it() {
        let c = cache(2, Duration::from_secs(10));
        c.replace(0, listing(&["a", "shared"]));
        assert!(!c.is_ready(), "the second watch has not listed");
        c.replace(1, listing(&["shared", "z"]));
        assert!(c.is_ready());
        assert_eq!(names(&c), ["a", "shared", "z"]);
        let key = |name: &str| ObjectKey {
            namespace: Some("a".into()),
            name: name.into(),
        };
        c.delete(0, &key("shared"));
        assert_eq!(names(&c), ["a", "shared", "z"], "watch 1 still holds it");
        c.delete(1, &key("shared"));
        assert_eq!(names(&c), ["a", "z"]);
        // A relist of one watch replaces only what that watch held.
        c.replace(0, listing(&["c"]));
        assert_eq!(names(&c), ["c", "z"]);
    }

    #[test]
    fn an_absent_type_is_no_objects_and_never_stale() {
        let c = cache(1, Duration::ZERO);
        c.mark_absent();
        assert!(c.is_ready());
        c.broken(None, "connection refused");
        assert_eq!(names(&c), Vec::<String>::new());
        assert_eq!(c.staleness(), None);
    }
}
