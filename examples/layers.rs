//! Dropout where models put it, on toy tensors: channel dropout in a CNN,
//! attention-probability dropout shared across heads, the fused
//! bias-dropout-add and DropPath of a transformer block, variational
//! dropout in an RNN, with a key derived per layer and step.
//!
//! Run with `cargo run --release --example layers`.

use bitdrop::{Dropout, Error, Keyed, Mask, Mode, Residual, Units, derive_seed, mask_words};

const SEED: u64 = 2026;
const STEP: u64 = 1;

fn main() -> Result<(), Error> {
    cnn_channels()?;
    attention_shared_across_heads()?;
    transformer_residual()?;
    rnn_variational()?;
    Ok(())
}

/// Dropout2d on a `[N, C, H, W]` feature map: whole channels.
fn cnn_channels() -> Result<(), Error> {
    let (n, c, hw) = (4, 32, 14 * 14);
    let units = Units::channels_first(n, c, hw)?;
    let dropout = Dropout::new(0.2)?.structured(units);
    let mut maps = ramp(units.len());
    let mut mask = vec![0; mask_words(units.count())];
    let key = Keyed::derived(SEED, &[0, STEP], 0);
    dropout.forward_with_mask(Mode::Train, &mut maps, &mut mask, key)?;
    let mask = Mask::new(&mask[..], units.count())?;
    let whole = maps
        .chunks(hw)
        .zip(mask.iter())
        .all(|(channel, kept)| channel.iter().all(|&x| (x != 0.0) == kept));
    println!(
        "CNN [{n}, {c}, 14, 14], p = 0.2: kept {} of {} channels, every channel whole: {whole}",
        mask.kept_count(),
        units.count()
    );
    Ok(())
}

/// Attention probabilities `[B, H, L, S]` with one mask for all heads.
fn attention_shared_across_heads() -> Result<(), Error> {
    let (b, h, l, s) = (2, 8, 16, 16);
    let units = Units::broadcast(&[b, h, l, s], &[1])?;
    let dropout = Dropout::new(0.1)?.structured(units);
    let mut probs = vec![1.0 / s as f32; units.len()];
    dropout.forward(Mode::Train, &mut probs, Keyed::derived(SEED, &[1, STEP], 0))?;
    let head = l * s;
    let same = probs[..head] == probs[head..2 * head];
    let dropped = probs.iter().filter(|&&x| x == 0.0).count();
    println!(
        "attention [{b}, {h}, {l}, {s}], p = 0.1, shared across heads: {} decisions for {} probabilities, {dropped} zeros, heads 0 and 1 equal: {same}",
        units.count(),
        units.len()
    );
    Ok(())
}

/// `h = h + dropout(f(h) + bias)`, then `h = h + drop_path(g(h))`.
fn transformer_residual() -> Result<(), Error> {
    let (tokens, hidden, batch) = (64, 128, 4);
    let mut h = ramp(tokens * hidden);
    let before = h.clone();
    let branch = vec![0.5_f32; tokens * hidden];
    let bias = vec![0.25_f32; hidden];
    let dropout = Dropout::new(0.1)?;
    let key = Keyed::derived(SEED, &[2, STEP], 0);
    let mut mask = vec![0; mask_words(h.len())];
    let io = Residual::IntoResidual {
        x: &branch,
        residual: &mut h,
    };
    dropout.residual_add_with_mask(Mode::Train, io, Some(&bias), &mut mask, key)?;
    let kept = Mask::new(&mask[..], tokens * hidden)?.kept_count();
    let exact = h.iter().zip(&before).enumerate().all(|(i, (&y, &r))| {
        let kept = mask[i / 64] >> (i % 64) & 1 == 1;
        y == r + if kept { 0.75 * dropout.scale() } else { 0.0 }
    });
    println!(
        "bias-dropout-add [{tokens}, {hidden}], p = 0.1: kept {kept} of {}, every element r + dropout(x + b) exactly: {exact}",
        tokens * hidden
    );

    // The backward regenerates the mask from the same key.
    let mut grad = vec![1.0_f32; tokens * hidden];
    dropout.backward(Mode::Train, &mut grad, key)?;
    let agrees = grad
        .iter()
        .enumerate()
        .all(|(i, &g)| (g != 0.0) == (mask[i / 64] >> (i % 64) & 1 == 1));
    println!("  its backward, regenerated from the key, agrees with the mask: {agrees}");

    let units = Units::per_sample(batch, tokens * hidden / batch)?;
    let drop_path = Dropout::new(0.5)?.structured(units);
    let before = h.clone();
    let io = Residual::IntoResidual {
        x: &branch,
        residual: &mut h,
    };
    drop_path.residual_add(Mode::Train, io, None, Keyed::derived(SEED, &[3, STEP], 0))?;
    let samples: Vec<&str> = h
        .chunks(units.len() / batch)
        .zip(before.chunks(units.len() / batch))
        .map(|(a, b)| if a == b { "skipped" } else { "added" })
        .collect();
    println!("DropPath over {batch} samples, p = 0.5: branches {samples:?}");
    Ok(())
}

/// Variational dropout: one `[batch, hidden]` mask at every time step.
fn rnn_variational() -> Result<(), Error> {
    let (steps, batch, hidden) = (10, 4, 64);
    let units = Units::time_steps(steps, batch * hidden)?;
    let dropout = Dropout::new(0.3)?.structured(units);
    let mut seq = vec![1.0_f32; units.len()];
    dropout.forward(
        Mode::Train,
        &mut seq,
        Keyed::new(derive_seed(SEED, &[4, STEP]), 0),
    )?;
    let first = &seq[..batch * hidden];
    let locked = seq.chunks(batch * hidden).all(|step| step == first);
    println!(
        "RNN [{steps}, {batch}, {hidden}], p = 0.3: {} of {} units kept, the same mask at all {steps} steps: {locked}",
        first.iter().filter(|&&x| x != 0.0).count(),
        batch * hidden
    );
    let mut eval = vec![1.0_f32; units.len()];
    dropout.forward(Mode::Eval, &mut eval, Keyed::new(0, 0))?;
    println!(
        "  evaluation mode leaves it unchanged: {}",
        eval.iter().all(|&x| x == 1.0)
    );
    Ok(())
}

fn ramp(n: usize) -> Vec<f32> {
    (0..n).map(|i| 1.0 + (i % 97) as f32 / 97.0).collect()
}
