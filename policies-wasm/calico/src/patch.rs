//! Building RFC 6902 operations that apply both to the object as the API
//! server sends it and to a manifest as written (where parents may be absent).

use serde_json::Value;
use tollgate_sdk::PatchOp;

/// A JSON pointer from unescaped segments (`~` → `~0`, `/` → `~1`).
pub fn pointer(segments: &[&str]) -> String {
    jsonptr::PointerBuf::from_tokens(segments.iter().copied()).to_string()
}

/// Sets `parent/key` to `value`: `replace` when the member exists, `add`
/// when only the parent does, and otherwise `add` of the parent holding it.
pub fn set(
    parent: &[&str],
    parent_present: bool,
    key: &str,
    key_present: bool,
    value: Value,
) -> PatchOp {
    let mut path: Vec<&str> = parent.to_vec();
    path.push(key);
    if key_present {
        PatchOp::replace(pointer(&path), value)
    } else if parent_present {
        PatchOp::add(pointer(&path), value)
    } else {
        let mut wrapped = serde_json::Map::new();
        wrapped.insert(key.to_owned(), value);
        PatchOp::add(pointer(parent), Value::Object(wrapped))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pointers_escape_keys() {
        assert_eq!(pointer(&["spec", "strategy"]), "/spec/strategy");
        assert_eq!(
            pointer(&["metadata", "annotations", "a/b~c"]),
            "/metadata/annotations/a~1b~0c"
        );
        assert_eq!(pointer(&[]), "");
    }

    #[test]
    fn set_picks_the_operation_that_applies() {
        assert_eq!(
            set(&["spec"], true, "replicas", true, json!(1)),
            PatchOp::replace("/spec/replicas", json!(1))
        );
        assert_eq!(
            set(&["spec"], true, "replicas", false, json!(1)),
            PatchOp::add("/spec/replicas", json!(1))
        );
        assert_eq!(
            set(&["spec"], false, "replicas", false, json!(1)),
            PatchOp::add("/spec", json!({"replicas": 1}))
        );
    }
}
