//! `pod-privileged`: Pods may not run privileged containers
//! (`securityContext.privileged: true` in `containers`, `initContainers` or
//! `ephemeralContainers`, the last added by `kubectl debug --profile=sysadmin`).
//! Serve it with `policies.yaml` next to this crate.

use serde::Deserialize;
use tollgate_sdk::{Cluster, ContainerAt, Pod, PodSpec, Request, Settings, Verdict};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct PodPrivilegedSettings {
    /// Namespaces whose pods may run privileged (a CNI's node agent).
    pub exempt_namespaces: Vec<String>,
}

impl Settings for PodPrivilegedSettings {}

fn privileged<'s, 'a>(spec: &'s PodSpec<'a>) -> impl Iterator<Item = ContainerAt<'s, 'a>> {
    spec.all_containers()
        .filter(|c| c.container.is_privileged())
}

pub fn pod_privileged(
    req: &Request<'_, Pod<'_>>,
    s: &PodPrivilegedSettings,
    _: &dyn Cluster,
) -> Verdict {
    let namespace = req.namespace.as_deref().unwrap_or_default();
    match &req.object {
        Some(_) if s.exempt_namespaces.iter().any(|n| n == namespace) => Verdict::allow(),
        None => Verdict::allow(),
        Some(pod) => {
            // An UPDATE is judged on what it adds: a pod admitted privileged
            // must stay updatable (labels, finalizers) until it is deleted.
            let old = req.old_object.iter().flat_map(|old| privileged(&old.spec));
            let before: Vec<_> = old.map(|c| &c.container.name).collect();
            let added: Vec<String> = (privileged(&pod.spec))
                .filter(|c| !before.contains(&&c.container.name))
                .map(|c| format!("{} {:?}", c.field, c.container.name))
                .collect();
            if added.is_empty() {
                return Verdict::allow();
            }
            Verdict::deny(format!(
                "pod {namespace}/{} runs privileged containers ({}), which control the node: \
                 remove securityContext.privileged, or run the pod in an exempt namespace",
                pod.metadata.name_or_generated(),
                added.join(", ")
            ))
        }
    }
}

tollgate_sdk::export_rules! {
    "pod-privileged" => pod_privileged,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn judge(request: &str, settings: &str) -> Verdict {
        let rule = rules().rule("pod-privileged").unwrap();
        rule.evaluate(
            request.as_bytes(),
            settings.as_bytes(),
            &tollgate_sdk::NoCluster,
        )
        .unwrap()
    }

    const PRIVILEGED: &str = r#"{"uid": "1", "operation": "CREATE", "namespace": "apps",
        "object": {"kind": "Pod", "metadata": {"generateName": "web-"}, "spec": {"containers": [
            {"name": "web", "securityContext": {"privileged": true}}]}}}"#;

    #[test]
    fn privileged_pods_are_denied_unless_exempt() {
        let v = judge(PRIVILEGED, "{}");
        assert_eq!(
            v.message.as_deref(),
            Some(
                "pod apps/web- runs privileged containers (containers \"web\"), which control the node: \
                 remove securityContext.privileged, or run the pod in an exempt namespace"
            )
        );
        assert!(judge(PRIVILEGED, r#"{"exemptNamespaces": ["apps"]}"#).allowed);
        assert!(judge(PRIVILEGED, r#"{"exemptNamespaces": ["kube-system"]}"#).is_violation());
        let unprivileged = PRIVILEGED.replace("true", "false");
        assert!(judge(&unprivileged, "{}").allowed);
    }

    #[test]
    fn settings_are_checked() {
        let rule = rules().rule("pod-privileged").unwrap();
        assert!(rule.check_settings(b"{}").valid);
        assert!(
            rule.check_settings(br#"{"exemptNamespaces": ["kube-system"]}"#)
                .valid
        );
        assert!(
            !rule
                .check_settings(br#"{"exemptNamespaces": "kube-system"}"#)
                .valid
        );
        assert!(!rule.check_settings(br#"{"exemptNamespace": ["a"]}"#).valid);
    }
}
