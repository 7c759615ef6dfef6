//! SPEC section 1: identity, exact keep/drop rules, p == 0 and p == 1,
//! exact probabilities, and the composition of the operations.

mod common;
mod contract;

use bitdrop::{Dropout, Error, Keyed, Mask, Mode, mask_words};
use common::{any_f32, config, identical, probability, rng, same, same_f32, scaled};
use contract::exact_numerator;
use core::convert::Infallible;
use proptest::prelude::*;
use rand_xoshiro::rand_core::TryRng;

/// Runs every data operation on `xs` and returns each output, so that one
/// property can be checked against all of them.
fn all_outputs(
    d: &Dropout,
    mode: Mode,
    xs: &[f32],
    key: Keyed,
    seed: u64,
) -> Vec<(String, Vec<f32>)> {
    let n = xs.len();
    let mut outputs = Vec::new();
    let mut push = |name: &str, v: Vec<f32>| outputs.push((name.to_string(), v));

    let mut v = xs.to_vec();
    d.forward(mode, &mut v, key).unwrap();
    push("forward keyed", v);
    let mut v = xs.to_vec();
    d.forward(mode, &mut v, &mut rng(seed)).unwrap();
    push("forward rng", v);
    let mut v = vec![7.0; n];
    d.forward_to(mode, xs, &mut v, key).unwrap();
    push("forward_to", v);
    let mut v = xs.to_vec();
    let mut mask = vec![0; mask_words(n)];
    d.forward_with_mask(mode, &mut v, &mut mask, key).unwrap();
    push("forward_with_mask", v);
    let mut v = vec![7.0; n];
    d.forward_to_with_mask(mode, xs, &mut v, &mut mask, &mut rng(seed))
        .unwrap();
    push("forward_to_with_mask", v);
    let mut v = xs.to_vec();
    d.apply_mask(mode, &mut v, &mask).unwrap();
    push("apply_mask", v);
    let mut v = vec![7.0; n];
    d.apply_mask_to(mode, xs, &mask, &mut v).unwrap();
    push("apply_mask_to", v);
    let mut v = xs.to_vec();
    d.backward(mode, &mut v, key).unwrap();
    push("backward", v);
    let mut v = vec![7.0; n];
    d.backward_to(mode, xs, &mut v, key).unwrap();
    push("backward_to", v);
    outputs
}

proptest! {
    #![proptest_config(config(256))]

    /// Evaluation mode is the identity for any p, on any bit pattern, and
    /// draws nothing from the caller's generator.
    #[test]
    fn eval_is_identity(xs in prop::collection::vec(any_f32(), 0..scaled(600, 100)), p in probability(), seed: u64) {
        let d = Dropout::new(p).unwrap();
        for (name, out) in all_outputs(&d, Mode::Eval, &xs, Keyed::new(seed, 0), seed) {
            prop_assert!(identical(&out, &xs), "{name} changed bits at p = {p}");
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
            for (name, out) in all_outputs(&d, Mode::Train, &xs, Keyed::new(seed, 0), seed) {
                prop_assert!(identical(&out, &xs), "{name} changed bits at p = {p}");
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
        for (name, out) in all_outputs(&d, Mode::Train, &xs, Keyed::new(seed, 0), seed) {
            prop_assert!(out.iter().all(|y| y.to_bits() == 0), "{name} left a non +0.0");
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
/// caller's generator are untouched.
mod errors {
    use super::*;

    const SENTINEL: f32 = -123.5;

    fn check_untouched(out: &[f32], mask: &[u64]) {
        assert!(out.iter().all(|&y| y == SENTINEL));
        assert!(mask.iter().all(|&w| w == 0xDEAD_BEEF));
    }

    proptest! {
        #![proptest_config(config(256))]

        #[test]
        fn errors_change_nothing(
            n in 0usize..scaled(300, 100),
            mismatch: bool,
            short_mask: bool,
            overflow: bool,
            p in probability(),
            mode in prop_oneof![Just(Mode::Train), Just(Mode::Eval)],
            seed: u64,
            slack in 0u64..300,
        ) {
            let d = Dropout::new(p).unwrap();
            let xs = vec![1.0f32; n];
            let out_len = if mismatch { n + 1 + (seed % 3) as usize } else { n };
            // Too short by at least one word, or long enough (maybe longer).
            let mask_len = if short_mask && n > 0 { mask_words(n) - 1 } else { mask_words(n) + (seed % 2) as usize };
            let short_mask = mask_len < mask_words(n);
            // Past 2^64 by at least one element, or ending at most at 2^64.
            let offset = if overflow && n > 1 { u64::MAX - slack % (n as u64 - 1) } else { (u64::MAX - n as u64).wrapping_add(1).saturating_sub(slack) };
            let overflow = u128::from(offset) + n as u128 > 1 << 64;
            let key = Keyed::new(seed, offset);
            let outputs = || vec![SENTINEL; out_len];
            let inputs = || vec![SENTINEL; n];
            let masks = || vec![0xDEAD_BEEF_u64; mask_len];
            let given = vec![!0u64; mask_len];

            let (mut out, mask) = (outputs(), masks());
            let r = d.forward_to(mode, &xs, &mut out, key);
            prop_assert_eq!(r.is_err(), mismatch || overflow);
            if let Err(e) = r {
                let expected = matches!(e, Error::LengthMismatch { .. } | Error::PositionOverflow { .. });
                prop_assert!(expected, "wrong error {:?}", e);
                check_untouched(&out, &mask);
            }

            let (mut out, mut mask, mut generator) = (outputs(), masks(), rng(seed));
            let r = d.forward_to_with_mask(mode, &xs, &mut out, &mut mask, &mut generator);
            prop_assert_eq!(r.is_err(), mismatch || short_mask);
            if r.is_err() {
                check_untouched(&out, &mask);
                prop_assert_eq!(&generator, &rng(seed));
            }

            let (mut data, mut mask) = (inputs(), masks());
            let r = d.forward_with_mask(mode, &mut data, &mut mask, key);
            prop_assert_eq!(r.is_err(), short_mask || overflow);
            if r.is_err() {
                check_untouched(&data, &mask);
            }

            let (mut data, mut generator) = (inputs(), rng(seed));
            let r = d.forward(mode, &mut data, key);
            prop_assert_eq!(r.is_err(), overflow);
            if r.is_err() {
                check_untouched(&data, &[]);
            }
            let r = d.forward(mode, &mut inputs(), &mut generator);
            prop_assert!(r.is_ok(), "a caller RNG cannot overflow");

            let mut mask = masks();
            let r = d.fill_mask(mode, n, &mut mask, key);
            prop_assert_eq!(r.is_err(), short_mask || overflow);
            if r.is_err() {
                check_untouched(&[], &mask);
            }

            let mut data = inputs();
            let r = d.apply_mask(mode, &mut data, &given);
            prop_assert_eq!(r.is_err(), short_mask);
            if r.is_err() {
                check_untouched(&data, &[]);
            }

            let mut out = outputs();
            let r = d.apply_mask_to(mode, &xs, &given, &mut out);
            prop_assert_eq!(r.is_err(), short_mask || mismatch);
            if r.is_err() {
                check_untouched(&out, &[]);
            }

            let mut data = inputs();
            let r = d.backward(mode, &mut data, key);
            prop_assert_eq!(r.is_err(), overflow);
            if r.is_err() {
                check_untouched(&data, &[]);
            }

            let mut out = outputs();
            let r = d.backward_to(mode, &xs, &mut out, key);
            prop_assert_eq!(r.is_err(), mismatch || overflow);
            if r.is_err() {
                check_untouched(&out, &[]);
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
            d.forward(Mode::Train, &mut [], Keyed::new(0, u64::MAX))
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
