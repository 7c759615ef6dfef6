//! One tensor, four "ranks" (threads standing in for processes), one mask:
//! each rank drops its own shard with the keyed stream at the shard's
//! global positions, and the gathered result equals the unsharded call, bit
//! for bit. Shown for a row split (data or sequence parallelism, where a
//! shard is one contiguous range) and a column split (tensor parallelism,
//! where a shard is one slice of every row).
//!
//! `cargo run --release --example sharded`

use bitdrop::{Dropout, Keyed, Mode, derive_seed};

const RANKS: usize = 4;
const ROWS: usize = 512; // tokens
const HIDDEN: usize = 1024;

fn activations() -> Vec<f32> {
    (0..ROWS * HIDDEN)
        .map(|i| ((i as u64 * 2_654_435_761) % 1000) as f32 / 500.0 - 1.0)
        .collect()
}

fn main() -> Result<(), bitdrop::Error> {
    let dropout = Dropout::new(0.1)?;
    // One seed per layer and step, the same on every rank.
    let seed = derive_seed(2026, &[7, 1234]); // (layer 7, step 1234)

    // The reference: one process holding the whole [ROWS, HIDDEN] tensor.
    let mut whole = activations();
    dropout.forward(Mode::Train, &mut whole, Keyed::new(seed, 0))?;

    // Row split: rank k holds rows k * ROWS / RANKS.., contiguous, and
    // starts at the stream position of its first element.
    let mut rows = activations();
    let shard = rows.len() / RANKS;
    std::thread::scope(|s| {
        let ranks: Vec<_> = rows
            .chunks_mut(shard)
            .enumerate()
            .map(|(rank, part)| {
                s.spawn(move || {
                    let key = Keyed::new(seed, (rank * shard) as u64);
                    dropout.forward(Mode::Train, part, key)
                })
            })
            .collect();
        ranks
            .into_iter()
            .try_for_each(|rank| rank.join().expect("a rank panicked"))
    })?;
    let same_rows = rows
        .iter()
        .zip(&whole)
        .all(|(a, b)| a.to_bits() == b.to_bits());
    println!("row split over {RANKS} ranks: gathered == unsharded: {same_rows}");

    // Column split: rank k holds columns k * HIDDEN / RANKS.. of every row,
    // as its own [ROWS, HIDDEN / RANKS] tensor. Each of its rows is one run
    // of the global tensor, at position row * HIDDEN + first column.
    let cols = HIDDEN / RANKS;
    let input = activations();
    let mut shards: Vec<Vec<f32>> = (0..RANKS)
        .map(|rank| {
            input
                .chunks(HIDDEN)
                .flat_map(|row| row[rank * cols..(rank + 1) * cols].iter().copied())
                .collect()
        })
        .collect();
    std::thread::scope(|s| {
        let ranks: Vec<_> = shards
            .iter_mut()
            .enumerate()
            .map(|(rank, local)| {
                s.spawn(move || {
                    local
                        .chunks_mut(cols)
                        .enumerate()
                        .try_for_each(|(row, run)| {
                            let key = Keyed::new(seed, (row * HIDDEN + rank * cols) as u64);
                            dropout.forward(Mode::Train, run, key)
                        })
                })
            })
            .collect();
        ranks
            .into_iter()
            .try_for_each(|rank| rank.join().expect("a rank panicked"))
    })?;
    let gathered: Vec<f32> = (0..ROWS)
        .flat_map(|row| {
            let shards = &shards;
            (0..RANKS)
                .flat_map(move |rank| shards[rank][row * cols..(row + 1) * cols].iter().copied())
        })
        .collect();
    let same_cols = gathered
        .iter()
        .zip(&whole)
        .all(|(a, b)| a.to_bits() == b.to_bits());
    println!("column split over {RANKS} ranks: gathered == unsharded: {same_cols}");

    let dropped = whole
        .iter()
        .zip(&input)
        .filter(|&(&y, &x)| y == 0.0 && x != 0.0)
        .count();
    let nonzero = input.iter().filter(|&&x| x != 0.0).count();
    println!(
        "dropout p = 0.1 on [{ROWS}, {HIDDEN}]: {dropped} of {nonzero} nonzero activations dropped ({:.2}%), survivors scaled by {}",
        100.0 * dropped as f64 / nonzero as f64,
        dropout.scale()
    );
    assert!(same_rows && same_cols, "a shard drew a different mask");
    Ok(())
}
