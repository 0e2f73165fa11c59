//! An answer of the built-in pack, taken apart by policy: which policies
//! denied (and with what message) and which warned.

use std::path::Path;
use std::sync::OnceLock;

use serde_json::Value;

use super::{Server, patch_of, response};

/// The ids of the built-in pack's default configuration, in order.
pub fn builtin_ids() -> &'static [String] {
    static IDS: OnceLock<Vec<String>> = OnceLock::new();
    IDS.get_or_init(|| {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies-wasm/calico/policies.yaml");
        let text = std::fs::read_to_string(path).expect("policies.yaml");
        let policies: Vec<Value> = serde_yaml_ng::from_str(&text).expect("a YAML list");
        policies
            .iter()
            .map(|p| p["id"].as_str().expect("an id").to_owned())
            .collect()
    })
}

/// One answer, checked to echo the request's uid and apiVersion.
#[derive(Debug)]
pub struct Answer {
    /// What the case was, for failure messages.
    pub case: String,
    pub allowed: bool,
    /// `(policy id, message)` of each denial, in answer order.
    pub denials: Vec<(String, String)>,
    /// `(policy id, text)` of each warning.
    pub warnings: Vec<(String, String)>,
    /// The decoded JSONPatch, if any.
    pub patch: Option<Value>,
    pub response: Value,
}

impl Answer {
    pub fn of(case: &str, request: &Value, answer: &Value) -> Self {
        let response = response(request, answer).clone();
        let allowed = response["allowed"]
            .as_bool()
            .unwrap_or_else(|| panic!("{case}: no allowed flag: {answer}"));
        let message = response["status"]["message"].as_str().unwrap_or_default();
        if !allowed {
            let code = response["status"]["code"].as_u64().unwrap_or_default();
            assert!(code >= 400, "{case}: denial with code {code}: {answer}");
        }
        let warnings = response["warnings"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|w| {
                let w = w.as_str().expect("a warning string");
                assert!(w.chars().count() <= 256, "{case}: long warning {w}");
                split_id(w).unwrap_or_else(|| panic!("{case}: warning without a policy id: {w}"))
            })
            .collect();
        Self {
            case: case.to_owned(),
            allowed,
            denials: split_message(message),
            warnings,
            patch: patch_of(&response),
            response,
        }
    }

    /// The message of `id`'s denial.
    pub fn denial(&self, id: &str) -> &str {
        self.denials
            .iter()
            .find(|(p, _)| p == id)
            .map(|(_, m)| m.as_str())
            .unwrap_or_else(|| panic!("{}: {id} did not deny: {:#}", self.case, self.response))
    }

    /// The text of `id`'s first warning.
    pub fn warning(&self, id: &str) -> &str {
        self.warnings
            .iter()
            .find(|(p, _)| p == id)
            .map(|(_, m)| m.as_str())
            .unwrap_or_else(|| panic!("{}: {id} did not warn: {:#}", self.case, self.response))
    }

    /// The review is denied and `id`'s message contains every needle.
    pub fn assert_denied(&self, id: &str, needles: &[&str]) -> &Self {
        assert!(!self.allowed, "{}: allowed: {:#}", self.case, self.response);
        assert_contains(&self.case, self.denial(id), needles);
        self
    }

    /// The review is allowed with a warning of `id` containing every needle.
    pub fn assert_warned(&self, id: &str, needles: &[&str]) -> &Self {
        assert!(self.allowed, "{}: denied: {:#}", self.case, self.response);
        assert_contains(&self.case, self.warning(id), needles);
        self
    }

    /// `id` neither denied nor warned.
    pub fn assert_silent(&self, id: &str) -> &Self {
        let said = self
            .denials
            .iter()
            .chain(&self.warnings)
            .any(|(p, _)| p == id);
        assert!(!said, "{}: {id} spoke: {:#}", self.case, self.response);
        self
    }

    /// Allowed without a patch.
    pub fn assert_allowed(&self) -> &Self {
        assert!(self.allowed, "{}: denied: {:#}", self.case, self.response);
        assert!(
            self.patch.is_none(),
            "{}: patched: {:#}",
            self.case,
            self.response
        );
        self
    }
}

fn assert_contains(case: &str, text: &str, needles: &[&str]) {
    for needle in needles {
        assert!(text.contains(needle), "{case}: {needle:?} not in {text:?}");
    }
}

/// `("id", "rest")` for `"id: rest"` when `id` is a built-in policy.
fn split_id(text: &str) -> Option<(String, String)> {
    builtin_ids().iter().find_map(|id| {
        let rest = text.strip_prefix(id.as_str())?.strip_prefix(": ")?;
        Some((id.clone(), rest.to_owned()))
    })
}

/// A denial message is the denying policies' messages joined with `"; "`,
/// each starting with its id.
fn split_message(message: &str) -> Vec<(String, String)> {
    if message.is_empty() {
        return Vec::new();
    }
    let mut starts: Vec<usize> = vec![0];
    for id in builtin_ids() {
        let marker = format!("; {id}: ");
        starts.extend(message.match_indices(&marker).map(|(i, _)| i + 2));
    }
    starts.sort_unstable();
    starts.dedup();
    let mut out = Vec::new();
    for (n, &start) in starts.iter().enumerate() {
        let end = starts.get(n + 1).map_or(message.len(), |next| next - 2);
        let part = &message[start..end];
        out.push(split_id(part).unwrap_or_else(|| panic!("no policy id at the start of {part:?}")));
    }
    out
}

impl Server {
    /// POSTs `request` to `path` and takes the answer apart.
    pub async fn verdict(&self, case: &str, path: &str, request: &Value) -> Answer {
        let answer = self.review(path, request).await;
        Answer::of(case, request, &answer)
    }
}
