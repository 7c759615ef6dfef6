//! Alpha dropout and Gaussian dropout and noise: their constants against
//! independent computations, golden vectors, the 16-bit types against the
//! reference, and their statistics at fixed seeds. (Every operation is also
//! a row of the table of operations, or checked by `tests/contract`.)

mod support;

#[cfg(feature = "half")]
use bitdrop::half::{bf16, f16};
use bitdrop::{
    ALPHA_PRIME, AlphaDropout, Dropout, Error, GaussianDropout, GaussianNoise, Keyed, Mode,
    mask_words, reference,
};
use rand_xoshiro::rand_core::Rng;
use support::{rng, same, scaled};

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
        eprintln!(
            "alpha p = {p}: mean {mean:.5} (se {se_mean:.5}), variance {var:.5} (se {se_var:.5})"
        );
        assert!(
            mean.abs() < 5.0 * se_mean,
            "p = {p}: mean {mean} (se {se_mean})"
        );
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
        assert!(
            (dropout_var - 1.0).abs() > 5.0 * se,
            "p = {p}: {dropout_var}"
        );
    }
}

/// The alpha rows of the 16-bit types equal the reference.
#[cfg(feature = "half")]
fn alpha_half_equals_reference<E: bitdrop::Element + PartialEq>(from_bits: impl Fn(u16) -> E) {
    // Under Miri: a tenth of the data, at one p.
    let n = scaled(3000, 300) as u32;
    let xs: Vec<E> = (0..n)
        .map(|i| from_bits((i.wrapping_mul(0x9E37) >> 3) as u16))
        .collect();
    let units = bitdrop::Units::channels_first(3, 10, n as usize / 30).unwrap();
    for p in [0.3_f32, 0.1, 0.5, 1.0].into_iter().take(scaled(4, 1)) {
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
                assert!(
                    a == b || (a.ne(a) && b.ne(b)),
                    "backward at p = {p}: {i}: {:?} {a:?} {b:?}",
                    xs[i]
                );
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

/// Standard normal variates of normal stream v1: Gaussian noise of
/// standard deviation 1 on zeros, positions `offset..offset + n`.
fn variates(n: usize, key: Keyed) -> Vec<f32> {
    let mut zs = vec![0.0_f32; n];
    let noise = GaussianNoise::new(1.0).unwrap();
    noise.forward(Mode::Train, &mut zs, key).unwrap();
    zs
}

/// `P(|Z| > t)` for a standard normal `Z`.
fn two_sided_tail(t: f64) -> f64 {
    libm::erfc(t / std::f64::consts::SQRT_2)
}

/// Gaussian dropout and noise at a few parameters.
fn noises() -> (Vec<GaussianDropout>, Vec<GaussianNoise>) {
    let dropouts = [0.0_f32, 0.1, 0.5, 0.9, 1.0].map(|p| GaussianDropout::new(p).unwrap());
    let noises = [0.0_f32, 0.5, 3.0].map(|s| GaussianNoise::new(s).unwrap());
    (dropouts.to_vec(), noises.to_vec())
}

/// Calls `$op.$method($($arg),*, source)` and the reference's
/// `$reference(&$op, $($arg),*, source)` from the same source (a key, or
/// a fresh caller RNG seeded alike), and asserts equal outputs and equal
/// caller-RNG consumption.
macro_rules! fast_is_reference {
    ($op:expr, $reference:path, $mode:expr, $xs:expr, $src:expr) => {{
        let xs = $xs;
        let mut fast = vec![f32::NAN; xs.len()];
        let mut slow = vec![f32::NAN; xs.len()];
        match $src {
            Ok(key) => {
                $op.forward_to($mode, xs, &mut fast, key).unwrap();
                $reference(&$op, $mode, xs, &mut slow, key).unwrap();
            }
            Err(seed) => {
                let (mut a, mut b) = (rng(seed), rng(seed));
                $op.forward_to($mode, xs, &mut fast, &mut a).unwrap();
                $reference(&$op, $mode, xs, &mut slow, &mut b).unwrap();
                assert_eq!(a, b, "{:?}: caller RNG consumption", $op);
            }
        }
        assert!(same(&fast, &slow), "{:?} on {} elements", $op, xs.len());
        fast
    }};
}

#[test]
fn gaussian_fast_path_is_the_reference() {
    let (dropouts, noises) = noises();
    let xs = support::data(300, 4);
    let lengths = (0..scaled(70, 5)).chain([255, 256, 299].into_iter().take(scaled(3, 0)));
    let offsets = [1, u64::MAX - 300, 0, 2, 4095, u64::MAX - 299];
    for n in lengths {
        for (k, &offset) in offsets.iter().enumerate().take(scaled(6, 2)) {
            for src in [Ok(Keyed::new(k as u64, offset)), Err(k as u64)] {
                for mode in [Mode::Train, Mode::Eval] {
                    for g in &dropouts {
                        let ys = fast_is_reference!(
                            g,
                            reference::gaussian_dropout_forward_to,
                            mode,
                            &xs[..n],
                            src
                        );
                        if mode == Mode::Eval || g.p() == 0.0 {
                            assert!(support::identical(&ys, &xs[..n]), "identity");
                        } else if g.p() == 1.0 {
                            assert!(ys.iter().all(|y| y.to_bits() == 0), "p == 1: +0.0");
                        }
                    }
                    for noise in &noises {
                        let ys = fast_is_reference!(
                            noise,
                            reference::gaussian_noise_forward_to,
                            mode,
                            &xs[..n],
                            src
                        );
                        if mode == Mode::Eval || noise.std_dev() == 0.0 {
                            assert!(support::identical(&ys, &xs[..n]), "identity");
                        }
                    }
                }
            }
        }
    }
}

#[cfg(feature = "half")]
#[test]
fn gaussian_on_bf16_and_f16_equals_the_reference() {
    fn check<E: bitdrop::Element + PartialEq>(from_bits: impl Fn(u16) -> E) {
        let xs: Vec<E> = (0..scaled(1000, 100) as u32)
            .map(|i| from_bits((i.wrapping_mul(0x9E37) >> 3) as u16))
            .collect();
        let key = Keyed::new(5, 3);
        let same = |a: &[E], b: &[E]| a.iter().zip(b).all(|(x, y)| x == y || (x.ne(x) && y.ne(y)));
        let g = GaussianDropout::new(0.3).unwrap();
        let (mut fast, mut slow) = (xs.clone(), xs.clone());
        g.forward(Mode::Train, &mut fast, key).unwrap();
        reference::gaussian_dropout_forward_to(&g, Mode::Train, &xs, &mut slow, key).unwrap();
        assert!(same(&fast, &slow), "gaussian dropout");
        let noise = GaussianNoise::new(0.25).unwrap();
        let mut fast = xs.clone();
        noise.forward(Mode::Train, &mut fast, key).unwrap();
        reference::gaussian_noise_forward_to(&noise, Mode::Train, &xs, &mut slow, key).unwrap();
        assert!(same(&fast, &slow), "gaussian noise");
    }
    check(bf16::from_bits);
    check(f16::from_bits);
}

#[test]
fn gaussian_chunks_equal_one_call() {
    let g = GaussianDropout::new(0.4).unwrap();
    let xs = support::data(1000, 9);
    let key = Keyed::new(77, 12_345);
    let mut whole = xs.clone();
    g.forward(Mode::Train, &mut whole, key).unwrap();
    let mut parts = xs.clone();
    // Cuts at odd and even positions, in reverse order.
    let cuts = [0, 1, 2, 5, 64, 333, 334, 999, 1000];
    for w in cuts.windows(2).rev() {
        let k = key.advanced(w[0] as u64).unwrap();
        g.forward(Mode::Train, &mut parts[w[0]..w[1]], k).unwrap();
    }
    assert!(
        same(&whole, &parts),
        "NaN payloads aside (Miri picks them at random)"
    );
}

#[test]
fn golden_vectors_of_normal_stream_v1() {
    let keyed = variates(7, Keyed::new(2024, 41)).map_bits();
    assert_eq!(keyed, GOLDEN_KEYED, "{keyed:#010X?}");
    let mut zs = [0.0_f32; 5];
    let noise = GaussianNoise::new(1.0).unwrap();
    noise.forward(Mode::Train, &mut zs, &mut rng(2024)).unwrap();
    let drawn = zs.to_vec().map_bits();
    assert_eq!(drawn, GOLDEN_RNG, "{drawn:#010X?}");
    let mut gs = [1.5_f32; 3];
    let g = GaussianDropout::new(0.25).unwrap();
    g.forward(Mode::Train, &mut gs, Keyed::new(1, 0)).unwrap();
    let multiplied = gs.to_vec().map_bits();
    assert_eq!(multiplied, GOLDEN_DROPOUT, "{multiplied:#010X?}");
}

const GOLDEN_KEYED: [u32; 7] = [
    1067071517, 3217413135, 1058207438, 1040574989, 3205943862, 3206928803, 1056521204,
];
const GOLDEN_RNG: [u32; 5] = [3198285443, 1066118627, 3216873310, 1061902602, 1049341607];
const GOLDEN_DROPOUT: [u32; 3] = [1076237338, 1073382788, 1072361876];

trait MapBits {
    fn map_bits(self) -> Vec<u32>;
}

impl MapBits for Vec<f32> {
    fn map_bits(self) -> Vec<u32> {
        self.into_iter().map(f32::to_bits).collect()
    }
}

#[test]
#[cfg_attr(miri, ignore = "statistics: natively only")]
fn normal_variates_have_the_normal_moments_and_distribution() {
    for (name, zs) in [
        ("keyed", variates(1 << 22, Keyed::new(3, 1 << 40))),
        ("caller RNG", {
            let mut zs = vec![0.0_f32; 1 << 22];
            let noise = GaussianNoise::new(1.0).unwrap();
            noise.forward(Mode::Train, &mut zs, &mut rng(3)).unwrap();
            zs
        }),
    ] {
        let (mean, var, se_mean, se_var) = moments(&zs);
        eprintln!("{name}: mean {mean:.5} (se {se_mean:.5}), variance {var:.5} (se {se_var:.5})");
        assert!(mean.abs() < 5.0 * se_mean, "{name}: mean {mean}");
        assert!((var - 1.0).abs() < 5.0 * se_var, "{name}: variance {var}");
        // Kolmogorov-Smirnov against the normal CDF: sqrt(n) D < 1.95 has
        // probability 0.999 for a normal sample (and a fixed seed).
        let mut sorted: Vec<f64> = zs[..1 << 20].iter().map(|&z| f64::from(z)).collect();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len() as f64;
        let d = sorted
            .iter()
            .enumerate()
            .map(|(i, &z)| {
                let cdf = 0.5 * libm::erfc(-z / std::f64::consts::SQRT_2);
                (cdf - i as f64 / n).max((i + 1) as f64 / n - cdf)
            })
            .fold(0.0, f64::max);
        eprintln!("{name}: sqrt(n) D = {:.3} over {n} variates", n.sqrt() * d);
        assert!(n.sqrt() * d < 1.95, "{name}: KS statistic {}", n.sqrt() * d);
    }
}

#[test]
#[cfg_attr(miri, ignore = "statistics: natively only")]
fn normal_variates_have_the_normal_tails() {
    // 2^26 variates: beyond 4 sigma about 4251 expected, beyond 5 about 38.
    let chunk = 1 << 20;
    let chunks = 64;
    let mut beyond = [0u64; 2];
    for c in 0..chunks {
        for z in variates(chunk, Keyed::new(11, (c * chunk) as u64)) {
            beyond[0] += u64::from(z.abs() > 4.0);
            beyond[1] += u64::from(z.abs() > 5.0);
        }
    }
    let n = (chunk * chunks) as f64;
    for (count, t) in beyond.into_iter().zip([4.0, 5.0]) {
        let q = two_sided_tail(t);
        let (expected, sd) = (n * q, (n * q * (1.0 - q)).sqrt());
        eprintln!("beyond {t} sigma: {count} of {n}, expected {expected:.1} +- {sd:.1}");
        assert!(
            (count as f64 - expected).abs() < 5.0 * sd,
            "beyond {t} sigma: {count}, expected {expected:.1} +- {sd:.1}"
        );
    }
}

#[test]
#[cfg_attr(miri, ignore = "statistics: natively only")]
fn gaussian_dropout_multiplies_by_mean_one_and_the_keras_variance() {
    for (p, seed) in [(0.1_f32, 1), (0.5, 2), (0.8, 3)] {
        let g = GaussianDropout::new(p).unwrap();
        let mut gs = vec![1.0_f32; 1 << 21];
        g.forward(Mode::Train, &mut gs, Keyed::new(seed, 0))
            .unwrap();
        let (mean, var, se_mean, se_var) = moments(&gs);
        eprintln!(
            "gaussian dropout p = {p}: g mean {mean:.5} (se {se_mean:.5}), variance {var:.5} (se {se_var:.5})"
        );
        let expected = f64::from(p) / (1.0 - f64::from(p));
        assert!((mean - 1.0).abs() < 5.0 * se_mean, "p = {p}: mean {mean}");
        assert!(
            (var - expected).abs() < 5.0 * se_var,
            "p = {p}: variance {var}"
        );
    }
}

#[test]
fn gaussian_errors_write_nothing_and_draw_nothing() {
    assert_eq!(
        GaussianNoise::new(-1.0),
        Err(Error::InvalidStdDev { std_dev: -1.0 })
    );
    assert!(GaussianNoise::new(f32::NAN).is_err());
    assert!(GaussianNoise::new(f32::INFINITY).is_err());
    assert_eq!(
        GaussianDropout::new(1.5),
        Err(Error::InvalidProbability { p: 1.5 })
    );
    let g = GaussianDropout::new(0.5).unwrap();
    let xs = [1.0_f32; 10];
    let mut out = [7.0_f32; 9];
    let mut r = rng(1);
    assert_eq!(
        g.forward_to(Mode::Train, &xs, &mut out, &mut r),
        Err(Error::LengthMismatch {
            input: 10,
            output: 9
        })
    );
    assert_eq!(out, [7.0; 9]);
    assert_eq!(r, rng(1));
    let mut ys = xs;
    let key = Keyed::new(1, u64::MAX - 8);
    let overflow = Err(Error::PositionOverflow {
        offset: u64::MAX - 8,
        len: 10,
    });
    assert_eq!(g.forward(Mode::Train, &mut ys, key), overflow);
    assert_eq!(g.backward(Mode::Eval, &mut ys, key), overflow);
    let noise = GaussianNoise::new(1.0).unwrap();
    assert_eq!(noise.forward(Mode::Train, &mut ys, key), overflow);
    assert_eq!(ys, xs);
}
