//! The response encoder (`tollgate_host::response`): every answer it writes
//! is an AdmissionReview that reads back as what it was given: the
//! request's apiVersion and uid (any string: escapes, control characters,
//! non-ASCII), `allowed` and the status exactly when denied, the warnings
//! in order, and a patch that base64-decodes to the JSON of the operations.
#![no_main]

use arbitrary::{Arbitrary, Result, Unstructured};
use base64::Engine;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tollgate_fuzz::arbitrary_value;
use tollgate_host::{Decision, response};
use tollgate_sdk::PatchOp;

#[derive(Debug)]
struct Input {
    api_version: String,
    uid: String,
    answer: Answer,
}

#[derive(Debug)]
enum Answer {
    Allowed,
    Invalid(String),
    Decision {
        denial: Option<String>,
        warnings: Vec<String>,
        patch: Vec<PatchOp>,
    },
}

impl<'a> Arbitrary<'a> for Input {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let api_version = if u.ratio(3, 4)? {
            u.choose(&tollgate_host::review::API_VERSIONS)?.to_string()
        } else {
            u.arbitrary()?
        };
        let uid = u.arbitrary()?;
        let answer = match u.int_in_range(0..=2)? {
            0 => Answer::Allowed,
            1 => Answer::Invalid(u.arbitrary()?),
            _ => {
                let n = u.int_in_range(0..=3)?;
                let patch = (0..n)
                    .map(|_| {
                        let (path, from): (String, String) = u.arbitrary()?;
                        Ok(match u.int_in_range(0..=5)? {
                            0 => PatchOp::Add {
                                path,
                                value: arbitrary_value(u, 3)?,
                            },
                            1 => PatchOp::Remove { path },
                            2 => PatchOp::Replace {
                                path,
                                value: arbitrary_value(u, 3)?,
                            },
                            3 => PatchOp::Move { from, path },
                            4 => PatchOp::Copy { from, path },
                            _ => PatchOp::Test {
                                path,
                                value: arbitrary_value(u, 3)?,
                            },
                        })
                    })
                    .collect::<Result<_>>()?;
                Answer::Decision {
                    denial: u.arbitrary()?,
                    warnings: u.arbitrary()?,
                    patch,
                }
            }
        };
        Ok(Self {
            api_version,
            uid,
            answer,
        })
    }
}

fuzz_target!(|input: Input| {
    let Input {
        api_version,
        uid,
        answer,
    } = input;
    let (bytes, denial, warnings, patch) = match answer {
        Answer::Allowed => (
            response::decision(&api_version, &uid, &Decision::default()),
            None,
            vec![],
            vec![],
        ),
        Answer::Invalid(message) => (
            response::invalid(&api_version, &uid, &message),
            Some((response::INVALID_REQUEST, message)),
            vec![],
            vec![],
        ),
        Answer::Decision {
            denial,
            warnings,
            patch,
        } => {
            let decision = Decision {
                denial: denial.clone(),
                warnings: warnings.clone(),
                patch: patch.clone(),
                outcomes: Vec::new(),
            };
            let bytes = response::decision(&api_version, &uid, &decision);
            (
                bytes,
                denial.map(|m| (response::DENIED, m)),
                warnings,
                patch,
            )
        }
    };
    let answer: Value = serde_json::from_slice(&bytes).expect("the answer is JSON");
    assert_eq!(answer["apiVersion"].as_str(), Some(api_version.as_str()));
    assert_eq!(answer["kind"], "AdmissionReview");
    let response = &answer["response"];
    assert_eq!(response["uid"].as_str(), Some(uid.as_str()));
    assert_eq!(response["allowed"], denial.is_none());
    match &denial {
        Some((code, message)) => {
            assert_eq!(response["status"]["code"], *code);
            assert_eq!(
                response["status"]["message"].as_str(),
                Some(message.as_str())
            );
        }
        None => assert!(response.get("status").is_none()),
    }
    let read: Vec<String> = response
        .get("warnings")
        .map(|w| serde_json::from_value(w.clone()).expect("warnings are strings"))
        .unwrap_or_default();
    assert_eq!(read, warnings);
    // A patch is sent exactly with an allowed answer that has one (the API
    // server applies no patch of a denial: sending one would only mislead).
    if denial.is_none() && !patch.is_empty() {
        assert_eq!(response["patchType"], "JSONPatch");
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(response["patch"].as_str().expect("patch is a string"))
            .expect("patch is base64");
        assert_eq!(decoded, serde_json::to_vec(&patch).unwrap());
    } else {
        assert!(response.get("patch").is_none() && response.get("patchType").is_none());
    }
});
