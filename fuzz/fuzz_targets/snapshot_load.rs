//! The snapshot loader (`SnapshotContext::from_text`, what `load` does with
//! each file) on one file's text, read as JSON when the first input byte is
//! odd and as YAML otherwise.
//!
//! Properties: a snapshot either loads whole or not at all; what loaded is
//! served: listing every type the documents name returns JSON arrays of
//! objects of that type, as many in total as were loaded.
#![no_main]

use std::collections::BTreeSet;
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use serde::Deserialize;
use serde_json::Value;
use tollgate_context::{ClusterContext, LookupQuery, SnapshotContext};

fuzz_target!(|data: &[u8]| {
    let Some((&head, text)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    let json = head & 1 == 1;
    let file = Path::new(if json { "fuzz.json" } else { "fuzz.yaml" });
    let Ok(snapshot) = SnapshotContext::from_text(file, text) else {
        return;
    };
    assert_eq!(snapshot.file_count(), 1);
    // The documents as Values (they parsed, or the load would have failed).
    let documents: Vec<Value> = if json {
        serde_json::Deserializer::from_str(text)
            .into_iter::<Value>()
            .collect::<Result<_, _>>()
            .expect("a loaded JSON file parses")
    } else {
        serde_yaml_ng::Deserializer::from_str(text)
            .map(Value::deserialize)
            .collect::<Result<_, _>>()
            .expect("a loaded YAML file parses")
    };
    let mut types = BTreeSet::new();
    for doc in &documents {
        let Some((api_version, kind)) = type_of(doc) else {
            continue;
        };
        types.insert((api_version.clone(), kind.clone()));
        // A List's items, each under its own type or (typed `FooList`)
        // the one it takes from the list: listing a type that has no
        // objects returns nothing, so a superset of the types is enough.
        if let Some(Value::Array(items)) = doc.get("items") {
            let item_kind = kind.strip_suffix("List").unwrap_or(&kind).to_owned();
            for item in items {
                let field = |key: &str, default: &String| {
                    item.get(key)
                        .and_then(Value::as_str)
                        .map_or_else(|| default.clone(), str::to_owned)
                };
                types.insert((field("apiVersion", &api_version), field("kind", &item_kind)));
            }
        }
    }
    let mut served = 0;
    for (api_version, kind) in &types {
        let listed = snapshot
            .lookup(&LookupQuery::list(api_version, kind))
            .expect("a snapshot answers every list");
        let listed: Vec<Value> = serde_json::from_slice(&listed).expect("a list is a JSON array");
        for object in &listed {
            assert_eq!(object["apiVersion"].as_str(), Some(api_version.as_str()));
            assert_eq!(object["kind"].as_str(), Some(kind.as_str()));
        }
        served += listed.len();
    }
    assert_eq!(
        served,
        snapshot.object_count(),
        "loaded objects that no list serves"
    );
});

fn type_of(doc: &Value) -> Option<(String, String)> {
    Some((
        doc.get("apiVersion")?.as_str()?.to_owned(),
        doc.get("kind")?.as_str()?.to_owned(),
    ))
}
