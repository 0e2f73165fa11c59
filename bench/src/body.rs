//! Request bodies: AdmissionReviews captured from a real kube-apiserver
//! (`bench/bodies/`, `testdata/reviews/`), compiled into the binary so the
//! bench needs no files beside it, or read from `--review` files.

use std::path::Path;

use anyhow::Context;
use bytes::Bytes;

/// A review as the API server POSTs it.
#[derive(Debug, Clone)]
pub struct Body {
    /// What it is, for the report.
    pub name: String,
    /// The AdmissionReview, compact, without the capture's `query` member.
    pub bytes: Bytes,
    /// The call's query string (`timeout=10s`); empty if the file has none.
    pub query: String,
    /// `request.uid`: every answer must echo it.
    pub uid: String,
}

/// A capture as stored: the review plus a top-level `query` member holding
/// the query string the API server used.
macro_rules! capture {
    ($name:expr, $path:literal) => {
        (
            $name,
            include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/", $path)),
        )
    };
}

pub const DEPLOYMENT_UPDATE: (&str, &str) = capture!(
    "unrelated Deployment UPDATE (storefront, nginx)",
    "bodies/deployment-update.json"
);
pub const CALICO_NODE_UPDATE: (&str, &str) = capture!(
    "captured calico-node DaemonSet UPDATE, v2.4 -> v2.5 KDD",
    "../testdata/reviews/02-upgrade-v2.4-to-v2.5-kdd--validate--update-daemonset-calico-node.json"
);
pub const CALICO_NODE_V1_SEMANTICS: (&str, &str) = capture!(
    "calico-node DaemonSet UPDATE, v2.2 -> v2.3 KDD",
    "bodies/calico-node-v2.2-to-v2.3-kdd.json"
);
pub const POD_CREATE: (&str, &str) =
    capture!("Pod CREATE, not privileged", "bodies/pod-create.json");
pub const POD_CREATE_PRIVILEGED: (&str, &str) = capture!(
    "Pod CREATE, privileged container",
    "bodies/pod-create-privileged.json"
);

impl Body {
    /// Parses a capture (`(name, text)` as the constants above hold).
    pub fn parse((name, text): (&str, &str)) -> anyhow::Result<Self> {
        let body = Self::from_text(name, text)?;
        if body.query.is_empty() {
            anyhow::bail!("{name}: no query member");
        }
        Ok(body)
    }

    /// Reads a `--review` file (a `query` member is optional there).
    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read --review {}", path.display()))?;
        let name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        Self::from_text(&name, &text).with_context(|| format!("--review {}", path.display()))
    }

    fn from_text(name: &str, text: &str) -> anyhow::Result<Self> {
        let mut review: serde_json::Value =
            serde_json::from_str(text).with_context(|| format!("{name}: not JSON"))?;
        let query = review
            .as_object_mut()
            .and_then(|o| o.remove("query"))
            .and_then(|q| q.as_str().map(str::to_owned))
            .unwrap_or_default();
        let uid = review["request"]["uid"]
            .as_str()
            .filter(|u| !u.is_empty())
            .with_context(|| format!("{name}: no request.uid"))?
            .to_owned();
        Ok(Self {
            name: name.to_owned(),
            bytes: serde_json::to_vec(&review)?.into(),
            query,
            uid,
        })
    }

    /// Size for the report, in KB (1000 bytes, as the issue counts).
    pub fn kb(&self) -> f64 {
        self.bytes.len() as f64 / 1000.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_capture_parses_with_query_and_uid() {
        for capture in [
            DEPLOYMENT_UPDATE,
            CALICO_NODE_UPDATE,
            CALICO_NODE_V1_SEMANTICS,
            POD_CREATE,
            POD_CREATE_PRIVILEGED,
        ] {
            let body = Body::parse(capture).unwrap();
            assert!(body.query.starts_with("timeout="), "{}", body.name);
            assert!(!body.bytes.windows(8).any(|w| w == b"\"query\":"));
        }
    }

    #[test]
    fn production_size_bodies_carry_what_production_carries() {
        for capture in [DEPLOYMENT_UPDATE, CALICO_NODE_UPDATE] {
            let body = Body::parse(capture).unwrap();
            assert!(
                (18.0..24.0).contains(&body.kb()),
                "{}: {}",
                body.name,
                body.kb()
            );
            let review: serde_json::Value = serde_json::from_slice(&body.bytes).unwrap();
            for object in ["object", "oldObject"] {
                let o = &review["request"][object];
                assert!(o["metadata"]["managedFields"].is_array());
                assert!(o["status"].is_object());
                assert!(
                    o["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
                        .is_string()
                );
            }
        }
    }

    #[test]
    fn missing_parts_are_named() {
        let no_query = Body::parse(("x", r#"{"request":{"uid":"u"}}"#)).unwrap_err();
        assert!(no_query.to_string().contains("no query member"));
        let no_uid = Body::parse(("x", r#"{"query":"timeout=1s","request":{}}"#)).unwrap_err();
        assert!(no_uid.to_string().contains("no request.uid"));
        assert!(Body::parse(("x", "{")).is_err());
    }

    #[test]
    fn review_files() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("r.json");
        std::fs::write(&file, r#"{"request":{"uid":"u-1"}}"#).unwrap();
        let body = Body::read(&file).unwrap();
        assert_eq!(
            (body.name.as_str(), body.query.as_str(), body.uid.as_str()),
            ("r.json", "", "u-1")
        );
        let missing = Body::read(&dir.path().join("none.json")).unwrap_err();
        assert!(format!("{missing:#}").contains("cannot read --review"));
        std::fs::write(&file, "[]").unwrap();
        assert!(format!("{:#}", Body::read(&file).unwrap_err()).contains("no request.uid"));
    }
}
