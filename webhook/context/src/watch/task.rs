//! The task that keeps one resource type's cache current: discovery, then
//! one kube-rs watcher per planned selection.
//!
//! A broken watch is never resumed from the resourceVersion it had: after
//! any error it lists again. That is what keeps the cache honest after an
//! outage (the server may have compacted past that version, answering
//! `410 Gone`), and after the server's storage was restored from a backup
//! (its resourceVersions go backwards: resuming would skip every event
//! until they pass the old one). Retries start at 200 ms and stay within
//! 2 s, so a cache is current again within seconds of the server answering,
//! not after a backoff grown during the outage.

use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use kube::Client;
use kube::api::{Api, DynamicObject, GroupVersionKind, PartialObjectMeta};
use kube::discovery::{self, ApiResource};
use kube::error::DiscoveryError;
use kube::runtime::watcher::{self, Event};
use serde_json::Value;
use tracing::{debug, info, warn};

use super::WatchOptions;
use super::cache::{Phase, TypeCache};
use crate::store::{ObjectKey, StoredObject, TypeStore};
use crate::{ResourceType, Selection};

/// Runs until aborted.
pub(crate) async fn run(client: Client, cache: Arc<TypeCache>, options: WatchOptions) {
    let server = options.server.as_deref().unwrap_or("(unknown)");
    let gvk = gvk_of(&cache.ty);
    let mut retry = Retry::default();
    loop {
        let pause = match discover(&client, &gvk).await {
            Ok(resource) => {
                retry.reset();
                let watches = cache
                    .plan
                    .selections
                    .iter()
                    .enumerate()
                    .map(|(i, selection)| follow(&client, &resource, &cache, i, selection, server));
                // Each returns only when the API went away.
                futures::future::join_all(watches).await;
                info!(api_version = %cache.ty.api_version, kind = %cache.ty.kind, "resource type went away; serving no objects");
                cache.mark_absent();
                options.rediscover_every
            }
            Err(Discovery::Absent(reason)) => {
                if cache.phase() != Phase::Absent {
                    info!(
                        api_version = %cache.ty.api_version, kind = %cache.ty.kind, %reason,
                        "resource type not served by the cluster; serving no objects until it appears"
                    );
                }
                cache.mark_absent();
                options.rediscover_every
            }
            Err(Discovery::Failed(error)) => {
                let cause = causes(&error);
                let broken_for = cache.broken(None, &cause);
                let pause = retry.next();
                if broken_for.is_zero() {
                    warn!(
                        api_version = %cache.ty.api_version, kind = %cache.ty.kind, server,
                        error = %cause, retry_in = ?pause, "discovery failed; retrying"
                    );
                } else {
                    debug!(api_version = %cache.ty.api_version, kind = %cache.ty.kind, error = %cause, ?broken_for, "discovery still failing");
                }
                pause
            }
        };
        tokio::time::sleep(pause).await;
    }
}

/// The delay before the next attempt: 200 ms doubling to 2 s, with jitter
/// so that replicas do not retry in step.
struct Retry(ExponentialBackoff);

impl Default for Retry {
    fn default() -> Self {
        Self(Self::builder().build())
    }
}

impl Retry {
    fn builder() -> ExponentialBuilder {
        ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(200))
            .with_max_delay(Duration::from_secs(2))
            .with_factor(2.0)
            .with_jitter()
            .without_max_times()
    }

    fn next(&mut self) -> Duration {
        self.0.next().unwrap_or(Duration::from_secs(2))
    }

    fn reset(&mut self) {
        self.0 = Self::builder().build();
    }
}

fn gvk_of(ty: &ResourceType) -> GroupVersionKind {
    let (group, version) = tollgate_sdk::api::split_api_version(&ty.api_version);
    GroupVersionKind::gvk(group, version, &ty.kind)
}

enum Discovery {
    /// The group, version or kind does not exist on the server.
    Absent(kube::Error),
    /// Anything else (unreachable server, 403, 500): try again later.
    Failed(kube::Error),
}

async fn discover(client: &Client, gvk: &GroupVersionKind) -> Result<ApiResource, Discovery> {
    match discovery::pinned_kind(client, gvk).await {
        Ok((resource, _)) => Ok(resource),
        Err(e) if is_not_found(&e) => Err(Discovery::Absent(e)),
        Err(e @ kube::Error::Discovery(DiscoveryError::MissingKind(_))) => {
            Err(Discovery::Absent(e))
        }
        Err(e) => Err(Discovery::Failed(e)),
    }
}

fn is_not_found(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 404)
}

/// How one run of a watcher ended.
enum Ended {
    /// The API is gone (404): the type is absent.
    Gone,
    /// Anything else: list again after a pause.
    Broken(String),
}

/// Follows watch `index` (of `selection`) until the API disappears.
async fn follow(
    client: &Client,
    resource: &ApiResource,
    cache: &TypeCache,
    index: usize,
    selection: &Selection,
    server: &str,
) {
    let mut config = watcher::Config::default();
    if let Some(labels) = selection.label_selector() {
        config = config.labels(&labels);
    }
    if let Some(fields) = selection.field_selector() {
        config = config.fields(&fields);
    }
    let ty = &cache.ty;
    let mut retry = Retry::default();
    // The highest resourceVersion seen, across relists.
    let mut newest = Versions::default();
    loop {
        // Metadata-only requests when that is all the grants read: the
        // server sends a fraction of each object.
        let events = if cache.plan.metadata_only() {
            let api: Api<PartialObjectMeta<DynamicObject>> = api(client, resource, selection);
            watcher::watcher(api, config.clone())
                .map_ok(as_values)
                .boxed()
        } else {
            let api: Api<DynamicObject> = api(client, resource, selection);
            watcher::watcher(api, config.clone())
                .map_ok(as_values)
                .boxed()
        };
        let cause = match consume(events, cache, index, server, &mut newest, &mut retry).await {
            Ended::Gone => return,
            Ended::Broken(cause) => cause,
        };
        let broken_for = cache.broken(Some(index), &cause);
        let pause = retry.next();
        if broken_for.is_zero() {
            warn!(
                api_version = %ty.api_version, kind = %ty.kind, %selection, server, error = %cause,
                retry_in = ?pause, "watch broke; serving the last view while it relists (lookups fail once it is older than --max-context-staleness)"
            );
        } else {
            debug!(api_version = %ty.api_version, kind = %ty.kind, %selection, error = %cause, ?broken_for, "watch still broken");
        }
        tokio::time::sleep(pause).await;
    }
}

fn api<K>(client: &Client, resource: &ApiResource, selection: &Selection) -> Api<K>
where
    K: kube::Resource<DynamicType = ApiResource, Scope = kube::core::DynamicResourceScope>,
{
    match &selection.namespace {
        Some(namespace) => Api::namespaced_with(client.clone(), namespace, resource),
        None => Api::all_with(client.clone(), resource),
    }
}

/// Applies one watcher's events until it fails.
async fn consume(
    mut events: BoxStream<'_, Result<Event<Value>, watcher::Error>>,
    cache: &TypeCache,
    index: usize,
    server: &str,
    newest: &mut Versions,
    retry: &mut Retry,
) -> Ended {
    let ty = &cache.ty;
    // A (re)list is collected aside and swapped in whole, so lookups never
    // see a half-listed cache.
    let mut listing: Option<(TypeStore, Versions)> = None;
    while let Some(event) = events.next().await {
        match event {
            Ok(Event::Init) => listing = Some(Default::default()),
            Ok(Event::InitApply(object)) => {
                if let Some((store, versions)) = &mut listing {
                    versions.see(&object);
                    if let Some((key, object)) = stored(cache, object) {
                        store.insert(key, object);
                    }
                }
            }
            Ok(Event::InitDone) => {
                let (store, versions) = listing.take().unwrap_or_default();
                if let (Some(old), Some(new)) = (newest.0, versions.0)
                    && new < old
                {
                    warn!(api_version = %ty.api_version, kind = %ty.kind, was = old, now = new,
                        "resourceVersions went backwards (the API server's storage was restored?); serving the fresh list");
                }
                *newest = versions;
                let objects = store.len();
                match cache.replace(index, store) {
                    Some(broken_for) => {
                        info!(api_version = %ty.api_version, kind = %ty.kind, server, objects, ?broken_for, "watch recovered: relisted")
                    }
                    None => {
                        debug!(api_version = %ty.api_version, kind = %ty.kind, objects, "cache synced")
                    }
                }
                retry.reset();
            }
            Ok(Event::Apply(object)) => {
                if let Some(backwards) = newest.see(&object) {
                    return Ended::Broken(backwards);
                }
                if let Some((key, object)) = stored(cache, object) {
                    cache.apply(index, key, object);
                }
            }
            Ok(Event::Delete(object)) => {
                if let Some(key) = key_of(&object) {
                    cache.delete(index, &key);
                }
            }
            Err(error) => {
                if let watcher::Error::InitialListFailed(e) | watcher::Error::WatchStartFailed(e) =
                    &error
                    && is_not_found(e)
                {
                    return Ended::Gone;
                }
                return Ended::Broken(causes(&error));
            }
        }
    }
    Ended::Broken("the watch stream ended".to_owned())
}

/// The highest resourceVersion seen. Kubernetes calls them opaque, but
/// every API server serves etcd revisions, which only grow while the
/// storage is the same.
#[derive(Debug, Default, Clone, Copy)]
struct Versions(Option<u64>);

impl Versions {
    /// Notes `object`'s version; says why when it is older than one seen
    /// before (the watch must relist).
    fn see(&mut self, object: &Value) -> Option<String> {
        let version = object
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .and_then(|v| v.parse::<u64>().ok())?;
        match self.0 {
            Some(newest) if version < newest => Some(format!(
                "resourceVersion went backwards from {newest} to {version} (the API server's storage was restored?)"
            )),
            _ => {
                self.0 = Some(version);
                None
            }
        }
    }
}

fn as_values<K: serde::Serialize>(event: Event<K>) -> Event<Value> {
    let value = |object: K| serde_json::to_value(object).unwrap_or(Value::Null);
    match event {
        Event::Init => Event::Init,
        Event::InitApply(o) => Event::InitApply(value(o)),
        Event::InitDone => Event::InitDone,
        Event::Apply(o) => Event::Apply(value(o)),
        Event::Delete(o) => Event::Delete(value(o)),
    }
}

/// `error` and its sources, each once: kube's errors show only their own
/// level ("client error (Connect)"), the cause ("Connection refused") is
/// further down the chain.
pub(crate) fn causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let line = cause.to_string();
        if !text.contains(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        source = cause.source();
    }
    text
}

fn stored(cache: &TypeCache, object: Value) -> Option<(ObjectKey, StoredObject)> {
    match StoredObject::new(&cache.ty, cache.plan.keep(object)) {
        Ok(stored) => Some(stored),
        Err(error) => {
            warn!(api_version = %cache.ty.api_version, kind = %cache.ty.kind, %error, "ignoring malformed object from the API server");
            None
        }
    }
}

fn key_of(object: &Value) -> Option<ObjectKey> {
    let text = |pointer| object.pointer(pointer).and_then(Value::as_str);
    Some(ObjectKey {
        name: text("/metadata/name")?.to_owned(),
        namespace: text("/metadata/namespace").map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{Versions, causes};

    #[test]
    fn a_resource_version_older_than_one_seen_says_why_and_is_not_kept() {
        let object = |rv: &str| json!({"metadata": {"name": "a", "resourceVersion": rv}});
        let mut seen = Versions::default();
        assert_eq!(seen.see(&object("791")), None);
        assert_eq!(seen.see(&object("792")), None);
        let why = seen.see(&object("190")).expect("backwards");
        assert!(why.contains("went backwards from 792 to 190"), "{why}");
        assert_eq!(seen.0, Some(792));
        // Not a number (Kubernetes calls them opaque): nothing to compare.
        assert_eq!(seen.see(&object("x")), None);
        assert_eq!(seen.0, Some(792));
    }

    #[derive(Debug, thiserror::Error)]
    #[error("client error (Connect)")]
    struct Outer(#[source] Middle);

    #[derive(Debug, thiserror::Error)]
    #[error("tcp connect error: {0}")]
    struct Middle(#[source] std::io::Error);

    #[test]
    fn an_error_line_carries_every_cause_once() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let text = causes(&Outer(Middle(refused)));
        assert_eq!(
            text,
            "client error (Connect): tcp connect error: connection refused"
        );
    }
}
