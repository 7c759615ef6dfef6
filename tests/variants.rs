//! Alpha dropout and Gaussian dropout and noise: their constants against
//! independent computations, golden vectors, the 16-bit types against the
//! reference, and their statistics at fixed seeds. (Every operation is also
//! a row of the table of operations, or checked by `tests/contract`.)

mod support;

#[cfg(feature = "half")]
use bitdrop::half::{bf16, f16};
use bitdrop::{
    ALPHA_PRIME, AlphaDropout, Dropout, Keyed, Mode, Units, mask_words, reference,
};
use rand_xoshiro::rand_core::Rng;
use support::rng;

/// Standard normal numbers from a fixed seed, by `std`'s Box-Muller (an
/// independent generator: not the crate's).
fn normals(n: usize, seed: u64) -> Vec<f32> {
    let mut r = rng(seed);
    (0..n)
        .map(|_| {
            let u1 = ((r.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64;
            let u2 = (r.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
            ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
        })
        .collect()
}

/// Sample mean and variance, and the standard errors of both (from the
/// sample's own second and fourth central moments).
fn moments(ys: &[f32]) -> (f64, f64, f64, f64) {
    let n = ys.len() as f64;
    let mean = ys.iter().map(|&y| f64::from(y)).sum::<f64>() / n;
    let central = |k: i32| {
        ys.iter()
            .map(|&y| (f64::from(y) - mean).powi(k))
            .sum::<f64>()
            / n
    };
    let (var, m4) = (central(2), central(4));
    (mean, var, (var / n).sqrt(), ((m4 - var * var) / n).sqrt())
}

#[test]
fn alpha_constants_equal_an_independent_computation() {
    // PyTorch's and Keras's formula, written the other way round: powf in
    // std, the product expanded.
    for p in [0.01_f32, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 0.9, 0.999] {
        let alpha = AlphaDropout::new(p).unwrap();
        let q = f64::from(p);
        let a = ((1.0 - q) * (1.0 + q * ALPHA_PRIME.powi(2))).powf(-0.5);
        let b = -a * ALPHA_PRIME * q;
        assert_eq!(alpha.a(), a as f32, "a at p = {p}");
        assert_eq!(alpha.b(), b as f32, "b at p = {p}");
        let dropped = (ALPHA_PRIME as f32) * (a as f32) + (b as f32);
        assert_eq!(alpha.dropped_value(), dropped, "dropped value at p = {p}");
    }
    // alpha' = -lambda * alpha, SELU's constants.
    let (lambda, alpha) = (1.050_700_987_355_480_4_f64, 1.673_263_242_354_377_2_f64);
    assert!((ALPHA_PRIME + lambda * alpha).abs() < 1e-15);
    // Golden values: the f32 bits at p = 0.1 (PyTorch: a = 0.9212845,
    // b = 0.1619710).
    let alpha = AlphaDropout::new(0.1).unwrap();
    assert_eq!(alpha.a().to_bits(), 0x3F6B_D94D);
    assert_eq!(alpha.b().to_bits(), 0x3E25_DBB8);
    assert_eq!(alpha.dropped_value().to_bits(), 0xBFBA_972E);
    // p == 1: zeros, as in PyTorch.
    assert_eq!(AlphaDropout::new(1.0).unwrap().dropped_value().to_bits(), 0);
}

#[test]
fn alpha_outputs_equal_the_documented_rule_and_dropouts_mask() {
    let xs: Vec<f32> = (0..1000).map(|i| (i as f32 - 500.0) / 37.0).collect();
    for p in [0.05_f32, 0.1, 0.5] {
        let alpha = AlphaDropout::new(p).unwrap();
        let key = Keyed::new(11, 4000);
        let mut ys = vec![0.0; xs.len()];
        let mut mask = vec![0; mask_words(xs.len())];
        alpha
            .forward_to_with_mask(Mode::Train, &xs, &mut ys, &mut mask, key)
            .unwrap();
        let mut dropout_mask = vec![0; mask.len()];
        let d = Dropout::new(p).unwrap();
        d.fill_mask(Mode::Train, xs.len(), &mut dropout_mask, key)
            .unwrap();
        assert_eq!(mask, dropout_mask, "alpha decides as dropout");
        for (i, (&x, &y)) in xs.iter().zip(&ys).enumerate() {
            let expected = if mask[i / 64] >> (i % 64) & 1 == 1 {
                x * alpha.a() + alpha.b()
            } else {
                alpha.dropped_value()
            };
            assert_eq!(y.to_bits(), expected.to_bits(), "element {i} at p = {p}");
        }
    }
}

#[test]
fn golden_vector_of_alpha_dropout() {
    let alpha = AlphaDropout::new(0.25).unwrap();
    let xs: [f32; 8] = [-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0, 3.0];
    let mut ys = xs;
    alpha
        .forward(Mode::Train, &mut ys, Keyed::new(2024, 77))
        .unwrap();
    let bits = ys.map(f32::to_bits);
    assert_eq!(bits, GOLDEN_ALPHA, "{bits:#010X?}");
}

const GOLDEN_ALPHA: [u32; 8] = [
    3214041000, 3214041000, 3214041000, 1052977717, 1062246250, 1067437276, 3214041000, 1077864637,
];

#[test]
#[cfg_attr(miri, ignore = "statistics: natively only")]
fn alpha_keeps_mean_zero_and_variance_one() {
    // For standard normal inputs the output has mean 0 and variance 1
    // (SELU's fixed point); checked at 5 standard errors, which a wrong `a`
    // or `b` (or a dropped value of 0) misses by far.
    let n = 1 << 21;
    let xs = normals(n, 5);
    for (p, seed) in [(0.05_f32, 1), (0.1, 2), (0.3, 3), (0.5, 4)] {
        let alpha = AlphaDropout::new(p).unwrap();
        let mut ys = xs.clone();
        alpha
            .forward(Mode::Train, &mut ys, Keyed::new(seed, 0))
            .unwrap();
        let (mean, var, se_mean, se_var) = moments(&ys);
        assert!(mean.abs() < 5.0 * se_mean, "p = {p}: mean {mean} (se {se_mean})");
        assert!(
            (var - 1.0).abs() < 5.0 * se_var,
            "p = {p}: variance {var} (se {se_var})"
        );
        // Plain dropout on the same inputs does not keep the variance.
        let mut zs = xs.clone();
        Dropout::new(p)
            .unwrap()
            .forward(Mode::Train, &mut zs, Keyed::new(seed, 0))
            .unwrap();
        let (_, dropout_var, _, se) = moments(&zs);
        assert!((dropout_var - 1.0).abs() > 5.0 * se, "p = {p}: {dropout_var}");
    }
}

/// The alpha rows of the 16-bit types equal the reference.
#[cfg(feature = "half")]
fn alpha_half_equals_reference<E: bitdrop::Element + PartialEq>(from_bits: impl Fn(u16) -> E) {
    let xs: Vec<E> = (0..3000u32)
        .map(|i| from_bits((i.wrapping_mul(0x9E37) >> 3) as u16))
        .collect();
    let units = Units::channels_first(3, 10, 100).unwrap();
    for p in [0.1_f32, 0.3, 0.5, 1.0] {
        for alpha in [
            AlphaDropout::new(p).unwrap(),
            AlphaDropout::new(p).unwrap().structured(units),
        ] {
            let key = Keyed::new(9, 123);
            let mut fast = xs.clone();
            let mut slow = xs.clone();
            alpha.forward(Mode::Train, &mut fast, key).unwrap();
            reference::alpha_forward_to(&alpha, Mode::Train, &xs, &mut slow, None, key).unwrap();
            let differ = fast
                .iter()
                .zip(&slow)
                .filter(|(a, b)| a != b && !(a.ne(a) && b.ne(b)))
                .count();
            assert_eq!(differ, 0, "forward at p = {p}");
            let mut fast = xs.clone();
            alpha.backward(Mode::Train, &mut fast, key).unwrap();
            reference::alpha_backward_to(&alpha, Mode::Train, &xs, &mut slow, key).unwrap();
            for (i, (a, b)) in fast.iter().zip(&slow).enumerate() {
                assert!(a == b || (a.ne(a) && b.ne(b)), "backward at p = {p}: {i}: {:?} {a:?} {b:?}", xs[i]);
            }
        }
    }
}

#[cfg(feature = "half")]
#[test]
fn alpha_on_bf16_and_f16_equals_the_reference() {
    alpha_half_equals_reference(bf16::from_bits);
    alpha_half_equals_reference(f16::from_bits);
}
