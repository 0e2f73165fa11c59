//! Which Calico release an image tag belongs to (`corpus/SOURCES.md`).
//!
//! Before Calico v2.4 the calico/node tag was not the Calico release (Calico
//! v2.3 shipped node v1.3.0, v2.0 node v1.0.x, v1.6 node v0.23.x); from v2.4
//! on it is. The CNI plugin and the controllers had their own numbering
//! until v3.1. Compatibility is judged per release line (`v2.6`), because
//! the tables only know the patch releases that were published in the docs.

use tollgate_sdk::image::ImageRef;
use tollgate_sdk::version::Version;

/// A Calico release line, `(major, minor)`.
pub type Series = (u64, u64);

/// The Calico release lines a component version shipped in (inclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Releases {
    pub first: Series,
    pub last: Series,
}

impl Releases {
    const fn one(series: Series) -> Self {
        Self {
            first: series,
            last: series,
        }
    }

    /// The release lines both shipped in, if any.
    pub fn intersect(self, other: Self) -> Option<Self> {
        let first = self.first.max(other.first);
        let last = self.last.min(other.last);
        (first <= last).then_some(Self { first, last })
    }
}

impl std::fmt::Display for Releases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "v{}.{}", self.first.0, self.first.1)?;
        if self.last != self.first {
            write!(f, "-v{}.{}", self.last.0, self.last.1)?;
        }
        Ok(())
    }
}

/// The Calico components whose versions the rules compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Component {
    Node,
    Cni,
    PolicyController,
    KubeControllers,
}

impl Component {
    /// The component an image is, by its last two path segments.
    pub fn of(image: &ImageRef<'_>) -> Option<Self> {
        Some(match image.name() {
            "calico/node" => Self::Node,
            "calico/cni" => Self::Cni,
            "calico/kube-policy-controller" => Self::PolicyController,
            "calico/kube-controllers" => Self::KubeControllers,
            _ => return None,
        })
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Node => "node",
            Self::Cni => "cni",
            Self::PolicyController | Self::KubeControllers => "controller",
        }
    }

    /// The release lines this component's version shipped in; `None` when
    /// the tables do not know it.
    pub fn releases(self, version: &Version) -> Option<Releases> {
        let line = version.series();
        match self {
            Self::Node => Some(Releases::one(node_release(version).series())),
            Self::Cni => lookup(CNI, line).or_else(|| identity_from_v3_1(version)),
            Self::PolicyController => lookup(POLICY_CONTROLLER, line),
            Self::KubeControllers => {
                lookup(KUBE_CONTROLLERS, line).or_else(|| identity_from_v3_1(version))
            }
        }
    }
}

/// calico/cni release line → Calico release lines (SOURCES.md table).
const CNI: &[(Series, Releases)] = &[
    ((1, 4), Releases::one((1, 6))),
    ((1, 5), Releases::one((2, 0))),
    (
        (1, 8),
        Releases {
            first: (2, 1),
            last: (2, 2),
        },
    ),
    ((1, 9), Releases::one((2, 3))),
    (
        (1, 10),
        Releases {
            first: (2, 4),
            last: (2, 5),
        },
    ),
    ((1, 11), Releases::one((2, 6))),
    ((2, 0), Releases::one((3, 0))),
];

/// calico/kube-policy-controller release line → Calico release lines.
const POLICY_CONTROLLER: &[(Series, Releases)] = &[
    ((0, 4), Releases::one((1, 6))),
    (
        (0, 5),
        Releases {
            first: (2, 0),
            last: (2, 1),
        },
    ),
    (
        (0, 6),
        Releases {
            first: (2, 2),
            last: (2, 3),
        },
    ),
    (
        (0, 7),
        Releases {
            first: (2, 4),
            last: (2, 5),
        },
    ),
];

/// calico/kube-controllers release line → Calico release lines (the
/// component only exists from Calico v2.6 on).
const KUBE_CONTROLLERS: &[(Series, Releases)] = &[
    ((1, 0), Releases::one((2, 6))),
    ((2, 0), Releases::one((3, 0))),
];

fn lookup(table: &[(Series, Releases)], line: Series) -> Option<Releases> {
    table.iter().find(|(l, _)| *l == line).map(|(_, r)| *r)
}

/// From Calico v3.1 on, every component is tagged with the Calico release.
fn identity_from_v3_1(version: &Version) -> Option<Releases> {
    (version.series() >= (3, 1)).then(|| Releases::one(version.series()))
}

/// Exact calico/node tags published before v2.4, with their Calico release.
/// `(major, minor, patch)`.
type Triple = (u64, u64, u64);

const NODE_EXACT: &[(Triple, Triple)] = &[
    ((0, 23, 1), (1, 6, 0)),
    ((1, 0, 2), (2, 0, 2)),
    ((1, 1, 3), (2, 1, 5)),
    ((1, 2, 1), (2, 2, 1)),
    ((1, 3, 0), (2, 3, 0)),
];

/// The Calico release a calico/node version belongs to.
///
/// Published tags map exactly; other v1.N.p tags map to Calico v2.N.0, and
/// every v0.x tag to v1.6.0 (the oldest release the guide supports: older
/// ones compare the same against every upgrade boundary). A pre-release
/// keeps its pre-release. From v2.0 on the tag is the release.
pub fn node_release(node: &Version) -> Version {
    if node.major >= 2 {
        return node.clone();
    }
    let key = (node.major, node.minor, node.patch);
    let (major, minor, patch) = NODE_EXACT
        .iter()
        .find(|(tag, _)| *tag == key)
        .map(|(_, release)| *release)
        .unwrap_or(if node.major == 0 {
            (1, 6, 0)
        } else {
            (2, node.minor, 0)
        });
    let release = Version::new(major, minor, patch);
    match node.pre_release() {
        Some(pre) => Version::parse(&format!("{release}-{pre}")).unwrap_or(release),
        None => release,
    }
}

/// Whether an upgrade from `old` to `new` crosses `boundary`: `old` below
/// it and `new` at or above it. Pre-releases count as their release (a
/// release candidate of the boundary release already carries its change).
/// An unknown `old` (a tag that is not a version) may be below anything, so
/// it counts as below: the rules that use this fail safe.
pub fn crosses(old: Option<&Version>, new: &Version, boundary: &Version) -> bool {
    let boundary = boundary.core();
    new.core() >= boundary && old.is_none_or(|o| o.core() < boundary)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn node_tags_before_v2_4_map_to_their_release() {
        assert_eq!(node_release(&v("v0.23.1")), v("v1.6.0"));
        assert_eq!(node_release(&v("v0.22.0")), v("v1.6.0"));
        assert_eq!(node_release(&v("v1.0.2")), v("v2.0.2"));
        assert_eq!(node_release(&v("v1.1.3")), v("v2.1.5"));
        assert_eq!(node_release(&v("v1.2.1")), v("v2.2.1"));
        assert_eq!(node_release(&v("v1.3.0")), v("v2.3.0"));
        assert_eq!(node_release(&v("v1.3.1")), v("v2.3.0"));
        assert_eq!(node_release(&v("v1.3.0-rc1")), v("v2.3.0-rc1"));
        assert_eq!(node_release(&v("v2.4.1")), v("v2.4.1"));
        assert_eq!(node_release(&v("v3.1.3")), v("v3.1.3"));
    }

    #[test]
    fn every_published_release_is_consistent() {
        // (node, cni, controller image, controller tag) per SOURCES.md row.
        let rows = [
            ("v0.23.1", "v1.4.4", Component::PolicyController, "v0.4.0"),
            ("v1.0.2", "v1.5.6", Component::PolicyController, "v0.5.2"),
            ("v1.1.3", "v1.8.0", Component::PolicyController, "v0.5.4"),
            ("v1.2.1", "v1.8.3", Component::PolicyController, "v0.6.0"),
            ("v1.3.0", "v1.9.1", Component::PolicyController, "v0.6.0"),
            ("v2.4.1", "v1.10.0", Component::PolicyController, "v0.7.0"),
            ("v2.5.1", "v1.10.0", Component::PolicyController, "v0.7.0"),
            ("v2.6.2", "v1.11.0", Component::KubeControllers, "v1.0.0"),
            ("v2.6.5", "v1.11.2", Component::KubeControllers, "v1.0.2"),
            ("v3.0.4", "v2.0.3", Component::KubeControllers, "v2.0.2"),
            ("v3.1.3", "v3.1.3", Component::KubeControllers, "v3.1.3"),
        ];
        for (node, cni, ctrl, ctrl_tag) in rows {
            let n = Component::Node.releases(&v(node)).unwrap();
            let c = Component::Cni.releases(&v(cni)).unwrap();
            let k = ctrl.releases(&v(ctrl_tag)).unwrap();
            assert!(
                n.intersect(c).and_then(|x| x.intersect(k)).is_some(),
                "{node} {cni} {ctrl_tag}"
            );
        }
    }

    #[test]
    fn skew_is_detected_across_lines() {
        let node = Component::Node.releases(&v("v2.6.5")).unwrap();
        let old_ctrl = Component::PolicyController.releases(&v("v0.7.0")).unwrap();
        assert_eq!(node.intersect(old_ctrl), None);
        assert_eq!(old_ctrl.to_string(), "v2.4-v2.5");
        assert_eq!(node.to_string(), "v2.6");
        assert_eq!(Component::Cni.releases(&v("v1.6.0")), None);
        assert_eq!(
            Component::KubeControllers.releases(&v("v3.2.0")),
            Some(Releases::one((3, 2)))
        );
        assert_eq!(Component::PolicyController.releases(&v("v3.2.0")), None);
    }

    #[test]
    fn components_by_image_name() {
        assert_eq!(
            Component::of(&ImageRef::parse("quay.io/calico/node:v1")),
            Some(Component::Node)
        );
        assert_eq!(
            Component::of(&ImageRef::parse("calico/cni")),
            Some(Component::Cni)
        );
        assert_eq!(Component::of(&ImageRef::parse("calico/typha:v0.6.2")), None);
        assert_eq!(Component::KubeControllers.label(), "controller");
    }

    #[test]
    fn crossing_boundaries() {
        let b = v("v2.5.0");
        assert!(crosses(Some(&v("v2.4.1")), &v("v2.5.1"), &b));
        assert!(crosses(Some(&v("v2.4.1")), &v("v2.5.0-rc1"), &b));
        assert!(!crosses(Some(&v("v2.5.0-rc1")), &v("v2.5.1"), &b));
        assert!(!crosses(Some(&v("v2.5.1")), &v("v2.6.5"), &b));
        assert!(!crosses(Some(&v("v2.3.0")), &v("v2.4.1"), &b));
        assert!(crosses(None, &v("v2.6.5"), &b));
        assert!(!crosses(None, &v("v2.4.1"), &b));
        // A downgrade never crosses upwards.
        assert!(!crosses(Some(&v("v2.5.1")), &v("v2.4.1"), &b));
    }
}
