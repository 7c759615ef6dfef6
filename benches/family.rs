//! Structured and fused-residual dropout beside their references, measured
//! interleaved in one process: each round times every contender of a case
//! once, in a rotating order, and the table reports medians over the rounds
//! and the ratio of each median throughput to the `x *= s` floor's over the
//! same buffer.
//!
//! `cargo bench --manifest-path benches/Cargo.toml --bench family` (add
//! `RUSTFLAGS="-C target-cpu=native"` for the native build);
//! `BITDROP_BENCH=quick` runs fewer rounds.

use bitdrop::{Dropout, Keyed, Mode, Residual, Units};
use std::hint::black_box;

#[path = "interleave.rs"]
mod interleave;
use interleave::{Run, floor, report};

fn main() {
    let quick = std::env::var("BITDROP_BENCH").is_ok_and(|v| v == "quick");
    let rounds = if quick { 5 } else { 11 };
    let sizes: &[usize] = &[4 << 10, 256 << 10, 16 << 20];
    println!("| case | elements | contender | G elements/s | ratio to x *= s |");
    println!("|---|---|---|---|---|");
    // A fresh key per call, as training draws one per step.
    let seed = std::cell::Cell::new(0u64);
    let key = || {
        seed.set(seed.get() + 1);
        Keyed::new(seed.get(), 0)
    };
    for &n in sizes {
        for p in [0.1f32, 0.5] {
            let d = Dropout::new(p).unwrap();
            let s = d.scale();
            let shapes = [
                (
                    "channels first [N, C, 196]",
                    Units::channels_first((n / 196 / 64).max(1), 64, 196),
                ),
                (
                    "channels last [N, 196, C]",
                    Units::channels_last((n / 196 / 64).max(1), 196, 64),
                ),
                ("per sample [32, n/32]", Units::per_sample(32, n / 32)),
                ("time steps [16, n/16]", Units::time_steps(16, n / 16)),
            ];
            for (name, units) in shapes {
                let Ok(units) = units else { continue };
                if units.is_empty() {
                    continue;
                }
                let st = d.structured(units);
                let len = units.len();
                let cell = std::cell::RefCell::new(vec![1.0f32; len]);
                let mut contenders: Vec<(&str, Run<'_>)> = vec![
                    ("x *= s", Box::new(|| floor(&mut cell.borrow_mut(), s))),
                    (
                        "structured forward keyed",
                        Box::new(|| {
                            let mut buf = cell.borrow_mut();
                            st.forward(Mode::Train, black_box(&mut buf[..]), key())
                                .unwrap()
                        }),
                    ),
                    (
                        "element-wise forward keyed",
                        Box::new(|| {
                            let mut buf = cell.borrow_mut();
                            d.forward(Mode::Train, black_box(&mut buf[..]), key())
                                .unwrap()
                        }),
                    ),
                ];
                report(&format!("{name}, p = {p}"), len, &mut contenders, rounds);
                // Reset the data, which scaling grows.
                cell.borrow_mut().fill(1.0);
            }
        }
    }
    // The fused residual against dropout then a separate add.
    for &n in &sizes[1..] {
        for p in [0.1f32, 0.5] {
            let d = Dropout::new(p).unwrap();
            let s = d.scale();
            let hidden = 1024;
            let x = vec![0.5f32; n];
            let bias = vec![0.25f32; hidden];
            let state = std::cell::RefCell::new((vec![1.0f32; n], vec![0.0f32; n]));
            let mut contenders: Vec<(&str, Run<'_>)> = vec![
                ("x *= s", Box::new(|| floor(&mut state.borrow_mut().0, s))),
                (
                    "fused r += dropout(x)",
                    Box::new(|| {
                        let (r, _) = &mut *state.borrow_mut();
                        let io = Residual::IntoResidual {
                            x: &x,
                            residual: black_box(r),
                        };
                        d.residual_add(Mode::Train, io, None, key()).unwrap()
                    }),
                ),
                (
                    "forward_to, then r += y",
                    Box::new(|| {
                        let (r, y) = &mut *state.borrow_mut();
                        d.forward_to(Mode::Train, &x, black_box(&mut y[..]), key())
                            .unwrap();
                        for (r, y) in black_box(r).iter_mut().zip(y.iter()) {
                            *r += *y;
                        }
                    }),
                ),
                (
                    "fused r += dropout(x + b)",
                    Box::new(|| {
                        let (r, _) = &mut *state.borrow_mut();
                        let io = Residual::IntoResidual {
                            x: &x,
                            residual: black_box(r),
                        };
                        d.residual_add(Mode::Train, io, Some(&bias), key()).unwrap()
                    }),
                ),
                (
                    "y = x + b, forward, r += y",
                    Box::new(|| {
                        let (r, y) = &mut *state.borrow_mut();
                        for (y, x) in y.chunks_mut(hidden).zip(x.chunks(hidden)) {
                            for ((y, x), b) in y.iter_mut().zip(x).zip(&bias) {
                                *y = x + b;
                            }
                        }
                        d.forward(Mode::Train, black_box(&mut y[..]), key())
                            .unwrap();
                        for (r, y) in black_box(r).iter_mut().zip(y.iter()) {
                            *r += *y;
                        }
                    }),
                ),
            ];
            report(
                &format!("residual [n/1024, 1024], p = {p}"),
                n,
                &mut contenders,
                rounds,
            );
        }
    }
}
