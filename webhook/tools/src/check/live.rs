//! A live cluster for `check --kubeconfig` and `audit --kubeconfig`: the
//! stored objects read through discovery and GET/LIST, and the policies'
//! lookups served by the same watch caches `serve` uses
//! ([`WatchContext`]), synced before the first review.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use kube::api::{Api, DynamicObject, GroupVersionKind, ListParams};
use kube::discovery::{self, ApiResource, Scope};
use kube::{Client, Error as KubeError, error::DiscoveryError};
use serde_json::{Value, json};
use tollgate_context::{ClusterContext, ContextMetrics, WatchContext, watch};
use tollgate_host::PolicySet;
use tollgate_preflight::served::{gvk, served};
use tollgate_preflight::{Manifest, Objects};

use super::Unusable;

/// How long the caches may take to list what the policies read.
const SYNC_TIMEOUT: Duration = Duration::from_secs(60);
/// Objects per LIST page.
const PAGE: u32 = 500;

/// A connected cluster and the watch caches of the policies' lookups.
pub struct Live {
    runtime: tokio::runtime::Runtime,
    client: Client,
    watches: Arc<WatchContext>,
}

impl Live {
    /// Connects with `kubeconfig` and syncs a watch cache of every type the
    /// policies may look up.
    pub fn connect(kubeconfig: &Path, policies: &PolicySet) -> Result<Self, Unusable> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| Unusable(format!("cannot start the cluster client: {e}")))?;
        let (client, watches) = runtime.block_on(async {
            let client = watch::connect(Some(kubeconfig))
                .await
                .map_err(|e| Unusable(format!("cannot connect to the cluster: {e}")))?;
            let watches = Arc::new(WatchContext::start(
                client.clone(),
                policies.resource_types(),
                ContextMetrics::default(),
            ));
            if tokio::time::timeout(SYNC_TIMEOUT, watches.wait_ready())
                .await
                .is_err()
            {
                let pending: Vec<String> = watches
                    .pending()
                    .iter()
                    .map(|t| format!("{} {}", t.api_version, t.kind))
                    .collect();
                return Err(Unusable(format!(
                    "the cluster's {} did not list within {}s",
                    pending.join(", "),
                    SYNC_TIMEOUT.as_secs()
                )));
            }
            Ok((client, watches))
        })?;
        Ok(Self {
            runtime,
            client,
            watches,
        })
    }

    pub fn context(&self) -> Arc<dyn ClusterContext> {
        self.watches.clone()
    }

    /// The stored object of every manifest that exists (read in the
    /// version it is served in; a kind the cluster does not serve has none).
    pub fn stored(&self, manifests: &[Manifest]) -> Result<Objects, Unusable> {
        self.runtime.block_on(async {
            let mut objects = Objects::default();
            for manifest in manifests {
                let object = served(&manifest.object);
                let (group, version, kind) = gvk(&object);
                let wanted = GroupVersionKind::gvk(group, version, kind);
                let (resource, caps) = match discovery::pinned_kind(&self.client, &wanted).await {
                    Ok(found) => found,
                    Err(e) if absent(&e) => continue,
                    Err(e) => return Err(unusable(&manifest.display_name(), &e)),
                };
                let meta = &object["metadata"];
                let Some(name) = meta["name"].as_str() else {
                    continue; // generateName: always a new object
                };
                let api: Api<DynamicObject> = match caps.scope {
                    Scope::Cluster => Api::all_with(self.client.clone(), &resource),
                    Scope::Namespaced => Api::namespaced_with(
                        self.client.clone(),
                        meta["namespace"].as_str().unwrap_or("default"),
                        &resource,
                    ),
                };
                let found = api
                    .get_opt(name)
                    .await
                    .map_err(|e| unusable(&manifest.display_name(), &e))?;
                if let Some(found) = found {
                    objects.insert(typed(found, &resource));
                }
            }
            Ok(objects)
        })
    }

    /// Every object of `kinds` (`(group, kind)`, in the version the cluster
    /// prefers); kinds the cluster does not serve have none.
    pub fn matched(&self, kinds: &[(String, String)]) -> Result<Objects, Unusable> {
        self.runtime.block_on(async {
            let mut objects = Objects::default();
            for (group, kind) in kinds {
                let found = match discovery::group(&self.client, group).await {
                    Ok(api_group) => api_group.recommended_kind(kind),
                    Err(e) if absent(&e) => None,
                    Err(e) => return Err(unusable(&format!("{group}/{kind}"), &e)),
                };
                let Some((resource, _)) = found else { continue };
                let api: Api<DynamicObject> = Api::all_with(self.client.clone(), &resource);
                let mut params = ListParams::default().limit(PAGE);
                loop {
                    let page = api
                        .list(&params)
                        .await
                        .map_err(|e| unusable(&format!("{group}/{kind}"), &e))?;
                    for object in page.items {
                        objects.insert(typed(object, &resource));
                    }
                    match page.metadata.continue_ {
                        Some(token) if !token.is_empty() => params = params.continue_token(&token),
                        _ => break,
                    }
                }
            }
            Ok(objects)
        })
    }
}

/// The kinds `policies` match, `(group, kind)`: what an audit lists. A
/// pattern without a group or kind (a wildcard) names no kind to list.
pub fn matched_kinds(config: &tollgate_host::Config) -> Vec<(String, String)> {
    fn walk(m: &tollgate_host::config::MatchConfig, out: &mut Vec<(String, String)>) {
        for k in &m.kinds {
            if k.subresource.is_some() {
                continue;
            }
            if let (Some(group), Some(kind)) = (&k.group, &k.kind)
                && group != "*"
                && kind != "*"
            {
                out.push((group.clone(), kind.clone()));
            }
        }
        for alternative in &m.any_of {
            walk(alternative, out);
        }
    }
    let mut out = Vec::new();
    for policy in &config.policies {
        walk(&policy.matches, &mut out);
    }
    out.sort();
    out.dedup();
    out
}

/// A listed object as JSON with its apiVersion and kind (list items may
/// lack them).
fn typed(object: DynamicObject, resource: &ApiResource) -> Value {
    let mut value = serde_json::to_value(object).unwrap_or(Value::Null);
    value["apiVersion"] = json!(resource.api_version);
    value["kind"] = json!(resource.kind);
    value
}

/// The group, version or kind is not served: nothing of it exists.
fn absent(error: &KubeError) -> bool {
    matches!(error, KubeError::Api(status) if status.code == 404)
        || matches!(
            error,
            KubeError::Discovery(
                DiscoveryError::MissingKind(_) | DiscoveryError::MissingApiGroup(_)
            )
        )
}

fn unusable(what: &str, error: &KubeError) -> Unusable {
    Unusable(format!("cannot read {what} from the cluster: {error}"))
}
