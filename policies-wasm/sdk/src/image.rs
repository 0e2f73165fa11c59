//! Container image references: `[registry[:port]/]path[:tag][@digest]`.
//!
//! Parsing never fails: rules must cope with whatever a manifest contains,
//! including the unrendered `quay.io/calico/ctl:{% include version
//! component="calico/node" %}` that Calico really published. Such a tag is
//! kept as written and [`ImageRef::version`] reports that it is not a version.
//!
//! The registry is only recognised as the first `/`-separated component when
//! it looks like a host (`quay.io`, `localhost`, `localhost:5000`), as Docker
//! does; so `localhost:5000/calico/node` has no tag, and a `/` or `:` inside a
//! tag is never mistaken for a path or registry separator (the first `:`
//! after the registry starts the tag, because path components cannot hold
//! one).

use crate::version::{Version, VersionError};

/// A borrowed, parsed image reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageRef<'a> {
    /// The reference as written.
    pub raw: &'a str,
    /// `quay.io`, `localhost:5000`; `None` for Docker Hub shorthand.
    pub registry: Option<&'a str>,
    /// `calico/node`, `library/busybox`, `busybox`.
    pub path: &'a str,
    pub tag: Option<&'a str>,
    /// `sha256:...` without the `@`.
    pub digest: Option<&'a str>,
}

impl<'a> ImageRef<'a> {
    pub fn parse(raw: &'a str) -> Self {
        let text = raw.trim();
        let (registry, rest) = match text.split_once('/') {
            Some((first, rest)) if is_registry(first) => (Some(first), rest),
            _ => (None, text),
        };
        let (name, digest) = match rest.split_once('@') {
            Some((name, digest)) => (name, Some(digest)),
            None => (rest, None),
        };
        let (path, tag) = match name.split_once(':') {
            Some((path, tag)) => (path, Some(tag)),
            None => (name, None),
        };
        Self {
            raw,
            registry,
            path,
            tag,
            digest,
        }
    }

    /// The last two path segments (`calico/node` for
    /// `quay.io/calico/node:v2.6.5`), or the path when it has only one.
    pub fn name(&self) -> &'a str {
        match self.path.rmatch_indices('/').nth(1) {
            Some((i, _)) => &self.path[i + 1..],
            None => self.path,
        }
    }

    /// Whether the repository ends in `suffix`, on segment boundaries
    /// (`calico/node` matches `quay.io/calico/node`, not `xcalico/node`).
    pub fn is(&self, suffix: &str) -> bool {
        self.path == suffix
            || self
                .path
                .strip_suffix(suffix)
                .is_some_and(|head| head.ends_with('/'))
    }

    /// The organisation: the second-to-last path segment (`calico`).
    pub fn owner(&self) -> Option<&'a str> {
        self.name().split_once('/').map(|(owner, _)| owner)
    }

    /// The tag as a Calico version.
    pub fn version(&self) -> Result<Version, ImageVersionError<'a>> {
        let tag = self.tag.ok_or(ImageVersionError::NoTag)?;
        if tag == "latest" {
            return Err(ImageVersionError::Latest);
        }
        Version::parse(tag).map_err(|error| ImageVersionError::NotAVersion { tag, error })
    }

    /// The registry with Docker Hub's default spelled out, for comparing
    /// references written differently (`calico/node` and
    /// `docker.io/calico/node`).
    pub fn canonical_registry(&self) -> &'a str {
        match self.registry {
            None | Some("index.docker.io" | "registry-1.docker.io") => "docker.io",
            Some(r) => r,
        }
    }

    /// The path with Docker Hub's implicit `library/` removed.
    fn canonical_path(&self) -> &'a str {
        if self.canonical_registry() == "docker.io" {
            self.path.strip_prefix("library/").unwrap_or(self.path)
        } else {
            self.path
        }
    }

    /// Whether two references name the same image: same registry, path and
    /// tag after Docker Hub defaults (a missing tag means `latest`), and the
    /// same digest when both carry one.
    pub fn same_image(&self, other: &ImageRef<'_>) -> bool {
        let digests_agree = match (self.digest, other.digest) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        };
        self.canonical_registry() == other.canonical_registry()
            && self.canonical_path() == other.canonical_path()
            && self.tag.unwrap_or("latest") == other.tag.unwrap_or("latest")
            && digests_agree
    }
}

impl std::fmt::Display for ImageRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.raw)
    }
}

fn is_registry(first: &str) -> bool {
    let (host, port) = match first.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (first, None),
    };
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    host_ok && port_ok && (host.contains('.') || port.is_some() || host == "localhost")
}

/// Why an image's tag is not a usable version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageVersionError<'a> {
    /// No tag (Docker then pulls `latest`).
    NoTag,
    /// The floating `latest` tag.
    Latest,
    /// A tag that is not `vX.Y.Z[-pre]`.
    NotAVersion { tag: &'a str, error: VersionError },
}

impl std::fmt::Display for ImageVersionError<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NoTag => f.write_str("has no tag"),
            Self::Latest => f.write_str("uses the floating tag latest"),
            Self::NotAVersion { tag, error } => {
                write!(f, "has tag {tag:?}, which is not a version ({error})")
            }
        }
    }
}

impl std::error::Error for ImageVersionError<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_path_tag_digest() {
        let i = ImageRef::parse("quay.io/calico/node:v2.6.5");
        assert_eq!(i.registry, Some("quay.io"));
        assert_eq!(i.path, "calico/node");
        assert_eq!(i.name(), "calico/node");
        assert_eq!(i.tag, Some("v2.6.5"));
        assert_eq!(i.digest, None);
        assert_eq!(i.version(), Ok(Version::new(2, 6, 5)));
        assert_eq!(i.owner(), Some("calico"));
    }

    #[test]
    fn registry_less_and_deep_paths() {
        let i = ImageRef::parse("calico/node:v1.0.2");
        assert_eq!(
            (i.registry, i.path, i.tag),
            (None, "calico/node", Some("v1.0.2"))
        );
        let i =
            ImageRef::parse("registry.example.com:5000/mirror/quay/calico/cni:v3.1.3@sha256:abc");
        assert_eq!(i.registry, Some("registry.example.com:5000"));
        assert_eq!(i.name(), "calico/cni");
        assert!(i.is("calico/cni"));
        assert_eq!(i.tag, Some("v3.1.3"));
        assert_eq!(i.digest, Some("sha256:abc"));
    }

    #[test]
    fn a_registry_port_is_not_a_tag() {
        let i = ImageRef::parse("localhost:5000/calico/node");
        assert_eq!(i.registry, Some("localhost:5000"));
        assert_eq!(i.path, "calico/node");
        assert_eq!(i.tag, None);
        assert_eq!(i.version(), Err(ImageVersionError::NoTag));
        let i = ImageRef::parse("localhost/calico/node:v3.1.3");
        assert_eq!((i.registry, i.tag), (Some("localhost"), Some("v3.1.3")));
    }

    #[test]
    fn digest_without_tag() {
        let i = ImageRef::parse("calico/node@sha256:0123");
        assert_eq!(
            (i.path, i.tag, i.digest),
            ("calico/node", None, Some("sha256:0123"))
        );
        assert_eq!(i.version(), Err(ImageVersionError::NoTag));
    }

    #[test]
    fn unrendered_liquid_tag_from_the_v2_0_kdd_manifest() {
        let raw = r#"quay.io/calico/ctl:{% include version component="calico/node" %}"#;
        let i = ImageRef::parse(raw);
        assert_eq!(i.registry, Some("quay.io"));
        assert_eq!(i.name(), "calico/ctl");
        assert_eq!(
            i.tag,
            Some(r#"{% include version component="calico/node" %}"#)
        );
        assert!(matches!(
            i.version(),
            Err(ImageVersionError::NotAVersion {
                error: VersionError::MissingV,
                ..
            })
        ));
        assert!(
            i.version()
                .unwrap_err()
                .to_string()
                .contains("not a version")
        );
        // Without a registry the `/` inside the tag still does not split the path.
        let i = ImageRef::parse(r#"node:{% x/y %}"#);
        assert_eq!(
            (i.registry, i.path, i.tag),
            (None, "node", Some("{% x/y %}"))
        );
    }

    #[test]
    fn latest_and_odd_inputs_never_panic() {
        assert_eq!(
            ImageRef::parse("calico/node:latest").version(),
            Err(ImageVersionError::Latest)
        );
        for raw in [
            "", ":", "/", "@", "a:b:c", "//x", "x@", ":v1.0.0", "quay.io/", "é/ü:ß",
        ] {
            let i = ImageRef::parse(raw);
            let _ = (i.name(), i.version(), i.owner(), i.is("calico/node"));
        }
        assert_eq!(ImageRef::parse("busybox").name(), "busybox");
        assert_eq!(ImageRef::parse("busybox").owner(), None);
    }

    #[test]
    fn suffix_matching_respects_segments() {
        let i = ImageRef::parse("quay.io/xcalico/node:v1.0.0");
        assert!(!i.is("calico/node"));
        assert!(i.is("node"));
        assert!(ImageRef::parse("calico/node").is("calico/node"));
        assert!(!ImageRef::parse("calico/node-extra:v1.0.0").is("calico/node"));
    }

    #[test]
    fn same_image_applies_docker_hub_defaults() {
        let a = ImageRef::parse("calico/node:v2.5.1");
        assert!(a.same_image(&ImageRef::parse("docker.io/calico/node:v2.5.1")));
        assert!(!a.same_image(&ImageRef::parse("quay.io/calico/node:v2.5.1")));
        assert!(!a.same_image(&ImageRef::parse("calico/node:v2.5.0")));
        assert!(
            ImageRef::parse("busybox")
                .same_image(&ImageRef::parse("docker.io/library/busybox:latest"))
        );
        let d = ImageRef::parse("quay.io/calico/node:v2.5.1@sha256:aa");
        assert!(d.same_image(&ImageRef::parse("quay.io/calico/node:v2.5.1")));
        assert!(!d.same_image(&ImageRef::parse("quay.io/calico/node:v2.5.1@sha256:bb")));
    }
}
