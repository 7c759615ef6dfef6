//! Helpers shared by the integration tests.
#![allow(dead_code)]

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use rand_xoshiro::Xoshiro256PlusPlus;
use rand_xoshiro::rand_core::{Rng, SeedableRng};

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

/// `native` normally, `miri` under Miri: the size of a heavy test.
pub const fn scaled(native: usize, miri: usize) -> usize {
    if cfg!(miri) { miri } else { native }
}

/// A caller RNG with a fixed seed.
pub fn rng(seed: u64) -> Xoshiro256PlusPlus {
    Xoshiro256PlusPlus::seed_from_u64(seed)
}

/// Equal bit for bit, except that any two NaNs are equal (`wide` does not
/// promise NaN payloads through a multiply).
pub fn same_f32(a: f32, b: f32) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

pub fn same(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(&x, &y)| same_f32(x, y))
}

/// Equal bit for bit, NaN payloads included.
pub fn identical(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

/// Values that break sloppy kernels, oversampled.
pub const SPECIAL: [f32; 12] = [
    0.0,
    -0.0,
    1.0,
    -1.0,
    f32::MIN_POSITIVE,
    1e-45, // smallest subnormal
    -3e-40,
    f32::MAX,
    f32::MIN,
    f32::INFINITY,
    f32::NEG_INFINITY,
    f32::NAN,
];

/// Any f32: special values half the time, arbitrary bit patterns (NaN
/// payloads, subnormals) the other half.
pub fn any_f32() -> impl Strategy<Value = f32> {
    prop_oneof![
        proptest::sample::select(&SPECIAL[..]),
        any::<u32>().prop_map(f32::from_bits),
        -10.0f32..10.0,
    ]
}

/// A deterministic input of `len` values with the same mix as `any_f32`.
pub fn data(len: usize, seed: u64) -> Vec<f32> {
    let mut rng = rng(seed ^ 0xDA7A);
    (0..len)
        .map(|_| {
            let r = rng.next_u64();
            match r % 4 {
                0 => SPECIAL[(r >> 8) as usize % SPECIAL.len()],
                1 => f32::from_bits((r >> 32) as u32),
                _ => ((r >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 8.0,
            }
        })
        .collect()
}

/// Probabilities at the edges (0, tiny, 1/2, just under 1, 1) and between.
pub const EDGE_P: [f32; 12] = [
    0.0,
    1e-45,
    5.421_011e-20, // 2^-64: D = 1
    4.547_474e-13, // 2^-41
    9.536_743e-7,  // 2^-20
    0.1,
    0.25,
    0.5,
    0.9,
    0.999_999,    // 1 - 2^-20
    0.999_999_94, // the largest f32 below 1
    1.0,
];

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
