//! The keep decision: 64 elements at a time, bit-sliced.
//!
//! Element `j` of a group is kept iff its 64-bit uniform number `u_j` is
//! `>= D`, where `D = floor(p * 2^64)`. Bit `63 - s` of `u_j` is bit `j` of the
//! `s`-th random word, so one word compares one bit of all 64 numbers at once,
//! most significant first. Lanes whose bit differs from `D`'s are decided;
//! the rest stay undecided. After the lowest set bit of `D` the undecided
//! lanes equal `D` on every bit that matters, so they are kept.

use core::ops::{BitAnd, BitOr, Not};

/// The drop threshold `D = floor(p * 2^64)` of a probability `0 < p < 1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Threshold(pub(crate) u64);

impl Threshold {
    /// The bits of `D` compared, most significant first: bit 63 down to the
    /// lowest set bit (none when `D == 0`).
    #[inline(always)]
    pub(crate) fn bits(self) -> impl Iterator<Item = bool> {
        let d = self.0;
        (d.trailing_zeros()..64).rev().map(move |k| d >> k & 1 == 1)
    }
}

/// One comparison step over any word type: `u64`, or SIMD lanes of them.
/// `random` holds the next bit of every lane's `u`, `d_bit` that of `D`.
#[inline(always)]
pub(crate) fn step<W>(undecided: &mut W, kept: &mut W, random: W, d_bit: bool)
where
    W: Copy + BitAnd<Output = W> + BitOr<Output = W> + Not<Output = W>,
{
    if d_bit {
        // Lanes with a 0 bit are below D: dropped. The rest stay equal.
        *undecided = *undecided & random;
    } else {
        // Lanes with a 1 bit are above D: kept. The rest stay equal.
        *kept = *kept | (*undecided & random);
        *undecided = *undecided & !random;
    }
}

/// Decides the lanes set in `lanes`, drawing one word per step from `next`
/// until every lane is decided or the bits of `D` run out.
#[inline(always)]
pub(crate) fn word(threshold: Threshold, lanes: u64, mut next: impl FnMut() -> u64) -> u64 {
    let mut undecided = lanes;
    let mut kept = 0;
    for d_bit in threshold.bits() {
        step(&mut undecided, &mut kept, next(), d_bit);
        if undecided == 0 {
            break;
        }
    }
    kept | undecided
}
