//! The policy-configuration loader (`Config::from_yaml`), which reads the
//! file as a YAML value and then each list item on its own (so an error
//! names its policy).
//!
//! Properties: it never accepts a file the strict typed parse
//! (`serde_yaml_ng::from_str::<Vec<PolicyConfig>>`, unknown fields denied)
//! would reject, and both read the same policies; an accepted file has no
//! empty document (an empty set is written `[]`), passes `validate`, and
//! every policy's settings are a JSON document guests can read.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate_host::{Config, PolicyConfig};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(config) = Config::from_yaml(text, "fuzz.yaml") else {
        return;
    };
    let strict: Vec<PolicyConfig> = serde_yaml_ng::from_str(text)
        .unwrap_or_else(|e| panic!("accepted a file the strict parser rejects: {e}"));
    assert_eq!(format!("{strict:?}"), format!("{:?}", config.policies));
    config
        .validate()
        .expect("an accepted configuration validates");
    for policy in &config.policies {
        assert!(!policy.rule_name().trim().is_empty());
        let settings: serde_json::Value =
            serde_json::from_slice(&policy.settings_json()).expect("settings are JSON");
        assert!(!settings.is_null());
    }
});
