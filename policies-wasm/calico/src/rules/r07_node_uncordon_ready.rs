//! R7 node-uncordon-ready: uncordon a node only once its calico-node pod is
//! Ready and runs the DaemonSet's image. Advice: configured in warn mode.
//!
//! A failed lookup is a violation too (fail closed; a warning in warn mode).

use tollgate_sdk::image::ImageRef;
use tollgate_sdk::{Cluster, LookupError, Request, Verdict};

use super::updated;
use crate::lookup;
use crate::pods::{CalicoPods, PodSettings};
use crate::text::{WARNING_MAX, clip};

pub fn node_uncordon_ready(req: &Request<'_>, s: &PodSettings, cluster: &dyn Cluster) -> Verdict {
    check(req, s, cluster).unwrap_or_else(|e| lookup::failed("the calico-node pods", &e))
}

fn check(
    req: &Request<'_>,
    s: &PodSettings,
    cluster: &dyn Cluster,
) -> Result<Verdict, LookupError> {
    let Some((old, new)) = updated(req) else {
        return Ok(Verdict::allow());
    };
    if new.kind_str() != "Node" || !old.is_unschedulable() || new.is_unschedulable() {
        return Ok(Verdict::allow());
    }
    let node = new.name();
    let found = cluster.lookup(&s.pods_query(&s.identity.namespace))?;
    let pods = found.parse()?;
    let Some(pod) = pods.iter().find(|p| p.node_name() == Some(node)) else {
        return Ok(violation(format!(
            "node {node} is uncordoned but no calico-node pod runs on it: wait for the DaemonSet to start one and for it to be Ready"
        )));
    };
    if !pod.is_ready() {
        return Ok(violation(format!(
            "node {node} is uncordoned while calico-node pod {} is not Ready: new pods may get no network. Wait for Ready, then kubectl uncordon {node}",
            pod.name()
        )));
    }
    let running = s.identity.node_image_of(pod);
    if let (Some(wanted), Some(running)) = (s.wanted_image(cluster, pod)?, running)
        && !running.same_image(&ImageRef::parse(&wanted))
    {
        return Ok(violation(format!(
            "node {node} is uncordoned but calico-node pod {} still runs {running}, not {wanted}: delete it so the DaemonSet replaces it first",
            pod.name()
        )));
    }
    Ok(Verdict::allow())
}

fn violation(message: String) -> Verdict {
    Verdict::deny(clip(message, WARNING_MAX))
}
