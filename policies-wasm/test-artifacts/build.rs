//! Builds the hostile test guests for `wasm32-unknown-unknown`, once per ABI
//! version, and the example policies (see `tollgate-guest-build`).

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
    Guest {
        package: "pod-privileged",
        features: &[],
        env: "TOLLGATE_POD_PRIVILEGED_WASM",
    },
];

fn main() {
    build(
        GUESTS,
        &[
            "policies-wasm/sdk",
            "policies-wasm/test-guests",
            "policies-wasm/examples/pod-privileged",
        ],
    );
}
