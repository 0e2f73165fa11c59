//! Calico release and image versions: `v` + semantic version.
//!
//! Calico tags its images `vMAJOR.MINOR.PATCH` with optional pre-releases
//! (`v3.0.0-alpha1-rc1`, `v2.6.0-rc1`, `v1.0.0-beta1`). Ordering follows
//! semver: a pre-release sorts before its release, pre-release identifiers
//! (split on `.`) compare numerically when both are numeric and as ASCII
//! otherwise, and build metadata (`+...`) is ignored.
//!
//! Two-part versions (`v2.6`) are rejected on purpose: a tag that names a
//! release line rather than a release is not a pinned image, and every
//! version in the upgrade guide and the corpus has three parts.
//!
//! Not the `semver` crate: it would still need this `v`-prefix and error
//! layer, and it differs where tags are concerned (it refuses numeric
//! pre-release identifiers with leading zeros, which this accepts, and its
//! equality counts build metadata, which this ignores), while adding a
//! dependency to every guest module for the ~25 lines of pre-release
//! ordering it would replace.

use std::cmp::Ordering;
use std::fmt;

/// A parsed `vX.Y.Z[-pre][+build]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Version {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
    /// The pre-release without its leading `-`; empty for a release.
    pre: String,
}

/// Why a string is not a version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionError {
    /// Empty input.
    Empty,
    /// Calico versions start with `v`.
    MissingV,
    /// Fewer or more than three dot-separated numbers (`v2.6`, `v1.2.3.4`).
    Parts(usize),
    /// A part that is not a number, or has a leading zero.
    Number(String),
    /// An empty or invalid pre-release identifier.
    PreRelease(String),
}

impl fmt::Display for VersionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("empty version"),
            Self::MissingV => f.write_str("a Calico version starts with 'v'"),
            Self::Parts(n) => write!(f, "expected vMAJOR.MINOR.PATCH, found {n} part(s)"),
            Self::Number(p) => write!(f, "{p:?} is not a version number"),
            Self::PreRelease(p) => write!(f, "{p:?} is not a valid pre-release"),
        }
    }
}

impl std::error::Error for VersionError {}

impl Version {
    /// A release version (no pre-release).
    pub const fn new(major: u64, minor: u64, patch: u64) -> Self {
        Self {
            major,
            minor,
            patch,
            pre: String::new(),
        }
    }

    /// Parses `vX.Y.Z[-pre][+build]`.
    pub fn parse(text: &str) -> Result<Self, VersionError> {
        if text.is_empty() {
            return Err(VersionError::Empty);
        }
        let rest = text.strip_prefix('v').ok_or(VersionError::MissingV)?;
        let rest = rest.split_once('+').map_or(rest, |(core, _build)| core);
        let (core, pre) = match rest.split_once('-') {
            Some((core, pre)) => (core, Some(pre)),
            None => (rest, None),
        };
        let parts = core.split('.').count();
        if parts != 3 {
            return Err(VersionError::Parts(parts));
        }
        let mut numbers = core.split('.').map(number);
        let (major, minor, patch) = (
            numbers.next().unwrap_or(Err(VersionError::Empty))?,
            numbers.next().unwrap_or(Err(VersionError::Empty))?,
            numbers.next().unwrap_or(Err(VersionError::Empty))?,
        );
        let pre = match pre {
            None => String::new(),
            Some(pre) => {
                let valid = pre.split('.').all(|id| {
                    !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                });
                if !valid {
                    return Err(VersionError::PreRelease(pre.to_owned()));
                }
                pre.to_owned()
            }
        };
        Ok(Self {
            major,
            minor,
            patch,
            pre,
        })
    }

    /// The pre-release (`rc1`, `alpha1-rc1`), if any.
    pub fn pre_release(&self) -> Option<&str> {
        (!self.pre.is_empty()).then_some(self.pre.as_str())
    }

    pub fn is_pre_release(&self) -> bool {
        !self.pre.is_empty()
    }

    /// The same version without its pre-release: `v2.5.0-rc1` → `v2.5.0`.
    ///
    /// Upgrade boundaries compare cores, because a release candidate of the
    /// boundary release already carries the change the boundary is about.
    pub fn core(&self) -> Self {
        Self::new(self.major, self.minor, self.patch)
    }

    /// `(major, minor)`: the release line.
    pub fn series(&self) -> (u64, u64) {
        (self.major, self.minor)
    }
}

fn number(part: &str) -> Result<u64, VersionError> {
    let bad = || VersionError::Number(part.to_owned());
    if part.is_empty() || (part.len() > 1 && part.starts_with('0')) {
        return Err(bad());
    }
    if !part.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    part.parse().map_err(|_| bad())
}

/// Semver precedence of two pre-release strings (both non-empty).
fn compare_pre(a: &str, b: &str) -> Ordering {
    let mut left = a.split('.');
    let mut right = b.split('.');
    loop {
        match (left.next(), right.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => {
                let numeric = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
                let ord = match (numeric(x), numeric(y)) {
                    (true, true) => x.len().cmp(&y.len()).then_with(|| x.cmp(y)),
                    (true, false) => Ordering::Less,
                    (false, true) => Ordering::Greater,
                    (false, false) => x.cmp(y),
                };
                if ord != Ordering::Equal {
                    return ord;
                }
            }
        }
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.major, self.minor, self.patch)
            .cmp(&(other.major, other.minor, other.patch))
            .then_with(|| match (self.pre.is_empty(), other.pre.is_empty()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => compare_pre(&self.pre, &other.pre),
            })
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}.{}.{}", self.major, self.minor, self.patch)?;
        if !self.pre.is_empty() {
            write!(f, "-{}", self.pre)?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Version {
    type Err = VersionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Settings carry versions as strings (`"v2.6.5"`), checked at load time.
impl<'de> serde::Deserialize<'de> for Version {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(d)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl serde::Serialize for Version {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn parses_releases_and_pre_releases() {
        assert_eq!(v("v2.6.5"), Version::new(2, 6, 5));
        assert_eq!(v("v3.0.0-alpha1-rc1").pre_release(), Some("alpha1-rc1"));
        assert_eq!(v("v2.6.0-rc1").pre_release(), Some("rc1"));
        assert_eq!(v("v1.0.0-beta1").to_string(), "v1.0.0-beta1");
        assert_eq!(v("v1.2.3+build.7"), Version::new(1, 2, 3));
        assert_eq!(v("v1.0.0-rc.1").pre_release(), Some("rc.1"));
    }

    #[test]
    fn rejects_what_is_not_a_version_with_typed_errors() {
        assert_eq!(Version::parse(""), Err(VersionError::Empty));
        assert_eq!(Version::parse("2.6.5"), Err(VersionError::MissingV));
        assert_eq!(Version::parse("latest"), Err(VersionError::MissingV));
        assert_eq!(Version::parse("v2.6"), Err(VersionError::Parts(2)));
        assert_eq!(Version::parse("v1.2.3.4"), Err(VersionError::Parts(4)));
        assert!(matches!(
            Version::parse("v1.x.3"),
            Err(VersionError::Number(_))
        ));
        assert!(matches!(
            Version::parse("v01.2.3"),
            Err(VersionError::Number(_))
        ));
        assert!(matches!(
            Version::parse("v1..3"),
            Err(VersionError::Number(_))
        ));
        assert!(matches!(
            Version::parse("v1.2.3-"),
            Err(VersionError::PreRelease(_))
        ));
        assert!(matches!(
            Version::parse("v1.2.3-rc..1"),
            Err(VersionError::PreRelease(_))
        ));
        assert!(matches!(
            Version::parse("v{% include version %}"),
            Err(VersionError::Parts(_) | VersionError::Number(_))
        ));
        assert!(matches!(
            Version::parse("v99999999999999999999.0.0"),
            Err(VersionError::Number(_))
        ));
    }

    #[test]
    fn orders_per_semver() {
        let ordered = [
            "v0.23.1",
            "v1.0.0-alpha1-rc1",
            "v1.0.0-beta1",
            "v1.0.0-rc.2",
            "v1.0.0-rc.10",
            "v1.0.0-rc1",
            "v1.0.0",
            "v1.3.0",
            "v2.4.1",
            "v2.6.0-rc1",
            "v2.6.0",
            "v2.6.5",
            "v2.10.0",
            "v3.0.0-alpha1",
            "v3.0.0-alpha1-rc1",
            "v3.0.0",
        ];
        for pair in ordered.windows(2) {
            assert!(v(pair[0]) < v(pair[1]), "{} < {}", pair[0], pair[1]);
        }
        // Numeric identifiers sort before alphanumeric ones.
        assert!(v("v1.0.0-1") < v("v1.0.0-a"));
        // More identifiers sort after a shared prefix.
        assert!(v("v1.0.0-rc") < v("v1.0.0-rc.1"));
        // Build metadata does not count.
        assert_eq!(v("v1.0.0+a").cmp(&v("v1.0.0+b")), Ordering::Equal);
    }

    #[test]
    fn core_and_series() {
        assert_eq!(v("v2.5.0-rc1").core(), v("v2.5.0"));
        assert_eq!(v("v2.6.5").series(), (2, 6));
        assert!(!v("v2.6.5").is_pre_release());
    }

    #[test]
    fn deserialises_from_settings_strings() {
        let parsed: Version = serde_json::from_str("\"v2.6.5\"").unwrap();
        assert_eq!(parsed, Version::new(2, 6, 5));
        let err = serde_json::from_str::<Version>("\"2.6\"").unwrap_err();
        assert!(err.to_string().contains("starts with 'v'"));
        assert_eq!(serde_json::to_string(&parsed).unwrap(), "\"v2.6.5\"");
    }
}
