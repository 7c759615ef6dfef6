//! The fast path: decisions generated chunk by chunk, broadcast to their
//! elements, and applied in SIMD lanes by each variant's lane rule.

use crate::Element;
use crate::decide::Threshold;
use crate::dispatch::{self, Cpu, Kernel, Level};
use crate::lanes::{LaneTask, Lanes, Rule};
use crate::mask::{low_bits, mask_words, set_bits};
use crate::run::{Executor, Operands};
use crate::source::Randomness;
use crate::source::sealed::Words;
use crate::units::Units;

/// Units decided per chunk: two batches of the keyed stream per call of
/// its generator. Its words are generated, then applied while they are in
/// L1. Each chunk costs 4 to 10 ns of its own (the calls, the loop's
/// state): at 512 units, keyed forward ran 10 to 14% slower at 4 Ki `f32`
/// and 5 to 10% at 256 Ki, in cache (AMD EPYC with AVX-512, default and
/// native builds); at 2048 (applied in the same pieces), within 5% of
/// 1024 either way, in cache and in DRAM. (Earlier, 4096 measured slower
/// at 16 Mi.)
pub(crate) const CHUNK: usize = 1024;
pub(crate) const CHUNK_WORDS: usize = CHUNK / 64;

/// Elements applied at a time within a chunk of one unit per element,
/// each piece after the prefetch hint for its lines: hinting a whole
/// chunk of 1024 `f32` at once (64 lines in a burst) ran apply_mask and
/// keyed forward 5 to 15% slower at 128 Mi, in DRAM, than 32 lines at a
/// time, where the cache cells kept the larger chunk's gain.
const PIECE: usize = 512;

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
            ops.apply(start, n, &[0; CHUNK_WORDS], Cpu::BUILD);
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
        if first == 0 && units.shared == 1 && units.run == 1 {
            // Unit u is element u, and bit u of the caller's words is its:
            // applied straight from them. (Copied chunk by chunk first, as
            // for the other shapes, apply_mask ran about 10% slower, in
            // cache and in DRAM.)
            dispatch::run(FromMask { ops, mask });
        } else {
            dispatch::run(Broadcast {
                ops,
                units,
                decisions: Given(mask, first),
            });
        }
    }
}

/// Fills the first words of `out` with the decisions of units
/// `first..first + count`: called in unit order, `first` a multiple of
/// `CHUNK` and `count <= CHUNK`.
trait UnitWords {
    fn fill<I: Level>(&mut self, first: usize, count: usize, out: &mut [u64], cpu: Cpu<I>);
}

/// Decisions drawn from a source, copied to the caller's mask if any.
struct Drawn<'m, W> {
    words: W,
    mask: Option<&'m mut [u64]>,
}

impl<W: Words> UnitWords for Drawn<'_, W> {
    #[inline(always)]
    fn fill<I: Level>(&mut self, first: usize, count: usize, out: &mut [u64], cpu: Cpu<I>) {
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
    fn fill<I: Level>(&mut self, first: usize, count: usize, out: &mut [u64], _: Cpu<I>) {
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
    fn run<I: Level>(mut self, cpu: Cpu<I>) {
        // The tile's words live on the stack: 128 bytes (a chunk's)
        // unless a shared axis needs 2 KiB.
        if self.units.shared > 1 {
            self.tiles::<{ TILE / 64 }, _>(cpu);
        } else if self.units.shared == 1 && self.units.run == 1 {
            // Unit u is element u.
            self.elements(cpu);
        } else {
            self.tiles::<CHUNK_WORDS, _>(cpu);
        }
    }
}

impl<O: Operands, D: UnitWords> Broadcast<'_, O, D> {
    /// One unit per element: each chunk's words are decided before the
    /// previous chunk is applied (in pieces of `PIECE`), so that the two,
    /// independent, overlap in the CPU (software pipelining).
    #[inline(always)]
    fn elements<I: Level>(&mut self, cpu: Cpu<I>) {
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
            apply_pieces(self.ops, first, n, current, cpu);
            core::mem::swap(&mut current, &mut next);
            first += n;
            n = following;
        }
    }

    /// Decides tiles of `64 * WORDS` units and applies each (any shape
    /// but one unit per element, which `elements` runs).
    #[inline(always)]
    fn tiles<const WORDS: usize, I: Level>(&mut self, cpu: Cpu<I>) {
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
                            self.ops.apply(start + j, m, bits, cpu);
                        } else {
                            apply_runs(self.ops, start + j * run, bits, m, run, cpu);
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

/// Applies elements `first..first + len`, element `first + j` kept iff
/// bit `j` of `words`, a `PIECE` at a time, each after its prefetch hint.
#[inline(always)]
fn apply_pieces<I: Level>(
    ops: &mut impl Operands,
    first: usize,
    len: usize,
    words: &[u64],
    cpu: Cpu<I>,
) {
    let mut at = 0;
    while at < len {
        let m = (len - at).min(PIECE);
        ops.prefetch(first + at, m);
        ops.apply(first + at, m, &words[at / 64..], cpu);
        at += m;
    }
}

/// One unit per element, decided by the caller's mask from its first bit.
struct FromMask<'a, O> {
    ops: &'a mut O,
    mask: &'a [u64],
}

impl<O: Operands> Kernel for FromMask<'_, O> {
    #[inline(always)]
    fn run<I: Level>(self, cpu: Cpu<I>) {
        let len = self.ops.len();
        apply_pieces(self.ops, 0, len, self.mask, cpu);
    }
}

/// Applies `units` units of `run` elements each, from element `start` on:
/// their bits expanded to one per element, a piece at a time. (No division
/// per unit: at 256 Ki elements it cost half the floor's time.)
#[inline(always)]
fn apply_runs<I: Level>(
    ops: &mut impl Operands,
    start: usize,
    bits: &[u64],
    units: usize,
    run: usize,
    cpu: Cpu<I>,
) {
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
        ops.apply(start + at, n, &piece, cpu);
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

/// How far ahead of the elements being applied, in bytes, the one-unit-
/// per-element kernel asks the CPU to load the operands' cache lines. Its
/// loads come in bursts, between bursts of decisions, and the hardware
/// prefetchers alone kept too few lines in flight: at 16 Mi `f32` (in
/// DRAM), on a Xeon of the Emerald Rapids class, keyed forward in place ran
/// at 0.63 of the floor at p = 0.1 without, 0.84 to 0.89 with 4 to 16 KiB
/// (and 0.9 of the floor where apply_mask ran 0.85, at 256 Ki).
pub(crate) const PREFETCH_BYTES: usize = 8 << 10;

/// The smallest slice [`prefetch`] hints for: smaller ones are in cache,
/// where the hints only cost (at 4 Ki `f32`, apply_mask ran at 0.71 of
/// the floor with them, 1.0 without). At 256 Ki `f32` (1 MiB, in the L2
/// of an AMD EPYC with AVX-512), apply_mask ran 0.88 to 0.94 with them and
/// 0.97 without, forward the same either way; a gate above L2 was not
/// measured for calls that live in L3.
const PREFETCH_FROM_BYTES: usize = 512 << 10;

/// Asks the CPU to load the cache lines of `xs[at..at + len]`, moved
/// [`PREFETCH_BYTES`] ahead (those past the end are skipped), if `xs` is
/// large; a hint, on x86-64 only (elsewhere nothing: the hint is not
/// stable in Rust there).
#[inline(always)]
pub(crate) fn prefetch<E>(xs: &[E], at: usize, len: usize) {
    #[cfg(target_arch = "x86_64")]
    if size_of_val(xs) >= PREFETCH_FROM_BYTES {
        use core::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        let size = size_of::<E>().max(1);
        let ahead = at + PREFETCH_BYTES / size;
        let step = (64 / size).max(1);
        let mut i = ahead;
        while i < (ahead + len).min(xs.len()) {
            // SAFETY: `xs[i]` is in bounds, and a prefetch neither reads
            // the memory nor faults (x86-64 has SSE, whose instruction it
            // is, everywhere).
            #[allow(unsafe_code, unused_unsafe)]
            unsafe {
                _mm_prefetch::<_MM_HINT_T0>(xs.as_ptr().add(i).cast())
            };
            i += step;
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (xs, at, len);
}

/// Applies `rule` to `out` (read first if `READ`) and `ins`, all of one
/// length, in the widest lanes `cpu` offers `E`; element `j` is kept iff
/// bit `j` of `words`.
#[inline(always)]
pub(crate) fn lanes<E: Element, const K: usize, const READ: bool, I: Level>(
    cpu: Cpu<I>,
    out: &mut [E],
    ins: [&[E]; K],
    words: &[u64],
    rule: impl Rule<E, K>,
) {
    E::in_widest(
        cpu,
        Lanewise::<_, _, K, READ> {
            out,
            ins,
            words,
            rule,
        },
    );
}

/// [`lanes`]'s loop, for any lane type.
struct Lanewise<'a, E, R, const K: usize, const READ: bool> {
    out: &'a mut [E],
    ins: [&'a [E]; K],
    words: &'a [u64],
    rule: R,
}

impl<E: Element, R: Rule<E, K>, const K: usize, const READ: bool> LaneTask<E>
    for Lanewise<'_, E, R, K, READ>
{
    /// Whole groups of 64 elements `L::WIDTH` at a time; the last partial
    /// group through the same lanes, zero-padded.
    #[inline(always)]
    fn run<L: Lanes<E>>(self) {
        let Lanewise {
            out,
            ins,
            words,
            rule,
        } = self;
        let n = out.len();
        if ins.iter().any(|s| s.len() != n) {
            return; // the callers check lengths first
        }
        let unread = L::splat(E::ZERO);
        let (groups, tail) = out.as_chunks_mut::<64>();
        let in_groups = ins.map(|s| s.as_chunks::<64>().0);
        for (g, (group, &word)) in groups.iter_mut().zip(words).enumerate() {
            for b in 0..64 / L::WIDTH {
                let at = L::WIDTH * b;
                let current = if READ { L::load(&group[at..]) } else { unread };
                let args = core::array::from_fn(|k| L::load(&in_groups[k][g][at..]));
                rule.lanes(current, args, L::keep(word, b))
                    .store(&mut group[at..]);
            }
        }
        let base = n - tail.len();
        let word = words.get(base / 64).copied().unwrap_or(0);
        for (b, block) in tail.chunks_mut(L::WIDTH).enumerate() {
            let (at, k) = (base + L::WIDTH * b, block.len());
            let padded = |s: &[E]| {
                let mut lanes = [E::ZERO; MAX_WIDTH];
                lanes[..k].copy_from_slice(&s[..k]);
                L::load(&lanes)
            };
            let current = if READ { padded(block) } else { unread };
            let args = core::array::from_fn(|j| padded(&ins[j][at..]));
            let mut result = [E::ZERO; MAX_WIDTH];
            rule.lanes(current, args, L::keep(word, b))
                .store(&mut result);
            block.copy_from_slice(&result[..k]);
        }
    }
}

/// The widest lane type's width.
const MAX_WIDTH: usize = 16;
