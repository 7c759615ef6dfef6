//! The scalar reference implementation: the definition of the results.
//!
//! Written for clarity, one element at a time, straight from the crate
//! docs: the keyed stream uses `rand_xoshiro`'s own `SplitMix64` and
//! `Xoshiro256PlusPlus`, and each element's comparison is tracked on its own.
//! The fast operations of [`Dropout`] and [`Structured`] give
//! bit-identical results, and the test suite holds them to it. Use it as an
//! oracle; it is far slower.
//!
//! It shares with the fast path only what defines the results: the
//! validation and plan of every call (`run.rs`), the element rules, the
//! threshold and the stream's seeding. The decisions it computes itself,
//! element by element, from `rand_xoshiro`'s generators; it maps units to
//! elements naively; and nothing else in the crate imports it.
//!
//! ```
//! use bitdrop::{Dropout, Keyed, Mode, reference};
//!
//! let dropout = Dropout::new(0.3)?;
//! let xs: Vec<f32> = (0..1000).map(|i| i as f32).collect();
//! let mut fast = vec![0.0; 1000];
//! let mut slow = vec![0.0; 1000];
//! dropout.forward_to(Mode::Train, &xs, &mut fast, Keyed::new(11, 5))?;
//! reference::forward_to(&dropout, Mode::Train, &xs, &mut slow, Keyed::new(11, 5))?;
//! assert_eq!(fast, slow);
//! # Ok::<(), bitdrop::Error>(())
//! ```

use crate::decide::Threshold;
use crate::gaussian::{NORMAL_DOMAIN, NoisePlan};
use crate::inverted::{Data, Inverted};
use crate::residual::Fused;
use crate::run::{Decision, Decisions, Executor, Operands, Plan, run};
use crate::source::Randomness;
use crate::source::sealed::{NextWord, Raw};
use crate::stream::GAMMA;
use crate::stream::{BLOCK_WORDS, FIRST_BITS, LANES, POOL_BITS, POOLED, keys, state, tail_key};
use crate::{
    AlphaDropout, Dropout, Element, Error, GaussianDropout, GaussianNoise, Keyed, Mode, Residual,
    Structured, Units, derive_seed,
};
use rand_core::{Rng, SeedableRng};
use rand_xoshiro::{SplitMix64, Xoshiro256PlusPlus};

/// [`Dropout::forward_to`], one element at a time.
///
/// # Errors
///
/// As [`Dropout::forward_to`].
pub fn forward_to<E: Element>(
    dropout: &Dropout,
    mode: Mode,
    xs: &[E],
    out: &mut [E],
    source: impl Randomness,
) -> Result<(), Error> {
    structured_forward_to(
        &dropout.structured(Units::elements(xs.len())),
        mode,
        xs,
        out,
        source,
    )
}

/// [`Dropout::fill_mask`], one element at a time.
///
/// # Errors
///
/// As [`Dropout::fill_mask`].
pub fn fill_mask(
    dropout: &Dropout,
    mode: Mode,
    len: usize,
    mask: &mut [u64],
    source: impl Randomness,
) -> Result<(), Error> {
    structured_fill_mask(
        &dropout.structured(Units::elements(len)),
        mode,
        mask,
        source,
    )
}

/// [`Dropout::apply_mask_to`], one element at a time.
///
/// # Errors
///
/// As [`Dropout::apply_mask_to`].
pub fn apply_mask_to<E: Element>(
    dropout: &Dropout,
    mode: Mode,
    xs: &[E],
    mask: &[u64],
    out: &mut [E],
) -> Result<(), Error> {
    structured_apply_mask_to(
        &dropout.structured(Units::elements(xs.len())),
        mode,
        xs,
        mask,
        out,
    )
}

/// [`Structured::forward_to`], one unit at a time.
///
/// # Errors
///
/// As [`Structured::forward_to`].
pub fn structured_forward_to<E: Element>(
    structured: &Structured,
    mode: Mode,
    xs: &[E],
    out: &mut [E],
    source: impl Randomness,
) -> Result<(), Error> {
    let ops = structured.inverted(Data::copy(xs, out)?);
    let decisions = Decisions::Draw { source, mask: None };
    run(
        &structured.dropout,
        mode,
        ops,
        &structured.units,
        decisions,
        Scalar,
    )
}

/// [`Structured::fill_mask`], one unit at a time.
///
/// # Errors
///
/// As [`Structured::fill_mask`].
pub fn structured_fill_mask(
    structured: &Structured,
    mode: Mode,
    mask: &mut [u64],
    source: impl Randomness,
) -> Result<(), Error> {
    let ops = Inverted::mask_only(structured.units.len());
    let decisions = Decisions::Draw {
        source,
        mask: Some(mask),
    };
    run(
        &structured.dropout,
        mode,
        ops,
        &structured.units,
        decisions,
        Scalar,
    )
}

/// [`Structured::apply_mask_to`], one unit at a time.
///
/// # Errors
///
/// As [`Structured::apply_mask_to`].
pub fn structured_apply_mask_to<E: Element>(
    structured: &Structured,
    mode: Mode,
    xs: &[E],
    mask: &[u64],
    out: &mut [E],
) -> Result<(), Error> {
    let ops = structured.inverted(Data::copy(xs, out)?);
    let decisions = Decisions::<Keyed>::Given(mask, 0);
    run(
        &structured.dropout,
        mode,
        ops,
        &structured.units,
        decisions,
        Scalar,
    )
}

/// [`Structured::residual_add`] (with `mask: None`) and
/// [`Structured::residual_add_with_mask`], one unit at a time.
///
/// # Errors
///
/// As [`Structured::residual_add_with_mask`].
///
/// ```
/// use bitdrop::{Dropout, Keyed, Mode, Residual, reference};
///
/// let d = Dropout::new(0.3)?;
/// let x: Vec<f32> = (0..100).map(|i| i as f32).collect();
/// let bias = [0.25_f32; 10];
/// let mut fast = vec![1.0_f32; 100];
/// let mut slow = fast.clone();
/// let key = Keyed::new(4, 9);
/// d.residual_add(Mode::Train, Residual::IntoResidual { x: &x, residual: &mut fast }, Some(&bias), key)?;
/// let io = Residual::IntoResidual { x: &x, residual: &mut slow };
/// let units = bitdrop::Units::elements(100);
/// reference::residual_add(&d.structured(units), Mode::Train, io, Some(&bias), None, key)?;
/// assert_eq!(fast, slow);
/// # Ok::<(), bitdrop::Error>(())
/// ```
pub fn residual_add<E: Element>(
    structured: &Structured,
    mode: Mode,
    io: Residual<'_, E>,
    bias: Option<&[E]>,
    mask: Option<&mut [u64]>,
    source: impl Randomness,
) -> Result<(), Error> {
    let ops = Fused::new(io, bias, structured.dropout.scale())?;
    let decisions = Decisions::Draw { source, mask };
    run(
        &structured.dropout,
        mode,
        ops,
        &structured.units,
        decisions,
        Scalar,
    )
}

/// [`AlphaDropout::forward_to`] (with `mask: None`) and
/// [`AlphaDropout::forward_to_with_mask`], one unit at a time.
///
/// # Errors
///
/// As [`AlphaDropout::forward_to_with_mask`].
pub fn alpha_forward_to<E: Element>(
    alpha: &AlphaDropout,
    mode: Mode,
    xs: &[E],
    out: &mut [E],
    mask: Option<&mut [u64]>,
    source: impl Randomness,
) -> Result<(), Error> {
    let units = alpha.units_of(xs.len());
    let ops = alpha.affine(Data::copy(xs, out)?);
    let decisions = Decisions::Draw { source, mask };
    run(alpha.dropout(), mode, ops, &units, decisions, Scalar)
}

/// [`AlphaDropout::apply_mask_to`], one unit at a time.
///
/// # Errors
///
/// As [`AlphaDropout::apply_mask_to`].
pub fn alpha_apply_mask_to<E: Element>(
    alpha: &AlphaDropout,
    mode: Mode,
    xs: &[E],
    mask: &[u64],
    out: &mut [E],
) -> Result<(), Error> {
    let units = alpha.units_of(xs.len());
    let ops = alpha.affine(Data::copy(xs, out)?);
    let decisions = Decisions::<Keyed>::Given(mask, 0);
    run(alpha.dropout(), mode, ops, &units, decisions, Scalar)
}

/// [`AlphaDropout::backward_to`], one unit at a time.
///
/// # Errors
///
/// As [`AlphaDropout::backward_to`].
pub fn alpha_backward_to<E: Element>(
    alpha: &AlphaDropout,
    mode: Mode,
    grad: &[E],
    out: &mut [E],
    key: Keyed,
) -> Result<(), Error> {
    let units = alpha.units_of(grad.len());
    let ops = alpha.derivative(Data::copy(grad, out)?);
    let decisions = Decisions::Draw {
        source: key,
        mask: None,
    };
    run(alpha.dropout(), mode, ops, &units, decisions, Scalar)
}

/// [`GaussianDropout::forward_to`] (and its backward), one element at a
/// time.
///
/// # Errors
///
/// As [`GaussianDropout::forward_to`].
pub fn gaussian_dropout_forward_to<E: Element>(
    noise: &GaussianDropout,
    mode: Mode,
    xs: &[E],
    out: &mut [E],
    source: impl Randomness,
) -> Result<(), Error> {
    noise_to(noise.plan(mode), xs, out, source)
}

/// [`GaussianNoise::forward_to`], one element at a time.
///
/// # Errors
///
/// As [`GaussianNoise::forward_to`].
pub fn gaussian_noise_forward_to<E: Element>(
    noise: &GaussianNoise,
    mode: Mode,
    xs: &[E],
    out: &mut [E],
    source: impl Randomness,
) -> Result<(), Error> {
    noise_to(noise.plan(mode), xs, out, source)
}

/// Normal stream v1, one element at a time: element `i`'s variate from
/// the two words of its pair, drawn again for each element.
fn noise_to<E: Element>(
    plan: NoisePlan,
    xs: &[E],
    out: &mut [E],
    source: impl Randomness,
) -> Result<(), Error> {
    let mut data = Data::copy(xs, out)?;
    source.check(xs.len())?;
    let noise = match plan {
        NoisePlan::Identity => {
            data.pass();
            return Ok(());
        }
        NoisePlan::Zero => {
            (0..xs.len()).for_each(|i| data.set(i, |_| E::ZERO));
            return Ok(());
        }
        NoisePlan::Random(noise) => noise,
    };
    let z = |w0: u64, w1: u64, odd: bool| {
        let u1 = ((w0 >> 11) + 1) as f64 / 9_007_199_254_740_992.0;
        let u2 = (w1 >> 11) as f64 / 9_007_199_254_740_992.0;
        let r = libm::sqrt(-2.0 * libm::log(u1));
        let t = core::f64::consts::TAU * u2;
        if odd {
            r * libm::sin(t)
        } else {
            r * libm::cos(t)
        }
    };
    match source.raw() {
        Raw::Rng(mut rng) => {
            let mut words = (0, 0);
            for i in 0..xs.len() {
                if i % 2 == 0 {
                    words.0 = rng.next_word();
                    words.1 = rng.next_word();
                }
                data.set(i, |x| noise.apply(x, z(words.0, words.1, i % 2 == 1)));
            }
        }
        Raw::Keyed(key) => {
            let seed = derive_seed(key.seed(), &[NORMAL_DOMAIN]);
            for i in 0..xs.len() {
                let q = key.offset() + i as u64;
                // Words 2 (q / 2) and 2 (q / 2) + 1 of SplitMix64(seed).
                let start = seed.wrapping_add((q & !1).wrapping_mul(GAMMA));
                let mut words = SplitMix64::seed_from_u64(start);
                let (w0, w1) = (words.next_u64(), words.next_u64());
                data.set(i, |x| noise.apply(x, z(w0, w1, q % 2 == 1)));
            }
        }
    }
    Ok(())
}

/// The reference executor: one unit at a time, in unit order, each unit's
/// elements enumerated from its coordinates.
pub(crate) struct Scalar;

impl Executor for Scalar {
    fn pass(&self, ops: &mut impl Operands) {
        for i in 0..ops.len() {
            ops.element(i, Decision::Pass);
        }
    }

    fn drop_all(&self, ops: &mut impl Operands) {
        for i in 0..ops.len() {
            ops.element(i, Decision::Drop);
        }
    }

    fn draw(
        &self,
        ops: &mut impl Operands,
        units: &Units,
        threshold: Threshold,
        source: impl Randomness,
        mut mask: Option<&mut [u64]>,
    ) {
        let count = units.count();
        if let Some(mask) = mask.as_deref_mut() {
            mask.fill(0);
        }
        let mut visit = |u: usize, kept: bool| {
            if let Some(mask) = mask.as_deref_mut() {
                mask[u / 64] |= u64::from(kept) << (u % 64);
            }
            decide_unit(ops, units, u, kept);
        };
        match source.raw() {
            Raw::Rng(mut rng) => {
                for (u, kept) in rng_decisions(&mut rng, threshold, count).enumerate() {
                    visit(u, kept);
                }
            }
            Raw::Keyed(key) => {
                let decisions = keyed_decisions(key.seed(), key.offset(), threshold);
                for (u, kept) in decisions.take(count).enumerate() {
                    visit(u, kept);
                }
            }
        }
    }

    fn given(&self, ops: &mut impl Operands, units: &Units, mask: &[u64], first: usize) {
        for u in 0..units.count() {
            let bit = first + u;
            decide_unit(ops, units, u, mask[bit / 64] >> (bit % 64) & 1 == 1);
        }
    }
}

/// Every element of unit `u`: `((o * shared + s) * inner + i) * run + r`
/// for `u = o * inner + i`, every `s` and every `r`.
fn decide_unit(ops: &mut impl Operands, units: &Units, u: usize, kept: bool) {
    let [_, shared, inner, run] = units.dims();
    let (o, i) = (u / inner, u % inner);
    let decision = if kept { Decision::Keep } else { Decision::Drop };
    for s in 0..shared {
        for r in 0..run {
            ops.element(((o * shared + s) * inner + i) * run + r, decision);
        }
    }
}

/// The random words the keyed stream computes to decide block `block`
/// (stream positions `4096 block .. 4096 block + 4096`) of stream `seed`:
/// a cost measure of "mask stream v2", 64 times the words per 64
/// decisions. The generator words are `64 * (min(4, b) + [b > 4])` for a
/// `D` of `b` compared bits, whatever the seed; the tail words, one per
/// position still tied after its pool bits, add about `2^-12` per
/// position. Zero where nothing is drawn (`p == 0`, `p == 1`, evaluation
/// mode).
///
/// ```
/// use bitdrop::{Dropout, Mode, reference};
///
/// // At p = 0.5 one word decides 64 elements: 64 words per block.
/// let half = Dropout::new(0.5)?;
/// assert_eq!(reference::keyed_words_drawn(&half, Mode::Train, 1, 0), 64);
/// // At p = 0.1: 4 stage-one words and a pool word per 64 positions, and
/// // a few tail words.
/// let tenth = Dropout::new(0.1)?;
/// let words = reference::keyed_words_drawn(&tenth, Mode::Train, 1, 0);
/// assert!((320..340).contains(&words));
/// # Ok::<(), bitdrop::Error>(())
/// ```
pub fn keyed_words_drawn(dropout: &Dropout, mode: Mode, seed: u64, block: u64) -> u64 {
    match Plan::of(dropout, mode) {
        Plan::Random(threshold) => {
            let every_batch = 0..BLOCK_WORDS as usize / LANES;
            keyed_block(&keys(seed), tail_key(seed), block, threshold, every_batch).1
        }
        Plan::Identity | Plan::DropAll => 0,
    }
}

/// Where one element's comparison of `u` against `D` stands.
#[derive(Clone, Copy)]
enum Compare {
    Undecided,
    Greater,
    Less,
}

/// Decides `G` groups of 64 elements compared in lockstep, of which the
/// first `open[g]` elements of group `g` take part. Each step draws one word
/// per group; bit `j` of group `g`'s word is the next bit of element `j`'s
/// number `u`. Elements still equal after the last set bit of `D` are `>= D`.
fn decide_groups<const G: usize>(
    threshold: Threshold,
    open: [usize; G],
    mut draw: impl FnMut() -> [u64; G],
) -> [[bool; 64]; G] {
    let mut state = [[Compare::Undecided; 64]; G];
    // The elements of each group still undecided, as a set of positions.
    let mut undecided: [u64; G] = open.map(|n| if n >= 64 { !0 } else { (1 << n) - 1 });
    let d = threshold.0;
    let lowest = if d == 0 { 64 } else { d.trailing_zeros() };
    for k in (lowest..64).rev() {
        if undecided.iter().all(|&set| set == 0) {
            break;
        }
        let d_bit = d >> k & 1;
        let words = draw();
        for ((group, set), word) in state.iter_mut().zip(&mut undecided).zip(words) {
            let mut rest = *set;
            while rest != 0 {
                let j = rest.trailing_zeros() as usize;
                rest &= rest - 1;
                let u_bit = word >> j & 1;
                if u_bit != d_bit {
                    group[j] = if u_bit > d_bit {
                        Compare::Greater
                    } else {
                        Compare::Less
                    };
                    *set &= !(1 << j);
                }
            }
        }
    }
    // Kept iff u >= D.
    state.map(|group| group.map(|s| !matches!(s, Compare::Less)))
}

/// A caller RNG's decisions for `len` units: group by group of 64.
fn rng_decisions<R: NextWord>(
    rng: &mut R,
    threshold: Threshold,
    len: usize,
) -> impl Iterator<Item = bool> {
    (0..len.div_ceil(64)).flat_map(move |g| {
        let open = (len - 64 * g).min(64);
        let [group] = decide_groups(threshold, [open], || [rng.next_word()]);
        group.into_iter().take(open)
    })
}

/// The keyed stream's decisions from position `offset` on, batch by batch
/// (deciding only the batches a call reaches: a short call under Miri
/// then costs one batch, not a block).
fn keyed_decisions(seed: u64, offset: u64, threshold: Threshold) -> impl Iterator<Item = bool> {
    let (keys, tail_key) = (keys(seed), tail_key(seed));
    let (batch_len, per_block) = (64 * LANES as u64, BLOCK_WORDS / LANES as u64);
    let mut batch = u64::MAX;
    let mut decisions = [[false; 64]; BLOCK_WORDS as usize];
    (offset..=u64::MAX).map(move |position| {
        if position / batch_len != batch {
            batch = position / batch_len;
            let within = (batch % per_block) as usize;
            let block = batch / per_block;
            decisions = keyed_block(&keys, tail_key, block, threshold, within..within + 1).0;
        }
        let word = (position % (64 * BLOCK_WORDS) / 64) as usize;
        decisions[word][(position % 64) as usize]
    })
}

/// The decisions of the batches `batches` of one block of mask stream v2
/// (the others' generator words are drawn, stepping the generators, and
/// not read; their decisions are left false), and the random words drawn
/// (generator words and the decided batches' tail words). Each position's
/// number `u` is built as the crate docs spell it, bit by bit from the
/// most significant, and kept iff `u >= D`.
fn keyed_block(
    keys: &[u64; 4],
    tail_key: u64,
    block: u64,
    threshold: Threshold,
    batches: core::ops::Range<usize>,
) -> ([[bool; 64]; BLOCK_WORDS as usize], u64) {
    let mut generators: [Xoshiro256PlusPlus; LANES] = core::array::from_fn(|lane| {
        let words = state(keys, block * LANES as u64 + lane as u64);
        let mut seed = [0u8; 32];
        for (bytes, word) in seed.chunks_exact_mut(8).zip(words) {
            bytes.copy_from_slice(&word.to_le_bytes());
        }
        Xoshiro256PlusPlus::from_seed(seed)
    });
    let d = threshold.0;
    let compared = if d == 0 { 0 } else { 64 - d.trailing_zeros() };
    // Whether the top `bits` bits of `u` equal D's.
    let tied = |u: u64, bits: u32| bits == 0 || u >> (64 - bits) == d >> (64 - bits);
    let mut decisions = [[false; 64]; BLOCK_WORDS as usize];
    let mut drawn = 0;
    for (b, batch) in decisions.chunks_exact_mut(LANES).enumerate() {
        let mut draw = || -> [u64; LANES] {
            drawn += LANES as u64;
            core::array::from_fn(|lane| generators[lane].next_u64())
        };
        // Stage one: up to FIRST_BITS words from every generator.
        let first_bits = compared.min(FIRST_BITS);
        let mut first = [[0; LANES]; FIRST_BITS as usize];
        for words in first.iter_mut().take(first_bits as usize) {
            *words = draw();
        }
        // Stage two: one more word from every generator when D has more bits.
        let pool = if compared > FIRST_BITS {
            draw()
        } else {
            [0; LANES]
        };
        if !batches.contains(&b) {
            continue;
        }
        let mut rank = 0;
        for (lane, group) in batch.iter_mut().enumerate() {
            for (j, kept) in group.iter_mut().enumerate() {
                let mut u = 0;
                for (t, words) in first.iter().take(first_bits as usize).enumerate() {
                    u |= (words[lane] >> j & 1) << (63 - t);
                }
                let mut used = first_bits;
                if compared > FIRST_BITS && tied(u, used) {
                    if rank < POOLED {
                        for (c, word) in pool.iter().enumerate() {
                            u |= (word >> rank & 1) << (63 - FIRST_BITS - c as u32);
                        }
                        used += POOL_BITS;
                    }
                    rank += 1;
                    if compared > used && tied(u, used) {
                        // The tail word of the position, read from its top.
                        let q = (block * BLOCK_WORDS + (b * LANES + lane) as u64) * 64 + j as u64;
                        let start = tail_key.wrapping_add(q.wrapping_mul(GAMMA));
                        u |= SplitMix64::seed_from_u64(start).next_u64() >> used;
                        drawn += 1;
                    }
                }
                *kept = u >= d;
            }
        }
    }
    (decisions, drawn)
}

pub use drop_block_reference::{drop_block_forward_to, drop_block_seeds};

/// DropBlock, naively: each seed decided one at a time by this module's
/// own decision functions, each drawn seed's square cleared bit by bit,
/// then the element rule one element at a time. It shares with
/// `drop_block.rs` only the configuration and its checks.
mod drop_block_reference {
    use super::{Scalar, keyed_decisions, rng_decisions};
    use crate::decide::Threshold;
    use crate::inverted::{Data, Inverted};
    use crate::mask::check_words;
    use crate::run::{Decisions, Plan, run};
    use crate::source::Randomness;
    use crate::source::sealed::Raw;
    use crate::{DropBlock, Element, Error, Keyed, Mode, Units};

    /// [`DropBlock::forward_to`], one seed and one element at a time.
    ///
    /// # Errors
    ///
    /// As [`DropBlock::forward_to`].
    ///
    /// ```
    /// use bitdrop::{DropBlock, Keyed, Mode, reference};
    ///
    /// let d = DropBlock::new(0.2, 3, [2, 2, 9, 7])?;
    /// let xs: Vec<f32> = (0..d.len()).map(|i| i as f32).collect();
    /// let (mut fast, mut slow) = (vec![0.0; d.len()], vec![0.0; d.len()]);
    /// let (mut fast_mask, mut slow_mask) = (vec![0; d.mask_words()], vec![0; d.mask_words()]);
    /// d.forward_to(Mode::Train, &xs, &mut fast, &mut fast_mask, Keyed::new(5, 3))?;
    /// reference::drop_block_forward_to(&d, Mode::Train, &xs, &mut slow, &mut slow_mask, Keyed::new(5, 3))?;
    /// assert_eq!((fast, fast_mask), (slow, slow_mask));
    /// # Ok::<(), bitdrop::Error>(())
    /// ```
    pub fn drop_block_forward_to<E: Element>(
        drop_block: &DropBlock,
        mode: Mode,
        xs: &[E],
        out: &mut [E],
        mask: &mut [u64],
        source: impl Randomness,
    ) -> Result<(), Error> {
        let data = Data::copy(xs, out)?;
        drop_block.check(xs.len(), mask.len())?;
        source.check(drop_block.seeds())?;
        let len = drop_block.len();
        let mask = &mut mask[..len.div_ceil(64)];
        mask.fill(0);
        let plan = Plan::of(drop_block.dropout(), mode);
        if plan != Plan::DropAll {
            (0..len).for_each(|i| set(mask, i, true));
        }
        if let Plan::Random(_) = plan {
            let [_, _, h, w] = drop_block.shape();
            let bs = drop_block.block_size();
            seeds(drop_block, source, |k, drawn| {
                if drawn {
                    let (channel, h0, w0) = corner(drop_block, k);
                    for y in h0..h0 + bs {
                        for x in w0..w0 + bs {
                            set(mask, (channel * h + y) * w + x, false);
                        }
                    }
                }
            });
        }
        let kept = (0..len)
            .filter(|&i| mask[i / 64] >> (i % 64) & 1 == 1)
            .count();
        let scale = (len as f64 / kept as f64) as f32;
        let ops = Inverted { data, scale };
        let decisions = Decisions::<Keyed>::Given(mask, 0);
        let units = Units::elements(len);
        run(drop_block.dropout(), mode, ops, &units, decisions, Scalar)
    }

    /// The seeds of a [`DropBlock`] call, one bit per seed in seed order
    /// (seed `k` is bit `k % 64` of word `k / 64`), **1 meaning drawn** (a
    /// dropped block), written to the first `ceil(seeds / 64)` words of
    /// `seeds`, bits past the last seed `0`: the seeds that
    /// [`DropBlock::forward`] draws with the same `source`. In evaluation
    /// mode and at `p == 0` no seed is drawn, at `p == 1` every seed is;
    /// neither draws randomness.
    ///
    /// # Errors
    ///
    /// [`Error::MaskTooShort`], then [`Error::PositionOverflow`].
    pub fn drop_block_seeds(
        drop_block: &DropBlock,
        mode: Mode,
        seeds_out: &mut [u64],
        source: impl Randomness,
    ) -> Result<(), Error> {
        let count = drop_block.seeds();
        check_words(count, seeds_out.len())?;
        source.check(count)?;
        let out = &mut seeds_out[..count.div_ceil(64)];
        out.fill(0);
        match Plan::of(drop_block.dropout(), mode) {
            Plan::Identity => {}
            Plan::DropAll => (0..count).for_each(|k| set(out, k, true)),
            Plan::Random(_) => seeds(drop_block, source, |k, drawn| set(out, k, drawn)),
        }
        Ok(())
    }

    /// Visits every seed in order with whether it is drawn.
    fn seeds(drop_block: &DropBlock, source: impl Randomness, mut visit: impl FnMut(usize, bool)) {
        let count = drop_block.seeds();
        let numerator = drop_block.seed_numerator();
        if numerator == 1 << 64 {
            (0..count).for_each(|k| visit(k, true));
            return;
        }
        let threshold = Threshold(numerator as u64);
        // A seed the decisions drop is a drawn seed.
        match source.raw() {
            Raw::Rng(mut rng) => {
                let decisions = rng_decisions(&mut rng, threshold, count);
                decisions.enumerate().for_each(|(k, kept)| visit(k, !kept));
            }
            Raw::Keyed(key) => {
                let decisions = keyed_decisions(key.seed(), key.offset(), threshold);
                let decisions = decisions.take(count).enumerate();
                decisions.for_each(|(k, kept)| visit(k, !kept));
            }
        }
    }

    /// Seed `k = (channel * (h - bs + 1) + h0) * (w - bs + 1) + w0` as
    /// `(channel, h0, w0)`.
    fn corner(drop_block: &DropBlock, k: usize) -> (usize, usize, usize) {
        let [_, _, h, w] = drop_block.shape();
        let bs = drop_block.block_size();
        let (rows, cols) = (h - bs + 1, w - bs + 1);
        (k / (rows * cols), k / cols % rows, k % cols)
    }

    /// Sets bit `i` of `words` to `value`.
    fn set(words: &mut [u64], i: usize, value: bool) {
        let bit = 1 << (i % 64);
        if value {
            words[i / 64] |= bit;
        } else {
            words[i / 64] &= !bit;
        }
    }
}
