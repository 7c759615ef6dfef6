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
    /// The bits of `D` compared, most significant first: bit 63 down to the
    /// lowest set bit (none when `D == 0`).
    #[inline(always)]
    pub(crate) fn bits(self) -> impl Iterator<Item = bool> {
        let d = self.0;
        (d.trailing_zeros()..64).rev().map(move |k| d >> k & 1 == 1)
    }

    /// Bit `k` of `D` spread to a whole word: all ones or all zeros.
    #[inline(always)]
    pub(crate) fn spread(self, k: u32) -> u64 {
        (self.0 >> k & 1).wrapping_neg()
    }
}

/// One comparison step over any word type: `u64`, or SIMD lanes of them.
/// `random` holds the next bit of every lane's `u`, `d` that of `D` spread
/// to every bit (all ones or all zeros). Branch-free.
#[inline(always)]
pub(crate) fn step<W>(undecided: &mut W, kept: &mut W, random: W, d: W)
where
    W: Copy + BitAnd<Output = W> + BitOr<Output = W> + BitXor<Output = W> + Not<Output = W>,
{
    // Lanes above D (bit 1 where D's is 0) are kept, lanes whose bit
    // differs from D's are decided, and the rest stay equal.
    *kept = *kept | (*undecided & random & !d);
    *undecided = *undecided & !(random ^ d);
}

/// Decides the lanes set in `lanes`, drawing one word per step from `next`
/// until every lane is decided or the bits of `D` run out.
#[inline(always)]
pub(crate) fn word(threshold: Threshold, lanes: u64, mut next: impl FnMut() -> u64) -> u64 {
    let mut undecided = lanes;
    let mut kept = 0;
    for d_bit in threshold.bits() {
        let d = u64::from(d_bit).wrapping_neg();
        step(&mut undecided, &mut kept, next(), d);
        if undecided == 0 {
            break;
        }
    }
    kept | undecided
}
