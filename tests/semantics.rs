//! SPEC section 1: identity, exact keep/drop rules, p == 0 and p == 1,
//! exact probabilities, and the composition of the operations.

mod common;
mod contract;
mod support;

use bitdrop::{Dropout, Error, Keyed, Mask, Mode, mask_words};
use common::{any_f32, config, probability};
use core::convert::Infallible;
use proptest::prelude::*;
use rand_xoshiro::rand_core::TryRng;
use support::ops::{Buffers, Case, Decision, MaskRole, OPS, Op, Src, shapes};
use support::{data, exact_numerator, low_bits, rng, same, same_f32, scaled};

/// One call of a row, and what it left.
struct Output {
    op: &'static Op,
    case: Case,
    src: Src,
    after: Buffers,
    /// Whether it advanced the caller's generator.
    drew: bool,
}

/// Runs every row of the table on `xs`, from `key` and from a caller RNG
/// seeded by `seed`, so that one property can be checked against all of
/// them: the structured rows on a shape of `xs.len()` elements chosen by
/// `seed`, the residual rows with a bias (a row of that shape) when `seed`
/// is odd.
fn all_outputs(d: &Dropout, mode: Mode, xs: &[f32], key: Keyed, seed: u64) -> Vec<Output> {
    let shapes = shapes(xs.len());
    let units = shapes[seed as usize % shapes.len()];
    let mut case = Case::new(*d, mode, units, xs.to_vec());
    if seed % 2 == 1 {
        case.bias = Some(data(units.dims()[3], seed));
    }
    let mut outputs = Vec::new();
    for op in OPS.iter().filter(|op| !cfg!(miri) || op.under_miri()) {
        let mut srcs = vec![Src::Keyed(key)];
        if !op.keyed_only() {
            srcs.push(Src::Rng(seed));
        }
        for src in srcs {
            let mut after = Buffers::new(op, &case);
            let mut generator = src.rng();
            op.call(&case, &mut after, src.with(&mut generator))
                .unwrap_or_else(|e| panic!("{}: {e:?}", op.name));
            outputs.push(Output {
                op,
                case: case.clone(),
                src,
                after,
                drew: generator != src.rng(),
            });
        }
    }
    outputs
}

impl Output {
    /// Whether every element the row wrote is what `decision` gives, and
    /// every mask it wrote says so of every unit (no bits past them).
    fn all(&self, decision: Decision) -> bool {
        let (op, case) = (self.op, &self.case);
        let ys = self.after.get(op.target());
        let elements = ys
            .iter()
            .enumerate()
            .all(|(i, &y)| op.obeys(case, i, decision, y));
        let count = op.units(case).count();
        let kept = |w: usize| match decision {
            Decision::Drop => 0,
            Decision::Pass | Decision::Keep => low_bits(count - 64 * w),
        };
        let mask = op.mask() != MaskRole::Written
            || (0..mask_words(count)).all(|w| self.after.mask[w] == kept(w));
        elements && mask
    }
}

proptest! {
    #![proptest_config(config(256))]

    /// Evaluation mode is the identity for any p, on any bit pattern, and
    /// draws nothing from the caller's generator.
    #[test]
    fn eval_is_identity(xs in prop::collection::vec(any_f32(), 0..scaled(600, 100)), p in probability(), seed: u64) {
        let d = Dropout::new(p).unwrap();
        for out in all_outputs(&d, Mode::Eval, &xs, Keyed::new(seed, 0), seed) {
            prop_assert!(out.all(Decision::Pass), "{} {:?} changed bits at p = {p}", out.op.name, out.src);
            prop_assert!(!out.drew, "{}: evaluation drew randomness", out.op.name);
        }
        let mut generator = rng(seed);
        let mut xs2 = xs.clone();
        let mut mask = vec![0; mask_words(xs.len())];
        d.forward_with_mask(Mode::Eval, &mut xs2, &mut mask, &mut generator).unwrap();
        prop_assert_eq!(generator, rng(seed), "evaluation drew randomness");
        prop_assert_eq!(Mask::new(&mask[..], xs.len()).unwrap().kept_count(), xs.len());
    }

    /// Training with p == 0 is the identity too, and draws nothing.
    #[test]
    fn train_at_zero_is_identity(xs in prop::collection::vec(any_f32(), 0..scaled(600, 100)), seed: u64) {
        for p in [0.0, -0.0] {
            let d = Dropout::new(p).unwrap();
            for out in all_outputs(&d, Mode::Train, &xs, Keyed::new(seed, 0), seed) {
                prop_assert!(out.all(Decision::Pass), "{} {:?} changed bits at p = {p}", out.op.name, out.src);
                prop_assert!(!out.drew, "{}: p = 0 drew randomness", out.op.name);
            }
            let mut generator = rng(seed);
            d.forward(Mode::Train, &mut xs.clone(), &mut generator).unwrap();
            prop_assert_eq!(generator, rng(seed));
        }
    }

    /// p == 1 zeroes everything to +0.0 (no NaN, no -0.0, no division by
    /// zero), writes an all-dropped mask, and draws nothing.
    #[test]
    fn train_at_one_zeroes(xs in prop::collection::vec(any_f32(), 0..scaled(600, 100)), seed: u64) {
        let d = Dropout::new(1.0).unwrap();
        for out in all_outputs(&d, Mode::Train, &xs, Keyed::new(seed, 0), seed) {
            prop_assert!(out.all(Decision::Drop), "{} {:?} left a non +0.0", out.op.name, out.src);
            prop_assert!(!out.drew, "{}: p = 1 drew randomness", out.op.name);
        }
        let mut generator = rng(seed);
        let mut mask = vec![!0; mask_words(xs.len())];
        d.forward_with_mask(Mode::Train, &mut xs.clone(), &mut mask, &mut generator).unwrap();
        prop_assert!(mask.iter().all(|&w| w == 0));
        prop_assert_eq!(generator, rng(seed));
    }

    /// A kept element is exactly `x * scale` (one f32 multiply); a dropped
    /// one is +0.0 whatever x was, NaN and infinities included.
    #[test]
    fn kept_is_x_times_scale_dropped_is_positive_zero(
        xs in prop::collection::vec(any_f32(), 0..scaled(600, 100)),
        p in probability(),
        seed: u64,
        offset in 0u64..1 << 50,
    ) {
        let d = Dropout::new(p).unwrap();
        let n = xs.len();
        let mut sources_out = Vec::new();
        let mut out = vec![0.0; n];
        let mut mask = vec![0; mask_words(n)];
        d.forward_to_with_mask(Mode::Train, &xs, &mut out, &mut mask, Keyed::new(seed, offset)).unwrap();
        sources_out.push((out, mask));
        let mut out = xs.clone();
        let mut mask = vec![0; mask_words(n)];
        d.forward_with_mask(Mode::Train, &mut out, &mut mask, &mut rng(seed)).unwrap();
        sources_out.push((out, mask));
        for (out, mask) in sources_out {
            let mask = Mask::new(mask, n).unwrap();
            for (i, (&x, &y)) in xs.iter().zip(&out).enumerate() {
                let kept = mask.get(i).unwrap();
                if p == 0.0 {
                    prop_assert_eq!(y.to_bits(), x.to_bits());
                } else if kept {
                    prop_assert!(same_f32(y, x * d.scale()), "kept {x} became {y}, p = {p}");
                } else {
                    prop_assert_eq!(y.to_bits(), 0, "dropped {} became {}", x, y);
                }
            }
        }
    }

    /// The mask a forward writes, applied again, gives the forward's output:
    /// reuse across time steps and the backward pass are one operation.
    #[test]
    fn forward_with_mask_then_apply_mask_equals_forward(
        xs in prop::collection::vec(any_f32(), 0..scaled(2000, 200)),
        p in probability(),
        seed: u64,
        offset in 0u64..if cfg!(miri) { 64 } else { 1 << 40 },
    ) {
        let d = Dropout::new(p).unwrap();
        let n = xs.len();
        let key = Keyed::new(seed, offset);
        for mode in [Mode::Train, Mode::Eval] {
            let mut forward = xs.clone();
            d.forward(mode, &mut forward, key).unwrap();
            let mut with_mask = xs.clone();
            let mut mask = vec![0; mask_words(n)];
            d.forward_with_mask(mode, &mut with_mask, &mut mask, key).unwrap();
            prop_assert!(same(&forward, &with_mask));
            let mut only_mask = vec![0; mask_words(n)];
            d.fill_mask(mode, n, &mut only_mask, key).unwrap();
            prop_assert_eq!(&only_mask, &mask);
            let mut reapplied = xs.clone();
            d.apply_mask(mode, &mut reapplied, &mask).unwrap();
            prop_assert!(same(&forward, &reapplied));
            // The backward pass: the gradient through the same mask.
            let mut grad = xs.clone();
            d.backward(mode, &mut grad, key).unwrap();
            prop_assert!(same(&grad, &reapplied));

            let mut rng_forward = xs.clone();
            d.forward(mode, &mut rng_forward, &mut rng(seed)).unwrap();
            let mut rng_mask = vec![0; mask_words(n)];
            d.fill_mask(mode, n, &mut rng_mask, &mut rng(seed)).unwrap();
            let mut rng_applied = vec![0.0; n];
            d.apply_mask_to(mode, &xs, &rng_mask, &mut rng_applied).unwrap();
            prop_assert!(same(&rng_forward, &rng_applied));
        }
    }

    /// The masks written have their bits past `len` clear, so the popcount
    /// is the kept count; words past `mask_words(len)` are not touched.
    #[test]
    fn mask_tail_bits_are_clear(len in 0usize..700, p in probability(), seed: u64) {
        let d = Dropout::new(p).unwrap();
        for mode in [Mode::Train, Mode::Eval] {
            let mut words = vec![!0u64; mask_words(len) + 2];
            d.fill_mask(mode, len, &mut words, Keyed::new(seed, 3)).unwrap();
            let (mask, rest) = words.split_at(mask_words(len));
            prop_assert_eq!(rest, &[!0, !0][..]);
            let popcount: u32 = mask.iter().map(|w| w.count_ones()).sum();
            prop_assert_eq!(popcount as usize, Mask::new(mask, len).unwrap().kept_count());
            if let Some(&last) = mask.last() {
                let used = len - 64 * (mask.len() - 1);
                prop_assert_eq!(last >> 1 >> (used - 1), 0);
            }
        }
    }

    /// Invalid probabilities are errors, never panics.
    #[test]
    fn invalid_probabilities_are_rejected(bits: u32) {
        let p = f32::from_bits(bits);
        let valid = (0.0..=1.0).contains(&p);
        match Dropout::new(p) {
            Ok(d) => prop_assert!(valid && d.p().to_bits() == p.to_bits()),
            Err(e) => {
                prop_assert!(!valid);
                let rejected = matches!(e, Error::InvalidProbability { p: q } if q.to_bits() == p.to_bits());
                prop_assert!(rejected, "wrong error {:?}", e);
            }
        }
    }

    /// `D = floor(p * 2^64)` exactly, checked with integer arithmetic on the
    /// bits of p; `s = 1/(1-p)` in f64 rounded once.
    #[test]
    fn threshold_and_scale_are_exact(p in 0.0f32..=1.0) {
        let d = Dropout::new(p).unwrap();
        prop_assert_eq!(d.drop_numerator(), exact_numerator(p));
        let s = (1.0 / (1.0 - f64::from(p))) as f32;
        prop_assert_eq!(d.scale().to_bits(), s.to_bits());
    }
}

/// 2^e exactly (normal range), from its bits: `powi` promises no exactness
/// (Miri even perturbs it).
fn pow2(e: i32) -> f32 {
    f32::from_bits(((127 + e) as u32) << 23)
}

#[test]
fn exact_numerator_at_the_edges() {
    let cases: [(f32, u128); 6] = [
        (0.0, 0),
        (0.5, 1 << 63),
        (1.0, 1 << 64),
        (pow2(-41), 1 << 23),
        (pow2(-64), 1),
        (pow2(-65), 0),
    ];
    for (p, expected) in cases {
        assert_eq!(
            Dropout::new(p).unwrap().drop_numerator(),
            expected,
            "p = {p}"
        );
        assert_eq!(exact_numerator(p), expected, "p = {p}");
    }
    assert_eq!(
        Dropout::new(0.1).unwrap().drop_numerator(),
        0x1999_99A0_0000_0000
    );
    assert_eq!(Dropout::new(1.0).unwrap().scale(), f32::INFINITY);
}

/// A generator whose words give all 64 elements of a group the same
/// uniform number `u`: word `t` is all ones where bit `63 - t` of `u` is 1.
struct SameU {
    u: u64,
    drawn: u32,
}

impl TryRng for SameU {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        unreachable!("bitdrop draws u64 words only")
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let bit = self.u >> (63 - self.drawn % 64) & 1;
        self.drawn += 1;
        Ok(0u64.wrapping_sub(bit))
    }
    fn try_fill_bytes(&mut self, _: &mut [u8]) -> Result<(), Infallible> {
        unreachable!("bitdrop draws u64 words only")
    }
}

/// The comparison is the exact 64-bit `u >= D`: a number one below the
/// threshold is dropped and one at it is kept, for thresholds far below
/// what a 24-bit float compare resolves.
#[test]
fn decisions_are_exact_64_bit_comparisons() {
    let ps = [
        pow2(-41),
        pow2(-30) * 1.5,
        1e-9,
        0.1,
        1.0 / 3.0,
        0.5,
        0.9,
        1.0 - pow2(-24),
    ];
    for p in ps {
        let d = Dropout::new(p).unwrap();
        let threshold = d.drop_numerator() as u64;
        for (u, kept) in [
            (threshold - 1, false),
            (threshold, true),
            (threshold + 1, true),
            (0, false),
            (u64::MAX, true),
        ] {
            let mut xs = [1.0f32; 64];
            let mut generator = SameU { u, drawn: 0 };
            d.forward(Mode::Train, &mut xs, &mut generator).unwrap();
            let expected = if kept { d.scale() } else { 0.0 };
            assert!(
                xs.iter().all(|&x| x == expected),
                "p = {p}, u = {u:#x}: {xs:?}"
            );
            // One word per bit down to the last that decides.
            assert!(generator.drawn <= 64 - threshold.trailing_zeros());
        }
    }
}

/// Every error is detected before the first write: outputs, masks and the
/// caller's generator are untouched; the documented error in the
/// documented order, for every row of the table.
mod errors {
    use super::*;

    proptest! {
        #![proptest_config(config(256))]

        #[test]
        fn errors_change_nothing(
            n in 0usize..scaled(300, 100),
            mismatch: bool,
            short_mask: bool,
            overflow: bool,
            wrong_shape: bool,
            wrong_residual: bool,
            bad_bias: bool,
            p in probability(),
            mode in prop_oneof![Just(Mode::Train), Just(Mode::Eval)],
            seed: u64,
            slack in 0u64..300,
        ) {
            let d = Dropout::new(p).unwrap();
            let shapes = shapes(n);
            let shape = shapes[seed as usize % shapes.len()];
            for op in OPS.iter().filter(|op| !cfg!(miri) || op.under_miri()) {
                // Data of the wrong length for the structured rows' units.
                let mut case = Case::new(d, mode, shape, data(n, seed));
                if wrong_shape && op.level == support::ops::Level::Units {
                    case.xs.push(1.0);
                }
                let len = case.xs.len();
                let count = op.units(&case).count();
                case.out_len = if mismatch { len + 1 + (seed % 3) as usize } else { len };
                // Too short by at least one word, or long enough (maybe longer).
                case.mask_len = Some(if short_mask && count > 0 {
                    mask_words(count) - 1
                } else {
                    mask_words(count) + (seed % 2) as usize
                });
                case.residual = data(len + 2 * usize::from(wrong_residual), seed ^ 1);
                // A row that does not divide the data, or one that does.
                let row = if bad_bias { len + 1 } else { shape.dims()[3] };
                case.bias = (seed % 4 != 0 || bad_bias).then(|| data(row, seed ^ 2));
                // Past 2^64 by at least one unit, or ending at most at 2^64.
                let offset = if overflow && count > 1 {
                    u64::MAX - slack % (count as u64 - 1)
                } else {
                    (u64::MAX - count as u64).wrapping_add(1).saturating_sub(slack)
                };
                contract::check_case(op, &case, Src::Keyed(Keyed::new(seed, offset)));
                if !op.keyed_only() {
                    // A caller RNG cannot overflow.
                    contract::check_case(op, &case, Src::Rng(seed));
                }
            }
        }
    }

    #[test]
    fn errors_describe_themselves() {
        let cases = [
            (
                Dropout::new(f32::NAN).unwrap_err(),
                "drop probability NaN is not in 0.0..=1.0",
            ),
            (
                Dropout::new(0.5)
                    .unwrap()
                    .forward_to(Mode::Train, &[1.0; 3], &mut [0.0; 2], Keyed::new(0, 0))
                    .unwrap_err(),
                "output has 2 elements but the input has 3",
            ),
            (
                Dropout::new(0.5)
                    .unwrap()
                    .fill_mask(Mode::Train, 65, &mut [0; 1], Keyed::new(0, 0))
                    .unwrap_err(),
                "mask buffer has 1 words but 2 are needed",
            ),
            (
                Dropout::new(0.5)
                    .unwrap()
                    .forward(Mode::Train, &mut [0.0; 2], Keyed::new(0, u64::MAX))
                    .unwrap_err(),
                "keyed stream positions 18446744073709551615 + 2 elements run past 2^64",
            ),
        ];
        for (error, message) in cases {
            assert_eq!(error.to_string(), message);
            let _: &dyn core::error::Error = &error;
        }
    }

    /// The last position of the stream, 2^64 - 1, is usable.
    #[test]
    fn the_stream_ends_at_two_to_the_64() {
        let d = Dropout::new(0.5).unwrap();
        let mut xs = [1.0f32; 1];
        assert!(
            d.forward(Mode::Train, &mut xs, Keyed::new(0, u64::MAX))
                .is_ok()
        );
        assert!(
            d.forward(Mode::Train, &mut [0.0_f32; 0], Keyed::new(0, u64::MAX))
                .is_ok()
        );
        let mut xs = [1.0f32; 4097];
        assert!(
            d.forward(Mode::Train, &mut xs, Keyed::new(0, u64::MAX - 4096))
                .is_ok()
        );
        assert!(
            d.forward(Mode::Train, &mut xs, Keyed::new(0, u64::MAX - 4095))
                .is_err()
        );
    }
}
