//! R23 ebpf-needs-iptables-kube-proxy: turning the eBPF data plane on while
//! kube-proxy runs in IPVS mode. From
//! `testdata/modern/docs/version-3.32/operations/ebpf/enabling-ebpf.mdx`:
//!
//! > If you are running `kube-proxy` in IPVS mode, you must switch it to
//! > iptables mode before disabling `kube-proxy` or enabling eBPF mode. This
//! > applies to all platforms and is required for a successful migration.
//! > After switching to iptables mode, restart your nodes before proceeding.
//!
//! eBPF is turned on by `Installation default` (`linuxDataplane: BPF`) or
//! `FelixConfiguration default` (`bpfEnabled: true`); a CREATE that arrives
//! with it on turns it on as much as an UPDATE does, so both are checked.
//!
//! kube-proxy's mode is read from the kubeadm ConfigMap `kube-system/kube-proxy`
//! (key `config.conf`, a KubeProxyConfiguration). Other installers may have
//! no such ConfigMap: then there is no verdict (SPEC §5), since the docs give
//! no other place to read the mode from. A failed read fails closed.

use serde::Deserialize;
use serde_json::Value;
use tollgate_sdk::{Cluster, LookupError, Operation, Request, Settings, Verdict};

use crate::dataplane::{felix_ebpf, installation_ebpf};
use crate::lookup;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct KubeProxySettings {
    /// Where kubeadm keeps kube-proxy's configuration.
    pub namespace: String,
    pub config_map: String,
    pub key: String,
}

impl Default for KubeProxySettings {
    fn default() -> Self {
        Self {
            namespace: "kube-system".into(),
            config_map: "kube-proxy".into(),
            key: "config.conf".into(),
        }
    }
}

impl Settings for KubeProxySettings {
    fn validate(&self) -> Result<(), String> {
        if self.namespace.is_empty() || self.config_map.is_empty() || self.key.is_empty() {
            return Err("namespace, configMap and key must not be empty".into());
        }
        Ok(())
    }
}

pub fn ebpf_needs_iptables_kube_proxy(
    req: &Request<'_>,
    s: &KubeProxySettings,
    cluster: &dyn Cluster,
) -> Verdict {
    let Some(what) = turns_ebpf_on(req) else {
        return Verdict::allow();
    };
    match kube_proxy_mode(cluster, s) {
        Ok(Some(mode)) if mode.eq_ignore_ascii_case("ipvs") => Verdict::deny(format!(
            "{what} turns eBPF on while kube-proxy runs in IPVS mode (ConfigMap {}/{}): \
             \"you must switch it to iptables mode before […] enabling eBPF mode\". Set mode: iptables in that ConfigMap, \
             restart kube-proxy and then your nodes, and enable eBPF after.",
            s.namespace, s.config_map
        )),
        Ok(_) => Verdict::allow(),
        Err(e) => lookup::failed(&format!("ConfigMap {}/{}", s.namespace, s.config_map), &e),
    }
}

/// `Installation default` or `FelixConfiguration default` written with
/// eBPF on where it was off (or absent): its description.
fn turns_ebpf_on(req: &Request<'_>) -> Option<String> {
    if !matches!(req.operation, Operation::Create | Operation::Update) || req.is_scale() {
        return None;
    }
    let read = |raw: Option<&serde_json::value::RawValue>| -> Option<Value> {
        serde_json::from_str(raw?.get()).ok()
    };
    let new = read(req.raw_object())?;
    let old = read(req.raw_old_object());
    if new["metadata"]["name"] != "default" {
        return None;
    }
    let on: fn(&Value) -> bool = match (new["apiVersion"].as_str()?, new["kind"].as_str()?) {
        ("operator.tigera.io/v1", "Installation") => installation_ebpf,
        ("crd.projectcalico.org/v1" | "projectcalico.org/v3", "FelixConfiguration") => felix_ebpf,
        _ => return None,
    };
    (on(&new) && !old.as_ref().is_some_and(on)).then(|| {
        let kind = new["kind"].as_str().unwrap_or_default();
        format!("{kind} default")
    })
}

/// The `mode:` of kube-proxy's KubeProxyConfiguration; `None` when there
/// is no ConfigMap, no such key or no top-level `mode`.
fn kube_proxy_mode(
    cluster: &dyn Cluster,
    s: &KubeProxySettings,
) -> Result<Option<String>, LookupError> {
    let found = cluster.get("v1", "ConfigMap", Some(&s.namespace), &s.config_map)?;
    let maps = found.parse()?;
    let config = maps
        .first()
        .and_then(|m| m.data.as_ref())
        .and_then(|d| d.get(s.key.as_str()).map(|v| v.to_string()));
    Ok(config.as_deref().and_then(top_level_mode))
}

/// The top-level `mode:` of a KubeProxyConfiguration YAML document, unquoted
/// (`mode: ""` is the default, iptables). Nested keys (`ipvs:` has none named
/// `mode`, but `winkernel` and others might) are indented and skipped.
pub fn top_level_mode(config: &str) -> Option<String> {
    config.lines().find_map(|line| {
        let value = line.strip_prefix("mode:")?;
        let value = value.split('#').next().unwrap_or_default().trim();
        Some(value.trim_matches(['"', '\'']).to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::top_level_mode;

    #[test]
    fn modes_are_read_from_the_top_level_only() {
        let kubeadm = "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nipvs:\n  mode: nested\nmode: \"ipvs\" # chosen\n";
        assert_eq!(top_level_mode(kubeadm).as_deref(), Some("ipvs"));
        assert_eq!(top_level_mode("mode: ''\n").as_deref(), Some(""));
        assert_eq!(top_level_mode("kind: KubeProxyConfiguration\n"), None);
    }
}
