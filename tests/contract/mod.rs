//! The contract of every public entry point, checked on arbitrary input.
//!
//! Shared by the cargo-fuzz targets in `fuzz/` (which include this file by
//! path) and by `tests/fuzz_contract.rs`, which replays the committed corpus
//! and random inputs through the same checks on every `cargo test`. Each
//! check asserts what SPEC.md promises, not only the absence of a panic:
//! errors exactly where they are due and nothing written then, identity in
//! evaluation mode, `+0.0` for dropped and `x * s` for kept elements,
//! equality with the scalar reference, chunked calls equal to one call.
#![allow(dead_code)]

use arbitrary::Arbitrary;
use bitdrop::{Dropout, Error, Keyed, Mask, Mode, mask_words, reference};
use rand_xoshiro::Xoshiro256PlusPlus;
use rand_xoshiro::rand_core::SeedableRng;

/// Longest input slice: enough to cross several 512-element chunks and a
/// 4096-position block, small enough for the reference to keep up.
const MAX_LEN: usize = if cfg!(miri) { 300 } else { 9000 };
const SENTINEL: u32 = 0x7FC0_DEAD;
const MASK_SENTINEL: u64 = 0xDEAD_BEEF_DEAD_BEEF;

/// A drop probability: any bit pattern, an edge value, or a fraction.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum P {
    Bits(u32),
    Edge(u8),
    Fraction(u32),
}

impl P {
    pub fn value(self) -> f32 {
        const EDGES: [f32; 10] = [
            0.0,
            -0.0,
            1.0,
            0.5,
            0.1,
            0.9,
            1e-45,
            4.547_474e-13,
            0.999_999_94,
            5.421_011e-20,
        ];
        match self {
            P::Bits(bits) => f32::from_bits(bits),
            P::Edge(i) => EDGES[i as usize % EDGES.len()],
            P::Fraction(x) => (f64::from(x) / 4_294_967_296.0) as f32,
        }
    }
}

/// How a length relates to the one it should match.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Delta {
    Same,
    Shorter(u8),
    Longer(u8),
}

impl Delta {
    pub fn apply(self, len: usize) -> usize {
        match self {
            Delta::Same => len,
            Delta::Shorter(k) => len.saturating_sub(usize::from(k) + 1),
            Delta::Longer(k) => len + usize::from(k) + 1,
        }
    }
}

/// A stream offset: small, just before a block edge, near 2^64, or any.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Offset {
    Small(u16),
    BlockEdge(u32, u8),
    NearEnd(u16),
    Any(u64),
}

impl Offset {
    pub fn value(self) -> u64 {
        match self {
            Offset::Small(o) => u64::from(o),
            Offset::BlockEdge(block, back) => {
                (u64::from(block) + 1) * 4096 - u64::from(back % 64) - 1
            }
            Offset::NearEnd(back) => u64::MAX - u64::from(back),
            Offset::Any(o) => o,
        }
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Source {
    Keyed { seed: u64, offset: Offset },
    Rng { seed: u64 },
}

/// One call of a data operation: `len` elements, the bit patterns of `data`
/// repeated (so that long slices cost the fuzzer few bytes).
#[derive(Arbitrary, Debug)]
pub struct Call {
    pub p: P,
    pub train: bool,
    pub len: u16,
    pub data: Vec<u32>,
    pub out: Delta,
    pub mask: Delta,
    pub source: Source,
}

/// The forward family of operations.
#[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Forward,
    ForwardTo,
    ForwardWithMask,
    ForwardToWithMask,
    FillMask,
    Backward,
    BackwardTo,
    ApplyMask,
    ApplyMaskTo,
}

impl Op {
    fn writes_out(self) -> bool {
        matches!(
            self,
            Op::ForwardTo | Op::ForwardToWithMask | Op::BackwardTo | Op::ApplyMaskTo
        )
    }
    fn uses_mask(self) -> bool {
        matches!(
            self,
            Op::ForwardWithMask
                | Op::ForwardToWithMask
                | Op::FillMask
                | Op::ApplyMask
                | Op::ApplyMaskTo
        )
    }
    fn draws(self) -> bool {
        !matches!(self, Op::ApplyMask | Op::ApplyMaskTo)
    }
    fn keyed_only(self) -> bool {
        matches!(self, Op::Backward | Op::BackwardTo)
    }
}

pub fn same_f32(a: f32, b: f32) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

/// Validates `p` the way SPEC 1.1 says; `None` when it is rightly refused.
fn dropout(p: f32) -> Option<Dropout> {
    let valid = (0.0..=1.0).contains(&p);
    match Dropout::new(p) {
        Ok(d) => {
            assert!(valid, "accepted p = {p}");
            assert_eq!(d.p().to_bits(), p.to_bits());
            Some(d)
        }
        Err(e) => {
            assert!(!valid, "refused valid p = {p}");
            assert!(
                matches!(e, Error::InvalidProbability { p: q } if q.to_bits() == p.to_bits()),
                "{e:?}"
            );
            None
        }
    }
}

/// The decisions of one call: `Some(mask words)` when the call draws.
enum Expected {
    Identity,
    Zero,
    Masked(Vec<u64>),
}

/// Checks one data operation against the contract.
pub fn check_call(call: &Call, op: Op) {
    let Some(d) = dropout(call.p.value()) else {
        return;
    };
    let mode = if call.train { Mode::Train } else { Mode::Eval };
    let xs: Vec<f32> = call
        .data
        .iter()
        .take(MAX_LEN)
        .map(|&b| f32::from_bits(b))
        .collect();
    let n = xs.len();
    let out_len = if op.writes_out() {
        call.out.apply(n)
    } else {
        n
    };
    let mask_len = call.mask.apply(mask_words(n));
    let source = match (call.source, op.keyed_only()) {
        (Source::Rng { seed }, true) => Source::Keyed {
            seed,
            offset: Offset::Small(0),
        },
        (source, _) => source,
    };
    // A given mask, for the apply operations: decided by the source.
    let given: Vec<u64> = {
        let mut words = vec![0; mask_len.max(mask_words(n))];
        let _ = d.fill_mask(Mode::Train, n, &mut words, Keyed::new(n as u64, 0));
        words.truncate(mask_len);
        words
    };

    let mismatch = op.writes_out() && out_len != n;
    let short = op.uses_mask() && mask_len < mask_words(n);
    let overflow = op.draws()
        && matches!(source, Source::Keyed { offset, .. } if u128::from(offset.value()) + n as u128 > 1 << 64);

    let mut data = xs.clone();
    let mut out = vec![f32::from_bits(SENTINEL); out_len];
    let mut mask = if matches!(op, Op::ApplyMask | Op::ApplyMaskTo) {
        given.clone()
    } else {
        vec![MASK_SENTINEL; mask_len]
    };
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(match source {
        Source::Rng { seed } => seed,
        Source::Keyed { seed, .. } => seed,
    });
    let rng_before = rng.clone();
    let result = run(
        &d, mode, op, source, &xs, &mut data, &mut out, &mut mask, &mut rng,
    );

    if mismatch || short || overflow {
        let e = result.expect_err("an invalid call succeeded");
        let allowed = (mismatch
            && matches!(e, Error::LengthMismatch { input, output } if input == n && output == out_len))
            || (short
                && matches!(e, Error::MaskTooShort { needed, found } if needed == mask_words(n) && found == mask_len))
            || (overflow && matches!(e, Error::PositionOverflow { len, .. } if len == n));
        assert!(allowed, "{op:?}: unexpected {e:?}");
        assert!(identical(&data, &xs), "{op:?}: an error wrote the data");
        assert!(
            out.iter().all(|y| y.to_bits() == SENTINEL),
            "{op:?}: an error wrote the output"
        );
        if !matches!(op, Op::ApplyMask | Op::ApplyMaskTo) {
            assert!(
                mask.iter().all(|&w| w == MASK_SENTINEL),
                "{op:?}: an error wrote the mask"
            );
        }
        assert_eq!(rng, rng_before, "{op:?}: an error drew randomness");
        check_reference_refuses(&d, mode, op, source, &xs, out_len, &mask);
        return;
    }
    result.unwrap_or_else(|e| panic!("{op:?}: valid call failed with {e:?}"));
    let result_data = if op.writes_out() { &out } else { &data };
    if op.writes_out() {
        assert!(identical(&data, &xs), "{op:?}: the input changed");
    }

    // What the reference says the decisions are.
    let p = d.p();
    let expected = if mode == Mode::Eval || p == 0.0 {
        Expected::Identity
    } else if p == 1.0 {
        Expected::Zero
    } else if matches!(op, Op::ApplyMask | Op::ApplyMaskTo) {
        Expected::Masked(given.clone())
    } else {
        let mut words = vec![0; mask_words(n)];
        let mut reference_rng = rng_before.clone();
        match source {
            Source::Keyed { seed, offset } => {
                reference::fill_mask(&d, mode, n, &mut words, Keyed::new(seed, offset.value()))
            }
            Source::Rng { .. } => reference::fill_mask(&d, mode, n, &mut words, &mut reference_rng),
        }
        .expect("the reference refused a valid call");
        if let Source::Rng { .. } = source {
            assert_eq!(
                rng, reference_rng,
                "{op:?}: RNG consumption differs from the reference"
            );
        }
        Expected::Masked(words)
    };

    if matches!(expected, Expected::Identity | Expected::Zero) {
        assert_eq!(
            rng, rng_before,
            "{op:?}: drew randomness without deciding anything"
        );
    }
    if op != Op::FillMask {
        match &expected {
            Expected::Identity => assert!(identical(result_data, &xs), "{op:?}: not the identity"),
            Expected::Zero => assert!(
                result_data.iter().all(|y| y.to_bits() == 0),
                "{op:?}: p = 1 left non-zeros"
            ),
            Expected::Masked(words) => {
                let m = Mask::new(&words[..], n).expect("mask length");
                for (i, (&x, &y)) in xs.iter().zip(result_data).enumerate() {
                    if m.get(i) == Some(true) {
                        assert!(same_f32(y, x * d.scale()), "{op:?}: kept {x} became {y}");
                    } else {
                        assert_eq!(y.to_bits(), 0, "{op:?}: dropped {x} became {y}");
                    }
                }
                // The SIMD path equals the scalar reference on the data too.
                // (Under Miri the keyed reference's decisions are `words`
                // already: regenerating them would double the run.)
                let mut reference_out = vec![0.0; n];
                match (op, source) {
                    (Op::ApplyMask | Op::ApplyMaskTo, _) | (_, Source::Keyed { .. })
                        if cfg!(miri) || !op.draws() =>
                    {
                        reference::apply_mask_to(&d, mode, &xs, words, &mut reference_out)
                    }
                    (_, Source::Keyed { seed, offset }) => reference::forward_to(
                        &d,
                        mode,
                        &xs,
                        &mut reference_out,
                        Keyed::new(seed, offset.value()),
                    ),
                    (_, Source::Rng { .. }) => reference::forward_to(
                        &d,
                        mode,
                        &xs,
                        &mut reference_out,
                        &mut rng_before.clone(),
                    ),
                }
                .expect("the reference refused a valid call");
                assert!(
                    result_data
                        .iter()
                        .zip(&reference_out)
                        .all(|(&a, &b)| same_f32(a, b)),
                    "{op:?}: differs from the reference"
                );
            }
        }
    }
    if op.uses_mask() && !matches!(op, Op::ApplyMask | Op::ApplyMaskTo) {
        let (written, rest) = mask.split_at(mask_words(n));
        assert!(
            rest.iter().all(|&w| w == MASK_SENTINEL),
            "{op:?}: wrote past the mask's words"
        );
        let expected_words: Vec<u64> = match &expected {
            Expected::Identity => (0..mask_words(n)).map(|i| low_bits(n - 64 * i)).collect(),
            Expected::Zero => vec![0; mask_words(n)],
            Expected::Masked(words) => words.clone(),
        };
        assert_eq!(written, &expected_words[..], "{op:?}: wrong mask");
    }
}

/// The reference's entry points refuse the same calls, writing nothing.
fn check_reference_refuses(
    d: &Dropout,
    mode: Mode,
    op: Op,
    source: Source,
    xs: &[f32],
    out_len: usize,
    mask: &[u64],
) {
    let mut out = vec![f32::from_bits(SENTINEL); out_len];
    let mut words = vec![MASK_SENTINEL; mask.len()];
    let key = match source {
        Source::Keyed { seed, offset } => Keyed::new(seed, offset.value()),
        Source::Rng { seed } => Keyed::new(seed, 0),
    };
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(0);
    let result = match (op, source) {
        (Op::ForwardTo, Source::Keyed { .. }) => reference::forward_to(d, mode, xs, &mut out, key),
        (Op::ForwardTo, Source::Rng { .. }) => {
            reference::forward_to(d, mode, xs, &mut out, &mut rng)
        }
        (Op::FillMask, Source::Keyed { .. }) => {
            reference::fill_mask(d, mode, xs.len(), &mut words, key)
        }
        (Op::FillMask, Source::Rng { .. }) => {
            reference::fill_mask(d, mode, xs.len(), &mut words, &mut rng)
        }
        (Op::ApplyMaskTo, _) => reference::apply_mask_to(d, mode, xs, mask, &mut out),
        _ => return,
    };
    assert!(
        result.is_err(),
        "{op:?}: the reference accepted an invalid call"
    );
    assert!(
        out.iter().all(|y| y.to_bits() == SENTINEL),
        "{op:?}: the reference wrote on error"
    );
    assert!(
        words.iter().all(|&w| w == MASK_SENTINEL),
        "{op:?}: the reference wrote on error"
    );
    assert_eq!(
        rng,
        Xoshiro256PlusPlus::seed_from_u64(0),
        "{op:?}: the reference drew on error"
    );
}

fn low_bits(bits: usize) -> u64 {
    if bits >= 64 { !0 } else { (1 << bits) - 1 }
}

fn identical(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

/// Calls `op`; `data` is the in-place buffer, `out` the output buffer.
#[allow(clippy::too_many_arguments)]
fn run(
    d: &Dropout,
    mode: Mode,
    op: Op,
    source: Source,
    xs: &[f32],
    data: &mut [f32],
    out: &mut [f32],
    mask: &mut [u64],
    rng: &mut Xoshiro256PlusPlus,
) -> Result<(), Error> {
    macro_rules! with_source {
        ($call:ident, $($arg:expr),*) => {
            match source {
                Source::Keyed { seed, offset } => d.$call($($arg),*, Keyed::new(seed, offset.value())),
                Source::Rng { .. } => d.$call($($arg),*, &mut *rng),
            }
        };
    }
    let keyed = match source {
        Source::Keyed { seed, offset } => Keyed::new(seed, offset.value()),
        Source::Rng { seed } => Keyed::new(seed, 0),
    };
    match op {
        Op::Forward => with_source!(forward, mode, data),
        Op::ForwardTo => with_source!(forward_to, mode, xs, out),
        Op::ForwardWithMask => with_source!(forward_with_mask, mode, data, mask),
        Op::ForwardToWithMask => with_source!(forward_to_with_mask, mode, xs, out, mask),
        Op::FillMask => with_source!(fill_mask, mode, xs.len(), mask),
        Op::Backward => d.backward(mode, data, keyed),
        Op::BackwardTo => d.backward_to(mode, xs, out, keyed),
        Op::ApplyMask => d.apply_mask(mode, data, mask),
        Op::ApplyMaskTo => d.apply_mask_to(mode, xs, mask, out),
    }
}

/// Chunks of a keyed call, in any order, equal one call.
#[derive(Arbitrary, Debug)]
pub struct Chunked {
    pub p: P,
    pub seed: u64,
    pub offset: Offset,
    pub len: u16,
    pub cuts: Vec<u16>,
    pub order: u64,
}

pub fn check_chunks(input: &Chunked) {
    let Some(d) = dropout(input.p.value()) else {
        return;
    };
    let n = usize::from(input.len) % MAX_LEN;
    // Keep the call inside the stream: offset + n <= 2^64.
    let offset = input
        .offset
        .value()
        .min((u64::MAX - n as u64).saturating_add(1));
    let key = Keyed::new(input.seed, offset);
    let xs: Vec<f32> = (0..n).map(|i| i as f32 - 100.0).collect();
    let mut whole = xs.clone();
    let mut whole_mask = vec![0; mask_words(n)];
    d.forward_with_mask(Mode::Train, &mut whole, &mut whole_mask, key)
        .expect("valid call");
    let mut bounds: Vec<usize> = input
        .cuts
        .iter()
        .map(|&c| usize::from(c) % (n + 1))
        .collect();
    bounds.extend([0, n]);
    bounds.sort_unstable();
    let mut chunks: Vec<(usize, usize)> = bounds.windows(2).map(|w| (w[0], w[1])).collect();
    // Any order: rotate and reverse by the input.
    let len = chunks.len().max(1);
    chunks.rotate_left(input.order as usize % len);
    if input.order & 1 == 1 {
        chunks.reverse();
    }
    let mut pieces = xs.clone();
    let whole_mask = Mask::new(&whole_mask[..], n).expect("mask length");
    // An empty chunk decides nothing (and at the very end its first
    // position, 2^64, has no key).
    for (start, end) in chunks.into_iter().filter(|(start, end)| start < end) {
        let chunk_key = key.advanced(start as u64).expect("inside the stream");
        let mut words = vec![0; mask_words(end - start)];
        d.fill_mask(Mode::Train, end - start, &mut words, chunk_key)
            .expect("valid call");
        let m = Mask::new(&words[..], end - start).expect("mask length");
        for i in start..end {
            assert_eq!(
                m.get(i - start),
                whole_mask.get(i),
                "decision {i} differs in chunk {start}..{end}"
            );
        }
        d.forward(Mode::Train, &mut pieces[start..end], chunk_key)
            .expect("valid call");
    }
    assert!(
        pieces.iter().zip(&whole).all(|(&a, &b)| same_f32(a, b)),
        "chunked output differs"
    );
    if n > 0 {
        // The stream's cost is defined for the block of the first position.
        let block = offset / 4096;
        let words = reference::keyed_words_drawn(&d, Mode::Train, input.seed, block);
        assert!(
            words.is_multiple_of(8) && words <= 8 * 64 * 8,
            "{words} words for a block"
        );
    }
}

/// The mask helpers on arbitrary words and lengths.
#[derive(Arbitrary, Debug)]
pub struct MaskInput {
    pub words: Vec<u64>,
    pub len: u16,
    pub halves: Delta,
    pub target: Delta,
}

pub fn check_mask(input: &MaskInput) {
    let len = usize::from(input.len);
    let needed = mask_words(len);
    match Mask::new(&input.words[..], len) {
        Err(e) => {
            assert!(input.words.len() < needed);
            assert_eq!(
                e,
                Error::MaskTooShort {
                    needed,
                    found: input.words.len()
                }
            );
        }
        Ok(m) => {
            assert!(input.words.len() >= needed);
            let bit = |i: usize| input.words[i / 64] >> (i % 64) & 1 == 1;
            assert!(m.iter().enumerate().all(|(i, k)| k == bit(i)));
            assert_eq!(m.iter().len(), len);
            assert_eq!(m.get(len), None);
            let kept = (0..len).filter(|&i| bit(i)).count();
            assert_eq!(m.kept_count(), kept);
            assert_eq!(m.dropped_count(), len - kept);
            assert_eq!(m.words(), &input.words[..needed]);

            let halves_len = input.halves.apply(len.div_ceil(32));
            let mut halves = vec![u32::MAX; halves_len];
            match m.to_u32_words(&mut halves) {
                Err(e) => {
                    assert!(halves_len < len.div_ceil(32));
                    assert!(matches!(e, Error::MaskTooShort { .. }));
                    assert!(halves.iter().all(|&h| h == u32::MAX), "an error wrote");
                }
                Ok(()) => {
                    let used = len.div_ceil(32);
                    assert!(
                        halves[used..].iter().all(|&h| h == u32::MAX),
                        "wrote past the words needed"
                    );
                    let target_len = input.target.apply(needed);
                    let mut target = vec![!0u64; target_len];
                    match Mask::from_u32_words(&halves[..used], len, &mut target[..]) {
                        Err(e) => {
                            assert!(target_len < needed);
                            assert!(matches!(e, Error::MaskTooShort { .. }));
                            assert!(target.iter().all(|&w| w == !0), "an error wrote");
                        }
                        Ok(back) => {
                            assert!(back.iter().eq(m.iter()), "u32 round trip changed bits");
                            let popcount: u32 = back.words().iter().map(|w| w.count_ones()).sum();
                            assert_eq!(popcount as usize, kept, "bits past len were set");
                        }
                    }
                }
            }
        }
    }
}

/// `Dropout::new`, its getters, and `Keyed::advanced` on any input.
pub fn check_config(p_bits: u32, seed: u64, offset: u64, step: u64) {
    let p = f32::from_bits(p_bits);
    if let Some(d) = dropout(p) {
        let s = (1.0 / (1.0 - f64::from(p))) as f32;
        assert_eq!(d.scale().to_bits(), s.to_bits());
        let numerator = d.drop_numerator();
        assert!(numerator <= 1 << 64);
        assert_eq!(numerator == 1 << 64, p == 1.0);
        assert_eq!(numerator, exact_numerator(p));
    }
    let key = Keyed::new(seed, offset);
    assert_eq!((key.seed(), key.offset()), (seed, offset));
    match key.advanced(step) {
        Some(next) => assert_eq!(
            u128::from(next.offset()),
            u128::from(offset) + u128::from(step)
        ),
        None => assert!(u128::from(offset) + u128::from(step) > u128::from(u64::MAX)),
    }
}

/// floor(p * 2^64) from p's mantissa and exponent, no float arithmetic.
pub fn exact_numerator(p: f32) -> u128 {
    let bits = p.to_bits();
    let exponent = (bits >> 23 & 0xFF) as i32;
    let fraction = u128::from(bits & 0x7F_FFFF);
    // p = mantissa * 2^power
    let (mantissa, power) = if exponent == 0 {
        (fraction, -149)
    } else {
        (fraction | 1 << 23, exponent - 150)
    };
    let shift = power + 64;
    if shift >= 0 {
        mantissa << shift
    } else {
        mantissa >> -shift
    }
}
