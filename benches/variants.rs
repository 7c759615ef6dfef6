//! Alpha dropout, Gaussian dropout and noise, and DropBlock beside the
//! floor `x *= s` over the same buffer, measured interleaved in one
//! process: each round times every contender of a case once, in a rotating
//! order, and the table reports medians over the rounds and the ratio of
//! each median throughput to the floor's.
//!
//! `cargo bench --manifest-path benches/Cargo.toml --bench variants` (add
//! `RUSTFLAGS="-C target-cpu=native"` for the native build);
//! `BITDROP_BENCH=quick` runs fewer rounds.

use bitdrop::rand_core::SeedableRng;
use bitdrop::{AlphaDropout, DropBlock, Dropout, GaussianDropout, GaussianNoise, Keyed, Mode};
use rand_xoshiro::Xoshiro256PlusPlus;
use std::cell::{Cell, RefCell};
use std::hint::black_box;

#[path = "interleave.rs"]
mod interleave;
use interleave::{Run, floor, report};

/// As `interleave::report`, with three decimals: the Gaussian rows run at
/// hundredths of a G element per second.
fn report_fine(case: &str, n: usize, contenders: &mut [(&str, Run<'_>)], rounds: usize) {
    let medians = interleave::interleaved(contenders, rounds);
    let floor = medians[0];
    for ((name, _), t) in contenders.iter().zip(&medians) {
        println!(
            "| {case} | {n} | {name} | {:.3} | {:.4} |",
            n as f64 / t / 1e9,
            floor / t
        );
    }
}

fn main() {
    let quick = std::env::var("BITDROP_BENCH").is_ok_and(|v| v == "quick");
    let rounds = if quick { 5 } else { 11 };
    println!("| case | elements | contender | G elements/s | ratio to x *= s |");
    println!("|---|---|---|---|---|");
    // A fresh key per call, as training draws one per step.
    let seed = Cell::new(0u64);
    let key = || {
        seed.set(seed.get() + 1);
        Keyed::new(seed.get(), 0)
    };
    let rng = RefCell::new(Xoshiro256PlusPlus::seed_from_u64(1));

    // Alpha dropout: Dropout's decisions, `x * a + b` instead of `x * s`.
    for n in [4 << 10, 256 << 10, 16 << 20] {
        for p in [0.1f32, 0.5] {
            let alpha = AlphaDropout::new(p).unwrap();
            let d = Dropout::new(p).unwrap();
            let s = d.scale();
            let cell = RefCell::new(vec![1.0f32; n]);
            let mut contenders: Vec<(&str, Run<'_>)> = vec![
                ("x *= s", Box::new(|| floor(&mut cell.borrow_mut(), s))),
                (
                    "alpha forward keyed",
                    Box::new(|| {
                        let mut buf = cell.borrow_mut();
                        alpha
                            .forward(Mode::Train, black_box(&mut buf[..]), key())
                            .unwrap()
                    }),
                ),
                (
                    "dropout forward keyed",
                    Box::new(|| {
                        let mut buf = cell.borrow_mut();
                        d.forward(Mode::Train, black_box(&mut buf[..]), key())
                            .unwrap()
                    }),
                ),
            ];
            report(&format!("alpha, p = {p}"), n, &mut contenders, rounds);
        }
    }

    // Gaussian dropout and noise: one Box-Muller pair (a log, a sqrt and a
    // sincos in f64) per two elements, about 0.3 s per call at 16 Mi. The
    // data is reset before each case; the floor's many calls drive it to
    // infinities within the first round, as in `family.rs`, so no element
    // lingers among the subnormals.
    for n in [4 << 10, 256 << 10, 16 << 20] {
        let s = Dropout::new(0.1).unwrap().scale();
        let cell = RefCell::new(vec![1.0f32; n]);
        for p in [0.1f32, 0.5] {
            let g = GaussianDropout::new(p).unwrap();
            cell.borrow_mut().fill(1.0);
            let mut contenders: Vec<(&str, Run<'_>)> = vec![
                ("x *= s", Box::new(|| floor(&mut cell.borrow_mut(), s))),
                (
                    "gaussian dropout keyed",
                    Box::new(|| {
                        let mut buf = cell.borrow_mut();
                        g.forward(Mode::Train, black_box(&mut buf[..]), key())
                            .unwrap()
                    }),
                ),
                (
                    "gaussian dropout rng",
                    Box::new(|| {
                        let mut buf = cell.borrow_mut();
                        g.forward(Mode::Train, black_box(&mut buf[..]), &mut *rng.borrow_mut())
                            .unwrap()
                    }),
                ),
            ];
            report_fine(
                &format!("gaussian dropout, p = {p}"),
                n,
                &mut contenders,
                rounds,
            );
        }
        let g = GaussianNoise::new(0.1).unwrap();
        cell.borrow_mut().fill(1.0);
        let mut contenders: Vec<(&str, Run<'_>)> = vec![
            ("x *= s", Box::new(|| floor(&mut cell.borrow_mut(), s))),
            (
                "gaussian noise keyed",
                Box::new(|| {
                    let mut buf = cell.borrow_mut();
                    g.forward(Mode::Train, black_box(&mut buf[..]), key())
                        .unwrap()
                }),
            ),
            (
                "gaussian noise rng",
                Box::new(|| {
                    let mut buf = cell.borrow_mut();
                    g.forward(Mode::Train, black_box(&mut buf[..]), &mut *rng.borrow_mut())
                        .unwrap()
                }),
            ),
        ];
        report_fine("gaussian noise, std 0.1", n, &mut contenders, rounds);
    }

    // DropBlock at a ResNet stage-3 shape against element-wise dropout.
    let shape = [32, 256, 14, 14];
    let p = 0.1f32;
    let db = DropBlock::new(p, 7, shape).unwrap();
    let d = Dropout::new(p).unwrap();
    let s = d.scale();
    let n = db.len();
    let cell = RefCell::new(vec![1.0f32; n]);
    let mask = RefCell::new(vec![0u64; db.mask_words()]);
    // The seed decisions alone: element-wise dropout's mask over `seeds()`
    // positions at `gamma` (the same decisions up to `gamma`'s rounding to
    // f32), without the block clears and the apply.
    let seeds = Dropout::new(db.gamma() as f32).unwrap();
    let seed_mask = RefCell::new(vec![0u64; bitdrop::mask_words(db.seeds())]);
    // A DropBlock mask for the backward passes, never overwritten.
    let mut given = vec![0u64; db.mask_words()];
    db.forward(Mode::Train, &mut vec![1.0f32; n], &mut given, key())
        .unwrap();
    let mut contenders: Vec<(&str, Run<'_>)> = vec![
        ("x *= s", Box::new(|| floor(&mut cell.borrow_mut(), s))),
        (
            "drop_block forward keyed",
            Box::new(|| {
                let mut buf = cell.borrow_mut();
                let mut mask = mask.borrow_mut();
                db.forward(Mode::Train, black_box(&mut buf[..]), &mut mask, key())
                    .unwrap()
            }),
        ),
        (
            "dropout forward keyed",
            Box::new(|| {
                let mut buf = cell.borrow_mut();
                d.forward(Mode::Train, black_box(&mut buf[..]), key())
                    .unwrap()
            }),
        ),
        (
            "seed decisions alone (fill_mask at gamma)",
            Box::new(|| {
                let mut m = seed_mask.borrow_mut();
                seeds
                    .fill_mask(Mode::Train, db.seeds(), black_box(&mut m[..]), key())
                    .unwrap()
            }),
        ),
        (
            "drop_block apply_mask",
            Box::new(|| {
                let mut buf = cell.borrow_mut();
                db.apply_mask(Mode::Train, black_box(&mut buf[..]), &given)
                    .unwrap()
            }),
        ),
        (
            "dropout apply_mask (same mask)",
            Box::new(|| {
                let mut buf = cell.borrow_mut();
                d.apply_mask(Mode::Train, black_box(&mut buf[..]), &given)
                    .unwrap()
            }),
        ),
    ];
    report(
        "drop_block [32, 256, 14, 14], bs 7, p = 0.1",
        n,
        &mut contenders,
        rounds,
    );
}
