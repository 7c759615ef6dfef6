//! What every test shares and none needs proptest for: the comparisons, the
//! edge values, deterministic data, and the table of operations
//! ([`ops`]). Included by each test crate that needs it (`mod support;`)
//! and by the cargo-fuzz crate's library (`fuzz/src/lib.rs`, by path),
//! which has no proptest; the proptest strategies live in `tests/common`,
//! the contract checks in `tests/contract`, both on top of this.
#![allow(dead_code)]

pub mod ops;

use rand_xoshiro::Xoshiro256PlusPlus;
use rand_xoshiro::rand_core::{Rng, SeedableRng};

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

/// [`same_f32`] element by element, and the same length.
pub fn same(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(&x, &y)| same_f32(x, y))
}

/// Equal bit for bit, NaN payloads included.
pub fn identical(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

/// The word with the low `bits` bits set (all 64 from 64 on).
pub fn low_bits(bits: usize) -> u64 {
    if bits >= 64 { !0 } else { (1 << bits) - 1 }
}

/// Bit `i` of a mask's words.
pub fn bit(words: &[u64], i: usize) -> bool {
    words[i / 64] >> (i % 64) & 1 == 1
}

/// The divisors of `n`, ascending (none of 0).
pub fn divisors(n: usize) -> Vec<usize> {
    (1..=n).filter(|&d| n.is_multiple_of(d)).collect()
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

/// Probabilities at the edges (±0, tiny, 1/2, just under 1, 1) and between.
pub const EDGE_P: [f32; 13] = [
    0.0,
    -0.0,
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

/// A deterministic input of `len` values: special values, arbitrary bit
/// patterns (NaN payloads, subnormals) and ordinary numbers.
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

/// floor(p * 2^64) from p's mantissa and exponent, no float arithmetic.
pub fn exact_numerator(p: f32) -> u128 {
    let bits = p.to_bits();
    let exponent = (bits >> 23 & 0xFF) as i32;
    let fraction = u128::from(bits & 0x7F_FFFF);
    // p = mantissa * 2^power
    let (mantissa, power) = if exponent == 0 {
        (fraction, -149)
    } else {
        (fraction | 1 << 23, exponent - 150)
    };
    let shift = power + 64;
    if shift >= 0 {
        mantissa << shift
    } else {
        mantissa >> -shift
    }
}
