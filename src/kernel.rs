//! The SIMD path: keep words applied to `f32` data in `wide` lanes.

use crate::reference::element;
use crate::source::sealed::Words;
use wide::{f32x8, u32x8};

/// Elements per chunk, one batch of the keyed stream: its words are
/// generated, then applied while they are in L1, and the data streams often
/// enough for the hardware prefetcher to keep up (measured better than 4096
/// at 16 Mi elements, alternating runs).
pub(crate) const CHUNK: usize = 512;

/// The data of one call: in place, or from `src` to `dst` (equal lengths).
pub(crate) enum Io<'a> {
    InPlace(&'a mut [f32]),
    Copy(&'a [f32], &'a mut [f32]),
}

impl<'a> Io<'a> {
    pub(crate) fn len(&self) -> usize {
        match self {
            Io::InPlace(xs) => xs.len(),
            Io::Copy(_, dst) => dst.len(),
        }
    }

    /// Splits off the first `n` elements (or all, if fewer).
    #[inline(always)]
    fn take_front(&mut self, n: usize) -> Io<'a> {
        match self {
            Io::InPlace(xs) => {
                let n = n.min(xs.len());
                let (front, rest) = core::mem::take(xs).split_at_mut(n);
                *xs = rest;
                Io::InPlace(front)
            }
            Io::Copy(src, dst) => {
                let n = n.min(dst.len());
                let (src_front, src_rest) = src.split_at(n.min(src.len()));
                let (dst_front, dst_rest) = core::mem::take(dst).split_at_mut(n);
                *src = src_rest;
                *dst = dst_rest;
                Io::Copy(src_front, dst_front)
            }
        }
    }

    /// Output equals input, bit for bit.
    pub(crate) fn identity(self) {
        if let Io::Copy(src, dst) = self {
            dst.copy_from_slice(src);
        }
    }

    /// Every output element `+0.0`.
    pub(crate) fn zero(self) {
        match self {
            Io::InPlace(xs) => xs.fill(0.0),
            Io::Copy(_, dst) => dst.fill(0.0),
        }
    }

    /// Keeps element `i` as `x * scale` where bit `i` of `words` is set, and
    /// makes it `+0.0` where it is clear.
    #[inline(always)]
    pub(crate) fn apply(self, words: &[u64], scale: f32) {
        match self {
            Io::InPlace(xs) => {
                let (groups, tail) = xs.as_chunks_mut::<64>();
                for (group, &word) in groups.iter_mut().zip(words) {
                    for (block, x) in group.as_chunks_mut::<8>().0.iter_mut().enumerate() {
                        *x = apply8(*x, word, block, scale);
                    }
                }
                let word = words.get(groups.len()).copied().unwrap_or(0);
                for (i, x) in tail.iter_mut().enumerate() {
                    *x = element(*x, word >> i & 1 == 1, scale);
                }
            }
            Io::Copy(src, dst) => {
                let (src_groups, src_tail) = src.as_chunks::<64>();
                let (dst_groups, dst_tail) = dst.as_chunks_mut::<64>();
                for ((s, d), &word) in src_groups.iter().zip(dst_groups.iter_mut()).zip(words) {
                    let s = s.as_chunks::<8>().0;
                    let d = d.as_chunks_mut::<8>().0;
                    for (block, (s, d)) in s.iter().zip(d).enumerate() {
                        *d = apply8(*s, word, block, scale);
                    }
                }
                let word = words.get(dst_groups.len()).copied().unwrap_or(0);
                for (i, (s, d)) in src_tail.iter().zip(dst_tail).enumerate() {
                    *d = element(*s, word >> i & 1 == 1, scale);
                }
            }
        }
    }

    /// Draws keep words from `source` chunk by chunk and applies them, also
    /// writing them to `mask` (`len.div_ceil(64)` words) if there is one.
    #[inline(always)]
    pub(crate) fn apply_from(
        mut self,
        source: &mut impl Words,
        mut mask: Option<&mut [u64]>,
        scale: f32,
    ) {
        let mut scratch = [0u64; CHUNK / 64];
        while self.len() > 0 {
            let chunk = self.take_front(CHUNK);
            let len = chunk.len();
            let words_len = len.div_ceil(64);
            let words = match mask.take() {
                Some(all) => {
                    let (words, rest) = all.split_at_mut(words_len.min(all.len()));
                    mask = Some(rest);
                    words
                }
                None => &mut scratch[..words_len],
            };
            source.fill(words, len);
            chunk.apply(words, scale);
        }
    }
}

/// Elements `8 block .. 8 block + 8` of a 64-element group whose keep word
/// is `word`: kept ones times `scale`, dropped ones `+0.0`; the reference's
/// `element` rule, lane by lane.
#[inline(always)]
fn apply8(x: [f32; 8], word: u64, block: usize, scale: f32) -> [f32; 8] {
    let half = u32x8::splat((word >> (32 * (block / 4))) as u32);
    let bits = u32x8::new(LANE_BITS[block % 4]);
    let keep = (half & bits).simd_eq(bits);
    // A select, not a multiply by 0: dropped is +0.0 even for NaN and inf.
    let product = f32x8::new(x) * f32x8::splat(scale);
    f32x8::from_bits(product.to_bits() & keep).to_array()
}

/// Lane `i` of block `b` tests bit `8 b + i` of a 32-bit half word.
const LANE_BITS: [[u32; 8]; 4] = {
    let mut bits = [[0; 8]; 4];
    let mut b = 0;
    while b < 4 {
        let mut i = 0;
        while i < 8 {
            bits[b][i] = 1 << (8 * b + i);
            i += 1;
        }
        b += 1;
    }
    bits
};
