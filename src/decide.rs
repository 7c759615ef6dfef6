//! The keep decision: 64 elements at a time, bit-sliced.
//!
//! Element `j` of a group is kept iff its 64-bit uniform number `u_j` is
//! `>= D`, where `D = floor(p * 2^64)`. Bit `63 - s` of `u_j` is bit `j` of the
//! `s`-th random word, so one word compares one bit of all 64 numbers at once,
//! most significant first. Lanes whose bit differs from `D`'s are decided;
//! the rest stay undecided. After the lowest set bit of `D` the undecided
//! lanes equal `D` on every bit that matters, so they are kept.

use core::ops::{BitAnd, BitOr, BitXor, Not};

/// The drop threshold `D = floor(p * 2^64)` of a probability `0 < p < 1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Threshold(pub(crate) u64);

impl Threshold {
    /// The bit positions compared, most significant first: 63 down to the
    /// lowest set bit of `D` (none when `D == 0`).
    #[inline]
    pub(crate) fn bits(self) -> impl Iterator<Item = u32> {
        (self.0.trailing_zeros()..64).rev()
    }

    /// Bit `k` of `D` spread over a whole word: all ones or all zeros.
    #[inline(always)]
    pub(crate) fn spread(self, k: u32) -> u64 {
        0u64.wrapping_sub((self.0 >> k) & 1)
    }
}

/// One comparison step over any word type: `u64`, or SIMD lanes of them.
///
/// `threshold_bit` is the current bit of `D` spread over the word.
#[inline(always)]
pub(crate) fn step<W>(undecided: &mut W, kept: &mut W, random: W, threshold_bit: W)
where
    W: Copy + BitAnd<Output = W> + BitOr<Output = W> + BitXor<Output = W> + Not<Output = W>,
{
    let differs = random ^ threshold_bit;
    // Where the random bit is 1 and D's is 0, u > D: kept. Where it is 0 and
    // D's is 1, u < D: dropped. Either way the lane is decided.
    *kept = *kept | (*undecided & differs & random);
    *undecided = *undecided & !differs;
}

/// Decides the lanes set in `lanes`, drawing one word per step from `next`
/// until every lane is decided or the bits of `D` run out.
#[inline]
pub(crate) fn word(threshold: Threshold, lanes: u64, mut next: impl FnMut() -> u64) -> u64 {
    let mut undecided = lanes;
    let mut kept = 0;
    for k in threshold.bits() {
        step(&mut undecided, &mut kept, next(), threshold.spread(k));
        if undecided == 0 {
            break;
        }
    }
    kept | undecided
}
