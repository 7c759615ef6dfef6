//! Gaussian dropout and Gaussian noise: multiplicative and additive normal
//! noise, with variates from "normal stream v1" (Box-Muller on `libm`).

use crate::inverted::Data;
use crate::key::derive_seed;
use crate::math::{log, sincos, sqrt};
use crate::source::sealed::{NextWord, Raw};
use crate::source::{Keyed, Randomness};
use crate::stream::{GAMMA, mix};
use crate::{Element, Error, Mode};

/// The path element that separates the normal stream of a seed from its
/// mask stream: "normalv1" in ASCII.
pub(crate) const NORMAL_DOMAIN: u64 = 0x6E6F_726D_616C_7631;

/// `2^-53`: a 53-bit integer times this is a uniform number in `[0, 1)`.
const EPSILON: f64 = 1.0 / 9_007_199_254_740_992.0;

/// The normal variates of one pair of positions from its two words:
/// Box-Muller, `u1` in `(0, 1]` so that the logarithm is finite.
#[inline(always)]
pub(crate) fn box_muller(w0: u64, w1: u64) -> [f64; 2] {
    let u1 = ((w0 >> 11) + 1) as f64 * EPSILON;
    let u2 = (w1 >> 11) as f64 * EPSILON;
    let r = sqrt(-2.0 * log(u1));
    let (sin, cos) = sincos(core::f64::consts::TAU * u2);
    [r * cos, r * sin]
}

/// How one element is perturbed by its variate `z`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Noise {
    /// `x * g`, `g = 1 + sigma z` rounded to `f32`.
    Multiply(f64),
    /// `x + n`, `n = sigma z` rounded to `f32`.
    Add(f64),
}

impl Noise {
    /// Element `x` with variate `z`.
    #[inline(always)]
    pub(crate) fn apply<E: Element>(self, x: E, z: f64) -> E {
        match self {
            Noise::Multiply(sigma) => x.scaled((1.0 + sigma * z) as f32),
            Noise::Add(sigma) => x.plus(E::from_f32_rounded((sigma * z) as f32)),
        }
    }
}

/// What a call does once mode and parameters are known.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum NoisePlan {
    /// Evaluation mode, or no noise: the identity, nothing drawn.
    Identity,
    /// Gaussian dropout at `p == 1`: every element `+0.0`, nothing drawn.
    Zero,
    Random(Noise),
}

/// Every noise call: the checks, then one pass, the variates of each pair
/// of positions computed once.
pub(crate) fn run_noise<E: Element>(
    plan: NoisePlan,
    mut data: Data<'_, E>,
    source: impl Randomness,
) -> Result<(), Error> {
    let len = data.len();
    source.check(len)?;
    let noise = match plan {
        NoisePlan::Identity => {
            data.pass();
            return Ok(());
        }
        NoisePlan::Zero => {
            for i in 0..len {
                data.set(i, |_| E::ZERO);
            }
            return Ok(());
        }
        NoisePlan::Random(noise) => noise,
    };
    match source.raw() {
        Raw::Rng(mut rng) => {
            for pair in 0..len.div_ceil(2) {
                let w0 = rng.next_word();
                let z = box_muller(w0, rng.next_word());
                for (j, &z) in z.iter().enumerate().take(len - 2 * pair) {
                    data.set(2 * pair + j, |x| noise.apply(x, z));
                }
            }
        }
        Raw::Keyed(key) => {
            let s = derive_seed(key.seed(), &[NORMAL_DOMAIN]);
            // Word i of SplitMix64(s); position q takes pair q / 2.
            let word = |i: u64| mix(s.wrapping_add(i.wrapping_add(1).wrapping_mul(GAMMA)));
            let first = key.offset();
            let mut i = 0;
            while i < len {
                let q = first + i as u64;
                let z = box_muller(word(q & !1), word(q | 1));
                let from = (q & 1) as usize;
                for (j, &z) in z.iter().enumerate().skip(from).take(len - i) {
                    data.set(i + j - from, |x| noise.apply(x, z));
                }
                i += 2 - from;
            }
        }
    }
    Ok(())
}

/// Gaussian dropout (Keras `GaussianDropout`): every element multiplied by
/// its own `g ~ N(1, p / (1 - p))` in training, the identity in evaluation.
/// The expectation of the output is the input, as with inverted dropout,
/// and so is its variance ratio: `p / (1 - p)`.
///
/// ```text
/// sigma = sqrt(p / (1 - p))          in f64, once per configuration
/// g     = 1 + sigma * z              in f64 (a multiply, then an add), rounded to f32
/// y     = x * g                      one f32 multiply
/// ```
///
/// `z` is the element's standard normal variate from "normal stream v1"
/// (see the [crate docs](crate#normal-stream-v1)), from a [`Keyed`]
/// position or a caller RNG. For `bf16` and `f16` elements `x * g` is the
/// exact product rounded once to the type, as in [`Dropout`](crate::Dropout).
/// In [`Mode::Eval`] and at `p == 0` every operation is the identity, bit
/// for bit, with nothing drawn; at `p == 1`, where Keras's variance is
/// infinite, every output is `+0.0` and nothing is drawn (as dropout's
/// `p == 1`).
///
/// ```
/// use bitdrop::{GaussianDropout, Keyed, Mode};
///
/// let noise = GaussianDropout::new(0.5)?;
/// assert_eq!(noise.std_dev(), 1.0);
/// let mut xs = vec![1.0_f32; 10_000];
/// noise.forward(Mode::Train, &mut xs, Keyed::new(1, 0))?;
/// // The mean stays 1: within 5 standard errors (1 / sqrt(10_000) each).
/// let mean = xs.iter().sum::<f32>() / 1e4;
/// assert!((mean - 1.0).abs() < 0.05);
/// # Ok::<(), bitdrop::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GaussianDropout {
    p: f32,
    sigma: f64,
}

impl GaussianDropout {
    /// Gaussian dropout with rate `p`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidProbability`] unless `0.0 <= p <= 1.0`.
    pub fn new(p: f32) -> Result<Self, Error> {
        if !(0.0..=1.0).contains(&p) {
            return Err(Error::InvalidProbability { p });
        }
        let p64 = f64::from(p);
        Ok(GaussianDropout {
            p,
            sigma: sqrt(p64 / (1.0 - p64)),
        })
    }

    /// The rate `p`.
    pub const fn p(&self) -> f32 {
        self.p
    }

    /// `sqrt(p / (1 - p))`, the standard deviation of `g` (infinite at
    /// `p == 1`, where it is not used).
    pub const fn std_dev(&self) -> f64 {
        self.sigma
    }

    /// What a call in `mode` does.
    pub(crate) fn plan(&self, mode: Mode) -> NoisePlan {
        match (mode, self.p) {
            (Mode::Eval, _) | (_, 0.0) => NoisePlan::Identity,
            (_, 1.0) => NoisePlan::Zero,
            _ => NoisePlan::Random(Noise::Multiply(self.sigma)),
        }
    }

    /// Gaussian dropout in place.
    ///
    /// # Errors
    ///
    /// [`Error::PositionOverflow`] if `source` is a [`Keyed`] position with
    /// `offset + xs.len() > 2^64`.
    pub fn forward<E: Element>(
        &self,
        mode: Mode,
        xs: &mut [E],
        source: impl Randomness,
    ) -> Result<(), Error> {
        run_noise(self.plan(mode), Data::InPlace(xs), source)
    }

    /// Gaussian dropout from `xs` into `out`.
    ///
    /// # Errors
    ///
    /// [`Error::LengthMismatch`] if `out.len() != xs.len()`, then as
    /// [`forward`](GaussianDropout::forward).
    pub fn forward_to<E: Element>(
        &self,
        mode: Mode,
        xs: &[E],
        out: &mut [E],
        source: impl Randomness,
    ) -> Result<(), Error> {
        run_noise(self.plan(mode), Data::copy(xs, out)?, source)
    }

    /// The backward pass in place: the gradient times the same `g`,
    /// regenerated from `key` (the same computation as
    /// [`forward`](GaussianDropout::forward) on the gradient).
    ///
    /// # Errors
    ///
    /// As [`forward`](GaussianDropout::forward).
    ///
    /// ```
    /// use bitdrop::{GaussianDropout, Keyed, Mode};
    ///
    /// let noise = GaussianDropout::new(0.1)?;
    /// let key = Keyed::new(3, 100);
    /// let mut ys = [2.0_f32; 50];
    /// noise.forward(Mode::Train, &mut ys, key)?;
    /// let mut grad = [2.0_f32; 50];
    /// noise.backward(Mode::Train, &mut grad, key)?;
    /// assert_eq!(grad, ys);
    /// # Ok::<(), bitdrop::Error>(())
    /// ```
    pub fn backward<E: Element>(
        &self,
        mode: Mode,
        grad: &mut [E],
        key: Keyed,
    ) -> Result<(), Error> {
        self.forward(mode, grad, key)
    }

    /// The backward pass from `grad` into `out`.
    ///
    /// # Errors
    ///
    /// As [`forward_to`](GaussianDropout::forward_to).
    pub fn backward_to<E: Element>(
        &self,
        mode: Mode,
        grad: &[E],
        out: &mut [E],
        key: Keyed,
    ) -> Result<(), Error> {
        self.forward_to(mode, grad, out, key)
    }
}

/// Gaussian noise (Keras `GaussianNoise`): `x + n`, `n ~ N(0, std_dev^2)`,
/// in training; the identity in evaluation.
///
/// ```text
/// n = std_dev * z        in f64 (std_dev widened exactly), rounded to f32
/// y = x + n              one f32 addition
/// ```
///
/// `z` as for [`GaussianDropout`] (normal stream v1). For `bf16` and `f16`
/// elements `n` is rounded to the type, then the sum rounded once. In
/// [`Mode::Eval`] and with `std_dev == 0` every operation is the identity,
/// bit for bit, with nothing drawn. The gradient of `x` is the output
/// gradient itself: there is no backward call to make.
///
/// ```
/// use bitdrop::{GaussianNoise, Keyed, Mode};
///
/// let noise = GaussianNoise::new(0.1)?;
/// let mut xs = vec![5.0_f32; 1000];
/// noise.forward(Mode::Train, &mut xs, Keyed::new(8, 0))?;
/// assert!(xs.iter().all(|&x| (x - 5.0).abs() < 0.7));
/// # Ok::<(), bitdrop::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GaussianNoise {
    std_dev: f32,
}

impl GaussianNoise {
    /// Additive noise of standard deviation `std_dev`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidStdDev`] unless `std_dev` is finite and `>= 0`.
    pub fn new(std_dev: f32) -> Result<Self, Error> {
        if !(std_dev.is_finite() && std_dev >= 0.0) {
            return Err(Error::InvalidStdDev { std_dev });
        }
        Ok(GaussianNoise { std_dev })
    }

    /// The standard deviation.
    pub const fn std_dev(&self) -> f32 {
        self.std_dev
    }

    /// What a call in `mode` does.
    pub(crate) fn plan(&self, mode: Mode) -> NoisePlan {
        match (mode, self.std_dev) {
            (Mode::Eval, _) | (_, 0.0) => NoisePlan::Identity,
            (_, sigma) => NoisePlan::Random(Noise::Add(f64::from(sigma))),
        }
    }

    /// Gaussian noise in place.
    ///
    /// # Errors
    ///
    /// [`Error::PositionOverflow`] if `source` is a [`Keyed`] position with
    /// `offset + xs.len() > 2^64`.
    pub fn forward<E: Element>(
        &self,
        mode: Mode,
        xs: &mut [E],
        source: impl Randomness,
    ) -> Result<(), Error> {
        run_noise(self.plan(mode), Data::InPlace(xs), source)
    }

    /// Gaussian noise from `xs` into `out`.
    ///
    /// # Errors
    ///
    /// [`Error::LengthMismatch`] if `out.len() != xs.len()`, then as
    /// [`forward`](GaussianNoise::forward).
    pub fn forward_to<E: Element>(
        &self,
        mode: Mode,
        xs: &[E],
        out: &mut [E],
        source: impl Randomness,
    ) -> Result<(), Error> {
        run_noise(self.plan(mode), Data::copy(xs, out)?, source)
    }
}
