//! R12 version-skew: calico/node, calico/cni and the controller should come
//! from the same Calico release (table in `corpus/SOURCES.md`), and an
//! update should not downgrade a component. Advice: configured in warn mode.
//!
//! The other side (the controllers for a DaemonSet, the DaemonSet for a
//! controller) is read from the cluster, in the object's own namespace when
//! it is Calico's (`kube-system` for `calico.yaml`, `calico-system` for the
//! operator): one install's components are compared with each other; a failed lookup is a violation
//! (fail closed; a warning in warn mode).

use tollgate_sdk::version::Version;
use tollgate_sdk::{Cluster, LookupError, Object, Request, Verdict};

use super::{IdentitySettings, written};
use crate::controllers::others_in;
use crate::lookup;
use crate::text::{WARNING_MAX, clip};
use crate::versions::{Component, Releases};

pub fn version_skew(req: &Request<'_>, s: &IdentitySettings, cluster: &dyn Cluster) -> Verdict {
    check(req, s, cluster).unwrap_or_else(|e| lookup::failed("the other Calico workloads", &e))
}

/// A component image seen somewhere: `node v2.5.1` and its releases.
struct Seen {
    label: String,
    releases: Releases,
}

fn check(
    req: &Request<'_>,
    s: &IdentitySettings,
    cluster: &dyn Cluster,
) -> Result<Verdict, LookupError> {
    let Some(obj) = written(req) else {
        return Ok(Verdict::allow());
    };
    let id = &s.identity;
    let mut seen = Vec::new();
    if id.is_node_ds(obj) {
        collect(obj, &mut seen);
        let same_install = [id.namespace_of(obj)];
        for ctrl in others_in(cluster, id, &same_install, None)?
            .iter()
            .filter(|c| c.replicas > 0)
        {
            if let Some(image) = &ctrl.image {
                seen.extend(component(image));
            }
        }
    } else if id.is_ctrl(obj) && obj.owner_of_kind("Deployment").is_none() {
        if obj.replicas().unwrap_or(0) > 0 {
            collect(obj, &mut seen);
            let found = id.node_daemon_set_in(cluster, id.namespace_of(obj))?;
            if let Some(ds) = found.parse()?.first() {
                collect(ds, &mut seen);
            }
        }
    } else {
        return Ok(Verdict::allow());
    }
    let mut problems = Vec::new();
    let common = seen.iter().try_fold(None::<Releases>, |acc, s| match acc {
        None => Some(Some(s.releases)),
        Some(r) => r.intersect(s.releases).map(Some),
    });
    if common.is_none() {
        let all: Vec<String> = seen
            .iter()
            .map(|s| format!("{} ({})", s.label, s.releases))
            .collect();
        problems.push(format!(
            "images from different Calico releases: {}; upgrade all to one release",
            all.join(", ")
        ));
    }
    if let Some(old) = req.old_object.as_ref() {
        let downgrades = downgrades(old, obj);
        if !downgrades.is_empty() {
            problems.push(format!(
                "downgrade of {} (see the downgrade guide)",
                downgrades.join(", ")
            ));
        }
    }
    if problems.is_empty() {
        return Ok(Verdict::allow());
    }
    Ok(Verdict::deny(clip(problems.join("; "), WARNING_MAX)))
}

fn component(image: &str) -> Option<Seen> {
    let image = tollgate_sdk::image::ImageRef::parse(image);
    let component = Component::of(&image)?;
    let version = image.version().ok()?;
    Some(Seen {
        label: format!("{} {}", component.label(), image.tag.unwrap_or_default()),
        releases: component.releases(&version)?,
    })
}

fn collect(obj: &Object<'_>, seen: &mut Vec<Seen>) {
    seen.extend(
        obj.containers()
            .filter_map(|c| component(c.image.as_deref()?)),
    );
}

/// `node v2.6.5 → v2.5.1` for each Calico component whose tag went down.
fn downgrades(old: &Object<'_>, new: &Object<'_>) -> Vec<String> {
    let version_of = |obj: &Object<'_>, name: &str| -> Option<Version> {
        obj.containers()
            .filter_map(|c| c.image_ref())
            .find(|i| i.name() == name)
            .and_then(|i| i.version().ok())
    };
    let mut out: Vec<String> = new
        .containers()
        .filter_map(|c| {
            let image = c.image_ref()?;
            let component = Component::of(&image)?;
            let to = image.version().ok()?;
            let from = version_of(old, image.name())?;
            (to < from).then(|| format!("{} {from} → {to}", component.label()))
        })
        .collect();
    out.dedup();
    out
}
