//! Mask stream v1, the fast path: eight xoshiro256++ generators stepped
//! together in `wide` lanes. `stream.rs` holds the definition both paths
//! share; the reference steps `rand_xoshiro`'s generators instead, and the
//! tests hold the two equal.

use crate::decide::{self, Threshold};
use crate::stream::{BLOCK_WORDS, LANES, keys, state};
use core::ops::{Add, BitAnd, BitOr, BitXor, Not, Shl, Shr};

/// The generators decided together, in `wide` lanes: two independent
/// dependency chains per step on SSE2 and NEON (measured faster than one),
/// one AVX2 register, or all eight in one AVX-512 register.
#[cfg(not(target_feature = "avx512f"))]
type Chunk = wide::u64x4;
#[cfg(target_feature = "avx512f")]
type Chunk = wide::u64x8;

/// What the generators need of `wide`'s `u64` lanes.
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
    fn is_zero(self) -> bool;
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
            #[inline(always)]
            fn is_zero(self) -> bool {
                self.simd_eq(wide::$t::ZERO).all()
            }
        }
    )*};
}
impl_lanes!(u64x4: 4, u64x8: 8);

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

/// Eight xoshiro256++ states: `s[i][j]` is state word `i` of lane `j`.
struct Generators {
    s: [[u64; LANES]; 4],
}

impl Generators {
    /// The generators of block `block`: lane `j` is stream `8 block + j`.
    #[inline(always)]
    fn seed(keys: &[u64; 4], block: u64) -> Self {
        let first = block.wrapping_mul(LANES as u64);
        let states: [[u64; 4]; LANES] =
            core::array::from_fn(|j| state(keys, first.wrapping_add(j as u64)));
        Generators {
            s: core::array::from_fn(|i| states.map(|lane| lane[i])),
        }
    }

    /// The next batch: the 8 lanes compared in lockstep until all 512
    /// positions are decided. A decided lane ignores further words, so each
    /// chunk of lanes runs until its own positions are decided, and then
    /// the chunks that finished early are stepped on to the batch's count.
    #[inline(always)]
    fn batch(&mut self, threshold: Threshold) -> [u64; LANES] {
        let width = Chunk::WIDTH;
        let mut kept = [0; LANES];
        let mut steps = [0; LANES];
        for (c, steps) in steps.iter_mut().take(LANES / width).enumerate() {
            let lanes = c * width..(c + 1) * width;
            let mut s = self.s.each_ref().map(|w| Chunk::load(&w[lanes.clone()]));
            let (chunk_kept, chunk_steps) = decide_chunk(&mut s, threshold);
            chunk_kept.store(&mut kept[lanes.clone()]);
            for (word, lanes_of_word) in s.iter().zip(self.s.iter_mut()) {
                word.store(&mut lanes_of_word[lanes.clone()]);
            }
            *steps = chunk_steps;
        }
        let batch_steps = steps.iter().copied().max().unwrap_or(0);
        for (c, &steps) in steps.iter().take(LANES / width).enumerate() {
            if steps < batch_steps {
                let lanes = c * width..(c + 1) * width;
                let mut s = self.s.each_ref().map(|w| Chunk::load(&w[lanes.clone()]));
                for _ in steps..batch_steps {
                    step(&mut s);
                }
                for (word, lanes_of_word) in s.iter().zip(self.s.iter_mut()) {
                    word.store(&mut lanes_of_word[lanes.clone()]);
                }
            }
        }
        kept
    }
}

/// Runs the comparison for one chunk of lanes until its positions are all
/// decided or the bits of `D` run out: the kept words and the steps taken.
#[inline(always)]
fn decide_chunk<V: Lanes>(s: &mut [V; 4], threshold: Threshold) -> (V, usize) {
    let mut undecided = V::splat(!0);
    let mut kept = V::splat(0);
    let mut steps = 0;
    for d_bit in threshold.bits() {
        let random = step(s);
        decide::step(&mut undecided, &mut kept, random, d_bit);
        steps += 1;
        if undecided.is_zero() {
            break;
        }
    }
    (kept | undecided, steps)
}

/// Keep words of the keyed stream for consecutive elements of one call,
/// realigned so that word `i` covers the call's elements `64 i ..`.
pub struct KeyedWords {
    keys: [u64; 4],
    threshold: Threshold,
    /// Stream position of the call's next element.
    position: u64,
    /// The block whose words are buffered, if any.
    block: Option<u64>,
    generators: Generators,
    /// Batches of the buffered block generated so far.
    batches: usize,
    words: [[u64; LANES]; BLOCK_WORDS as usize / LANES],
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
        KeyedWords {
            keys: keys(seed),
            threshold,
            position: offset,
            block: None,
            generators: Generators { s: [[0; LANES]; 4] },
            batches: 0,
            words: [[0; LANES]; BLOCK_WORDS as usize / LANES],
        }
    }

    /// Makes the first `words` words of block `block` available.
    #[inline(always)]
    fn generate(&mut self, block: u64, words: usize) {
        if self.block != Some(block) {
            self.block = Some(block);
            self.generators = Generators::seed(&self.keys, block);
            self.batches = 0;
        }
        while self.batches * LANES < words {
            let batch = self.generators.batch(self.threshold);
            if let Some(slot) = self.words.get_mut(self.batches) {
                *slot = batch;
            }
            self.batches += 1;
        }
    }

    /// Fills `out` with the keep words of the call's next `len` elements;
    /// `out.len()` is `len.div_ceil(64)`, and bits past `len` are cleared.
    #[inline(always)]
    pub(crate) fn fill(&mut self, out: &mut [u64], len: usize) {
        let mut remaining = len;
        for chunk in out.chunks_mut(BLOCK_WORDS as usize) {
            let chunk_len = remaining.min(64 * chunk.len());
            self.fill_chunk(chunk, chunk_len);
            remaining -= chunk_len;
        }
    }

    /// [`fill`](Self::fill) for at most one block's worth of words.
    #[inline(always)]
    fn fill_chunk(&mut self, out: &mut [u64], len: usize) {
        let shift = (self.position % 64) as u32;
        // The stream words under the call's elements, one more than `out`
        // when the call is not aligned to a word.
        let mut stream = [0u64; BLOCK_WORDS as usize + 1];
        let needed = (shift as usize + len).div_ceil(64).min(stream.len());
        let mut index = self.position / 64;
        let mut done = 0;
        while done < needed {
            let block = index / BLOCK_WORDS;
            let start = (index % BLOCK_WORDS) as usize;
            let take = (BLOCK_WORDS as usize - start).min(needed - done);
            self.generate(block, start + take);
            let words = self.words.as_flattened();
            stream[done..done + take].copy_from_slice(&words[start..start + take]);
            done += take;
            index += take as u64;
        }
        if shift == 0 {
            for (slot, &word) in out.iter_mut().zip(&stream) {
                *slot = word;
            }
        } else {
            for (slot, pair) in out.iter_mut().zip(stream.windows(2)) {
                *slot = pair[0] >> shift | pair[1] << (64 - shift);
            }
        }
        if let Some(last) = out.last_mut() {
            *last &= crate::mask::low_bits(len - 64 * (len.div_ceil(64) - 1));
        }
        // Wraps only after the call's last element, at position 2^64.
        self.position = self.position.wrapping_add(len as u64);
    }
}
