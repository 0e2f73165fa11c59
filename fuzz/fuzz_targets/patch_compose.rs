//! Patch composition (`Composer`): several policies' operations applied one
//! after another to a review's object. The input is the object (JSON text)
//! up to the first NUL byte; what follows drives the operations, whose
//! paths are mostly pointers into the object so that most of them apply.
//!
//! Properties: a refused patch changes nothing; the concatenation of the
//! accepted patches (what the answer carries) applies to `request.object`
//! and gives the composed object; the encoded answer's patch is that
//! concatenation; and the request rebuilt around the composed object
//! (`Review::with_object`, what the next policy sees) carries it.
#![no_main]

use arbitrary::{Result, Unstructured};
use base64::Engine;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tollgate_fuzz::{arbitrary_value, pointers, review_body};
use tollgate_host::patch::Composer;
use tollgate_host::{Decision, Parsed, Review, response};
use tollgate_sdk::PatchOp;

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|b| *b == 0).unwrap_or(data.len());
    let (object, rest) = data.split_at(split);
    let Ok(object) = std::str::from_utf8(object) else {
        return;
    };
    let body = review_body(&format!(
        r#"{{"uid":"u","operation":"UPDATE","object":{object}}}"#
    ));
    let Ok(Parsed::Review(review)) = Review::parse(body.as_bytes()) else {
        return;
    };
    let Some(original) = review.object_value() else {
        return;
    };
    let mut u = Unstructured::new(rest.get(1..).unwrap_or_default());
    let mut composer = Composer::default();
    let mut accepted: Vec<PatchOp> = Vec::new();
    let policies = u.int_in_range(1..=4).unwrap_or(1);
    for _ in 0..policies {
        let current = composer
            .object()
            .cloned()
            .unwrap_or_else(|| original.clone());
        let Ok(ops) = operations(&mut u, &current) else {
            break;
        };
        match composer.apply(&review, &ops) {
            Ok(_) => accepted.extend(ops),
            Err(_) => {
                let now = composer
                    .object()
                    .cloned()
                    .unwrap_or_else(|| original.clone());
                assert_eq!(now, current, "a refused patch changed the object");
            }
        }
    }
    let Some(composed) = composer.object() else {
        return;
    };
    // The answer's patch, applied to request.object, gives the composed object.
    let decision = Decision {
        patch: accepted.clone(),
        ..Decision::default()
    };
    let answer: Value = serde_json::from_slice(&response::decision(
        review.api_version,
        &review.uid,
        &decision,
    ))
    .unwrap();
    let patch = base64::engine::general_purpose::STANDARD
        .decode(answer["response"]["patch"].as_str().expect("a patch"))
        .unwrap();
    let patch: json_patch::Patch =
        serde_json::from_slice(&patch).expect("the answer's patch is a JSON patch");
    let mut applied = original.clone();
    json_patch::patch(&mut applied, &patch).expect("the composed patch applies to request.object");
    assert_eq!(
        &applied, composed,
        "the composed patch gives another object"
    );
    let next: Value = serde_json::from_str(&review.with_object(composed)).unwrap();
    assert_eq!(&next["object"], composed);
});

/// One policy's operations on `object`.
fn operations(u: &mut Unstructured<'_>, object: &Value) -> Result<Vec<PatchOp>> {
    let targets = pointers(object);
    let n = u.int_in_range(1..=4)?;
    (0..n).map(|_| operation(u, object, &targets)).collect()
}

fn operation(u: &mut Unstructured<'_>, object: &Value, targets: &[String]) -> Result<PatchOp> {
    let mut path = || -> Result<String> {
        let base = u.choose(targets)?.clone();
        Ok(match u.int_in_range(0..=5)? {
            0 => format!("{base}/-"),
            1 => format!("{base}/{}", u.arbitrary::<String>()?),
            2 => u.arbitrary()?,
            _ => base,
        })
    };
    let from = path()?;
    let to = path()?;
    let value = if u.ratio(1, 3)? {
        // A piece of the object itself (moves and copies of real shapes).
        object
            .pointer(u.choose(targets)?)
            .cloned()
            .unwrap_or(Value::Null)
    } else {
        arbitrary_value(u, 3)?
    };
    Ok(match u.int_in_range(0..=5)? {
        0 => PatchOp::Add { path: to, value },
        1 => PatchOp::Remove { path: to },
        2 => PatchOp::Replace { path: to, value },
        3 => PatchOp::Move { from, path: to },
        4 => PatchOp::Copy { from, path: to },
        _ => PatchOp::Test { path: to, value },
    })
}
