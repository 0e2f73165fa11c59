//! The guest-output decoder (`decode_verdicts`): the bytes a module's
//! `tollgate_evaluate` returned, untrusted. The first input byte picks the
//! ABI (low bit) and the number of rules (next two bits, 1-4); the rest is
//! the output.
//!
//! Properties: a decoded output has exactly one verdict per rule and no
//! patch on an allowed verdict; the verdicts the SDK would write for them
//! decode to the same verdicts (so what the guest's encoder writes, the
//! host reads back unchanged).
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::json;
use tollgate_host::AbiVersion;
use tollgate_host::evaluation::decode_verdicts;

fuzz_target!(|data: &[u8]| {
    let Some((&head, bytes)) = data.split_first() else {
        return;
    };
    let abi = if head & 1 == 0 {
        AbiVersion::V1
    } else {
        AbiVersion::V2
    };
    let rules = usize::from((head >> 1) & 3) + 1;
    let Ok(verdicts) = decode_verdicts(abi, bytes, rules) else {
        return;
    };
    assert_eq!(verdicts.len(), rules);
    assert!(verdicts.iter().all(|v| !(v.allowed && v.patch.is_some())));
    let rewritten = match abi {
        AbiVersion::V1 => serde_json::to_vec(&verdicts[0]).unwrap(),
        AbiVersion::V2 => serde_json::to_vec(&json!({ "verdicts": verdicts })).unwrap(),
    };
    let again = decode_verdicts(abi, &rewritten, rules).expect("re-encoded verdicts decode");
    assert_eq!(
        serde_json::to_value(&again).unwrap(),
        serde_json::to_value(&verdicts).unwrap(),
        "a verdict changed on its way through the encoder"
    );
});
