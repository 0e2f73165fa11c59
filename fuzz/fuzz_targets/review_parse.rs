//! The AdmissionReview decoder (`Review::parse`) against `serde_json::Value`:
//! whatever the decoder takes for a review, `Value` reads the same way (same
//! uid, request span equal to `request`), and a body `Value` calls a valid
//! review is never refused outright (the decoder may only answer it with a
//! 400-in-the-review, for the shape it refuses: duplicate keys, deep nesting),
//! and the stripped input its shape check cuts is `strip_request`'s; the
//! body's one pass vouches for nothing serde reads otherwise (or refuses),
//! and the shape check's fast scan accepts nothing its serde walk refuses.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tollgate_host::input::strip_request;
use tollgate_host::review::{API_VERSIONS, one_pass_agrees, shape_scan_agrees};
use tollgate_host::{GuestInput, Parsed, Review};

fuzz_target!(|body: &[u8]| {
    if let Ok(text) = std::str::from_utf8(body) {
        assert!(
            one_pass_agrees(text),
            "the one pass vouched for a body serde refuses or reads otherwise"
        );
        // Any valid JSON document stands in for a request here.
        if serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok() {
            assert!(
                shape_scan_agrees(text),
                "the fast shape scan accepted what serde's walk refuses, or cut otherwise"
            );
        }
    }
    let parsed = Review::parse(body);
    let value: Option<Value> = serde_json::from_slice(body).ok();
    // What `Value` calls a valid review: an object with the kind, a known
    // apiVersion, and a request object whose uid is a non-empty string.
    let valid_by_value = value.as_ref().is_some_and(|v| {
        v.get("kind") == Some(&Value::from("AdmissionReview"))
            && v.get("apiVersion")
                .and_then(Value::as_str)
                .is_some_and(|a| API_VERSIONS.contains(&a))
            && v.get("request").is_some_and(|r| {
                r.is_object()
                    && r.get("uid")
                        .and_then(Value::as_str)
                        .is_some_and(|u| !u.is_empty())
            })
    });
    match parsed {
        Ok(Parsed::Review(review)) => {
            let value = value.expect("a review the decoder accepts is JSON to serde_json");
            assert!(
                valid_by_value,
                "the decoder accepted what Value calls invalid"
            );
            let request = &value["request"];
            assert_eq!(request["uid"].as_str(), Some(&*review.uid));
            assert_eq!(value["apiVersion"].as_str(), Some(review.api_version));
            let span: Value =
                serde_json::from_str(review.request()).expect("the request span is JSON");
            assert_eq!(&span, request, "the request span is not `request`");
            // The cuts the shape check found strip the request exactly as
            // the standalone pass does.
            assert_eq!(
                GuestInput::of(&review).bytes(false),
                strip_request(review.request()).as_slice(),
                "the shape check's cuts differ from strip_request"
            );
            match review.object() {
                Some(object) => {
                    let object: Value = serde_json::from_str(object).unwrap();
                    assert_eq!(&object, &request["object"]);
                    // Rebuilding the request around its own object changes nothing.
                    let rebuilt: Value =
                        serde_json::from_str(&review.with_object(&object)).unwrap();
                    assert_eq!(&rebuilt, request, "with_object changed the request");
                }
                None => assert!(request.get("object").is_none_or(Value::is_null)),
            }
        }
        Ok(Parsed::InvalidRequest { uid, .. }) => {
            // The envelope and uid were read: the answer echoes a real uid.
            assert!(!uid.is_empty());
            assert!(
                valid_by_value || value.is_none(),
                "a 400-in-the-review for a non-review"
            );
        }
        Err(error) => {
            // The envelope Value accepts but serde's typed envelope refuses:
            // a member given twice (Value keeps the last one).
            if valid_by_value {
                let text = std::str::from_utf8(body).unwrap();
                assert!(
                    has_duplicate_envelope_member(text),
                    "a valid review refused: {error}"
                );
            }
        }
    }
});

/// Whether the envelope object names one of its members twice.
fn has_duplicate_envelope_member(text: &str) -> bool {
    let members: Vec<(String, &serde_json::value::RawValue)> =
        match serde_json::from_str::<RawMembers>(text) {
            Ok(RawMembers(members)) => members,
            Err(_) => return false,
        };
    let mut keys: Vec<&str> = members.iter().map(|(k, _)| k.as_str()).collect();
    keys.sort_unstable();
    keys.windows(2).any(|w| w[0] == w[1])
}

/// An object's members in order, duplicates kept.
struct RawMembers<'a>(Vec<(String, &'a serde_json::value::RawValue)>);

impl<'de: 'a, 'a> serde::Deserialize<'de> for RawMembers<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for V<'a> {
            type Value = RawMembers<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    out.push((key, map.next_value()?));
                }
                Ok(RawMembers(out))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}
