//! The contract of every public entry point, checked on arbitrary input.
//!
//! Shared by the cargo-fuzz targets in `fuzz/` (whose library,
//! `fuzz/src/lib.rs`, includes this file and `tests/support` by path) and
//! by the tests: `tests/fuzz_contract.rs`
//! replays the committed corpus and random inputs through the same checks
//! on every `cargo test`, and the error tests call [`check_case`]. Each
//! check asserts what SPEC.md promises, not only the absence of a panic:
//! errors exactly where they are due and nothing written then, identity in
//! evaluation mode, `+0.0` for dropped and `x * s` for kept elements,
//! equality with the scalar reference, chunked calls equal to one call;
//! for every row of the table of operations (`tests/support/ops.rs`).
#![allow(dead_code)]

pub mod variants;

use crate::support::ops::{
    self, Buffers, Case, Decision, Level, MASK_SENTINEL, MaskRole, OPS, Op, Plan, Src, Target,
    unit_of,
};
use crate::support::{EDGE_P, bit, data, divisors, exact_numerator, identical, low_bits, same};
use arbitrary::Arbitrary;
use bitdrop::{Dropout, Error, Keyed, Mask, Mode, Units, mask_words, reference};

/// Longest input slice: enough to cross several 512-element chunks and a
/// 4096-position block, small enough for the reference to keep up.
pub const MAX_LEN: usize = if cfg!(miri) { 300 } else { 9000 };

/// A drop probability: any bit pattern, an edge value, or a fraction.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum P {
    Bits(u32),
    Edge(u8),
    Fraction(u32),
}

impl P {
    pub fn value(self) -> f32 {
        match self {
            P::Bits(bits) => f32::from_bits(bits),
            P::Edge(i) => EDGE_P[i as usize % EDGE_P.len()],
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

/// The units of a structured call: `[outer, shared, inner, run]`, each
/// small (zero from a zero byte only), halved while there are more than
/// [`MAX_LEN`] elements.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct Shape(pub [u8; 4]);

impl Shape {
    pub fn units(self) -> Units {
        let dim = |byte: u8, max: u8| usize::from(byte.min(1) + byte.saturating_sub(1) % max);
        let [o, s, i, r] = self.0;
        let mut dims = [dim(o, 4), dim(s, 4), dim(i, 129), dim(r, 8)];
        while dims.iter().product::<usize>() > MAX_LEN {
            let largest = (0..4).max_by_key(|&k| dims[k]).expect("four dimensions");
            dims[largest] /= 2;
        }
        let [o, s, i, r] = dims;
        Units::new(o, s, i, r).expect("a small shape")
    }
}

/// The bias of a residual call: none, a row length that divides the data
/// (any, of empty data), any length (which may not divide it), or empty.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Bias {
    None,
    Row(u8),
    Length(u8),
    Empty,
}

impl Bias {
    pub fn len(self, n: usize) -> Option<usize> {
        match self {
            Bias::None => None,
            Bias::Row(k) if n == 0 => Some(usize::from(k % 8) + 1),
            Bias::Row(k) => {
                let divisors = divisors(n);
                Some(divisors[usize::from(k) % divisors.len()])
            }
            Bias::Length(k) => Some(usize::from(k)),
            Bias::Empty => Some(0),
        }
    }
}

/// One call of a data operation. Element-wise rows take the bit patterns
/// of `data` as their input; structured rows take `units` and `shape.apply(units.len())`
/// elements, the bit patterns of `data` repeated (so that long slices cost
/// the fuzzer few bytes). Residual rows add a residual of
/// `residual.apply(len)` elements, the bit patterns of `residual_data`
/// repeated, and `bias`.
#[derive(Arbitrary, Debug)]
pub struct Call {
    pub p: P,
    pub train: bool,
    pub len: u16,
    pub data: Vec<u32>,
    pub out: Delta,
    pub mask: Delta,
    pub source: Source,
    pub units: Shape,
    pub shape: Delta,
    pub residual: Delta,
    pub bias: Bias,
    pub residual_data: Vec<u32>,
}

/// `len` values: the bit patterns of `bits` repeated from index `from`, or
/// deterministic data if there are none.
fn repeat(bits: &[u32], len: usize, from: usize) -> Vec<f32> {
    if bits.is_empty() {
        return data(len, from as u64);
    }
    (0..len)
        .map(|i| f32::from_bits(bits[(i + from) % bits.len()]))
        .collect()
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

/// Checks one data operation against the contract on a fuzzer's call.
pub fn check_call(call: &Call, op: &Op) {
    if let Some((case, src)) = case_of(call, op) {
        check_case(op, &case, src);
    }
}

/// The operands and the source of `op` that `call` describes, if its `p` is
/// valid (which [`dropout`] checks).
pub fn case_of(call: &Call, op: &Op) -> Option<(Case, Src)> {
    let d = dropout(call.p.value())?;
    let mode = if call.train { Mode::Train } else { Mode::Eval };
    let (units, xs) = match op.level {
        Level::Elements => {
            let xs: Vec<f32> = call
                .data
                .iter()
                .take(MAX_LEN)
                .map(|&b| f32::from_bits(b))
                .collect();
            (Units::elements(xs.len()), xs)
        }
        Level::Units => {
            let units = call.units.units();
            (units, repeat(&call.data, call.shape.apply(units.len()), 0))
        }
    };
    let n = xs.len();
    let residual = op.residual().is_some();
    let residual_len = if residual { call.residual.apply(n) } else { n };
    let bias = call.bias.len(n).filter(|_| residual);
    let case = Case {
        dropout: d,
        mode,
        units,
        residual: repeat(&call.residual_data, residual_len, 0),
        bias: bias.map(|len| repeat(&call.residual_data, len, 1)),
        out_len: if op.writes_out() {
            call.out.apply(n)
        } else {
            n
        },
        mask_len: Some(call.mask.apply(mask_words(units.count()))),
        given: n as u64,
        xs,
    };
    let src = match (call.source, op.keyed_only()) {
        (Source::Rng { seed }, true) => Src::Keyed(Keyed::new(seed, 0)),
        (Source::Rng { seed }, false) => Src::Rng(seed),
        (Source::Keyed { seed, offset }, _) => Src::Keyed(Keyed::new(seed, offset.value())),
    };
    Some((case, src))
}

/// Checks one call of `op` on `case` with `src` against the contract: the
/// error due, if one is, with nothing written and nothing drawn, and the
/// reference refusing it too; else the reference's result and RNG
/// consumption, and the documented rule element by element.
pub fn check_case(op: &Op, case: &Case, src: Src) {
    let name = op.name;
    let before = Buffers::new(op, case);
    let rng_before = src.rng();
    let mut fast = before.clone();
    let mut fast_rng = rng_before.clone();
    let result = op.call(case, &mut fast, src.with(&mut fast_rng));

    if let Some(error) = op.expected_error(case, src) {
        assert_eq!(
            result,
            Err(error),
            "{name}: wrong result of an invalid call"
        );
        assert!(fast.identical(&before), "{name}: an error wrote");
        assert_eq!(fast_rng, rng_before, "{name}: an error drew randomness");
        if op.one_reference_call() {
            let mut slow = before.clone();
            let mut slow_rng = rng_before.clone();
            let refused = op.reference(case, &mut slow, src.with(&mut slow_rng));
            assert_eq!(refused, Err(error), "{name}: the reference's answer");
            assert!(
                slow.identical(&before),
                "{name}: the reference wrote on error"
            );
            assert_eq!(slow_rng, rng_before, "{name}: the reference drew on error");
        }
        return;
    }
    result.unwrap_or_else(|e| panic!("{name}: valid call failed with {e:?}"));

    // The SIMD path equals the scalar reference, buffers and RNG.
    let mut slow = before.clone();
    let mut slow_rng = rng_before.clone();
    op.reference(case, &mut slow, src.with(&mut slow_rng))
        .unwrap_or_else(|e| panic!("{name}: the reference refused a valid call: {e:?}"));
    assert!(fast.same(&slow), "{name}: differs from the reference");
    assert_eq!(
        fast_rng, slow_rng,
        "{name}: RNG consumption differs from the reference"
    );

    // Nothing written but the row's result (and mask).
    for target in [Target::Data, Target::Out, Target::Residual] {
        if target != op.target() {
            assert!(
                identical(fast.get(target), before.get(target)),
                "{name}: wrote {target:?}"
            );
        }
    }
    if op.mask() != MaskRole::Written {
        assert_eq!(fast.mask, before.mask, "{name}: wrote its mask");
    }

    // The decisions, and the rule applied element by element.
    let units = op.units(case);
    let count = units.count();
    let needed = mask_words(count);
    let plan = case.plan();
    let words: Vec<u64> = match plan {
        Plan::Identity => (0..needed).map(|w| low_bits(count - 64 * w)).collect(),
        Plan::DropAll => vec![0; needed],
        Plan::Random => match op.mask() {
            MaskRole::Read => before.mask[..needed].to_vec(),
            MaskRole::Written => slow.mask[..needed].to_vec(),
            MaskRole::None => op.reference_decisions(case, src),
        },
    };
    if plan != Plan::Random {
        assert_eq!(
            fast_rng, rng_before,
            "{name}: drew randomness without deciding anything"
        );
    }
    let ys = fast.get(op.target());
    for (e, &y) in ys.iter().enumerate() {
        let decision = match plan {
            Plan::Identity => Decision::Pass,
            Plan::DropAll => Decision::Drop,
            Plan::Random if bit(&words, unit_of(&units, e)) => Decision::Keep,
            Plan::Random => Decision::Drop,
        };
        assert!(
            op.obeys(case, e, decision, y),
            "{name}: element {e} ({decision:?}) of x = {} became {y}, not {}",
            case.xs[e],
            op.rule(case, e, decision),
        );
    }
    if op.mask() == MaskRole::Written {
        let (written, rest) = fast.mask.split_at(needed);
        assert!(
            rest.iter().all(|&w| w == MASK_SENTINEL),
            "{name}: wrote past the mask's words"
        );
        assert_eq!(written, &words[..], "{name}: wrong mask");
        if !count.is_multiple_of(64) {
            assert_eq!(written[needed - 1] >> (count % 64), 0, "{name}: tail bits");
        }
    }
}

/// Chunks of a keyed call, in any order, equal one call: element-wise
/// over `len` elements cut anywhere, structured over units of `shape`
/// (`[shared, inner, run]`) cut between outer indices.
#[derive(Arbitrary, Debug)]
pub struct Chunked {
    pub p: P,
    pub seed: u64,
    pub offset: Offset,
    pub len: u16,
    pub cuts: Vec<u16>,
    pub order: u64,
    pub shape: [u8; 3],
}

pub fn check_chunks(input: &Chunked) {
    let Some(d) = dropout(input.p.value()) else {
        return;
    };
    let n = usize::from(input.len) % MAX_LEN;
    let [shared, inner, run] = input.shape.map(usize::from);
    let (shared, inner, run) = (shared % 4, inner % 20, run % 6);
    let per_outer = shared * inner * run;
    let outer = n.checked_div(per_outer).unwrap_or(n % 70);
    let units = Units::new(outer, shared, inner, run).expect("a small shape");
    for split in [Split::Elements(n), Split::Outer(units)] {
        let parts = split.parts();
        let count = split.units(parts).count();
        // Keep the call inside the stream: offset + count <= 2^64.
        let offset = input
            .offset
            .value()
            .min((u64::MAX - count as u64).saturating_add(1));
        let key = Keyed::new(input.seed, offset);
        let mut bounds: Vec<usize> = input
            .cuts
            .iter()
            .map(|&c| usize::from(c) % (parts + 1))
            .collect();
        bounds.extend([0, parts]);
        bounds.sort_unstable();
        let mut chunks: Vec<(usize, usize)> = bounds.windows(2).map(|w| (w[0], w[1])).collect();
        // Any order: rotate and reverse by the input.
        let len = chunks.len().max(1);
        chunks.rotate_left(input.order as usize % len);
        if input.order & 1 == 1 {
            chunks.reverse();
        }
        check_chunked(&d, split, key, &chunks);
        if count > 0 {
            // The stream's cost is defined for the block of the first
            // position: a fixed number of generator steps per batch for
            // the threshold, plus at most one tail word per position.
            let block = offset / 4096;
            let words = reference::keyed_words_drawn(&d, Mode::Train, input.seed, block);
            let numerator = d.drop_numerator();
            let bits = if numerator == 0 {
                0
            } else {
                64 - numerator.trailing_zeros().min(64)
            };
            let fixed = 64 * u64::from(bits.min(4) + u32::from(bits > 4));
            assert!(
                (fixed..=fixed + 4096).contains(&words),
                "{words} words for a block, {fixed} fixed"
            );
        }
    }
}

/// How a call is cut into chunks.
#[derive(Clone, Copy, Debug)]
pub enum Split {
    /// `n` elements, a unit each (the element-wise rows), cut anywhere.
    Elements(usize),
    /// The units of the structured rows, cut between outer indices: whole
    /// outer indices `a..b` are units again, `[b - a, shared, inner, run]`,
    /// and their first unit is `a * inner`.
    Outer(Units),
}

impl Split {
    pub fn level(self) -> Level {
        match self {
            Split::Elements(_) => Level::Elements,
            Split::Outer(_) => Level::Units,
        }
    }

    /// The places to cut between: elements, or outer indices.
    pub fn parts(self) -> usize {
        match self {
            Split::Elements(n) => n,
            Split::Outer(units) => units.dims()[0],
        }
    }

    /// The units of `parts` consecutive parts.
    pub fn units(self, parts: usize) -> Units {
        match self {
            Split::Elements(_) => Units::elements(parts),
            Split::Outer(units) => {
                let [_, shared, inner, run] = units.dims();
                Units::new(parts, shared, inner, run).expect("a part of a shape")
            }
        }
    }
}

/// Every row of `split`'s level that draws, called once over everything
/// and once per chunk (`(a, b)`: parts `a..b`, in the order given) with
/// the key advanced to the chunk's first unit: the outputs and the masks
/// agree. The rows agree among themselves too: every mask written is the
/// same, and so is every output of the rows with the same element rule
/// (no residual).
pub fn check_chunked(d: &Dropout, split: Split, key: Keyed, chunks: &[(usize, usize)]) {
    let all = split.units(split.parts());
    let (n, count) = (all.len(), all.count());
    let elements_per_part = split.units(1).len();
    let units_per_part = split.units(1).count();
    let case = Case::new(*d, Mode::Train, all, data(n, key.seed()));
    let mut decisions: Option<Vec<bool>> = None;
    let mut outputs: Vec<(ops::Kind, bool, Vec<f32>)> = Vec::new();
    for op in OPS
        .iter()
        .filter(|op| op.level == split.level() && op.draws())
    {
        let name = op.name;
        let target = op.target();
        let mut whole = Buffers::new(op, &case);
        op.call(&case, &mut whole, ops::Source::Keyed(key))
            .unwrap_or_else(|e| panic!("{name}: valid call failed with {e:?}"));
        let mut pieces = vec![0.0; whole.get(target).len()];
        let mut bits = vec![false; count];
        // An empty chunk decides nothing (and at the very end its first
        // position, 2^64, has no key).
        for &(a, b) in chunks.iter().filter(|(a, b)| a < b) {
            let elements = a * elements_per_part..b * elements_per_part;
            let chunk = Case {
                units: split.units(b - a),
                xs: case.xs[elements.clone()].to_vec(),
                residual: case.residual[elements.clone()].to_vec(),
                out_len: elements.len(),
                ..Case::new(*d, Mode::Train, all, Vec::new())
            };
            let first = a * units_per_part;
            let chunk_key = key.advanced(first as u64).expect("inside the stream");
            let mut bufs = Buffers::new(op, &chunk);
            op.call(&chunk, &mut bufs, ops::Source::Keyed(chunk_key))
                .unwrap_or_else(|e| panic!("{name}: valid chunk failed with {e:?}"));
            if target != Target::Nothing {
                pieces[elements].copy_from_slice(bufs.get(target));
            }
            for u in 0..(b - a) * units_per_part {
                bits[first + u] = bit(&bufs.mask, u);
            }
        }
        assert!(
            same(&pieces, whole.get(target)),
            "{name}: chunked output differs"
        );
        if op.mask() == MaskRole::Written {
            let whole_bits: Vec<bool> = (0..count).map(|u| bit(&whole.mask, u)).collect();
            assert_eq!(bits, whole_bits, "{name}: chunked decisions differ");
            match &decisions {
                None => decisions = Some(whole_bits),
                Some(first) => assert_eq!(first, &whole_bits, "{name}: decides otherwise"),
            }
        }
        if let Some((kind, backward)) = op.rule_kind()
            && target != Target::Nothing
        {
            match outputs
                .iter()
                .find(|(k, b, _)| (*k, *b) == (kind, backward))
            {
                None => outputs.push((kind, backward, whole.get(target).to_vec())),
                Some((_, _, first)) => {
                    assert!(same(first, whole.get(target)), "{name}: output differs")
                }
            }
        }
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

/// Runs `$body` with the call's source as `$s`: the key, or a fresh caller
/// RNG from the seed (so that each run draws the same words).
#[cfg(any(feature = "half", feature = "rayon"))]
macro_rules! with_source {
    ($src:expr, |$s:ident| $body:expr) => {
        match $src {
            Src::Keyed(key) => {
                let $s = key;
                $body
            }
            Src::Rng(seed) => {
                let mut generator = crate::support::rng(seed);
                let $s = &mut generator;
                $body
            }
        }
    };
}

/// Target `half`: an arbitrary structured call on `bf16` and `f16` data (the
/// high and low halves of the call's bit patterns): the fast path equals
/// the reference (the same result, the same outputs, NaN payloads aside),
/// and draws the mask the `f32` call draws.
#[cfg(feature = "half")]
pub fn check_half(call: &Call) {
    use bitdrop::half::{bf16, f16};
    let Some((case, src)) = case_of(call, ops::op("structured_residual_add_into_out")) else {
        return;
    };
    let bits: Vec<u32> = case.xs.iter().map(|x| x.to_bits()).collect();
    let rs: Vec<u32> = case.residual.iter().map(|x| x.to_bits()).collect();
    let bias: Option<Vec<u32>> = case
        .bias
        .as_ref()
        .map(|b| b.iter().map(|x| x.to_bits()).collect());
    half_case(
        &case,
        src,
        &bits,
        &rs,
        bias.as_deref(),
        |b| bf16::from_bits((b >> 16) as u16),
        |x| x.to_bits(),
        |x| x.is_nan(),
    );
    half_case(
        &case,
        src,
        &bits,
        &rs,
        bias.as_deref(),
        |b| f16::from_bits(b as u16),
        |x| x.to_bits(),
        |x| x.is_nan(),
    );
}

#[cfg(feature = "half")]
#[allow(clippy::too_many_arguments)]
fn half_case<T: bitdrop::Element>(
    case: &Case,
    src: Src,
    xs: &[u32],
    rs: &[u32],
    bias: Option<&[u32]>,
    from: fn(u32) -> T,
    to: fn(&T) -> u16,
    nan: fn(&T) -> bool,
) {
    use bitdrop::Residual;
    let st = case.dropout.structured(case.units);
    let mode = case.mode;
    let xs: Vec<T> = xs.iter().map(|&b| from(b)).collect();
    let rs: Vec<T> = rs.iter().map(|&b| from(b)).collect();
    let bias: Option<Vec<T>> = bias.map(|b| b.iter().map(|&b| from(b)).collect());
    let same = |a: &[T], b: &[T]| {
        a.len() == b.len()
            && a.iter()
                .zip(b)
                .all(|(x, y)| to(x) == to(y) || (nan(x) && nan(y)))
    };
    let zero = from(0);
    let mut fast = vec![zero; xs.len()];
    let mut slow = fast.clone();
    let got = with_source!(src, |s| st.forward_to(mode, &xs, &mut fast, s));
    let want = with_source!(src, |s| reference::structured_forward_to(
        &st, mode, &xs, &mut slow, s
    ));
    assert_eq!(got, want, "half forward_to: {case:?}");
    assert!(same(&fast, &slow), "half forward_to: {case:?}");

    // The mask of the f32 call, drawn from the same source.
    let words = mask_words(case.units.count());
    let (mut wide_mask, mut half_mask) = (vec![0; words], vec![0; words]);
    let mut wide = case.xs.clone();
    let mut narrow = xs.clone();
    let a = with_source!(src, |s| st.forward_with_mask(
        mode,
        &mut wide,
        &mut wide_mask,
        s
    ));
    let b = with_source!(src, |s| st.forward_with_mask(
        mode,
        &mut narrow,
        &mut half_mask,
        s
    ));
    assert_eq!(a, b, "half forward_with_mask: {case:?}");
    assert_eq!(wide_mask, half_mask, "half mask: {case:?}");

    if rs.len() == xs.len() {
        let mut fast = vec![zero; xs.len()];
        let mut slow = fast.clone();
        let b = bias.as_deref();
        let io = Residual::Into {
            x: &xs,
            residual: &rs,
            out: &mut fast,
        };
        let got = with_source!(src, |s| st.residual_add(mode, io, b, s));
        let io = Residual::Into {
            x: &xs,
            residual: &rs,
            out: &mut slow,
        };
        let want = with_source!(src, |s| reference::residual_add(&st, mode, io, b, None, s));
        assert_eq!(got, want, "half residual_add: {case:?}");
        assert!(same(&fast, &slow), "half residual_add: {case:?}");
    }
}

/// Target `par`: an arbitrary shape, grown past the parallel threshold
/// along its outer axis, and an arbitrary key: every `par_` call gives the
/// serial call's result, outputs and mask.
#[cfg(feature = "rayon")]
pub fn check_par(input: &Chunked) {
    use bitdrop::Residual;
    let Some(d) = dropout(input.p.value()) else {
        return;
    };
    let [shared, inner, run] = input.shape.map(|b| 1 + usize::from(b) % 16);
    let per_outer = shared * inner * run;
    let outer = (bitdrop::par::SERIAL_BELOW + usize::from(input.len) % 4096).div_ceil(per_outer);
    let units = Units::new(outer, shared, inner, run).expect("a shape of a few Mi elements");
    let count = units.count() as u64;
    let offset = input
        .offset
        .value()
        .min((u64::MAX - count).saturating_add(1));
    let key = Keyed::new(input.seed, offset);
    let st = d.structured(units);
    let mode = if input.order % 5 == 4 {
        Mode::Eval
    } else {
        Mode::Train
    };
    let xs = data(units.len(), input.seed);
    let words = mask_words(units.count());

    let mut serial = xs.clone();
    let mut serial_mask = vec![!0; words];
    let want = st.forward_with_mask(mode, &mut serial, &mut serial_mask, key);
    let mut parallel = xs.clone();
    let mut mask = vec![!0; words];
    let got = st.par_forward_with_mask(mode, &mut parallel, &mut mask, key);
    assert_eq!(got, want, "par_forward_with_mask: {units:?} {key:?}");
    assert!(
        same(&parallel, &serial) && mask == serial_mask,
        "par_forward_with_mask: {units:?}"
    );
    let mut parallel = xs.clone();
    assert_eq!(st.par_forward(mode, &mut parallel, key), want);
    assert!(same(&parallel, &serial), "par_forward: {units:?} {key:?}");
    let mut parallel = xs.clone();
    assert_eq!(
        st.par_apply_mask(mode, &mut parallel, &serial_mask),
        want.map(|_| ())
    );
    if want.is_ok() {
        let mut applied = xs.clone();
        st.apply_mask(mode, &mut applied, &serial_mask)
            .expect("a valid mask");
        assert!(same(&parallel, &applied), "par_apply_mask: {units:?}");
    }
    let bias = data(inner * run, input.seed + 1);
    let mut serial = xs.clone();
    let io = Residual::IntoResidual {
        x: &xs,
        residual: &mut serial,
    };
    let want = st.residual_add(mode, io, Some(&bias), key);
    let mut parallel = xs.clone();
    let io = Residual::IntoResidual {
        x: &xs,
        residual: &mut parallel,
    };
    assert_eq!(st.par_residual_add(mode, io, Some(&bias), key), want);
    assert!(
        same(&parallel, &serial),
        "par_residual_add: {units:?} {key:?}"
    );
}
