//! Mask stream v1, the fast path: eight xoshiro256++ generators stepped
//! together in `wide` lanes. The crate docs define the stream; the reference
//! module transcribes that definition with `rand_xoshiro`, and the tests hold
//! the two equal.

use crate::decide::{self, Threshold};
use wide::u64x8;

/// Generators stepped together; part of the stream definition.
pub(crate) const LANES: usize = 8;
/// Mask words per block: each block reseeds its generators.
pub(crate) const BLOCK_WORDS: u64 = 64;
/// SplitMix64's increment, the golden ratio in 64-bit fixed point.
pub(crate) const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64's output function (Stafford's "Mix13").
#[inline(always)]
pub(crate) fn mix(z: u64) -> u64 {
    let z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    let z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The four keys of a seed: the first four outputs of SplitMix64(seed).
pub(crate) fn keys(seed: u64) -> [u64; 4] {
    let mut x = seed;
    [(); 4].map(|()| {
        x = x.wrapping_add(GAMMA);
        mix(x)
    })
}

/// Eight xoshiro256++ states, lane `j` the generator of one stream.
struct Generators {
    s: [u64x8; 4],
}

impl Generators {
    /// The generators of block `block`: word `i` of lane `j`'s state is
    /// `mix(keys[i] + (8 * block + j + 1) * GAMMA)`.
    fn seed(keys: &[u64; 4], block: u64) -> Self {
        let first = block.wrapping_mul(LANES as u64).wrapping_add(1);
        let lane_steps = u64x8::new(core::array::from_fn(|j| GAMMA.wrapping_mul(j as u64)));
        let s = keys.map(|key| {
            let z = u64x8::splat(key.wrapping_add(first.wrapping_mul(GAMMA))) + lane_steps;
            let z = (z ^ (z >> 30)) * u64x8::splat(0xBF58_476D_1CE4_E5B9);
            let z = (z ^ (z >> 27)) * u64x8::splat(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        });
        Generators { s }
    }

    /// One xoshiro256++ step in every lane.
    #[inline(always)]
    fn next(&mut self) -> u64x8 {
        let [s0, s1, s2, s3] = &mut self.s;
        let result = rotate_left(*s0 + *s3, 23) + *s0;
        let t = *s1 << 17;
        *s2 ^= *s0;
        *s3 ^= *s1;
        *s1 ^= *s2;
        *s0 ^= *s3;
        *s2 ^= t;
        *s3 = rotate_left(*s3, 45);
        result
    }
}

#[inline(always)]
fn rotate_left(x: u64x8, k: u32) -> u64x8 {
    (x << k) | (x >> (64 - k))
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
            generators: Generators {
                s: [u64x8::ZERO; 4],
            },
            batches: 0,
            words: [[0; LANES]; BLOCK_WORDS as usize / LANES],
        }
    }

    /// Word `index` of the stream (stream positions `64 index ..`).
    #[inline]
    fn stream_word(&mut self, index: u64) -> u64 {
        let block = index / BLOCK_WORDS;
        let in_block = (index % BLOCK_WORDS) as usize;
        if self.block != Some(block) {
            self.block = Some(block);
            self.generators = Generators::seed(&self.keys, block);
            self.batches = 0;
        }
        let batch = in_block / LANES;
        while self.batches <= batch {
            let words = self.next_batch();
            if let Some(slot) = self.words.get_mut(self.batches) {
                *slot = words;
            }
            self.batches += 1;
        }
        self.words[batch][in_block % LANES]
    }

    /// Decides the next 8 groups of 64 positions, one per lane.
    #[inline]
    fn next_batch(&mut self) -> [u64; LANES] {
        let mut undecided = u64x8::splat(!0);
        let mut kept = u64x8::ZERO;
        for k in self.threshold.bits() {
            let random = self.generators.next();
            decide::step(
                &mut undecided,
                &mut kept,
                random,
                u64x8::splat(self.threshold.spread(k)),
            );
            if undecided.to_array().iter().fold(0, |acc, w| acc | w) == 0 {
                break;
            }
        }
        (kept | undecided).to_array()
    }

    /// Fills `out` with the keep words of the call's next `len` elements;
    /// `out.len()` is `len.div_ceil(64)`, and bits past `len` are cleared.
    pub(crate) fn fill(&mut self, out: &mut [u64], len: usize) {
        let shift = (self.position % 64) as u32;
        let mut remaining = len;
        for (index, slot) in (self.position / 64..).zip(out) {
            let bits = remaining.min(64);
            let mut word = self.stream_word(index) >> shift;
            if shift != 0 && bits > (64 - shift) as usize {
                word |= self.stream_word(index + 1) << (64 - shift);
            }
            *slot = word & crate::mask::low_bits(bits);
            remaining -= bits;
        }
        // Wraps only after the call's last element, at position 2^64.
        self.position = self.position.wrapping_add(len as u64);
    }
}
