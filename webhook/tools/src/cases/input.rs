//! A case's input as the body the API server would POST: an
//! AdmissionReview, from a file or inline, from a whole review or just its
//! request.

use std::path::Path;

use serde_json::{Value, json};

/// The AdmissionReview body of `request` (a path relative to `base`, or the
/// document itself). A bare AdmissionRequest is wrapped in an
/// `admission.k8s.io/v1` review and gets a uid if it has none; a whole
/// review is used as written (a captured review's extra members, such as
/// `query`, are carried along and ignored).
pub fn review_body(request: &Value, base: &Path, case: &str) -> Result<Vec<u8>, String> {
    let document = match request {
        Value::String(path) => read_document(&base.join(path))?,
        Value::Object(_) => request.clone(),
        other => {
            return Err(format!(
                "request must be a file name or a mapping (an AdmissionRequest or AdmissionReview), not {}",
                kind_of(other)
            ));
        }
    };
    let review = if document.get("kind").and_then(Value::as_str) == Some("AdmissionReview") {
        document
    } else {
        let mut request = document;
        let Some(fields) = request.as_object_mut() else {
            return Err(format!(
                "the request is {}, not an AdmissionRequest",
                kind_of(&request)
            ));
        };
        if fields.get("uid").is_none_or(Value::is_null) {
            fields.insert("uid".to_owned(), json!(format!("tollgate-test: {case}")));
        }
        json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request})
    };
    serde_json::to_vec(&review).map_err(|e| e.to_string())
}

/// A JSON or YAML file (`.yaml`/`.yml` are read as YAML, anything else as
/// JSON, the form reviews are captured in).
fn read_document(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read request {}: {e}", path.display()))?;
    let yaml = matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    );
    let parsed = if yaml {
        serde_saphyr::from_str::<Value>(&text).map_err(|e| e.without_snippet().to_string())
    } else {
        serde_json::from_str::<Value>(&text).map_err(|e| e.to_string())
    };
    parsed.map_err(|e| format!("request {} is not valid: {e}", path.display()))
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "empty",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(request: Value, base: &Path) -> Result<Value, String> {
        review_body(&request, base, "c1").map(|b| serde_json::from_slice(&b).unwrap())
    }

    #[test]
    fn a_request_is_wrapped_and_given_a_uid() {
        let review = body(json!({"operation": "CREATE"}), Path::new(".")).unwrap();
        assert_eq!(review["kind"], "AdmissionReview");
        assert_eq!(review["apiVersion"], "admission.k8s.io/v1");
        assert_eq!(review["request"]["uid"], "tollgate-test: c1");
        let kept = body(json!({"uid": "u1"}), Path::new(".")).unwrap();
        assert_eq!(kept["request"]["uid"], "u1");
    }

    #[test]
    fn files_are_read_relative_to_the_case_file() {
        let dir = tempfile::tempdir().unwrap();
        let review = json!({"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview",
                            "request": {"uid": "u"}, "query": "timeout=10s"});
        std::fs::write(dir.path().join("r.json"), review.to_string()).unwrap();
        std::fs::write(dir.path().join("q.yaml"), "uid: y\noperation: DELETE\n").unwrap();
        assert_eq!(body(json!("r.json"), dir.path()).unwrap(), review);
        let wrapped = body(json!("q.yaml"), dir.path()).unwrap();
        assert_eq!(wrapped["request"]["operation"], "DELETE");
        let missing = body(json!("nope.json"), dir.path()).unwrap_err();
        assert!(missing.starts_with("cannot read request"), "{missing}");
        std::fs::write(dir.path().join("bad.json"), "{").unwrap();
        let bad = body(json!("bad.json"), dir.path()).unwrap_err();
        assert!(bad.contains("bad.json is not valid"), "{bad}");
        let list = body(json!([1]), dir.path()).unwrap_err();
        assert!(list.contains("not a list"), "{list}");
    }
}
