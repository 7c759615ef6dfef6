//! bitdrop-candle's dropout beside candle's own, on the same `f32` CPU
//! tensor, measured interleaved with the repository's harness
//! (`benches/interleave.rs`): each round times every contender once, in a
//! rotating order; the table gives medians and each one's ratio to the
//! first contender, the floor `xs * s` (`xs.affine(s, 0.0)`).
//!
//! `cargo bench` (in `integrations/candle`); `BITDROP_BENCH=quick` runs
//! fewer rounds.

use bitdrop::Keyed;
use candle_core::{Device, Tensor, Var};
use std::cell::Cell;
use std::hint::black_box;

#[path = "../../../benches/interleave.rs"]
mod interleave;
use interleave::{Run, report};

fn main() -> candle_core::Result<()> {
    let quick = std::env::var("BITDROP_BENCH").is_ok_and(|v| v == "quick");
    let rounds = if quick { 5 } else { 11 };
    println!("| case | elements | contender | G elements/s | ratio to `xs.affine(s, 0)` |");
    println!("|---|---|---|---|---|");
    for n in [256 << 10, 16 << 20] {
        // Activations of ordinary size, in [-2, 2).
        let values: Vec<f32> = (0..n)
            .map(|i| ((i * 7919) % 1000) as f32 / 250.0 - 2.0)
            .collect();
        let xs = Tensor::from_vec(values, n, &Device::Cpu)?;
        let var = Var::from_tensor(&xs)?;
        for p in [0.1_f32, 0.5] {
            let s = 1.0 / (1.0 - f64::from(p));
            // A new key per call, as training would use.
            let call = Cell::new(0_u64);
            let key = || {
                call.set(call.get() + 1);
                Keyed::new(call.get(), 0)
            };
            let mut contenders: Vec<(&str, Run<'_>)> = vec![
                (
                    "floor `xs.affine(s, 0)`",
                    Box::new(|| {
                        black_box(xs.affine(s, 0.0).unwrap());
                    }),
                ),
                (
                    "`candle_nn::ops::dropout`",
                    Box::new(|| {
                        black_box(candle_nn::ops::dropout(&xs, p).unwrap());
                    }),
                ),
                (
                    "`bitdrop_candle::dropout`",
                    Box::new(|| {
                        black_box(bitdrop_candle::dropout(&xs, p, key()).unwrap());
                    }),
                ),
                (
                    "candle forward + backward",
                    Box::new(|| {
                        let ys = candle_nn::ops::dropout(&var, p).unwrap();
                        black_box(ys.backward().unwrap());
                    }),
                ),
                (
                    "bitdrop forward + backward",
                    Box::new(|| {
                        let ys = bitdrop_candle::dropout(&var, p, key()).unwrap();
                        black_box(ys.backward().unwrap());
                    }),
                ),
            ];
            report(&format!("p = {p}"), n, &mut contenders, rounds);
        }
    }
    Ok(())
}
