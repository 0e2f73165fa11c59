//! The data plane a cluster runs (SPEC §5, definitions), for R18 and R23:
//!
//! - **eBPF**: `Installation default .spec.calicoNetwork.linuxDataplane: BPF`,
//!   or `FelixConfiguration default .spec.bpfEnabled: true`, or env
//!   `FELIX_BPFENABLED=true` on the calico-node container (`calico-bpf.yaml`).
//! - **VXLAN**: an IPPool (`crd.projectcalico.org/v1` or `projectcalico.org/v3`)
//!   with `vxlanMode` `Always` or `CrossSubnet`, or an Installation ipPool
//!   with encapsulation `VXLAN` or `VXLANCrossSubnet`.
//!
//! A manifest install's calico-node creates its default pool from env
//! `CALICO_IPV4POOL_VXLAN` / `CALICO_IPV6POOL_VXLAN` on first start
//! (`calico-vxlan.yaml` sets `CrossSubnet`). Once a pool exists the env is
//! ignored, so the pools decide; only while the cluster has no IPPool at
//! all (checked offline before the first start, or a cache still empty)
//! does the env stand in for the pool it will create. That is what an
//! operator reading the manifest expects: the pool it asked for.

use serde_json::Value;
use tollgate_sdk::{Cluster, LookupError, Object};

use crate::identify::Identity;

/// The Calico API versions an IPPool or FelixConfiguration is served as:
/// the CRDs, and the API server's (or, from v3.32, native CRDs') v3.
pub const CALICO_API_VERSIONS: [&str; 2] = ["crd.projectcalico.org/v1", "projectcalico.org/v3"];

const OPERATOR_API: &str = "operator.tigera.io/v1";

/// What was found, each with the object that says so (for messages).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dataplane {
    pub ebpf: Option<String>,
    pub vxlan: Option<String>,
}

/// `Installation default .spec.calicoNetwork.linuxDataplane` is `BPF`.
pub fn installation_ebpf(installation: &Value) -> bool {
    installation["spec"]["calicoNetwork"]["linuxDataplane"] == "BPF"
}

/// The first Installation ipPool with VXLAN encapsulation, described.
pub fn installation_vxlan(installation: &Value) -> Option<String> {
    let pools = installation["spec"]["calicoNetwork"]["ipPools"].as_array()?;
    pools.iter().find_map(|p| {
        let mode = p["encapsulation"].as_str()?;
        matches!(mode, "VXLAN" | "VXLANCrossSubnet")
            .then(|| format!("Installation ipPool {} ({mode})", text(&p["cidr"])))
    })
}

/// `FelixConfiguration .spec.bpfEnabled: true`.
pub fn felix_ebpf(felix: &Value) -> bool {
    felix["spec"]["bpfEnabled"] == true
}

/// An IPPool with `vxlanMode` Always or CrossSubnet, described.
pub fn pool_vxlan(pool: &Value) -> Option<String> {
    let mode = pool["spec"]["vxlanMode"].as_str()?;
    matches!(mode, "Always" | "CrossSubnet").then(|| {
        format!(
            "IPPool {} (vxlanMode {mode})",
            text(&pool["metadata"]["name"])
        )
    })
}

/// Env `FELIX_BPFENABLED=true` on the calico-node container.
pub fn env_ebpf(id: &Identity, ds: &Object<'_>) -> bool {
    id.node_container(ds)
        .and_then(|c| c.env_value("FELIX_BPFENABLED"))
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// Env `CALICO_IPV4POOL_VXLAN` (or the IPv6 one) asking for a VXLAN pool.
pub fn env_vxlan(id: &Identity, ds: &Object<'_>) -> Option<String> {
    let node = id.node_container(ds)?;
    ["CALICO_IPV4POOL_VXLAN", "CALICO_IPV6POOL_VXLAN"]
        .iter()
        .find_map(|name| {
            let mode = node.env_value(name)?;
            matches!(mode, "Always" | "CrossSubnet")
                .then(|| format!("{name}={mode} on {}", ds.qualified_name()))
        })
}

/// `Installation default`, if any.
pub fn installation(cluster: &dyn Cluster) -> Result<Option<Value>, LookupError> {
    Ok(first(
        cluster
            .get(OPERATOR_API, "Installation", None, "default")?
            .parse_as()?,
    ))
}

/// `FelixConfiguration default` in either API version, if any.
pub fn felix_default(cluster: &dyn Cluster) -> Result<Option<Value>, LookupError> {
    for api in CALICO_API_VERSIONS {
        let found = cluster.get(api, "FelixConfiguration", None, "default")?;
        if let Some(felix) = first(found.parse_as()?) {
            return Ok(Some(felix));
        }
    }
    Ok(None)
}

/// Every IPPool, in both API versions.
pub fn ip_pools(cluster: &dyn Cluster) -> Result<Vec<Value>, LookupError> {
    let mut out = Vec::new();
    for api in CALICO_API_VERSIONS {
        out.extend(cluster.list(api, "IPPool", None)?.parse_as::<Value>()?);
    }
    Ok(out)
}

/// The data plane of the cluster, with `workloads` (the calico-node
/// DaemonSet being written, old and new) standing for the manifest's env.
pub fn read(
    cluster: &dyn Cluster,
    id: &Identity,
    workloads: &[&Object<'_>],
) -> Result<Dataplane, LookupError> {
    let installation = installation(cluster)?;
    let felix = felix_default(cluster)?;
    let pools = ip_pools(cluster)?;
    let ebpf = if installation.as_ref().is_some_and(installation_ebpf) {
        Some("Installation default (linuxDataplane BPF)".to_owned())
    } else if felix.as_ref().is_some_and(felix_ebpf) {
        Some("FelixConfiguration default (bpfEnabled)".to_owned())
    } else {
        workloads
            .iter()
            .find(|ds| env_ebpf(id, ds))
            .map(|ds| format!("FELIX_BPFENABLED on {}", ds.qualified_name()))
    };
    let vxlan = pools
        .iter()
        .find_map(pool_vxlan)
        .or_else(|| installation.as_ref().and_then(installation_vxlan))
        .or_else(|| {
            pools
                .is_empty()
                .then(|| workloads.iter().find_map(|ds| env_vxlan(id, ds)))
                .flatten()
        });
    Ok(Dataplane { ebpf, vxlan })
}

fn first(found: Vec<Value>) -> Option<Value> {
    found.into_iter().next()
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or("?")
}
