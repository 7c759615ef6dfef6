//! bitdrop without `std` or an allocator: Monte Carlo dropout, as an
//! embedded inference engine runs it to estimate its uncertainty.
//!
//! Everything lives on the stack: the activations, a one-word-per-64 mask,
//! and the statistics. Built for `thumbv7em-none-eabihf` in CI:
//! `cargo build --target thumbv7em-none-eabihf` in this directory.
#![cfg_attr(not(test), no_std)]

use bitdrop::{Dropout, Error, Keyed, Mode, mask_words};

/// Hidden units of the toy model.
pub const HIDDEN: usize = 96;

/// The model's dropout layer, for key derivation.
const HIDDEN_LAYER: u64 = 0;

/// Mean and variance of the model's output over `passes` stochastic passes
/// with dropout `p` on the hidden layer. Pass `t` of a call with `seed` uses
/// the key derived from `(seed, layer, t)` ([`Keyed::derived`]): every
/// (layer, pass) pair gets its own independent mask, no two calls with
/// different seeds share one, and the estimate is reproducible on any
/// target.
pub fn mc_dropout(input: f32, p: f32, seed: u64, passes: u64) -> Result<(f32, f32), Error> {
    let dropout = Dropout::new(p)?;
    let (mut sum, mut sum_sq) = (0.0f32, 0.0f32);
    for pass in 0..passes {
        let mut hidden = hidden_layer(input);
        let mut mask = [0u64; mask_words(HIDDEN)];
        let key = Keyed::derived(seed, &[HIDDEN_LAYER, pass], 0);
        dropout.forward_with_mask(Mode::Train, &mut hidden, &mut mask, key)?;
        let y = output_layer(&hidden);
        sum += y;
        sum_sq += y * y;
    }
    let n = passes.max(1) as f32;
    let mean = sum / n;
    Ok((mean, (sum_sq / n - mean * mean).max(0.0)))
}

/// The deterministic prediction: dropout in evaluation mode is the identity.
pub fn predict(input: f32, p: f32) -> Result<f32, Error> {
    let dropout = Dropout::new(p)?;
    let mut hidden = hidden_layer(input);
    dropout.forward(Mode::Eval, &mut hidden, Keyed::new(0, 0))?;
    Ok(output_layer(&hidden))
}

fn hidden_layer(input: f32) -> [f32; HIDDEN] {
    core::array::from_fn(|j| {
        let w = (j as f32 * 0.37).sin_approx();
        let b = (j as f32 * 0.11).cos_approx() * 0.1;
        (w * input + b).max(0.0)
    })
}

fn output_layer(hidden: &[f32; HIDDEN]) -> f32 {
    hidden
        .iter()
        .enumerate()
        .map(|(j, h)| h * (j as f32 * 0.23).cos_approx() / HIDDEN as f32)
        .sum()
}

/// Rough sine and cosine without `std` or `libm`: weights only need to be
/// fixed, not accurate.
trait Approx {
    fn sin_approx(self) -> f32;
    fn cos_approx(self) -> f32;
}

impl Approx for f32 {
    fn sin_approx(self) -> f32 {
        // Bhaskara's approximation on the argument folded into [0, pi].
        let pi = core::f32::consts::PI;
        let turns = (self / (2.0 * pi)) as i32 as f32;
        let mut x = self - turns * 2.0 * pi;
        let sign = if x > pi {
            x -= pi;
            -1.0
        } else {
            1.0
        };
        sign * 16.0 * x * (pi - x) / (5.0 * pi * pi - 4.0 * x * (pi - x))
    }
    fn cos_approx(self) -> f32 {
        (self + core::f32::consts::FRAC_PI_2).sin_approx()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monte_carlo_mean_approaches_the_prediction() {
        let exact = predict(1.5, 0.2).unwrap();
        let (mean, variance) = mc_dropout(1.5, 0.2, 42, 2000).unwrap();
        assert!(variance > 0.0);
        // Inverted dropout keeps the expectation of each hidden unit.
        let tolerance = 6.0 * (variance / 2000.0).sqrt();
        assert!(
            (mean - exact).abs() < tolerance,
            "{mean} vs {exact} +- {tolerance}"
        );
    }

    #[test]
    fn invalid_probability_is_an_error() {
        assert!(mc_dropout(1.0, 1.5, 42, 10).is_err());
    }

    #[test]
    fn seeds_give_different_estimates_and_the_same_seed_the_same() {
        let a = mc_dropout(1.5, 0.2, 1, 50).unwrap();
        assert_eq!(a, mc_dropout(1.5, 0.2, 1, 50).unwrap());
        assert_ne!(a, mc_dropout(1.5, 0.2, 2, 50).unwrap());
    }
}
