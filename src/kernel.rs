//! The fast path: decisions generated chunk by chunk, broadcast to their
//! elements, and applied in SIMD lanes by each variant's lane rule.

use crate::Element;
use crate::decide::Threshold;
use crate::dispatch::{self, Cpu, Kernel};
use crate::mask::{low_bits, mask_words, set_bits};
use crate::run::{Executor, Operands};
use crate::source::Randomness;
use crate::source::sealed::Words;
use crate::units::Units;
use wide::u32x8;

/// Units decided per chunk (and elements per applied piece): one batch of
/// the keyed stream. Its words are generated, then applied while they are
/// in L1, and the data streams often enough for the hardware prefetcher to
/// keep up (measured better than 4096 at 16 Mi elements).
pub(crate) const CHUNK: usize = 512;
pub(crate) const CHUNK_WORDS: usize = CHUNK / 64;

/// The SIMD executor.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Fast;

impl Executor for Fast {
    fn pass(&self, ops: &mut impl Operands) {
        ops.pass();
    }

    fn drop_all(&self, ops: &mut impl Operands) {
        let len = ops.len();
        let mut start = 0;
        while start < len {
            let n = (len - start).min(CHUNK);
            ops.apply(start, n, &[0; CHUNK_WORDS]);
            start += n;
        }
    }

    fn draw(
        &self,
        ops: &mut impl Operands,
        units: &Units,
        threshold: Threshold,
        source: impl Randomness,
        mask: Option<&mut [u64]>,
    ) {
        dispatch::run(Broadcast {
            ops,
            units,
            decisions: Drawn {
                words: source.words(threshold),
                mask,
            },
        });
    }

    fn given(&self, ops: &mut impl Operands, units: &Units, mask: &[u64], first: usize) {
        dispatch::run(Broadcast {
            ops,
            units,
            decisions: Given(mask, first),
        });
    }
}

/// Fills the first words of `out` with the decisions of units
/// `first..first + count`: called in unit order, `first` a multiple of
/// `CHUNK` and `count <= CHUNK`.
trait UnitWords {
    fn fill(&mut self, first: usize, count: usize, out: &mut [u64], cpu: Cpu);
}

/// Decisions drawn from a source, copied to the caller's mask if any.
struct Drawn<'m, W> {
    words: W,
    mask: Option<&'m mut [u64]>,
}

impl<W: Words> UnitWords for Drawn<'_, W> {
    #[inline(always)]
    fn fill(&mut self, first: usize, count: usize, out: &mut [u64], cpu: Cpu) {
        let out = &mut out[..mask_words(count)];
        self.words.fill(out, count, cpu);
        // `first` is a multiple of CHUNK: the words copy as they are, a
        // whole chunk as an array (a copy of known length, which inlines).
        if let Some(mask) = self.mask.as_deref_mut() {
            let mask = &mut mask[first / 64..][..out.len()];
            match (mask.first_chunk_mut::<CHUNK_WORDS>(), out.first_chunk()) {
                (Some(mask), Some(words)) if count == CHUNK => *mask = *words,
                _ => mask.copy_from_slice(out),
            }
        }
    }
}

/// Decisions given by the caller's mask, from a bit on.
struct Given<'m>(&'m [u64], usize);

impl UnitWords for Given<'_> {
    #[inline(always)]
    fn fill(&mut self, first: usize, count: usize, out: &mut [u64], _: Cpu) {
        take_bits(self.0, self.1 + first, count, out);
    }
}

/// Units decided before they are applied when a shared axis repeats them:
/// each repetition then streams `TILE` units' elements at a time, long
/// enough for the prefetcher (with 512 the 16 strided slices of a
/// `[16, 1 Mi]` time-step tensor ran at 0.38 of the floor).
const TILE: usize = 16 * 1024;

/// Decides the units chunk by chunk, in unit order, and applies each
/// tile's decisions to all of its elements.
struct Broadcast<'a, O, D> {
    ops: &'a mut O,
    units: &'a Units,
    decisions: D,
}

impl<O: Operands, D: UnitWords> Kernel for Broadcast<'_, O, D> {
    #[inline(always)]
    fn run(mut self, cpu: Cpu) {
        // The tile's words live on the stack: 64 bytes unless a shared
        // axis needs 2 KiB.
        if self.units.shared > 1 {
            self.tiles::<{ TILE / 64 }>(cpu);
        } else if self.units.shared == 1 && self.units.run == 1 {
            // Unit u is element u.
            self.elements(cpu);
        } else {
            self.tiles::<CHUNK_WORDS>(cpu);
        }
    }
}

impl<O: Operands, D: UnitWords> Broadcast<'_, O, D> {
    /// One unit per element: each chunk's words are decided before the
    /// previous chunk is applied, so that the two, independent, overlap
    /// in the CPU (software pipelining).
    #[inline(always)]
    fn elements(&mut self, cpu: Cpu) {
        let count = self.units.count();
        let mut buffers = [[0u64; CHUNK_WORDS]; 2];
        let [mut current, mut next] = buffers.each_mut();
        let mut n = count.min(CHUNK);
        self.decisions.fill(0, n, current, cpu);
        let mut first = 0;
        while first < count {
            let following = (count - first - n).min(CHUNK);
            if following > 0 {
                self.decisions.fill(first + n, following, next, cpu);
            }
            self.ops.apply(first, n, current);
            core::mem::swap(&mut current, &mut next);
            first += n;
            n = following;
        }
    }

    /// Decides tiles of `64 * WORDS` units and applies each (any shape
    /// but one unit per element, which `elements` runs).
    #[inline(always)]
    fn tiles<const WORDS: usize>(&mut self, cpu: Cpu) {
        let Units {
            shared, inner, run, ..
        } = *self.units;
        let count = self.units.count();
        let tile = 64 * WORDS;
        let mut words = [0u64; WORDS];
        let mut part = [0u64; CHUNK_WORDS];
        let mut first = 0;
        while first < count {
            let n = (count - first).min(tile);
            let mut done = 0;
            while done < n {
                let m = (n - done).min(CHUNK);
                let slot = &mut words[done / 64..done / 64 + CHUNK_WORDS];
                self.decisions.fill(first + done, m, slot, cpu);
                done += m;
            }
            // The tile's units in runs that share an outer index, each run
            // applied at every index of the shared axis.
            let mut u = first;
            while u < first + n {
                let (o, i) = (u / inner, u % inner);
                let k = (inner - i).min(first + n - u);
                for s in 0..shared {
                    let start = ((o * shared + s) * inner + i) * run;
                    let mut j = 0;
                    while j < k {
                        let m = (k - j).min(CHUNK);
                        let at = u - first + j;
                        let bits: &[u64] = if at.is_multiple_of(64) {
                            &words[at / 64..]
                        } else {
                            take_bits(&words, at, m, &mut part);
                            &part
                        };
                        if run == 1 {
                            self.ops.apply(start + j, m, bits);
                        } else {
                            apply_runs(self.ops, start + j * run, bits, m, run);
                        }
                        j += m;
                    }
                }
                u += k;
            }
            first += n;
        }
    }
}

/// Applies `units` units of `run` elements each, from element `start` on:
/// their bits expanded to one per element, a piece at a time. (No division
/// per unit: at 256 Ki elements it cost half the floor's time.)
#[inline(always)]
fn apply_runs(ops: &mut impl Operands, start: usize, bits: &[u64], units: usize, run: usize) {
    let len = units * run;
    let mut piece = [0u64; CHUNK_WORDS];
    let (mut unit, mut left) = (0, run);
    let mut at = 0;
    while at < len {
        let n = (len - at).min(CHUNK);
        piece.fill(0);
        let mut e = 0;
        while e < n {
            let take = left.min(n - e);
            if bits
                .get(unit / 64)
                .is_some_and(|w| w >> (unit % 64) & 1 == 1)
            {
                set_bits(&mut piece, e, e + take);
            }
            e += take;
            left -= take;
            if left == 0 {
                (unit, left) = (unit + 1, run);
            }
        }
        ops.apply(start + at, n, &piece);
        at += n;
    }
}

/// Bits `at..at + len` of `src` to bits `0..len` of `out`.
#[inline(always)]
pub(crate) fn take_bits(src: &[u64], at: usize, len: usize, out: &mut [u64]) {
    let (w, s) = (at / 64, (at % 64) as u32);
    for (j, slot) in out.iter_mut().enumerate().take(mask_words(len)) {
        let lo = src.get(w + j).copied().unwrap_or(0);
        let hi = src.get(w + j + 1).copied().unwrap_or(0);
        let word = if s == 0 { lo } else { lo >> s | hi << (64 - s) };
        *slot = word & low_bits(len - 64 * j);
    }
}

/// Applies `rule` to `out` (read first if `READ`) and `ins`, all of one
/// length, 8 lanes at a time; element `j` is kept iff bit `j` of `words`.
/// The last partial block runs through the same lanes, zero-padded.
#[inline(always)]
pub(crate) fn lanes<E: Element, const K: usize, const READ: bool>(
    out: &mut [E],
    ins: [&[E]; K],
    words: &[u64],
    rule: impl Fn(E::Lanes, [E::Lanes; K], u32x8) -> E::Lanes,
) {
    let n = out.len();
    if ins.iter().any(|s| s.len() != n) {
        return; // the callers check lengths first
    }
    let unread = E::load(&[E::ZERO; 8]);
    let (groups, tail) = out.as_chunks_mut::<64>();
    let in_groups = ins.map(|s| s.as_chunks::<64>().0);
    for (g, (group, &word)) in groups.iter_mut().zip(words).enumerate() {
        for (b, block) in group.as_chunks_mut::<8>().0.iter_mut().enumerate() {
            let current = if READ { E::load(block) } else { unread };
            let args = core::array::from_fn(|k| {
                let block: &[E; 8] = &in_groups[k][g].as_chunks::<8>().0[b];
                E::load(block)
            });
            E::store(rule(current, args, keep_lanes(word, b)), block);
        }
    }
    let base = n - tail.len();
    let word = words.get(base / 64).copied().unwrap_or(0);
    for (b, block) in tail.chunks_mut(8).enumerate() {
        let (at, k) = (base + 8 * b, block.len());
        let padded = |s: &[E]| {
            let mut lanes = [E::ZERO; 8];
            lanes[..k].copy_from_slice(&s[..k]);
            E::load(&lanes)
        };
        let current = if READ { padded(block) } else { unread };
        let args = core::array::from_fn(|j| padded(&ins[j][at..]));
        let mut result = [E::ZERO; 8];
        E::store(rule(current, args, keep_lanes(word, b)), &mut result);
        block.copy_from_slice(&result[..k]);
    }
}

/// Lane masks for elements `8 block .. 8 block + 8` of a 64-element group
/// whose keep word is `word`: all ones where kept.
#[inline(always)]
fn keep_lanes(word: u64, block: usize) -> u32x8 {
    let half = u32x8::splat((word >> (32 * (block / 4))) as u32);
    let bits = u32x8::new(LANE_BITS[block % 4]);
    (half & bits).simd_eq(bits)
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
