//! The definition of mask stream v2 shared by the fast path and the
//! reference: its constants, the seeding of its generators and of its tail
//! words. The crate docs state it in full; `keyed.rs` steps the generators
//! in SIMD lanes and the reference steps `rand_xoshiro`'s own.

use rand_core::{Rng, SeedableRng};
use rand_xoshiro::SplitMix64;

/// Generators stepped together; part of the stream definition.
pub(crate) const LANES: usize = 8;
/// Mask words per block: each block reseeds its generators.
pub(crate) const BLOCK_WORDS: u64 = 64;
/// Bits of each number `u` taken from the first stage's lockstep words.
pub(crate) const FIRST_BITS: u32 = 4;
/// Bits taken from the second stage's pool words by each of the first
/// `POOLED` positions of a batch still tied after the first stage.
pub(crate) const POOL_BITS: u32 = 8;
/// Tied positions of a batch served by the pool: one bit of each pool word.
pub(crate) const POOLED: u32 = 64;
/// The tail key's path for `derive_seed`: "masktail" in ASCII.
pub(crate) const TAIL_PATH: u64 = 0x6D61_736B_7461_696C;
/// SplitMix64's increment, the golden ratio in 64-bit fixed point.
pub(crate) const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64's output function (Stafford's "Mix13").
#[inline(always)]
pub(crate) const fn mix(z: u64) -> u64 {
    let z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    let z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The four keys of a seed: the first four outputs of SplitMix64(seed).
pub(crate) fn keys(seed: u64) -> [u64; 4] {
    let mut splitmix = SplitMix64::seed_from_u64(seed);
    core::array::from_fn(|_| splitmix.next_u64())
}

/// The xoshiro256++ state of stream `n`: word `i` is output `n + 1` of
/// SplitMix64 seeded with `keys[i]`. Spelled out with `mix` because it runs
/// 32 times a block and must inline; `tests/keyed.rs` checks it against
/// `rand_xoshiro`'s SplitMix64.
#[inline(always)]
pub(crate) fn state(keys: &[u64; 4], n: u64) -> [u64; 4] {
    keys.map(|key| mix(key.wrapping_add(n.wrapping_add(1).wrapping_mul(GAMMA))))
}

/// The seed of the tail words: `derive_seed(seed, [TAIL_PATH])`.
pub(crate) const fn tail_key(seed: u64) -> u64 {
    crate::derive_seed(seed, &[TAIL_PATH])
}

/// How many bits of `D` a comparison reads: bit 63 down to the lowest
/// set bit, `64 - trailing_zeros(D)`, or none when `D == 0`.
#[inline(always)]
pub(crate) const fn compared_bits(d: u64) -> u32 {
    if d == 0 { 0 } else { 64 - d.trailing_zeros() }
}
