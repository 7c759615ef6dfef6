//! Throughput of every operation, for both sources of randomness, beside two
//! references measured in the same run on the same buffers: the floor
//! `x *= s`, and the per-element loop a user would write with `rand`.
//!
//! From the repository root, `cargo bench --manifest-path benches/Cargo.toml`
//! runs 4 Ki, 256 Ki, 16 Mi and 128 Mi elements (about 10 minutes here);
//! with `BITDROP_BENCH=quick` it runs the first three with short
//! measurements (about 2 minutes). `python3 benches/report.py` turns the
//! results into the tables of `benches/README.md` and the chart.

use bitdrop::{Dropout, Keyed, Mode, mask_words};
use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use std::hint::black_box;
use std::time::Duration;

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

fn bench(c: &mut Criterion) {
    for &n in sizes() {
        let mut group = c.benchmark_group(format!("n={n}"));
        group.throughput(Throughput::Elements(n as u64));
        group.sampling_mode(SamplingMode::Flat);
        group.sample_size(10);
        let (warm_up, measure) = match (quick(), n >= 16 << 20) {
            (true, _) => (0.1, 0.4),
            (false, false) => (0.5, 2.0),
            (false, true) => (1.0, 3.0),
        };
        group.warm_up_time(Duration::from_secs_f64(warm_up));
        group.measurement_time(Duration::from_secs_f64(measure));

        let xs: Vec<f32> = (0..n).map(|i| 0.5 + (i % 1000) as f32 / 1000.0).collect();
        let mut buf = xs.clone();
        let mut out = vec![0.0f32; n];
        let mut mask = vec![0u64; mask_words(n)];

        let scale = black_box(1.0f32 / 0.9);
        group.bench_function("floor x*=s", |b| {
            b.iter(|| {
                for x in black_box(&mut buf).iter_mut() {
                    *x *= scale;
                }
            })
        });

        for p in PROBABILITIES {
            let d = Dropout::new(p).unwrap();
            let s = d.scale();
            let mut rng = SmallRng::seed_from_u64(1);
            let mut seed = 0u64;
            let mut key = || {
                seed += 1;
                Keyed::new(seed, 0)
            };
            group.bench_with_input(BenchmarkId::new("handwritten", p), &p, |b, &p| {
                b.iter(|| handwritten(black_box(&mut buf), p, s, &mut rng))
            });
            group.bench_with_input(BenchmarkId::new("forward keyed", p), &p, |b, _| {
                b.iter(|| d.forward(Mode::Train, black_box(&mut buf), key()))
            });
            group.bench_with_input(BenchmarkId::new("forward rng", p), &p, |b, _| {
                b.iter(|| d.forward(Mode::Train, black_box(&mut buf), &mut rng))
            });
            group.bench_with_input(BenchmarkId::new("forward_to keyed", p), &p, |b, _| {
                b.iter(|| d.forward_to(Mode::Train, &xs, black_box(&mut out), key()))
            });
            group.bench_with_input(BenchmarkId::new("forward_to rng", p), &p, |b, _| {
                b.iter(|| d.forward_to(Mode::Train, &xs, black_box(&mut out), &mut rng))
            });
            group.bench_with_input(
                BenchmarkId::new("forward_with_mask keyed", p),
                &p,
                |b, _| {
                    b.iter(|| {
                        d.forward_with_mask(Mode::Train, black_box(&mut buf), &mut mask, key())
                    })
                },
            );
            group.bench_with_input(BenchmarkId::new("forward_with_mask rng", p), &p, |b, _| {
                b.iter(|| {
                    d.forward_with_mask(Mode::Train, black_box(&mut buf), &mut mask, &mut rng)
                })
            });
            group.bench_with_input(BenchmarkId::new("fill_mask keyed", p), &p, |b, _| {
                b.iter(|| d.fill_mask(Mode::Train, n, black_box(&mut mask), key()))
            });
            group.bench_with_input(BenchmarkId::new("fill_mask rng", p), &p, |b, _| {
                b.iter(|| d.fill_mask(Mode::Train, n, black_box(&mut mask), &mut rng))
            });
            d.fill_mask(Mode::Train, n, &mut mask, key()).unwrap();
            group.bench_with_input(BenchmarkId::new("apply_mask", p), &p, |b, _| {
                b.iter(|| d.apply_mask(Mode::Train, black_box(&mut buf), &mask))
            });
            group.bench_with_input(BenchmarkId::new("backward keyed", p), &p, |b, _| {
                b.iter(|| d.backward(Mode::Train, black_box(&mut buf), key()))
            });
        }
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
