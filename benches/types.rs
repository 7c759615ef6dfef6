//! The 16-bit element types beside their own floor, `out = x * s` in the
//! type (widen to `f32`, multiply, narrow with `half`'s conversions: the
//! `f32` product rounded again, as framework CPU kernels compute it), out of
//! place so that repeated calls keep the data as it is; measured
//! interleaved in one process.
//!
//! `cargo bench --manifest-path benches/Cargo.toml --bench types` (add
//! `RUSTFLAGS="-C target-cpu=native"` for the native build);
//! `BITDROP_BENCH=quick` runs fewer rounds.

use bitdrop::half::{bf16, f16};
use bitdrop::{Dropout, Element, Keyed, Mode, mask_words};
use std::cell::{Cell, RefCell};
use std::hint::black_box;

#[path = "interleave.rs"]
mod interleave;
use interleave::{Run, report};

/// What the benchmark needs of a type.
trait Half: Element {
    const NAME: &'static str;
    fn from_f32(x: f32) -> Self;
    fn to_f32(self) -> f32;
}

impl Half for bf16 {
    const NAME: &'static str = "bf16";
    fn from_f32(x: f32) -> Self {
        bf16::from_f32(x)
    }
    fn to_f32(self) -> f32 {
        bf16::to_f32(self)
    }
}

impl Half for f16 {
    const NAME: &'static str = "f16";
    fn from_f32(x: f32) -> Self {
        f16::from_f32(x)
    }
    fn to_f32(self) -> f32 {
        f16::to_f32(self)
    }
}

fn floor<T: Half>(xs: &[T], out: &mut [T], s: f32) {
    for (y, x) in black_box(out).iter_mut().zip(xs) {
        *y = T::from_f32(x.to_f32() * s);
    }
}

fn bench<T: Half>(n: usize, p: f32, rounds: usize, key: &dyn Fn() -> Keyed) {
    let d = Dropout::new(p).unwrap();
    let s = d.scale();
    // Activations of ordinary size, read from one buffer and written to
    // another, so that repeated calls neither grow nor decay them.
    let xs: Vec<T> = (0..n)
        .map(|i| T::from_f32(((i * 7919) % 1000) as f32 / 250.0 - 2.0))
        .collect();
    let out = RefCell::new(vec![T::from_f32(0.0); n]);
    let mut mask = vec![0u64; mask_words(n)];
    d.fill_mask(Mode::Train, n, &mut mask, key()).unwrap();
    let mut contenders: Vec<(&str, Run<'_>)> = vec![
        (
            "out = x * s",
            Box::new(|| floor(&xs, &mut out.borrow_mut(), s)),
        ),
        (
            "forward_to keyed",
            Box::new(|| {
                let mut o = out.borrow_mut();
                d.forward_to(Mode::Train, &xs, black_box(&mut o[..]), key())
                    .unwrap()
            }),
        ),
        (
            "apply_mask_to",
            Box::new(|| {
                let mut o = out.borrow_mut();
                d.apply_mask_to(Mode::Train, &xs, &mask, black_box(&mut o[..]))
                    .unwrap()
            }),
        ),
    ];
    report(&format!("{}, p = {p}", T::NAME), n, &mut contenders, rounds);
}

fn main() {
    let quick = std::env::var("BITDROP_BENCH").is_ok_and(|v| v == "quick");
    let rounds = if quick { 5 } else { 11 };
    println!("| case | elements | contender | G elements/s | ratio to x *= s |");
    println!("|---|---|---|---|---|");
    let seed = Cell::new(0u64);
    let key = || {
        seed.set(seed.get() + 1);
        Keyed::new(seed.get(), 0)
    };
    for n in [4 << 10, 256 << 10, 16 << 20] {
        for p in [0.1f32, 0.5] {
            bench::<bf16>(n, p, rounds, &key);
            bench::<f16>(n, p, rounds, &key);
        }
    }
}
