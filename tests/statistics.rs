//! Statistical checks: fixed seeds, bounds of 6 standard deviations (never
//! flaky, since every run draws the same numbers, yet tight enough to catch
//! a bias of a fraction of a percent where the sample is large).

mod common;
mod support;

use bitdrop::{Dropout, Keyed, Mask, Mode, mask_words};
use common::config;
use proptest::prelude::*;
use support::{rng, scaled};

const BOUND: f64 = 6.0;

/// The exact keep probability `1 - D / 2^64`.
fn keep_probability(d: &Dropout) -> f64 {
    1.0 - d.drop_numerator() as f64 / 2f64.powi(64)
}

/// `observed` is within BOUND standard deviations of `expected`.
fn assert_close(observed: f64, expected: f64, variance: f64, what: &str) {
    let z = (observed - expected) / variance.sqrt();
    assert!(
        z.abs() < BOUND,
        "{what}: observed {observed}, expected {expected}, z = {z:.2}"
    );
}

fn keyed_words(d: &Dropout, seed: u64, offset: u64, len: usize) -> Vec<u64> {
    let mut words = vec![0; mask_words(len)];
    d.fill_mask(Mode::Train, len, &mut words, Keyed::new(seed, offset))
        .unwrap();
    words
}

fn rng_words(d: &Dropout, seed: u64, len: usize) -> Vec<u64> {
    let mut words = vec![0; mask_words(len)];
    d.fill_mask(Mode::Train, len, &mut words, &mut rng(seed))
        .unwrap();
    words
}

fn popcount(words: &[u64]) -> u64 {
    words.iter().map(|w| u64::from(w.count_ones())).sum()
}

/// The kept count over 2^27 decisions is Binomial(n, 1 - p), for p down to
/// 2^-20 and up to 1 - 2^-20, from both sources.
#[test]
fn kept_count_is_binomial_in_mean() {
    let n: usize = scaled(1 << 27, 1 << 13);
    let ps: &[f32] = if cfg!(miri) {
        &[0.1, 0.5, 0.9]
    } else {
        &[
            9.536_743e-7,
            0.1,
            0.25,
            1.0 / 3.0,
            0.5,
            0.75,
            0.9,
            0.999_999,
        ]
    };
    for &p in ps {
        let d = Dropout::new(p).unwrap();
        let q = keep_probability(&d);
        let variance = n as f64 * q * (1.0 - q);
        for (source, words) in [
            ("keyed", keyed_words(&d, 1, 0, n)),
            ("rng", rng_words(&d, 1, n)),
        ] {
            assert_close(
                popcount(&words) as f64,
                n as f64 * q,
                variance,
                &format!("{source} p={p}"),
            );
        }
    }
}

/// Kept counts of 4096 independent calls of 1024 elements have the
/// binomial's variance (correlated decisions would inflate it) and its
/// shape (chi-square over bins).
#[test]
fn kept_count_is_binomial_in_spread() {
    let (calls, n) = (scaled(4096, 16), scaled(1024, 64));
    for p in [0.1f32, 0.5, 0.9] {
        let d = Dropout::new(p).unwrap();
        let q = keep_probability(&d);
        for source in ["keyed", "rng"] {
            let counts: Vec<f64> = (0..calls)
                .map(|call| {
                    let words = match source {
                        "keyed" => keyed_words(&d, call as u64, 0, n),
                        _ => rng_words(&d, call as u64, n),
                    };
                    popcount(&words) as f64
                })
                .collect();
            let mean = counts.iter().sum::<f64>() / calls as f64;
            let var = counts.iter().map(|c| (c - mean).powi(2)).sum::<f64>() / (calls - 1) as f64;
            let binomial_var = n as f64 * q * (1.0 - q);
            // The sample variance of m normal draws has sd sqrt(2/(m-1)) * var.
            let sd_of_var = binomial_var * (2.0 / (calls - 1) as f64).sqrt();
            assert_close(
                var,
                binomial_var,
                sd_of_var.powi(2),
                &format!("{source} variance p={p}"),
            );
            let chi2 = chi_square_against_binomial(&counts, n, q);
            // (statistic, degrees of freedom)
            let (stat, dof) = chi2;
            assert!(
                stat < dof + BOUND * (2.0 * dof).sqrt() + 10.0,
                "{source} p={p}: chi2 {stat:.1} on {dof} dof"
            );
        }
    }
}

/// Pearson's chi-square of observed counts against Binomial(n, q), with the
/// bins pooled until each expects at least 20 observations.
fn chi_square_against_binomial(counts: &[f64], n: usize, q: f64) -> (f64, f64) {
    let m = counts.len() as f64;
    // Binomial pmf by recurrence in log space.
    let ln_pmf = |k: usize| {
        let ln_choose = (1..=k)
            .map(|i| ((n - k + i) as f64 / i as f64).ln())
            .sum::<f64>();
        ln_choose + k as f64 * q.ln() + (n - k) as f64 * (1.0 - q).ln()
    };
    let mut observed = vec![0.0; n + 1];
    for &c in counts {
        observed[c as usize] += 1.0;
    }
    let (mut stat, mut bins) = (0.0, 0.0);
    let (mut expected_bin, mut observed_bin) = (0.0, 0.0);
    for (k, &seen) in observed.iter().enumerate() {
        expected_bin += m * ln_pmf(k).exp();
        observed_bin += seen;
        if expected_bin >= 20.0 || k == n {
            stat += (observed_bin - expected_bin).powi(2) / expected_bin.max(1e-9);
            bins += 1.0;
            expected_bin = 0.0;
            observed_bin = 0.0;
        }
    }
    (stat, bins - 1.0)
}

/// No bit position of a word (0..63), no generator lane of the keyed stream
/// (0..7), and no word of a block (0..63) is favoured. Bit positions cover
/// the f32 SIMD lanes too (element i sits in lane i % 8 of an f32x8).
#[test]
fn no_position_or_lane_is_favoured() {
    let n: usize = scaled(1 << 26, 1 << 13);
    for p in [0.1f32, 0.5, 0.9] {
        let d = Dropout::new(p).unwrap();
        let q = keep_probability(&d);
        for (source, words) in [
            ("keyed", keyed_words(&d, 7, 0, n)),
            ("rng", rng_words(&d, 7, n)),
        ] {
            let mut by_bit = [0u64; 64];
            let mut by_lane = [0u64; 8];
            let mut by_word = [0u64; 64];
            for (i, &w) in words.iter().enumerate() {
                for (b, count) in by_bit.iter_mut().enumerate() {
                    *count += w >> b & 1;
                }
                by_lane[i % 8] += u64::from(w.count_ones());
                by_word[i % 64] += u64::from(w.count_ones());
            }
            let classes: [(&str, &[u64]); 3] = [
                ("bit", &by_bit),
                ("lane", &by_lane),
                ("word of block", &by_word),
            ];
            for (what, counts) in classes {
                let trials = n as f64 / counts.len() as f64;
                let variance = trials * q * (1.0 - q);
                let mut chi2 = 0.0;
                for (c, &count) in counts.iter().enumerate() {
                    let what = format!("{source} p={p} {what} {c}");
                    assert_close(count as f64, trials * q, variance, &what);
                    chi2 += (count as f64 - trials * q).powi(2) / variance;
                }
                let dof = counts.len() as f64;
                assert!(
                    chi2 < dof + BOUND * (2.0 * dof).sqrt(),
                    "{source} p={p} {what}: chi2 {chi2:.1}"
                );
            }
        }
    }
}

/// Pairs of decisions are independent: both kept with probability q^2.
fn assert_pairs_independent(a: &[u64], b: &[u64], q: f64, what: &str) {
    let both = a
        .iter()
        .zip(b)
        .map(|(x, y)| u64::from((x & y).count_ones()))
        .sum::<u64>() as f64;
    let pairs = 64.0 * a.len().min(b.len()) as f64;
    let q2 = q * q;
    assert_close(both, pairs * q2, pairs * q2 * (1.0 - q2), what);
}

/// Seeds 0, 1, 2, ... give independent masks at the same positions.
#[test]
fn consecutive_seeds_are_independent() {
    let n = scaled(1 << 20, 1 << 12);
    let seeds = scaled(16, 2) as u64;
    for p in [0.1f32, 0.5, 0.9] {
        let d = Dropout::new(p).unwrap();
        let q = keep_probability(&d);
        let masks: Vec<Vec<u64>> = (0..=seeds)
            .map(|seed| keyed_words(&d, seed, 0, n))
            .collect();
        for seed in 0..seeds as usize {
            let what = format!("p={p} seeds {seed} and {}", seed + 1);
            assert_pairs_independent(&masks[seed], &masks[seed + 1], q, &what);
        }
        // And seed 0 against all of them, and against a far-away offset.
        for seed in 2..=seeds as usize {
            assert_pairs_independent(
                &masks[0],
                &masks[seed],
                q,
                &format!("p={p} seeds 0 and {seed}"),
            );
        }
    }
}

/// Within one stream, decisions at a fixed distance are independent:
/// neighbouring elements (serial correlation), the same bit of the next
/// word (the next generator lane), of the next batch (the same generator
/// one batch later), and of the next block (fresh generators).
#[test]
fn stream_has_no_serial_correlation() {
    let n = scaled(1 << 24, 1 << 13);
    for p in [0.1f32, 0.5, 0.9] {
        let d = Dropout::new(p).unwrap();
        let q = keep_probability(&d);
        for (source, words) in [
            ("keyed", keyed_words(&d, 3, 0, n)),
            ("rng", rng_words(&d, 3, n)),
        ] {
            // Element i against element i + 1.
            let shifted: Vec<u64> = words.windows(2).map(|w| w[0] >> 1 | w[1] << 63).collect();
            assert_pairs_independent(&words, &shifted, q, &format!("{source} p={p} lag 1"));
            for (lag_words, what) in [(1, "next word"), (8, "next batch"), (64, "next block")] {
                let what = format!("{source} p={p} {what}");
                assert_pairs_independent(&words, &words[lag_words..], q, &what);
            }
        }
    }
}

proptest! {
    #![proptest_config(config(24))]

    /// The output's mean over seeds converges to the input, element by
    /// element: E[out] = q * x * s = x.
    #[test]
    fn output_is_unbiased(
        xs in prop::collection::vec(-100.0f32..100.0, 1..scaled(200, 20)),
        p in 0.01f32..0.95,
        offset in 0u64..if cfg!(miri) { 512 } else { 1 << 40 },
    ) {
        let d = Dropout::new(p).unwrap();
        let seeds = scaled(2000, 12) as u64;
        for source in ["keyed", "rng"] {
            let mut sums = vec![0.0f64; xs.len()];
            for seed in 0..seeds {
                let mut ys = xs.clone();
                match source {
                    "keyed" => d.forward(Mode::Train, &mut ys, Keyed::new(seed, offset)).unwrap(),
                    _ => d.forward(Mode::Train, &mut ys, &mut rng(seed)).unwrap(),
                }
                for (sum, y) in sums.iter_mut().zip(ys) {
                    *sum += f64::from(y);
                }
            }
            let q = keep_probability(&d);
            let s = f64::from(d.scale());
            for (&x, sum) in xs.iter().zip(sums) {
                let x = f64::from(x);
                let mean = sum / seeds as f64;
                // Var(out) = q (1 - q) (x s)^2; the mean's sd is sqrt(that / N).
                let sd = ((q * (1.0 - q)).sqrt() * (x * s).abs()) / (seeds as f64).sqrt();
                // s and x * s each round once: a relative 2^-23 at most.
                let rounding = x.abs() * 2f64.powi(-22);
                prop_assert!((mean - x).abs() <= BOUND * sd + rounding, "{source} x={x} mean={mean} sd={sd} p={p}");
            }
        }
    }
}

/// The mask's popcount equals the kept count of the data, through `Mask`.
#[test]
fn mask_kept_count_matches_outputs() {
    let d = Dropout::new(0.3).unwrap();
    let mut xs = vec![1.0f32; scaled(12_345, 1_234)];
    let mut words = vec![0; mask_words(xs.len())];
    d.forward_with_mask(Mode::Train, &mut xs, &mut words, Keyed::new(1, 1))
        .unwrap();
    let mask = Mask::new(&words[..], xs.len()).unwrap();
    assert_eq!(mask.kept_count(), xs.iter().filter(|&&x| x != 0.0).count());
}
