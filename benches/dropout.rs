//! Throughput of every element-wise operation, for both sources of
//! randomness, beside two references measured in the same run on the same
//! buffers: the floor `x *= s`, and the per-element loop a user would
//! write with `rand`.
//!
//! The floor is measured interleaved with every contender: each criterion
//! sample of a contender times `iters` calls of it and `iters` passes of
//! the floor over the same buffer, back to back, in alternating order.
//! Criterion reports the contender; the table printed at the end gives,
//! per contender, the medians over its samples of both throughputs and of
//! their ratio, so a floor measured at another moment never enters a
//! ratio.
//!
//! From the repository root, `cargo bench --manifest-path benches/Cargo.toml
//! --bench dropout` runs 4 Ki, 256 Ki, 16 Mi and 128 Mi elements; with
//! `BITDROP_BENCH=quick` it runs the first three with short measurements.

use bitdrop::{Dropout, Keyed, Mode, mask_words};
use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use std::cell::RefCell;
use std::hint::black_box;
use std::time::{Duration, Instant};

// The floor and the median; criterion times the samples here, not the
// harness's rounds.
#[path = "interleave.rs"]
#[allow(dead_code)]
mod interleave;
use interleave::{floor, median};

const PROBABILITIES: [f32; 3] = [0.1, 0.5, 0.9];

fn quick() -> bool {
    std::env::var("BITDROP_BENCH").is_ok_and(|v| v == "quick")
}

fn sizes() -> &'static [usize] {
    if quick() {
        &[4 << 10, 256 << 10, 16 << 20]
    } else {
        &[4 << 10, 256 << 10, 16 << 20, 128 << 20]
    }
}

/// The loop a user would write: one float draw per element, compared in
/// 24 bits.
fn handwritten(xs: &mut [f32], p: f32, s: f32, rng: &mut SmallRng) {
    for x in xs.iter_mut() {
        *x = if rng.random::<f32>() < p { 0.0 } else { *x * s };
    }
}

/// One printed row: a contender's medians over its samples.
struct Row {
    n: usize,
    p: f32,
    name: &'static str,
    /// Seconds per call of (floor, contender), one pair per sample.
    pairs: Vec<(f64, f64)>,
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let rows = RefCell::new(Vec::new());
    for &n in sizes() {
        let mut group = c.benchmark_group(format!("n={n}"));
        group.throughput(Throughput::Elements(n as u64));
        group.sampling_mode(SamplingMode::Flat);
        group.sample_size(10);
        let (warm_up, measure) = match (quick(), n >= 16 << 20) {
            (true, _) => (0.1, 0.4),
            (false, false) => (0.3, 1.5),
            (false, true) => (1.0, 4.0),
        };
        group.warm_up_time(Duration::from_secs_f64(warm_up));
        group.measurement_time(Duration::from_secs_f64(measure));

        let xs: Vec<f32> = (0..n).map(|i| 0.5 + (i % 1000) as f32 / 1000.0).collect();
        let buf = RefCell::new(xs.clone());
        let out = RefCell::new(vec![0.0f32; n]);
        let mask = RefCell::new(vec![0u64; mask_words(n)]);

        for p in PROBABILITIES {
            let d = Dropout::new(p).unwrap();
            let s = d.scale();
            let rng = RefCell::new(SmallRng::seed_from_u64(1));
            let seed = std::cell::Cell::new(0u64);
            // A fresh key per call, as training draws one per step.
            let key = || {
                seed.set(seed.get() + 1);
                Keyed::new(seed.get(), 0)
            };
            let given = {
                let mut words = vec![0u64; mask_words(n)];
                d.fill_mask(Mode::Train, n, &mut words, key()).unwrap();
                words
            };
            type Call<'a> = Box<dyn FnMut() + 'a>;
            let contenders: Vec<(&'static str, Call<'_>)> = vec![
                (
                    "forward keyed",
                    Box::new(|| {
                        d.forward(Mode::Train, black_box(&mut buf.borrow_mut()[..]), key())
                            .unwrap()
                    }),
                ),
                (
                    "forward rng",
                    Box::new(|| {
                        d.forward(
                            Mode::Train,
                            black_box(&mut buf.borrow_mut()[..]),
                            &mut *rng.borrow_mut(),
                        )
                        .unwrap()
                    }),
                ),
                (
                    "forward_to keyed",
                    Box::new(|| {
                        d.forward_to(
                            Mode::Train,
                            &xs,
                            black_box(&mut out.borrow_mut()[..]),
                            key(),
                        )
                        .unwrap()
                    }),
                ),
                (
                    "forward_to rng",
                    Box::new(|| {
                        let mut rng = rng.borrow_mut();
                        d.forward_to(
                            Mode::Train,
                            &xs,
                            black_box(&mut out.borrow_mut()[..]),
                            &mut *rng,
                        )
                        .unwrap()
                    }),
                ),
                (
                    "forward_with_mask keyed",
                    Box::new(|| {
                        let (mut buf, mut mask) = (buf.borrow_mut(), mask.borrow_mut());
                        d.forward_with_mask(Mode::Train, black_box(&mut buf[..]), &mut mask, key())
                            .unwrap()
                    }),
                ),
                (
                    "forward_with_mask rng",
                    Box::new(|| {
                        let (mut buf, mut mask) = (buf.borrow_mut(), mask.borrow_mut());
                        let mut rng = rng.borrow_mut();
                        d.forward_with_mask(
                            Mode::Train,
                            black_box(&mut buf[..]),
                            &mut mask,
                            &mut *rng,
                        )
                        .unwrap()
                    }),
                ),
                (
                    "fill_mask keyed",
                    Box::new(|| {
                        d.fill_mask(Mode::Train, n, black_box(&mut mask.borrow_mut()[..]), key())
                            .unwrap()
                    }),
                ),
                (
                    "fill_mask rng",
                    Box::new(|| {
                        let mut rng = rng.borrow_mut();
                        d.fill_mask(
                            Mode::Train,
                            n,
                            black_box(&mut mask.borrow_mut()[..]),
                            &mut *rng,
                        )
                        .unwrap()
                    }),
                ),
                (
                    "apply_mask",
                    Box::new(|| {
                        d.apply_mask(Mode::Train, black_box(&mut buf.borrow_mut()[..]), &given)
                            .unwrap()
                    }),
                ),
                (
                    "backward keyed",
                    Box::new(|| {
                        d.backward(Mode::Train, black_box(&mut buf.borrow_mut()[..]), key())
                            .unwrap()
                    }),
                ),
                (
                    "handwritten",
                    Box::new(|| {
                        handwritten(
                            black_box(&mut buf.borrow_mut()[..]),
                            p,
                            s,
                            &mut rng.borrow_mut(),
                        )
                    }),
                ),
            ];
            for (name, mut call) in contenders {
                let mut pairs = Vec::new();
                let mut flip = false;
                group.bench_with_input(BenchmarkId::new(name, p), &p, |b, _| {
                    b.iter_custom(|iters| {
                        let time = |f: &mut dyn FnMut()| {
                            let start = Instant::now();
                            for _ in 0..iters {
                                f();
                            }
                            start.elapsed()
                        };
                        let mut floor = || floor(&mut buf.borrow_mut(), s);
                        flip = !flip;
                        let (t_floor, t) = if flip {
                            let t_floor = time(&mut floor);
                            (t_floor, time(&mut call))
                        } else {
                            let t = time(&mut call);
                            (time(&mut floor), t)
                        };
                        let per = |t: Duration| t.as_secs_f64() / iters as f64;
                        pairs.push((per(t_floor), per(t)));
                        t
                    })
                });
                // Empty when a filter on the command line skipped it.
                if !pairs.is_empty() {
                    rows.borrow_mut().push(Row { n, p, name, pairs });
                }
            }
        }
        group.finish();
    }
    c.final_summary();
    print_table(&rows.into_inner());
}

/// Medians of every contender's samples: G elements per second of the
/// floor and of the contender, and the median ratio floor time / contender
/// time over the same samples.
fn print_table(rows: &[Row]) {
    println!();
    println!("| size | p | contender | `x *= s` G/s | contender G/s | ratio |");
    println!("|---|---|---|---|---|---|");
    for row in rows {
        let floor = median(row.pairs.iter().map(|&(f, _)| f).collect());
        let time = median(row.pairs.iter().map(|&(_, t)| t).collect());
        let ratio = median(row.pairs.iter().map(|&(f, t)| f / t).collect());
        let size = match row.n {
            n if n >= 1 << 20 => format!("{} Mi", n >> 20),
            n => format!("{} Ki", n >> 10),
        };
        println!(
            "| {size} | {} | {} | {:.2} | {:.2} | {:.2} |",
            row.p,
            row.name,
            row.n as f64 / floor / 1e9,
            row.n as f64 / time / 1e9,
            ratio
        );
    }
}
