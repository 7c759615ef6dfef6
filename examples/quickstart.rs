//! Dropout on the activations of a small dense layer: what it keeps, what it
//! costs, and what evaluation mode does.
//!
//! Run with `cargo run --release --example quickstart`.

use bitdrop::{Dropout, Keyed, Mask, Mode, mask_words};
use rand_xoshiro::Xoshiro256PlusPlus;
use rand_xoshiro::rand_core::{Rng, SeedableRng};
use std::hint::black_box;
use std::time::Instant;

const BATCH: usize = 256;
const INPUTS: usize = 128;
const OUTPUTS: usize = 4096;
const P: f32 = 0.1;

fn main() -> Result<(), bitdrop::Error> {
    let activations = dense_relu_layer();
    let n = activations.len();
    let dropout = Dropout::new(P)?;
    println!("activations: {BATCH} x {OUTPUTS} = {n} f32 from ReLU(x W + b), p = {P}");

    // Training: drop, scale, and keep the mask for the backward pass.
    let mut trained = activations.clone();
    let mut words = vec![0u64; mask_words(n)];
    let key = Keyed::new(2026, 0);
    dropout.forward_with_mask(Mode::Train, &mut trained, &mut words, key)?;
    let mask = Mask::new(&words[..], n)?;
    let kept = mask.kept_count();
    println!(
        "kept {kept} of {n}: {:.5} against 1 - p = {:.5}, scale {}",
        kept as f64 / n as f64,
        1.0 - P,
        dropout.scale()
    );
    println!(
        "mean before {:.6}, after {:.6} (inverted dropout keeps the expectation)",
        mean(&activations),
        mean(&trained)
    );
    let bit_bytes = core::mem::size_of_val(mask.words());
    println!(
        "mask: {bit_bytes} bytes as bits, against {} as a byte mask and {} as an f32 mask",
        n,
        n * 4
    );

    // The backward pass regenerates the same mask from the key: zero bytes.
    let mut grad = vec![1.0f32; n];
    dropout.backward(Mode::Train, &mut grad, key)?;
    let agree = grad.iter().zip(mask.iter()).all(|(&g, k)| (g != 0.0) == k);
    println!("backward regenerated from the key agrees with the stored mask: {agree}");

    // Inference: the identity, bit for bit, whatever p is.
    let mut inferred = activations.clone();
    dropout.forward(Mode::Eval, &mut inferred, key)?;
    let identical = inferred
        .iter()
        .zip(&activations)
        .all(|(a, b)| a.to_bits() == b.to_bits());
    println!("evaluation mode leaves all {n} activations bit-identical: {identical}");

    // Throughput against the floor `x *= s` on the same buffer.
    let mut buffer = activations.clone();
    let scale = dropout.scale();
    let floor = best_seconds(|| {
        for x in black_box(&mut buffer).iter_mut() {
            *x *= scale;
        }
    });
    let mut seed = 0;
    let forward = best_seconds(|| {
        seed += 1;
        let _ = dropout.forward(Mode::Train, black_box(&mut buffer), Keyed::new(seed, 0));
    });
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
    let with_rng = best_seconds(|| {
        let _ = dropout.forward(Mode::Train, black_box(&mut buffer), &mut rng);
    });
    let rate = |seconds: f64| n as f64 / seconds / 1e9;
    println!(
        "throughput on {n} elements: x *= s {:.2} G/s; forward keyed {:.2} G/s ({:.2} of the floor), with a caller RNG {:.2} G/s",
        rate(floor),
        rate(forward),
        floor / forward,
        rate(with_rng)
    );
    println!("(quick timing of one run; `cargo bench` measures properly)");
    Ok(())
}

/// `ReLU(x W + b)` for Gaussian inputs and Glorot-scaled Gaussian weights.
fn dense_relu_layer() -> Vec<f32> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(42);
    let mut gaussian = move || {
        // Box-Muller from two uniforms in (0, 1].
        let u = |r: u64| ((r >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
        let (a, b) = (u(rng.next_u64()), u(rng.next_u64()));
        ((-2.0 * a.ln()).sqrt() * (2.0 * std::f64::consts::PI * b).cos()) as f32
    };
    let x: Vec<f32> = (0..BATCH * INPUTS).map(|_| gaussian()).collect();
    let limit = (2.0 / (INPUTS + OUTPUTS) as f32).sqrt();
    let w: Vec<f32> = (0..INPUTS * OUTPUTS).map(|_| gaussian() * limit).collect();
    let b: Vec<f32> = (0..OUTPUTS).map(|_| 0.1 * gaussian()).collect();
    let mut h = vec![0.0f32; BATCH * OUTPUTS];
    for (row, x_row) in h.chunks_exact_mut(OUTPUTS).zip(x.chunks_exact(INPUTS)) {
        row.copy_from_slice(&b);
        for (&xi, w_row) in x_row.iter().zip(w.chunks_exact(OUTPUTS)) {
            for (hj, &wij) in row.iter_mut().zip(w_row) {
                *hj += xi * wij;
            }
        }
        for hj in row.iter_mut() {
            *hj = hj.max(0.0);
        }
    }
    h
}

fn mean(xs: &[f32]) -> f64 {
    xs.iter().map(|&x| f64::from(x)).sum::<f64>() / xs.len() as f64
}

/// The best of 20 timings of `f`, in seconds.
fn best_seconds(mut f: impl FnMut()) -> f64 {
    (0..20)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}
