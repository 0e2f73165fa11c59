//! Request stripping (`strip_request`, the one-pass splice guests get by
//! default) equals testkit's `serde_json::Value` reference `strip_value`, on
//! every request the review decoder hands over: the body is a whole review
//! (so the fuzzer also reaches requests with odd objects and metadata), and
//! a bare request is wrapped in an envelope.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tollgate_fuzz::review_body;
use tollgate_host::input::strip_request;
use tollgate_host::{Parsed, Review};
use tollgate_testkit::requests::strip_value;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let wrapped;
    let body = if text.contains("AdmissionReview") {
        text
    } else {
        wrapped = review_body(text);
        &wrapped
    };
    let Ok(Parsed::Review(review)) = Review::parse(body.as_bytes()) else {
        return;
    };
    let request = review.request();
    let stripped = strip_request(request);
    let stripped: Value = serde_json::from_slice(&stripped).expect("the stripped request is JSON");
    let reference = strip_value(&serde_json::from_str(request).expect("the request span is JSON"));
    assert_eq!(
        stripped, reference,
        "strip_request disagrees with strip_value:\n{stripped}\n{reference}"
    );
});
