//! Mask stream v2, the fast path: eight xoshiro256++ generators stepped
//! together in SIMD lanes (one AVX-512 register or two AVX2 ones where the
//! CPU has them, `wide` lanes elsewhere), a fixed number of steps per
//! batch, the tied positions' second stage in one compacted word.
//! `stream.rs` holds the definition both paths share; the reference builds
//! each position's number from `rand_xoshiro`'s generators instead, and the
//! tests hold the two equal.

use crate::decide::{self, Threshold};
use crate::dispatch::{self, Cpu, Kernel, Level};
use crate::mask::low_bits;
use crate::stream::{
    BLOCK_WORDS, FIRST_BITS, GAMMA, LANES, POOL_BITS, POOLED, compared_bits, keys, mix, state,
    tail_key,
};
use core::ops::{Add, BitAnd, BitOr, BitXor, Not, Shl, Shr};

/// The generators stepped together in `wide` lanes, where no wider
/// registers are known to be there (x86-64 CPUs without AVX2, and every
/// other target): two independent dependency chains per step on SSE2 and
/// NEON, measured faster than one.
type Chunk = wide::u64x4;

/// What the generators need of SIMD `u64` lanes.
trait Lanes:
    Copy
    + BitAnd<Output = Self>
    + BitOr<Output = Self>
    + BitXor<Output = Self>
    + Not<Output = Self>
    + Add<Output = Self>
    + Shl<u32, Output = Self>
    + Shr<u32, Output = Self>
{
    const WIDTH: usize;
    fn splat(x: u64) -> Self;
    /// Lanes from `lanes[..WIDTH]`.
    fn load(lanes: &[u64]) -> Self;
    /// Lanes to `lanes[..WIDTH]`.
    fn store(self, lanes: &mut [u64]);
    /// Every lane rotated left by `k` (`0 < k < 64`).
    #[inline(always)]
    fn rotate_left(self, k: u32) -> Self {
        (self << k) | (self >> (64 - k))
    }
}

impl Lanes for wide::u64x4 {
    const WIDTH: usize = 4;
    #[inline(always)]
    fn splat(x: u64) -> Self {
        wide::u64x4::splat(x)
    }
    #[inline(always)]
    fn load(lanes: &[u64]) -> Self {
        wide::u64x4::new(core::array::from_fn(|i| lanes.get(i).copied().unwrap_or(0)))
    }
    #[inline(always)]
    fn store(self, lanes: &mut [u64]) {
        for (lane, x) in lanes.iter_mut().zip(self.to_array()) {
            *lane = x;
        }
    }
}

/// The generators in AVX2 registers (four lanes) or in one AVX-512
/// register (all eight), wherever the CPU has them: `wide`'s types are
/// fixed when it is compiled, and with the default target its `u64x4` is
/// two SSE2 registers even inside the dispatched kernels, where mask
/// generation ran 1.8 times slower than in a build for the native CPU
/// (`benches/README.md`).
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod x86 {
    use super::Lanes;
    use core::arch::x86_64::*;
    use core::ops::{Add, BitAnd, BitOr, BitXor, Not, Shl, Shr};

    /// Four lanes in an AVX2 register.
    #[derive(Clone, Copy)]
    pub(super) struct U64x4(__m256i);

    /// Eight lanes in an AVX-512 register.
    #[derive(Clone, Copy)]
    pub(super) struct U64x8(__m512i);

    // Only `KeyedWords::decide` makes values of these types, and only when
    // its level says the CPU has the type's instructions (AVX2 for
    // `U64x4`, AVX-512F for `U64x8`; detected at run time, or required by
    // the build's target), and the tests after detecting them: that is the
    // safety argument of every `unsafe` block below, each an intrinsic of
    // those instructions on values of these types or on a local array.
    macro_rules! lanes {
        ($t:ident, $width:literal, $and:ident, $or:ident, $xor:ident,
         $add:ident, $sllv:ident, $srlv:ident, $set1:ident, $loadu:ident, $storeu:ident
         $(, $rolv:ident)?) => {
            impl BitAnd for $t {
                type Output = Self;
                #[inline(always)]
                fn bitand(self, other: Self) -> Self {
                    // SAFETY: see above: the CPU has the instructions.
                    $t(unsafe { $and(self.0, other.0) })
                }
            }

            impl BitOr for $t {
                type Output = Self;
                #[inline(always)]
                fn bitor(self, other: Self) -> Self {
                    // SAFETY: see above: the CPU has the instructions.
                    $t(unsafe { $or(self.0, other.0) })
                }
            }

            impl BitXor for $t {
                type Output = Self;
                #[inline(always)]
                fn bitxor(self, other: Self) -> Self {
                    // SAFETY: see above: the CPU has the instructions.
                    $t(unsafe { $xor(self.0, other.0) })
                }
            }

            impl Add for $t {
                type Output = Self;
                #[inline(always)]
                fn add(self, other: Self) -> Self {
                    // SAFETY: see above: the CPU has the instructions.
                    $t(unsafe { $add(self.0, other.0) })
                }
            }

            impl Not for $t {
                type Output = Self;
                #[inline(always)]
                fn not(self) -> Self {
                    self ^ $t::splat(!0)
                }
            }

            // Shifts by a count per lane (`sllv`): Miri interprets them,
            // not the 512-bit shift by one count in an SSE register.
            impl Shl<u32> for $t {
                type Output = Self;
                #[inline(always)]
                fn shl(self, k: u32) -> Self {
                    // SAFETY: see above: the CPU has the instructions.
                    $t(unsafe { $sllv(self.0, $set1(i64::from(k))) })
                }
            }

            impl Shr<u32> for $t {
                type Output = Self;
                #[inline(always)]
                fn shr(self, k: u32) -> Self {
                    // SAFETY: see above: the CPU has the instructions.
                    $t(unsafe { $srlv(self.0, $set1(i64::from(k))) })
                }
            }

            impl Lanes for $t {
                const WIDTH: usize = $width;
                #[inline(always)]
                fn splat(x: u64) -> Self {
                    // SAFETY: see above: the CPU has the instructions.
                    $t(unsafe { $set1(x as i64) })
                }
                #[inline(always)]
                fn load(lanes: &[u64]) -> Self {
                    let lanes: [u64; $width] =
                        core::array::from_fn(|i| lanes.get(i).copied().unwrap_or(0));
                    // SAFETY: see above: the CPU has the instructions; the
                    // read is of the bytes of `lanes`, unaligned allowed.
                    $t(unsafe { $loadu(lanes.as_ptr().cast()) })
                }
                #[inline(always)]
                fn store(self, lanes: &mut [u64]) {
                    let mut words = [0u64; $width];
                    // SAFETY: see above: the CPU has the instructions; the
                    // write is of the bytes of `words`, unaligned allowed.
                    unsafe { $storeu(words.as_mut_ptr().cast(), self.0) };
                    for (lane, word) in lanes.iter_mut().zip(words) {
                        *lane = word;
                    }
                }
                $(
                    // One instruction where the set has a rotate.
                    #[inline(always)]
                    fn rotate_left(self, k: u32) -> Self {
                        // SAFETY: see above: the CPU has the instructions.
                        $t(unsafe { $rolv(self.0, $set1(i64::from(k))) })
                    }
                )?
            }
        };
    }

    lanes!(
        U64x4,
        4,
        _mm256_and_si256,
        _mm256_or_si256,
        _mm256_xor_si256,
        _mm256_add_epi64,
        _mm256_sllv_epi64,
        _mm256_srlv_epi64,
        _mm256_set1_epi64x,
        _mm256_loadu_si256,
        _mm256_storeu_si256
    );
    lanes!(
        U64x8,
        8,
        _mm512_and_si512,
        _mm512_or_si512,
        _mm512_xor_si512,
        _mm512_add_epi64,
        _mm512_sllv_epi64,
        _mm512_srlv_epi64,
        _mm512_set1_epi64,
        _mm512_loadu_si512,
        _mm512_storeu_si512,
        _mm512_rolv_epi64
    );
}

/// One xoshiro256++ step in every lane of `s`.
#[inline(always)]
fn step<V: Lanes>(s: &mut [V; 4]) -> V {
    let [s0, s1, s2, s3] = s;
    let result = (*s0 + *s3).rotate_left(23) + *s0;
    let t = *s1 << 17;
    *s2 = *s2 ^ *s0;
    *s3 = *s3 ^ *s1;
    *s1 = *s1 ^ *s2;
    *s0 = *s0 ^ *s3;
    *s2 = *s2 ^ t;
    *s3 = s3.rotate_left(45);
    result
}

/// Where a batch's words come from: the generators, or a test's script.
/// (A trait, not a closure: the call must inline into the dispatched
/// kernel, and a function passed as a closure was measured not to.)
trait Draw<V> {
    /// The next word of every generator of a chunk whose state is `s`.
    fn draw(&mut self, s: &mut [V; 4]) -> V;
}

/// The generators themselves.
struct Xoshiro;

impl<V: Lanes> Draw<V> for Xoshiro {
    #[inline(always)]
    fn draw(&mut self, s: &mut [V; 4]) -> V {
        step(s)
    }
}

/// What a threshold asks of every batch, worked out once per call.
#[derive(Clone, Copy, Debug)]
struct Plan {
    d: u64,
    /// First-stage steps: `min(FIRST_BITS, compared bits of D)`.
    first_steps: usize,
    /// `D`'s bits 63, 62, ... spread to words, one per first-stage step.
    first: [u64; FIRST_BITS as usize],
    /// `D` has bits past the first stage: a pool step follows.
    pooled: bool,
    /// `D`'s next `POOL_BITS` bits, spread.
    pool: [u64; POOL_BITS as usize],
    /// `D` has bits past the pool's: positions still tied take a tail word.
    tail: bool,
}

impl Plan {
    fn new(threshold: Threshold) -> Plan {
        let compared = compared_bits(threshold.0);
        Plan {
            d: threshold.0,
            first_steps: compared.min(FIRST_BITS) as usize,
            first: core::array::from_fn(|t| threshold.spread(63 - t as u32)),
            pooled: compared > FIRST_BITS,
            pool: core::array::from_fn(|c| threshold.spread(63 - FIRST_BITS - c as u32)),
            tail: compared > FIRST_BITS + POOL_BITS,
        }
    }

    /// Generator steps per batch: the same for every batch of a threshold.
    fn steps(&self) -> usize {
        self.first_steps + usize::from(self.pooled)
    }
}

/// Eight xoshiro256++ states: `s[i][j]` is state word `i` of lane `j`.
/// Each batch loads them into lanes of the widest type the CPU runs.
#[derive(Clone, Copy)]
struct Generators {
    s: [[u64; LANES]; 4],
}

impl Generators {
    /// The generators of block `block`: lane `j` is stream `8 block + j`.
    #[inline(always)]
    fn seed(keys: &[u64; 4], block: u64) -> Self {
        let first = block.wrapping_mul(LANES as u64);
        // Word i of every lane's state, lane by lane (plain loops: they
        // inline where closures did not).
        let mut s = [[0; LANES]; 4];
        for j in 0..LANES {
            let lane = state(keys, first.wrapping_add(j as u64));
            for (word, x) in s.iter_mut().zip(lane) {
                word[j] = x;
            }
        }
        Generators { s }
    }

    /// The states of lanes `c * V::WIDTH ..` in lanes of `V`.
    #[inline(always)]
    fn chunk<V: Lanes>(&self, c: usize) -> [V; 4] {
        core::array::from_fn(|i| V::load(&self.s[i][c * V::WIDTH..]))
    }

    #[inline(always)]
    fn set_chunk<V: Lanes>(&mut self, c: usize, chunk: [V; 4]) {
        for (lanes, word) in self.s.iter_mut().zip(chunk) {
            word.store(&mut lanes[c * V::WIDTH..]);
        }
    }

    /// Steps every generator `n` times, drawing words nobody reads.
    #[inline(always)]
    fn skip<V: Lanes>(&mut self, n: usize) {
        if n == 0 {
            return;
        }
        for c in 0..LANES / V::WIDTH {
            let mut local = self.chunk::<V>(c);
            for _ in 0..n {
                step(&mut local);
            }
            self.set_chunk(c, local);
        }
    }

    /// Skips `skip` steps, then decides the next batch, in lanes of `V`.
    #[inline(always)]
    fn advance<V: Lanes, I: Level>(
        &mut self,
        skip: usize,
        plan: &Plan,
        cpu: Cpu<I>,
        tail: impl Fn(usize) -> u64,
        out: &mut [u64; LANES],
    ) {
        self.skip::<V>(skip);
        self.batch::<V, I>(plan, cpu, Xoshiro, tail, out);
    }

    /// Decides the next batch: its 8 keep words to `out`, lane `j` the
    /// word of generator `j`. `source` steps a chunk's generators (the tests
    /// script it), `tail(i)` is the tail word of the batch's position `i`.
    /// The words are written once each, by scalar stores (the rare tail
    /// updates single bits): a vector load of words just written one by one
    /// stalls (store forwarding fails), measured a fifth of a batch's time.
    #[inline(always)]
    fn batch<V: Lanes, I: Level>(
        &mut self,
        plan: &Plan,
        cpu: Cpu<I>,
        mut source: impl Draw<V>,
        tail: impl Fn(usize) -> u64,
        out: &mut [u64; LANES],
    ) {
        let (mut kept, mut tied, mut pool) = ([0; LANES], [0; LANES], [0; LANES]);
        // Stage one: `first_steps` bits of every position, in lockstep, a
        // chunk of lanes at a time (its state in registers).
        for c in 0..LANES / V::WIDTH {
            let (mut undecided, mut k) = (V::splat(!0), V::splat(0));
            let mut local = self.chunk::<V>(c);
            for &d in &plan.first[..plan.first_steps] {
                decide::step(&mut undecided, &mut k, source.draw(&mut local), V::splat(d));
            }
            k.store(&mut kept[c * V::WIDTH..]);
            undecided.store(&mut tied[c * V::WIDTH..]);
            if plan.pooled {
                source.draw(&mut local).store(&mut pool[c * V::WIDTH..]);
            }
            self.set_chunk(c, local);
        }
        if !plan.pooled {
            // D has no more bits: positions still equal are kept.
            for ((out, kept), tied) in out.iter_mut().zip(kept).zip(tied) {
                *out = kept | tied;
            }
            return;
        }
        // Stage two: the first POOLED tied positions, in position order,
        // compared as one word, bit r of pool word c being bit c of tied
        // position r's next bits.
        let mut rank = [0u32; LANES];
        let mut total = 0;
        for (rank, tied) in rank.iter_mut().zip(&tied) {
            *rank = total;
            total += tied.count_ones();
        }
        // All 64 compared, then cut to the open ones: the comparison does
        // not wait for the bit counts.
        let (mut undecided, mut k) = (!0, 0);
        for (&random, &d) in pool.iter().zip(&plan.pool) {
            decide::step(&mut undecided, &mut k, random, d);
        }
        let open = low_bits(total as usize);
        (undecided, k) = (undecided & open, k & open);
        if !plan.tail {
            // D has no more bits: positions still equal are kept.
            k |= undecided;
            undecided = 0;
        }
        for (((out, kept), &tied), &rank) in out.iter_mut().zip(kept).zip(&tied).zip(&rank) {
            // Past the pool's 64 (a select, not a branch), nothing.
            *out = kept | cpu.deposit(k.checked_shr(rank).unwrap_or(0), tied);
        }
        if undecided != 0 || total > POOLED {
            // Rare (about one batch in 8 at p = 0.1): the tail.
            let resolved = open & !undecided;
            for (j, (kept, &tied)) in out.iter_mut().zip(&tied).enumerate() {
                let mut left = tied;
                if rank[j] < POOLED {
                    left &= !cpu.deposit(resolved >> rank[j], tied);
                }
                while left != 0 {
                    let bit = left.trailing_zeros();
                    left &= left - 1;
                    let r = rank[j] + (tied & low_bits(bit as usize)).count_ones();
                    let used = FIRST_BITS + if r < POOLED { POOL_BITS } else { 0 };
                    // The rest of u is the tail word's top bits.
                    let rest = tail(64 * j + bit as usize) >> used;
                    if rest >= plan.d & low_bits(64 - used as usize) {
                        *kept |= 1 << bit;
                    }
                }
            }
        }
    }
}

/// Keep words of the keyed stream for consecutive elements of one call.
pub struct KeyedWords {
    keys: [u64; 4],
    tail_key: u64,
    plan: Plan,
    /// Stream position of the call's next element.
    position: u64,
    generators: Generators,
    /// The generators' block and the batch of it they decide next, if
    /// seeded.
    next: Option<(u64, u64)>,
    /// The last batch decided, and its words.
    decided: Option<u64>,
    words: [u64; LANES],
}

impl core::fmt::Debug for KeyedWords {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("KeyedWords")
            .field("position", &self.position)
            .finish_non_exhaustive()
    }
}

impl KeyedWords {
    pub(crate) fn new(seed: u64, offset: u64, threshold: Threshold) -> Self {
        let keys = keys(seed);
        KeyedWords {
            keys,
            tail_key: tail_key(seed),
            plan: Plan::new(threshold),
            position: offset,
            generators: Generators { s: [[0; LANES]; 4] },
            next: None,
            decided: None,
            words: [0; LANES],
        }
    }

    /// Makes `words` hold batch `batch` (calls go forward in the stream).
    #[inline(always)]
    fn load<I: Level>(&mut self, batch: u64, cpu: Cpu<I>) {
        if self.decided != Some(batch) {
            let mut words = [0; LANES];
            self.decide(batch, cpu, &mut words);
            self.words = words;
            self.decided = Some(batch);
        }
    }

    /// Decides batch `batch` into `out` (calls go forward in the stream).
    #[inline(always)]
    fn decide<I: Level>(&mut self, batch: u64, cpu: Cpu<I>, out: &mut [u64; LANES]) {
        let per_block = BLOCK_WORDS / LANES as u64;
        let (block, within) = (batch / per_block, batch % per_block);
        let skipped = match self.next {
            Some((seeded, next)) if seeded == block && next <= within => within - next,
            _ => {
                self.generators = Generators::seed(&self.keys, block);
                within
            }
        };
        let (tail_key, first) = (self.tail_key, batch.wrapping_mul(64 * LANES as u64));
        let tail = |i: usize| {
            let q = first.wrapping_add(i as u64);
            mix(tail_key.wrapping_add(q.wrapping_add(1).wrapping_mul(GAMMA)))
        };
        // The steps per batch depend on p only, so skipping is stepping.
        let skip = skipped as usize * self.plan.steps();
        let (generators, plan) = (&mut self.generators, &self.plan);
        #[cfg(target_arch = "x86_64")]
        {
            if I::AVX512 {
                generators.advance::<x86::U64x8, I>(skip, plan, cpu, tail, out);
            } else if I::AVX2 {
                generators.advance::<x86::U64x4, I>(skip, plan, cpu, tail, out);
            } else {
                generators.advance::<Chunk, I>(skip, plan, cpu, tail, out);
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        generators.advance::<Chunk, I>(skip, plan, cpu, tail, out);
        self.next = Some((block, within + 1));
    }

    /// Stream word `k` (positions `64 k .. 64 k + 64`).
    #[inline(always)]
    fn word<I: Level>(&mut self, k: u64, cpu: Cpu<I>) -> u64 {
        self.load(k / LANES as u64, cpu);
        self.words[(k % LANES as u64) as usize]
    }

    /// Fills `out` with the keep words of the call's next `len` elements;
    /// `out.len()` is `len.div_ceil(64)`, and bits past `len` are cleared.
    ///
    /// Compiled once per instruction set, here, and called once per chunk
    /// of elements: inlined into every generic kernel, it was built again
    /// for every operation and element type, twice on x86-64.
    #[inline(never)]
    pub(crate) fn fill<I: Level>(&mut self, out: &mut [u64], len: usize, cpu: Cpu<I>) {
        dispatch::run_on(
            cpu,
            Fill {
                words: self,
                out,
                len,
            },
        );
    }

    #[inline(always)]
    fn fill_inlined<I: Level>(&mut self, out: &mut [u64], len: usize, cpu: Cpu<I>) {
        let shift = (self.position % 64) as u32;
        let first = self.position / 64;
        if shift == 0 {
            // Whole stream words: whole batches as arrays (a copy of known
            // length, which inlines), the rest word by word.
            let mut done = 0;
            while done < out.len() {
                let k = first + done as u64;
                if k.is_multiple_of(LANES as u64)
                    && let Some(batch) = out[done..].first_chunk_mut::<LANES>()
                {
                    // Straight to `out`; calls go forward, so no later
                    // word of this call is in this batch.
                    let b = k / LANES as u64;
                    if self.decided == Some(b) {
                        *batch = self.words;
                    } else {
                        self.decide(b, cpu, batch);
                    }
                    done += LANES;
                } else {
                    out[done] = self.word(k, cpu);
                    done += 1;
                }
            }
        } else {
            for (i, slot) in out.iter_mut().enumerate() {
                let k = first + i as u64;
                let mut word = self.word(k, cpu) >> shift;
                // The next stream word, unless the call ends before it.
                if len > 64 * i + (64 - shift as usize) {
                    word |= self.word(k + 1, cpu) << (64 - shift);
                }
                *slot = word;
            }
        }
        if let Some(last) = out.last_mut() {
            *last &= low_bits(len - 64 * (len.div_ceil(64) - 1));
        }
        // Wraps only after the call's last element, at position 2^64.
        self.position = self.position.wrapping_add(len as u64);
    }
}

/// [`KeyedWords::fill`] as a kernel of its own.
struct Fill<'a> {
    words: &'a mut KeyedWords,
    out: &'a mut [u64],
    len: usize,
}

impl Kernel for Fill<'_> {
    #[inline(always)]
    fn run<I: Level>(self, cpu: Cpu<I>) {
        self.words.fill_inlined(self.out, self.len, cpu);
    }
}

#[cfg(test)]
mod tests {
    //! Exactness with scripted words: whatever the numbers `u` of a batch's
    //! positions, the words that spell them (stage one, pool, tail, as the
    //! crate docs lay them out) decide exactly `u >= D`, drawing a number
    //! of words that depends on `D` only.

    extern crate std;

    use super::*;
    use crate::dispatch::{Cpu, Level};
    use rand_core::{Rng, SeedableRng};
    use rand_xoshiro::Xoshiro256PlusPlus;
    use std::vec::Vec;

    /// The words that spell `us` for threshold `d`: per chunk of lanes, in
    /// the order `batch` draws them, and each position's tail word.
    fn spell(d: u64, us: &[u64; 512], width: usize) -> (Vec<Vec<[u64; LANES]>>, [u64; 512]) {
        let compared = compared_bits(d);
        let first = compared.min(FIRST_BITS);
        let bit = |u: u64, t: u32| u >> (63 - t) & 1;
        let mut steps: Vec<[u64; LANES]> = (0..first)
            .map(|t| {
                core::array::from_fn(|j| (0..64).fold(0, |w, i| w | bit(us[64 * j + i], t) << i))
            })
            .collect();
        let mut tails = [0; 512];
        if compared > FIRST_BITS {
            let mut pool = [0u64; LANES];
            let mut rank = 0;
            for (i, &u) in us.iter().enumerate() {
                if u >> (64 - FIRST_BITS) != d >> (64 - FIRST_BITS) {
                    continue;
                }
                let mut used = FIRST_BITS;
                if rank < 64 {
                    for (c, word) in pool.iter_mut().enumerate() {
                        *word |= bit(u, FIRST_BITS + c as u32) << rank;
                    }
                    used += POOL_BITS;
                }
                rank += 1;
                tails[i] = u << used;
            }
            steps.push(pool);
        }
        // `batch` draws chunk by chunk: every step of chunk 0, then chunk 1.
        let script = (0..LANES / width)
            .map(|c| {
                steps
                    .iter()
                    .map(|words| {
                        core::array::from_fn(|k| words.get(c * width + k).copied().unwrap_or(0))
                    })
                    .collect()
            })
            .collect();
        (script, tails)
    }

    /// Words in the order `batch` draws them.
    struct Script {
        words: Vec<[u64; LANES]>,
        drawn: usize,
    }

    impl<V: Lanes> Draw<V> for &mut Script {
        fn draw(&mut self, _: &mut [V; 4]) -> V {
            let words = self
                .words
                .get(self.drawn)
                .expect("drew more words than D needs");
            self.drawn += 1;
            V::load(words)
        }
    }

    fn decide<V: Lanes, I: Level>(d: u64, us: &[u64; 512], cpu: Cpu<I>) -> ([u64; LANES], usize) {
        let (script, tails) = spell(d, us, V::WIDTH);
        let mut generators = Generators { s: [[0; LANES]; 4] };
        let plan = Plan::new(Threshold(d));
        let mut out = [0; LANES];
        let mut script = Script {
            words: script.into_iter().flatten().collect(),
            drawn: 0,
        };
        generators.batch::<V, I>(&plan, cpu, &mut script, |i| tails[i], &mut out);
        let drawn = script.drawn;
        assert_eq!(drawn, LANES / V::WIDTH * plan.steps());
        (out, drawn)
    }

    /// Numbers near `D`: equal to it, one off, sharing its first 4 or 12
    /// bits (so ties reach the pool and the tail), or anything.
    fn near(d: u64, rng: &mut Xoshiro256PlusPlus, crowd: bool) -> u64 {
        let r = rng.next_u64();
        let keep_top =
            |bits: u32| d & !low_bits(64 - bits as usize) | r & low_bits(64 - bits as usize);
        match rng.next_u32() % if crowd { 4 } else { 8 } {
            0 => d,
            1 => keep_top(FIRST_BITS),
            2 => keep_top(FIRST_BITS + POOL_BITS),
            3 => d.wrapping_add(1),
            4 => d.wrapping_sub(1),
            5 => keep_top(FIRST_BITS + POOL_BITS + 1),
            _ => r,
        }
    }

    #[test]
    fn scripted_numbers_are_decided_exactly() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(9);
        let thresholds = [
            0x1999_9999_9999_9999, // p = 0.1
            0xE666_6666_6666_6666, // p = 0.9
            1 << 63,               // p = 0.5: one step
            0xB000_0000_0000_0000, // 4 bits: stage one only
            0x1A00_0000_0000_0000, // 7 bits: a pool, no tail
            0x1FF8_0000_0000_0000, // 13 bits: a tail for one bit
            1 << 44,               // p = 2^-20
            u64::MAX,              // every bit
            1,                     // the lowest bit only
        ];
        let trials = if cfg!(miri) { 2 } else { 200 };
        for d in thresholds {
            for trial in 0..trials {
                // Every other trial crowds the batch with ties, past the
                // 64 the pool serves.
                let crowd = trial % 2 == 1;
                let us: [u64; 512] = core::array::from_fn(|_| near(d, &mut rng, crowd));
                let expected: [u64; LANES] = core::array::from_fn(|j| {
                    (0..64).fold(0, |w, i| w | u64::from(us[64 * j + i] >= d) << i)
                });
                // Without and (on x86 with BMI2) with `PDEP`.
                let words = decide::<Chunk, _>(d, &us, Cpu::PORTABLE).0;
                assert_eq!(words, expected, "D {d:#x} trial {trial}");
                let words = decide::<Chunk, _>(d, &us, Cpu::BUILD).0;
                assert_eq!(words, expected, "D {d:#x} trial {trial}, the build's");
                #[cfg(target_arch = "x86_64")]
                if std::is_x86_feature_detected!("avx2") {
                    // The AVX2 lanes, which a CPU without AVX2 cannot run.
                    let words = decide::<x86::U64x4, _>(d, &us, Cpu::BUILD).0;
                    assert_eq!(words, expected, "D {d:#x} trial {trial}, AVX2");
                }
                #[cfg(target_arch = "x86_64")]
                if std::is_x86_feature_detected!("avx512f") {
                    // The AVX-512 lanes.
                    let words = decide::<x86::U64x8, _>(d, &us, Cpu::BUILD).0;
                    assert_eq!(words, expected, "D {d:#x} trial {trial}, AVX-512");
                }
            }
        }
    }
}
