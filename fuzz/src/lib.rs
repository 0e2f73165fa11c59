//! What the fuzz targets share: building an AdmissionReview around a
//! request and generating small JSON values. JSON documents compare with
//! `==`: parsing is exact (serde_json's `float_roundtrip`), so a number
//! written and read back is the same number.

use arbitrary::{Result, Unstructured};
use serde_json::{Map, Value};

/// The body of a `admission.k8s.io/v1` AdmissionReview carrying `request`
/// (raw JSON text, spliced in as it is).
pub fn review_body(request: &str) -> String {
    format!(
        r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{request}}}"#
    )
}

/// A small JSON value (at most `depth` levels, a few members per level).
pub fn arbitrary_value(u: &mut Unstructured<'_>, depth: u32) -> Result<Value> {
    let choice = if depth == 0 {
        u.int_in_range(0..=4)?
    } else {
        u.int_in_range(0..=6)?
    };
    Ok(match choice {
        0 => Value::Null,
        1 => Value::Bool(u.arbitrary()?),
        2 => Value::from(u.arbitrary::<i64>()?),
        3 => {
            let f: f64 = u.arbitrary()?;
            serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
        }
        4 => Value::String(u.arbitrary()?),
        5 => {
            let n = u.int_in_range(0..=3)?;
            Value::Array(
                (0..n)
                    .map(|_| arbitrary_value(u, depth - 1))
                    .collect::<Result<_>>()?,
            )
        }
        _ => {
            let n = u.int_in_range(0..=3)?;
            let mut map = Map::new();
            for _ in 0..n {
                map.insert(u.arbitrary()?, arbitrary_value(u, depth - 1)?);
            }
            Value::Object(map)
        }
    })
}

/// Every JSON pointer into `value` (the root is `""`), parents first.
pub fn pointers(value: &Value) -> Vec<String> {
    fn walk(value: &Value, at: &mut String, out: &mut Vec<String>) {
        out.push(at.clone());
        let len = at.len();
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    at.push('/');
                    at.push_str(&key.replace('~', "~0").replace('/', "~1"));
                    walk(child, at, out);
                    at.truncate(len);
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    at.push('/');
                    at.push_str(&i.to_string());
                    walk(child, at, out);
                    at.truncate(len);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(value, &mut String::new(), &mut out);
    out
}
