//! Monte Carlo dropout at inference (Gal and Ghahramani, 2016): keep dropout
//! on (`Mode::Train`) when predicting, run the model T times with fresh
//! masks, and read the mean of the outputs as the prediction and their
//! standard deviation as its uncertainty.
//!
//! The model is a 1-D regression MLP, 1 -> 64 -> 64 -> 1 with ReLU, whose
//! fixed weights come from a fixed-seed RNG, "as if trained" on inputs in
//! [-1, 1]. Nothing is trained. The first layer's weights have magnitude 1
//! to 3 and its biases lie in [-1, 1], so hidden pre-activations grow with
//! |x|, and so does what each dropped unit takes away: the spread across
//! passes grows away from the data. Each layer and pass draws its mask from
//! its own key, `Keyed::derived(seed, &[layer, pass], 0)`.
//!
//! Run with `cargo run --release --example mc_dropout`.

use bitdrop::{Dropout, Error, Keyed, Mode};
use rand_xoshiro::Xoshiro256PlusPlus;
use rand_xoshiro::rand_core::{Rng, SeedableRng};

const HIDDEN: usize = 64;
const PASSES: u64 = 200;
const P: f32 = 0.2;
const SEED: u64 = 2016;

/// Fixed weights: `w2` is `[out][in]`, row-major.
struct Mlp {
    w1: Vec<f32>,
    b1: Vec<f32>,
    w2: Vec<f32>,
    b2: Vec<f32>,
    w3: Vec<f32>,
    b3: f32,
}

impl Mlp {
    fn fixed() -> Self {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
        // Uniform in [lo, hi), from the top 24 bits of a word.
        let mut u =
            |lo: f32, hi: f32| lo + (hi - lo) * ((rng.next_u64() >> 40) as f32 / 16_777_216.0);
        let w1 = (0..HIDDEN)
            .map(|_| if u(0.0, 1.0) < 0.5 { -1.0 } else { 1.0 } * u(1.0, 3.0))
            .collect();
        let b1 = (0..HIDDEN).map(|_| u(-1.0, 1.0)).collect();
        // He-uniform: variance 2 / fan_in.
        let limit = (6.0 / HIDDEN as f32).sqrt();
        let w2 = (0..HIDDEN * HIDDEN).map(|_| u(-limit, limit)).collect();
        let b2 = (0..HIDDEN).map(|_| u(-0.1, 0.1)).collect();
        let w3 = (0..HIDDEN).map(|_| u(-0.25, 0.25)).collect();
        Mlp {
            w1,
            b1,
            w2,
            b2,
            w3,
            b3: 0.1,
        }
    }

    /// One pass over a batch of inputs, with dropout after each hidden layer.
    fn forward(
        &self,
        xs: &[f32],
        dropout: &Dropout,
        mode: Mode,
        pass: u64,
    ) -> Result<Vec<f32>, Error> {
        // Layer 0: [batch, HIDDEN], dropped in place.
        let mut h1: Vec<f32> = xs
            .iter()
            .flat_map(|&x| (0..HIDDEN).map(move |j| relu(self.w1[j] * x + self.b1[j])))
            .collect();
        dropout.forward(mode, &mut h1, Keyed::derived(SEED, &[0, pass], 0))?;
        // Layer 1: [batch, HIDDEN], dropped out of place.
        let pre: Vec<f32> = h1
            .chunks(HIDDEN)
            .flat_map(|row| {
                (0..HIDDEN)
                    .map(move |k| relu(self.b2[k] + dot(&self.w2[k * HIDDEN..][..HIDDEN], row)))
            })
            .collect();
        let mut h2 = vec![0.0; pre.len()];
        dropout.forward_to(mode, &pre, &mut h2, Keyed::derived(SEED, &[1, pass], 0))?;
        Ok(h2
            .chunks(HIDDEN)
            .map(|row| self.b3 + dot(&self.w3, row))
            .collect())
    }
}

fn relu(x: f32) -> f32 {
    x.max(0.0)
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(a, b)| a * b).sum()
}

/// Mean and sample standard deviation.
fn mean_std(ys: &[f64]) -> (f64, f64) {
    let n = ys.len() as f64;
    let mean = ys.iter().sum::<f64>() / n;
    let var = ys.iter().map(|y| (y - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}

fn main() -> Result<(), Error> {
    let mlp = Mlp::fixed();
    let dropout = Dropout::new(P)?;
    let xs: Vec<f32> = (-8..=8).map(|i| i as f32 * 0.5).collect();

    // The deterministic net (dropout off), then T passes with dropout on.
    let eval = mlp.forward(&xs, &dropout, Mode::Eval, 0)?;
    let passes = (0..PASSES)
        .map(|pass| mlp.forward(&xs, &dropout, Mode::Train, pass))
        .collect::<Result<Vec<_>, Error>>()?;
    let (mean, std): (Vec<f64>, Vec<f64>) = (0..xs.len())
        .map(|i| mean_std(&passes.iter().map(|ys| f64::from(ys[i])).collect::<Vec<_>>()))
        .unzip();

    println!(
        "MC dropout, p = {P}, T = {PASSES} passes, MLP 1 -> {HIDDEN} -> {HIDDEN} -> 1 (data: x in [-1, 1])"
    );
    println!(
        "{:>6} {:>10} {:>10} {:>8}",
        "x", "eval f(x)", "MC mean", "MC std"
    );
    let max_std = std.iter().copied().fold(0.0, f64::max);
    for (i, &x) in xs.iter().enumerate() {
        let bar = "#".repeat((40.0 * std[i] / max_std).round() as usize);
        let data = if x.abs() <= 1.0 { "data" } else { "    " };
        println!(
            "{x:>6.1} {:>10.3} {:>10.3} {:>8.3}  {data} {bar}",
            eval[i], mean[i], std[i]
        );
    }

    // Average the spread inside the data (|x| <= 1) and at |x| = 4.
    let avg = |pick: fn(f32) -> bool| {
        let picked: Vec<f64> = (0..xs.len())
            .filter(|&i| pick(xs[i]))
            .map(|i| std[i])
            .collect();
        mean_std(&picked).0
    };
    let (inside, far) = (avg(|x| x.abs() <= 1.0), avg(|x| x.abs() == 4.0));
    let at_zero = std[xs.iter().position(|&x| x == 0.0).unwrap_or(0)];
    let ratio = far / inside;
    let verdict = if far > 2.0 * inside && far > 2.0 * at_zero {
        "grows away from the data"
    } else {
        "does NOT grow clearly away from the data"
    };
    println!(
        "std at x = 0: {at_zero:.3}, mean over |x| <= 1: {inside:.3}, at |x| = 4: {far:.3}: \
         the spread at |x| = 4 is {ratio:.1}x the spread inside the data, so the uncertainty {verdict}"
    );
    Ok(())
}
