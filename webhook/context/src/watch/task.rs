//! The task that keeps one resource type's cache current: discovery, then a
//! kube-rs watcher (list + watch, reconnecting with backoff).

use std::sync::Arc;

use futures::StreamExt;
use kube::api::{Api, DynamicObject, GroupVersionKind};
use kube::discovery::{self, ApiResource};
use kube::error::DiscoveryError;
use kube::runtime::WatchStreamExt;
use kube::runtime::utils::Backoff;
use kube::runtime::watcher::{self, DefaultBackoff, Event};
use kube::{Client, ResourceExt};
use tracing::{debug, info, warn};

use super::WatchOptions;
use super::cache::{Phase, TypeCache};
use crate::ResourceType;
use crate::store::{ObjectKey, StoredObject, TypeStore};

/// Runs until aborted.
pub(crate) async fn run(client: Client, cache: Arc<TypeCache>, options: WatchOptions) {
    let server = options.server.as_deref().unwrap_or("(unknown)");
    let gvk = gvk_of(&cache.ty);
    let mut failures = DefaultBackoff::default();
    loop {
        let pause = match discover(&client, &gvk).await {
            Ok(resource) => {
                failures.reset();
                follow(&client, &resource, &cache, server).await;
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
                cache.restarted();
                let pause = failures.next().unwrap_or(options.rediscover_every);
                warn!(
                    api_version = %cache.ty.api_version, kind = %cache.ty.kind, server,
                    error = %causes(&error), retry_in = ?pause, "discovery failed"
                );
                pause
            }
        };
        tokio::time::sleep(pause).await;
    }
}

fn gvk_of(ty: &ResourceType) -> GroupVersionKind {
    let (group, version) = ty
        .api_version
        .split_once('/')
        .unwrap_or(("", &ty.api_version));
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

/// Follows the watch until the API disappears (which marks the cache
/// absent); every other error is retried by the watcher's backoff.
async fn follow(client: &Client, resource: &ApiResource, cache: &TypeCache, server: &str) {
    let api: Api<DynamicObject> = Api::all_with(client.clone(), resource);
    let mut events = watcher::watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    // A (re)list is collected aside and swapped in whole, so lookups never
    // see a half-listed cache.
    let mut listing: Option<TypeStore> = None;
    while let Some(event) = events.next().await {
        match event {
            Ok(Event::Init) => listing = Some(TypeStore::default()),
            Ok(Event::InitApply(object)) => {
                if let (Some(listing), Some((key, object))) = (&mut listing, stored(cache, object))
                {
                    listing.insert(key, object);
                }
            }
            Ok(Event::InitDone) => {
                let store = listing.take().unwrap_or_default();
                debug!(api_version = %cache.ty.api_version, kind = %cache.ty.kind, objects = store.len(), "cache synced");
                cache.replace(store);
            }
            Ok(Event::Apply(object)) => {
                if let Some((key, object)) = stored(cache, object) {
                    cache.apply(key, object);
                }
            }
            Ok(Event::Delete(object)) => cache.delete(&ObjectKey {
                name: object.name_any(),
                namespace: object.metadata.namespace,
            }),
            Err(error) => {
                cache.restarted();
                if let watcher::Error::InitialListFailed(e) | watcher::Error::WatchStartFailed(e) =
                    &error
                    && is_not_found(e)
                {
                    info!(api_version = %cache.ty.api_version, kind = %cache.ty.kind, "resource type went away; serving no objects");
                    cache.mark_absent();
                    return;
                }
                warn!(
                    api_version = %cache.ty.api_version, kind = %cache.ty.kind, server,
                    error = %causes(&error), "watch failed; retrying with backoff"
                );
            }
        }
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

fn stored(cache: &TypeCache, object: DynamicObject) -> Option<(ObjectKey, StoredObject)> {
    let value = serde_json::to_value(object).expect("a DynamicObject always serialises");
    match StoredObject::new(&cache.ty, value) {
        Ok(stored) => Some(stored),
        Err(error) => {
            warn!(api_version = %cache.ty.api_version, kind = %cache.ty.kind, %error, "ignoring malformed object from the API server");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::causes;

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
