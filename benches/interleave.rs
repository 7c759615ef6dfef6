//! The interleaved harness of the benchmarks that measure ratios: each
//! round times every contender of a case once, in a rotating order, and
//! the table reports medians over the rounds and the ratio of each median
//! throughput to the first contender's (the floor's) over the same buffer.

use std::hint::black_box;
use std::time::{Duration, Instant};

pub type Run<'a> = Box<dyn FnMut() + 'a>;

/// The floor of the `f32` benchmarks: `x *= s` over the buffer. (Not
/// every benchmark that includes this file has an `f32` floor.)
#[allow(dead_code)]
pub fn floor(buf: &mut [f32], s: f32) {
    for x in black_box(buf).iter_mut() {
        *x *= s;
    }
}

/// The median of `xs` (the upper one of an even count).
pub fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// Median seconds per call of each contender, measured interleaved.
pub fn interleaved(contenders: &mut [(&str, Run<'_>)], rounds: usize) -> Vec<f64> {
    // Calls per sample, so that one sample takes about 20 ms.
    let reps: Vec<usize> = contenders
        .iter_mut()
        .map(|(_, f)| {
            f();
            let start = Instant::now();
            f();
            let once = start.elapsed().max(Duration::from_nanos(100));
            (Duration::from_millis(20).as_secs_f64() / once.as_secs_f64()).clamp(1.0, 1e6) as usize
        })
        .collect();
    let mut samples = vec![Vec::new(); contenders.len()];
    for round in 0..rounds {
        for k in 0..contenders.len() {
            let i = (k + round) % contenders.len();
            let start = Instant::now();
            for _ in 0..reps[i] {
                (contenders[i].1)();
            }
            samples[i].push(start.elapsed().as_secs_f64() / reps[i] as f64);
        }
    }
    samples.into_iter().map(median).collect()
}

pub fn report(case: &str, n: usize, contenders: &mut [(&str, Run<'_>)], rounds: usize) {
    let medians = interleaved(contenders, rounds);
    let floor = medians[0];
    for ((name, _), t) in contenders.iter().zip(&medians) {
        println!(
            "| {case} | {n} | {name} | {:.2} | {:.2} |",
            n as f64 / t / 1e9,
            floor / t
        );
    }
}
