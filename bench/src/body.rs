//! A captured AdmissionReview as a request body.

use std::path::Path;

use anyhow::Context;

/// The files in `../shared/reviews` carry the query string the API server
/// used in a top-level `query` member; it is sent as the query, not the body.
pub struct CapturedReview {
    pub bytes: bytes::Bytes,
    pub query: Option<String>,
    pub uid: String,
}

impl CapturedReview {
    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read(path).with_context(|| format!("read {}", path.display()))?;
        let mut review: serde_json::Value =
            serde_json::from_slice(&text).with_context(|| format!("parse {}", path.display()))?;
        let query = review
            .as_object_mut()
            .and_then(|o| o.remove("query"))
            .and_then(|q| q.as_str().map(str::to_owned));
        let uid = review["request"]["uid"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        Ok(Self {
            bytes: serde_json::to_vec(&review)?.into(),
            query,
            uid,
        })
    }

    pub fn query_suffix(&self) -> String {
        self.query
            .as_deref()
            .map(|q| format!("?{q}"))
            .unwrap_or_default()
    }
}
