//! The parallel calls beside a rayon-parallel floor, `x *= s` over the same
//! buffer in chunks on the same pool, measured interleaved in one process,
//! at pools of 1 and 2 threads; and, for the serial threshold, `par_forward`
//! against `forward` at small sizes.
//!
//! `cargo bench --manifest-path benches/Cargo.toml --bench parallel` (add
//! `RUSTFLAGS="-C target-cpu=native"` for the native build);
//! `BITDROP_BENCH=quick` runs fewer rounds.

use bitdrop::{Dropout, Keyed, Mode, Units};
use rayon::prelude::*;
use std::cell::RefCell;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};

#[path = "interleave.rs"]
mod interleave;
use interleave::{Run, report};

fn par_floor(buf: &mut [f32], s: f32) {
    black_box(buf).par_chunks_mut(64 * 1024).for_each(|chunk| {
        for x in chunk {
            *x *= s;
        }
    });
}

fn main() {
    let quick = std::env::var("BITDROP_BENCH").is_ok_and(|v| v == "quick");
    let rounds = if quick { 5 } else { 11 };
    let seed = AtomicU64::new(0);
    let key = || Keyed::new(seed.fetch_add(1, Ordering::Relaxed), 0);
    println!("| case | elements | contender | G elements/s | ratio to x *= s |");
    println!("|---|---|---|---|---|");
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let n = 128 << 20;
            let buf = RefCell::new(vec![1.0f32; n]);
            for p in [0.1f32, 0.5] {
                let d = Dropout::new(p).unwrap();
                let s = d.scale();
                let st = d.structured(Units::time_steps(64, n / 64).unwrap());
                let mut contenders: Vec<(&str, Run<'_>)> = vec![
                    (
                        "parallel x *= s",
                        Box::new(|| par_floor(&mut buf.borrow_mut(), s)),
                    ),
                    (
                        "par_forward keyed",
                        Box::new(|| {
                            let mut b = buf.borrow_mut();
                            d.par_forward(Mode::Train, black_box(&mut b[..]), key())
                                .unwrap()
                        }),
                    ),
                    (
                        "forward keyed (serial)",
                        Box::new(|| {
                            let mut b = buf.borrow_mut();
                            d.forward(Mode::Train, black_box(&mut b[..]), key())
                                .unwrap()
                        }),
                    ),
                    (
                        "par_forward, time steps [64, n/64]",
                        Box::new(|| {
                            let mut b = buf.borrow_mut();
                            st.par_forward(Mode::Train, black_box(&mut b[..]), key())
                                .unwrap()
                        }),
                    ),
                ];
                let case = format!("{threads} thread(s), p = {p}");
                report(&case, n, &mut contenders, rounds);
                buf.borrow_mut().fill(1.0);
            }
        });
    }
    // The serial threshold: par_forward runs serially below SERIAL_BELOW
    // (these rows were measured with it set to 0, to see where splitting
    // starts to pay).
    for n in [128 << 10, 256 << 10, 512 << 10, 1 << 20, 4 << 20] {
        let d = Dropout::new(0.1).unwrap();
        let s = d.scale();
        let buf = RefCell::new(vec![1.0f32; n]);
        let mut contenders: Vec<(&str, Run<'_>)> = vec![
            (
                "parallel x *= s",
                Box::new(|| par_floor(&mut buf.borrow_mut(), s)),
            ),
            (
                "forward keyed (serial)",
                Box::new(|| {
                    let mut b = buf.borrow_mut();
                    d.forward(Mode::Train, black_box(&mut b[..]), key())
                        .unwrap()
                }),
            ),
            (
                "par_forward keyed",
                Box::new(|| {
                    let mut b = buf.borrow_mut();
                    d.par_forward(Mode::Train, black_box(&mut b[..]), key())
                        .unwrap()
                }),
            ),
        ];
        report("2 threads, p = 0.1", n, &mut contenders, rounds);
    }
}
