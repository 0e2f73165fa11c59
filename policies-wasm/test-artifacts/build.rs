//! Builds the hostile test guests for `wasm32-unknown-unknown`, once per ABI
//! version (see `tollgate-guest-build`).

use tollgate_guest_build::{Guest, build};

const GUESTS: &[Guest] = &[
    Guest {
        package: "tollgate-test-guests",
        features: &[],
        env: "TOLLGATE_TEST_GUESTS_WASM",
    },
    Guest {
        package: "tollgate-test-guests",
        features: &["abi2"],
        env: "TOLLGATE_TEST_GUESTS_V2_WASM",
    },
];

fn main() {
    build(GUESTS, &["policies-wasm/test-guests"]);
}
