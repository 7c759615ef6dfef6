//! Trains a small MLP (2 -> 32 -> 32 -> 2, relu, bitdrop dropout p = 0.1
//! after each hidden layer) on two interleaved spirals with AdamW, and
//! prints the loss curve and the final accuracy.
//!
//! ```sh
//! cargo run --release --example mlp
//! ```

#[path = "../tests/support/mlp.rs"]
mod mlp;

fn main() -> candle_core::Result<()> {
    let config = mlp::Config::default();
    println!(
        "two spirals, {} points; MLP 2 -> {h} -> {h} -> 2, dropout p = {} after each hidden layer; AdamW lr = {}, {} full-batch steps",
        2 * config.points_per_class,
        config.p,
        config.lr,
        config.steps,
        h = config.hidden,
    );
    let outcome = mlp::train(&config, |step, loss| {
        if step % 10 == 0 || step + 1 == config.steps {
            println!("step {step:>4}: loss {loss:.4}");
        }
    })?;
    let mean = |losses: &[f32]| losses.iter().sum::<f32>() / losses.len() as f32;
    let n = outcome.losses.len().min(10);
    println!(
        "mean loss of the first {n} steps {:.4}, of the last {n} {:.4}",
        mean(&outcome.losses[..n]),
        mean(&outcome.losses[outcome.losses.len() - n..])
    );
    println!(
        "accuracy on the training points, dropout off: {:.1}%",
        100.0 * outcome.accuracy
    );
    Ok(())
}
