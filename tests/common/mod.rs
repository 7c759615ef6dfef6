//! The proptest strategies and configuration shared by the integration
//! tests; everything that needs no proptest is in `tests/support`, which
//! each test crate including this one includes too (`mod support;`).
#![allow(dead_code)]

use crate::support::{EDGE_P, SPECIAL};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

/// Proptest with a fixed seed and no failure files: every run is the same.
/// Under Miri, which interprets every instruction, one case.
pub fn config(cases: u32) -> Config {
    Config {
        cases: if cfg!(miri) { 1 } else { cases },
        rng_seed: RngSeed::Fixed(0xB17D_0A0B),
        failure_persistence: None,
        ..Config::default()
    }
}

/// Any f32: special values half the time, arbitrary bit patterns (NaN
/// payloads, subnormals) the other half.
pub fn any_f32() -> impl Strategy<Value = f32> {
    prop_oneof![
        proptest::sample::select(&SPECIAL[..]),
        any::<u32>().prop_map(f32::from_bits),
        -10.0f32..10.0,
    ]
}

pub fn probability() -> impl Strategy<Value = f32> {
    prop_oneof![proptest::sample::select(&EDGE_P[..]), 0.0f32..=1.0]
}

/// Stream offsets: small, around block edges, and at the far end.
pub fn offset() -> impl Strategy<Value = u64> {
    prop_oneof![
        0u64..10_000,
        (1u64..1 << 40).prop_map(|b| b * 4096 - 1),
        (1u64..100_000).prop_map(|back| u64::MAX - back),
        any::<u64>().prop_map(|o| o >> 8),
    ]
}
