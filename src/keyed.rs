//! Mask stream v2, the fast path: eight xoshiro256++ generators stepped
//! together in SIMD lanes (AVX2 registers where the CPU has them, `wide`
//! lanes elsewhere), a fixed number of steps per batch, the tied
//! positions' second stage in one compacted word. `stream.rs` holds the
//! definition both paths share; the reference builds each position's
//! number from `rand_xoshiro`'s generators instead, and the tests hold the
//! two equal.

use crate::decide::{self, Threshold};
use crate::dispatch::{self, Cpu, Kernel};
use crate::mask::low_bits;
use crate::stream::{
    BLOCK_WORDS, FIRST_BITS, GAMMA, LANES, POOL_BITS, POOLED, compared_bits, keys, mix, state,
    tail_key,
};
use core::ops::{Add, BitAnd, BitOr, BitXor, Not, Shl, Shr};

/// The generators stepped together, in `wide` lanes: two independent
/// dependency chains per step on SSE2 and NEON (measured faster than one),
/// one AVX2 register, or all eight in one AVX-512 register.
#[cfg(not(target_feature = "avx512f"))]
type Chunk = wide::u64x4;
#[cfg(target_feature = "avx512f")]
type Chunk = wide::u64x8;

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
}

macro_rules! impl_lanes {
    ($($t:ident: $n:literal),*) => {$(
        impl Lanes for wide::$t {
            const WIDTH: usize = $n;
            #[inline(always)]
            fn splat(x: u64) -> Self {
                wide::$t::splat(x)
            }
            #[inline(always)]
            fn load(lanes: &[u64]) -> Self {
                wide::$t::new(core::array::from_fn(|i| lanes.get(i).copied().unwrap_or(0)))
            }
            #[inline(always)]
            fn store(self, lanes: &mut [u64]) {
                for (lane, x) in lanes.iter_mut().zip(self.to_array()) {
                    *lane = x;
                }
            }
        }
    )*};
}
impl_lanes!(u64x4: 4, u64x8: 8);

/// Four generators in one AVX2 register, wherever the CPU has AVX2: with
/// the default target `wide::u64x4` is two SSE2 registers even inside the
/// dispatched AVX2 kernel, and mask generation ran 1.8 times slower than in
/// a build for the native CPU (`benches/README.md`).
#[cfg(all(target_arch = "x86_64", not(target_feature = "avx512f")))]
#[allow(unsafe_code)]
mod avx2 {
    use super::Lanes;
    use core::arch::x86_64::*;
    use core::ops::{Add, BitAnd, BitOr, BitXor, Not, Shl, Shr};

    /// Only `KeyedWords::decide` makes values of this type, and only when
    /// its `Cpu` says the CPU has AVX2 (detected at run time, or required
    /// by the build's target): that is the safety argument of every
    /// `unsafe` block below, each an AVX2 intrinsic on values of it.
    #[derive(Clone, Copy)]
    pub(super) struct U64x4(__m256i);

    macro_rules! binary {
        ($($trait:ident $method:ident $intrinsic:ident),*) => {$(
            impl $trait for U64x4 {
                type Output = Self;
                #[inline(always)]
                fn $method(self, other: Self) -> Self {
                    // SAFETY: see the type: the CPU has AVX2.
                    U64x4(unsafe { $intrinsic(self.0, other.0) })
                }
            }
        )*};
    }
    binary!(
        BitAnd bitand _mm256_and_si256,
        BitOr bitor _mm256_or_si256,
        BitXor bitxor _mm256_xor_si256,
        Add add _mm256_add_epi64
    );

    impl Not for U64x4 {
        type Output = Self;
        #[inline(always)]
        fn not(self) -> Self {
            self ^ U64x4::splat(!0)
        }
    }

    impl Shl<u32> for U64x4 {
        type Output = Self;
        #[inline(always)]
        fn shl(self, k: u32) -> Self {
            // SAFETY: see the type: the CPU has AVX2.
            U64x4(unsafe { _mm256_sll_epi64(self.0, _mm_cvtsi32_si128(k as i32)) })
        }
    }

    impl Shr<u32> for U64x4 {
        type Output = Self;
        #[inline(always)]
        fn shr(self, k: u32) -> Self {
            // SAFETY: see the type: the CPU has AVX2.
            U64x4(unsafe { _mm256_srl_epi64(self.0, _mm_cvtsi32_si128(k as i32)) })
        }
    }

    impl Lanes for U64x4 {
        const WIDTH: usize = 4;
        #[inline(always)]
        fn splat(x: u64) -> Self {
            // SAFETY: see the type: the CPU has AVX2.
            U64x4(unsafe { _mm256_set1_epi64x(x as i64) })
        }
        #[inline(always)]
        fn load(lanes: &[u64]) -> Self {
            let lanes: [u64; 4] = core::array::from_fn(|i| lanes.get(i).copied().unwrap_or(0));
            // SAFETY: see the type: the CPU has AVX2; the read is of the
            // 32 bytes of `lanes`, unaligned loads allowed.
            U64x4(unsafe { _mm256_loadu_si256(lanes.as_ptr().cast()) })
        }
        #[inline(always)]
        fn store(self, lanes: &mut [u64]) {
            let mut words = [0u64; 4];
            // SAFETY: see the type: the CPU has AVX2; the write is of the
            // 32 bytes of `words`, unaligned stores allowed.
            unsafe { _mm256_storeu_si256(words.as_mut_ptr().cast(), self.0) };
            for (lane, word) in lanes.iter_mut().zip(words) {
                *lane = word;
            }
        }
    }
}

/// One xoshiro256++ step in every lane of `s`.
#[inline(always)]
fn step<V: Lanes>(s: &mut [V; 4]) -> V {
    let [s0, s1, s2, s3] = s;
    let result = rotate_left(*s0 + *s3, 23) + *s0;
    let t = *s1 << 17;
    *s2 = *s2 ^ *s0;
    *s3 = *s3 ^ *s1;
    *s1 = *s1 ^ *s2;
    *s0 = *s0 ^ *s3;
    *s2 = *s2 ^ t;
    *s3 = rotate_left(*s3, 45);
    result
}

#[inline(always)]
fn rotate_left<V: Lanes>(x: V, k: u32) -> V {
    (x << k) | (x >> (64 - k))
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
    fn advance<V: Lanes>(
        &mut self,
        skip: usize,
        plan: &Plan,
        cpu: Cpu,
        tail: impl Fn(usize) -> u64,
        out: &mut [u64; LANES],
    ) {
        self.skip::<V>(skip);
        self.batch::<V>(plan, cpu, Xoshiro, tail, out);
    }

    /// Decides the next batch: its 8 keep words to `out`, lane `j` the
    /// word of generator `j`. `source` steps a chunk's generators (the tests
    /// script it), `tail(i)` is the tail word of the batch's position `i`.
    /// The words are written once each, by scalar stores (the rare tail
    /// updates single bits): a vector load of words just written one by one
    /// stalls (store forwarding fails), measured a fifth of a batch's time.
    #[inline(always)]
    fn batch<V: Lanes>(
        &mut self,
        plan: &Plan,
        cpu: Cpu,
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
    fn load(&mut self, batch: u64, cpu: Cpu) {
        if self.decided != Some(batch) {
            let mut words = [0; LANES];
            self.decide(batch, cpu, &mut words);
            self.words = words;
            self.decided = Some(batch);
        }
    }

    /// Decides batch `batch` into `out` (calls go forward in the stream).
    #[inline(always)]
    fn decide(&mut self, batch: u64, cpu: Cpu, out: &mut [u64; LANES]) {
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
        match () {
            #[cfg(all(target_arch = "x86_64", not(target_feature = "avx512f")))]
            () if cpu.avx2() => generators.advance::<avx2::U64x4>(skip, plan, cpu, tail, out),
            () => generators.advance::<Chunk>(skip, plan, cpu, tail, out),
        }
        self.next = Some((block, within + 1));
    }

    /// Stream word `k` (positions `64 k .. 64 k + 64`).
    #[inline(always)]
    fn word(&mut self, k: u64, cpu: Cpu) -> u64 {
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
    pub(crate) fn fill(&mut self, out: &mut [u64], len: usize, cpu: Cpu) {
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
    fn fill_inlined(&mut self, out: &mut [u64], len: usize, cpu: Cpu) {
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
    fn run(self, cpu: Cpu) {
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
    use crate::dispatch::Cpu;
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

    fn decide<V: Lanes>(d: u64, us: &[u64; 512], cpu: Cpu) -> ([u64; LANES], usize) {
        let (script, tails) = spell(d, us, V::WIDTH);
        let mut generators = Generators { s: [[0; LANES]; 4] };
        let plan = Plan::new(Threshold(d));
        let mut out = [0; LANES];
        let mut script = Script {
            words: script.into_iter().flatten().collect(),
            drawn: 0,
        };
        generators.batch::<V>(&plan, cpu, &mut script, |i| tails[i], &mut out);
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
                let cpus = [Cpu::PORTABLE, Cpu::BUILD];
                // The build's own only where it differs (x86 with BMI2).
                for &cpu in &cpus[..if Cpu::BUILD == Cpu::PORTABLE { 1 } else { 2 }] {
                    let words = decide::<Chunk>(d, &us, cpu).0;
                    assert_eq!(words, expected, "D {d:#x} trial {trial}");
                }
                #[cfg(all(target_arch = "x86_64", not(target_feature = "avx512f")))]
                if std::is_x86_feature_detected!("avx2") {
                    // The AVX2 lanes, which a CPU without AVX2 cannot run.
                    let words = decide::<avx2::U64x4>(d, &us, Cpu::BUILD).0;
                    assert_eq!(words, expected, "D {d:#x} trial {trial}, AVX2");
                }
            }
        }
    }
}
