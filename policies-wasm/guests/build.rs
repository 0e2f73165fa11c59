//! Builds the guest crates the binary embeds for `wasm32-unknown-unknown`
//! (see `tollgate-guest-build`).

use tollgate_guest_build::{Guest, build};

/// Guest crate → the env var naming its built module for `lib.rs`.
const GUESTS: &[Guest] = &[Guest {
    package: "tollgate-calico",
    features: &[],
    env: "TOLLGATE_CALICO_WASM",
}];

fn main() {
    build(GUESTS, &["policies-wasm/sdk", "policies-wasm/calico"]);
}
