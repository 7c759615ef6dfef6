//! DropBlock: the fast path against the reference over many shapes, the
//! definition checked directly (seeds at stream positions, squares, the
//! scale), golden vectors, statistics, errors and the corner cases.

mod support;

use bitdrop::{DropBlock, Dropout, Error, Keyed, Mode, mask_words, reference};
use rand_xoshiro::Xoshiro256PlusPlus;
use rand_xoshiro::rand_core::Rng;
use support::{bit, rng, same, same_f32, scaled};

/// Special values, arbitrary bit patterns and ordinary numbers.
fn data(len: usize, seed: u64) -> Vec<f32> {
    const SPECIAL: [f32; 8] = [
        0.0,
        -0.0,
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        1e-45,
        f32::MAX,
        -1.0,
    ];
    let mut rng = rng(seed ^ 0xDA7A);
    (0..len)
        .map(|_| {
            let r = rng.next_u64();
            match r % 4 {
                0 => SPECIAL[(r >> 8) as usize % SPECIAL.len()],
                1 => f32::from_bits((r >> 32) as u32),
                _ => ((r >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 8.0,
            }
        })
        .collect()
}

/// `(shape, block_size)`: clipped blocks, blocks the size of the map or
/// of one side, even blocks, zero dimensions, lengths not a multiple of
/// 64, and more than one chunk of 512 seeds.
const SHAPES: [([usize; 4], usize); 17] = [
    ([1, 1, 1, 1], 1),
    ([1, 1, 1, 1], 7),
    ([2, 3, 8, 8], 3),
    ([1, 2, 5, 9], 7),
    ([2, 2, 9, 5], 7),
    ([1, 3, 7, 7], 7),
    ([2, 1, 3, 10], 3),
    ([1, 2, 10, 3], 3),
    ([0, 3, 8, 8], 3),
    ([2, 0, 8, 8], 3),
    ([2, 3, 0, 8], 3),
    ([2, 3, 8, 0], 3),
    ([3, 5, 13, 11], 4),
    ([2, 4, 14, 14], 7),
    ([1, 3, 33, 65], 5),
    ([4, 8, 14, 14], 3),
    ([1, 1, 70, 70], 1),
];

const PS: [f32; 9] = [0.0, 1e-45, 0.05, 0.1, 0.3, 0.5, 0.9, 0.999_999_94, 1.0];

#[derive(Clone, Copy, Debug)]
enum Src {
    Keyed(Keyed),
    Rng(u64),
}

const SOURCES: [Src; 5] = [
    Src::Keyed(Keyed::new(1, 0)),
    Src::Keyed(Keyed::new(0xB10C, 4095)),
    Src::Keyed(Keyed::new(7, (1 << 40) + 17)),
    Src::Rng(3),
    Src::Rng(0xFEED),
];

/// What one call produced: the output, the mask words with one sentinel
/// word after them, and the caller RNG's state after the call.
#[derive(Debug)]
struct Outcome {
    out: Vec<f32>,
    mask: Vec<u64>,
    rng: Option<Xoshiro256PlusPlus>,
}

const SENTINEL: u64 = 0xA5A5_5A5A_A5A5_5A5A;

fn fast(d: &DropBlock, mode: Mode, xs: &[f32], src: Src) -> Outcome {
    let mut out = vec![f32::from_bits(0x7FC0_0ABC); xs.len()];
    let mut mask = vec![SENTINEL; d.mask_words() + 1];
    let rng = match src {
        Src::Keyed(key) => {
            d.forward_to(mode, xs, &mut out, &mut mask, key).unwrap();
            None
        }
        Src::Rng(seed) => {
            let mut r = rng(seed);
            d.forward_to(mode, xs, &mut out, &mut mask, &mut r).unwrap();
            Some(r)
        }
    };
    Outcome { out, mask, rng }
}

fn slow(d: &DropBlock, mode: Mode, xs: &[f32], src: Src) -> Outcome {
    let mut out = vec![0.0; xs.len()];
    let mut mask = vec![SENTINEL; d.mask_words() + 1];
    let rng = match src {
        Src::Keyed(key) => {
            reference::drop_block_forward_to(d, mode, xs, &mut out, &mut mask, key).unwrap();
            None
        }
        Src::Rng(seed) => {
            let mut r = rng(seed);
            reference::drop_block_forward_to(d, mode, xs, &mut out, &mut mask, &mut r).unwrap();
            Some(r)
        }
    };
    Outcome { out, mask, rng }
}

/// The seeds the reference draws, one bit each, 1 = drawn.
fn seeds(d: &DropBlock, mode: Mode, src: Src) -> (Vec<u64>, Option<Xoshiro256PlusPlus>) {
    let mut words = vec![0; mask_words(d.seeds())];
    match src {
        Src::Keyed(key) => {
            reference::drop_block_seeds(d, mode, &mut words, key).unwrap();
            (words, None)
        }
        Src::Rng(seed) => {
            let mut r = rng(seed);
            reference::drop_block_seeds(d, mode, &mut words, &mut r).unwrap();
            (words, Some(r))
        }
    }
}

/// Checks one outcome against the definition, given the input.
fn check_rule(d: &DropBlock, mode: Mode, xs: &[f32], o: &Outcome) {
    let len = d.len();
    let words = d.mask_words();
    assert_eq!(o.mask[words], SENTINEL, "wrote past the mask");
    if !len.is_multiple_of(64) {
        assert_eq!(o.mask[words - 1] >> (len % 64), 0, "bits past len");
    }
    let kept: u32 = o.mask[..words].iter().map(|w| w.count_ones()).sum();
    let s = (len as f64 / f64::from(kept)) as f32;
    let identity = mode == Mode::Eval || d.p() == 0.0;
    if identity {
        assert_eq!(kept as usize, len);
    }
    if d.p() == 1.0 && mode == Mode::Train {
        assert_eq!(kept, 0);
    }
    for (i, (&x, &y)) in xs.iter().zip(&o.out).enumerate() {
        if identity {
            assert_eq!(y.to_bits(), x.to_bits(), "element {i} not passed");
        } else if bit(&o.mask, i) {
            assert!(same_f32(y, x * s), "element {i}: {y} != {x} * {s}");
        } else {
            assert_eq!(y.to_bits(), 0, "element {i} dropped to {y}");
        }
    }
}

/// Every case: the fast path equals the reference bit for bit (outputs,
/// masks, the caller RNG's state), in place equals out of place, and both
/// follow the element rule.
#[test]
fn fast_equals_reference() {
    for (shape, bs) in SHAPES
        .into_iter()
        .skip(usize::from(cfg!(miri)) * 2)
        .take(scaled(usize::MAX, 2))
    {
        for p in PS
            .into_iter()
            .skip(usize::from(cfg!(miri)) * 3)
            .take(scaled(usize::MAX, 2))
        {
            let d = DropBlock::new(p, bs, shape).unwrap();
            let xs = data(d.len(), shape.iter().sum::<usize>() as u64);
            for src in SOURCES
                .into_iter()
                .skip(usize::from(cfg!(miri)) * 2)
                .take(scaled(usize::MAX, 2))
            {
                for mode in [Mode::Train, Mode::Eval] {
                    let f = fast(&d, mode, &xs, src);
                    let r = slow(&d, mode, &xs, src);
                    let case = format!("{shape:?} bs {bs} p {p} {src:?} {mode:?}");
                    assert!(same(&f.out, &r.out), "{case}: outputs differ");
                    assert_eq!(f.mask, r.mask, "{case}: masks differ");
                    assert_eq!(f.rng, r.rng, "{case}: RNG consumed differently");
                    check_rule(&d, mode, &xs, &f);

                    let mut in_place = xs.clone();
                    let mut mask = vec![0; d.mask_words()];
                    let mut r = rng(match src {
                        Src::Rng(seed) => seed,
                        Src::Keyed(_) => 0,
                    });
                    match src {
                        Src::Keyed(key) => d.forward(mode, &mut in_place, &mut mask, key),
                        Src::Rng(_) => d.forward(mode, &mut in_place, &mut mask, &mut r),
                    }
                    .unwrap();
                    assert!(same(&in_place, &f.out), "{case}: in place differs");
                    assert_eq!(mask, f.mask[..d.mask_words()], "{case}");
                }
            }
        }
    }
}

/// bf16: the same mask bits as f32, and the fast path equals the
/// reference.
#[cfg(feature = "half")]
#[test]
fn bf16_equals_reference_and_f32_masks() {
    use bitdrop::half::bf16;
    for (shape, bs) in SHAPES
        .into_iter()
        .skip(usize::from(cfg!(miri)) * 2)
        .take(scaled(usize::MAX, 2))
    {
        for p in [0.05, 0.3, 0.9, 1.0] {
            let d = DropBlock::new(p, bs, shape).unwrap();
            let xs: Vec<bf16> = data(d.len(), 5).into_iter().map(bf16::from_f32).collect();
            let key = Keyed::new(11, 300);
            let (mut fast_out, mut slow_out) =
                (vec![bf16::ZERO; d.len()], vec![bf16::ONE; d.len()]);
            let (mut fast_mask, mut slow_mask) = (vec![0; d.mask_words()], vec![0; d.mask_words()]);
            d.forward_to(Mode::Train, &xs, &mut fast_out, &mut fast_mask, key)
                .unwrap();
            reference::drop_block_forward_to(
                &d,
                Mode::Train,
                &xs,
                &mut slow_out,
                &mut slow_mask,
                key,
            )
            .unwrap();
            for (a, b) in fast_out.iter().zip(&slow_out) {
                assert!(a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()));
            }
            assert_eq!(fast_mask, slow_mask);
            let f32_run = fast(&d, Mode::Train, &data(d.len(), 5), Src::Keyed(key));
            assert_eq!(fast_mask, f32_run.mask[..d.mask_words()]);
            for (i, y) in fast_out.iter().enumerate() {
                if !bit(&fast_mask, i) {
                    assert_eq!(y.to_bits(), 0);
                }
            }
        }
    }
}

/// Where `gamma` is an `f32` (`bs == 1`, or `bs == h == w`), the seeds are
/// exactly the drops of `Dropout::new(gamma).fill_mask` over `seeds()`
/// elements from the same source: seed `k` at stream position
/// `offset + k`, a caller RNG consumed word for word alike.
#[test]
fn seeds_are_the_dropout_decisions() {
    let cases: [([usize; 4], usize); 5] = [
        ([1, 1, 70, 70], 1),
        ([2, 3, 9, 31], 1),
        ([3, 40, 5, 5], 5),
        ([2, 7, 4, 4], 9), // clipped to 4
        ([1, 600, 2, 2], 2),
    ];
    // Under Miri: one shape of each kind, at one p.
    let miri = [1, 2];
    for (c, (shape, bs)) in cases.into_iter().enumerate() {
        if cfg!(miri) && !miri.contains(&c) {
            continue;
        }
        for p in [0.05, 0.1, 0.3, 0.5, 0.9]
            .into_iter()
            .take(scaled(usize::MAX, 1))
        {
            let d = DropBlock::new(p, bs, shape).unwrap();
            assert_eq!(d.gamma(), f64::from(p), "{shape:?}");
            let dropout = Dropout::new(p).unwrap();
            let n = d.seeds();
            let sources = [
                Src::Keyed(Keyed::new(9, 0)),
                Src::Keyed(Keyed::new(9, 4093)),
                Src::Keyed(Keyed::new(u64::MAX, u64::MAX - n as u64)),
                Src::Rng(21),
            ];
            for src in sources {
                let mut decisions = vec![0; mask_words(n)];
                let mut r = rng(21);
                match src {
                    Src::Keyed(key) => dropout.fill_mask(Mode::Train, n, &mut decisions, key),
                    Src::Rng(_) => dropout.fill_mask(Mode::Train, n, &mut decisions, &mut r),
                }
                .unwrap();
                let (drawn, seed_rng) = seeds(&d, Mode::Train, src);
                let f = fast(&d, Mode::Train, &vec![1.0; d.len()], src);
                if let Src::Rng(_) = src {
                    assert_eq!(seed_rng.as_ref(), Some(&r));
                    assert_eq!(f.rng.as_ref(), Some(&r));
                }
                let [_, _, h, w] = shape;
                for k in 0..n {
                    assert_eq!(
                        bit(&drawn, k),
                        !bit(&decisions, k),
                        "{shape:?} {src:?} seed {k}"
                    );
                }
                // bs == 1: element k is seed k; bs == h == w: one seed a channel.
                for i in 0..d.len() {
                    let k = if d.block_size() == 1 { i } else { i / (h * w) };
                    assert_eq!(bit(&f.mask, i), bit(&decisions, k), "{shape:?} element {i}");
                }
            }
        }
    }
}

/// Keyed calls split along the batch, each sample with its own offset
/// (`offset + sample * seeds per sample`), give the whole call's result.
#[test]
fn samples_split_with_offsets() {
    let cases = [([5, 3, 14, 14], 3), ([4, 2, 9, 13], 4), ([3, 1, 70, 70], 7)];
    for (shape, bs) in cases
        .into_iter()
        .skip(usize::from(cfg!(miri)))
        .take(scaled(usize::MAX, 1))
    {
        let d = DropBlock::new(0.3, bs, shape).unwrap();
        let [n, c, h, w] = shape;
        let one = DropBlock::new(0.3, bs, [1, c, h, w]).unwrap();
        let xs = data(d.len(), 8);
        for offset in [(1 << 33) - 7, 0, 4000]
            .into_iter()
            .take(scaled(usize::MAX, 1))
        {
            let whole = fast(&d, Mode::Train, &xs, Src::Keyed(Keyed::new(4, offset)));
            for sample in (0..n).rev() {
                let at = sample * one.len();
                let key = Keyed::new(4, offset + (sample * one.seeds()) as u64);
                let part = fast(&one, Mode::Train, &xs[at..at + one.len()], Src::Keyed(key));
                for i in 0..one.len() {
                    assert_eq!(
                        bit(&part.mask, i),
                        bit(&whole.mask, at + i),
                        "{shape:?} {offset}"
                    );
                }
            }
        }
    }
}

/// The dropped elements are exactly the union of the squares of the
/// drawn seeds, and a union of `bs x bs` squares with top-left corners in
/// the valid range, reconstructed from the mask alone.
#[test]
fn dropped_region_is_a_union_of_squares() {
    for (shape, bs) in SHAPES
        .into_iter()
        .skip(usize::from(cfg!(miri)) * 2)
        .take(scaled(usize::MAX, 2))
    {
        for p in [0.05, 0.1, 0.3, 0.9] {
            let d = DropBlock::new(p, bs, shape).unwrap();
            for src in SOURCES
                .into_iter()
                .skip(usize::from(cfg!(miri)) * 2)
                .take(scaled(usize::MAX, 2))
            {
                let f = fast(&d, Mode::Train, &vec![1.0; d.len()], src);
                let (drawn, _) = seeds(&d, Mode::Train, src);
                let [n, c, h, w] = shape;
                let bs = d.block_size();
                if d.is_empty() {
                    continue;
                }
                let (rows, cols) = (h - bs + 1, w - bs + 1);
                let mut from_seeds = vec![false; d.len()];
                let mut from_mask = vec![false; d.len()];
                for ch in 0..n * c {
                    for h0 in 0..rows {
                        for w0 in 0..cols {
                            let square = || {
                                (h0..h0 + bs).flat_map(move |y| {
                                    (w0..w0 + bs).map(move |x| (ch * h + y) * w + x)
                                })
                            };
                            if bit(&drawn, (ch * rows + h0) * cols + w0) {
                                square().for_each(|i| from_seeds[i] = true);
                            }
                            if square().all(|i| !bit(&f.mask, i)) {
                                square().for_each(|i| from_mask[i] = true);
                            }
                        }
                    }
                }
                for i in 0..d.len() {
                    assert_eq!(!bit(&f.mask, i), from_seeds[i], "{shape:?} {p} {src:?} {i}");
                    assert_eq!(from_mask[i], from_seeds[i], "{shape:?} {p} {src:?} {i}");
                }
            }
        }
    }
}

/// The fixed case: [1, 2, 6, 10], bs 3, p 0.3, key (42, 0) and a caller
/// RNG seeded with 42. Changing these is a breaking change.
#[test]
fn golden_vectors() {
    let d = DropBlock::new(0.3, 3, [1, 2, 6, 10]).unwrap();
    assert_eq!(d.gamma(), GOLDEN_GAMMA);
    let xs: Vec<f32> = (0..d.len()).map(|i| i as f32 * 0.25 - 7.0).collect();
    let keyed = fast(&d, Mode::Train, &xs, Src::Keyed(Keyed::new(42, 0)));
    let caller = fast(&d, Mode::Train, &xs, Src::Rng(42));
    let at = |o: &Outcome| GOLDEN_AT.map(|i| o.out[i].to_bits());
    assert_eq!(
        seeds(&d, Mode::Train, Src::Keyed(Keyed::new(42, 0))).0,
        GOLDEN_KEYED_SEEDS
    );
    assert_eq!(keyed.mask[..2], GOLDEN_KEYED_MASK);
    assert_eq!(at(&keyed), GOLDEN_KEYED_OUT);
    assert_eq!(seeds(&d, Mode::Train, Src::Rng(42)).0, GOLDEN_RNG_SEEDS);
    assert_eq!(caller.mask[..2], GOLDEN_RNG_MASK);
    assert_eq!(at(&caller), GOLDEN_RNG_OUT);
}

const GOLDEN_AT: [usize; 6] = [0, 17, 45, 59, 64, 119];
const GOLDEN_GAMMA: f64 = 0.062_500_002_483_526_87;
const GOLDEN_KEYED_SEEDS: [u64; 1] = [0x200_0000];
const GOLDEN_KEYED_MASK: [u64; 2] = [0xffc7_f1fc_7fff_ffff, 0x00ff_ffff_ffff_ffff];
const GOLDEN_KEYED_OUT: [u32; 6] = [
    0xc0f2_2983,
    0xc03e_4530,
    0x4093_06eb,
    0x4106_0dd6,
    0x411b_acf9,
    0x41c4_c1ba,
];
const GOLDEN_RNG_SEEDS: [u64; 1] = [0x0400_0000_a000_0040];
const GOLDEN_RNG_MASK: [u64; 2] = [0xf07c_1f07_e3f8_fe3f, 0x00f8_fe3f_8fff_ffff];
const GOLDEN_RNG_OUT: [u32; 6] = [0xc11a_7b96, 0, 0, 0, 0x4146_9ee6, 0x41fb_08d4];

/// Prints the golden vectors (run with `--ignored --nocapture`).
#[test]
#[ignore]
fn print_golden_vectors() {
    let d = DropBlock::new(0.3, 3, [1, 2, 6, 10]).unwrap();
    let xs: Vec<f32> = (0..d.len()).map(|i| i as f32 * 0.25 - 7.0).collect();
    println!("gamma {:?}", d.gamma());
    for src in [Src::Keyed(Keyed::new(42, 0)), Src::Rng(42)] {
        let o = fast(&d, Mode::Train, &xs, src);
        println!("{src:?} seeds {:#x?}", seeds(&d, Mode::Train, src).0);
        println!("mask {:#018x?}", &o.mask[..2]);
        println!("out {:#010x?}", GOLDEN_AT.map(|i| o.out[i].to_bits()));
    }
}

/// `floor(gamma * 2^64) / 2^64`.
fn exact_gamma(d: &DropBlock) -> f64 {
    ((d.gamma() * 2f64.powi(64)) as u64) as f64 / 2f64.powi(64)
}

/// The drawn seed count within 5 sigma of `seeds * gamma`, and the dropped
/// element count within 5 sigma of its exact expectation, with the
/// variance from every pair of elements of a channel (channels are
/// independent).
#[test]
#[cfg_attr(miri, ignore = "statistics: natively only")]
fn statistics_match_gamma() {
    let shape = [32, 64, 14, 14];
    let [n, c, h, w] = shape;
    for bs in [7, 3] {
        let d = DropBlock::new(0.1, bs, shape).unwrap();
        let g = exact_gamma(&d);
        for src in [Src::Keyed(Keyed::new(2024, 0)), Src::Rng(2024)] {
            let (drawn, _) = seeds(&d, Mode::Train, src);
            let count: u32 = drawn.iter().map(|w| w.count_ones()).sum();
            let s = d.seeds() as f64;
            let sigma = (s * g * (1.0 - g)).sqrt();
            let z = (f64::from(count) - s * g) / sigma;
            assert!(
                z.abs() < 5.0,
                "bs {bs} {src:?}: {count} seeds drawn of {s}, z = {z}"
            );

            // Seeds covering (y, x): h0 in lo(y)..=hi(y), likewise w0.
            let span = |y: usize, size: usize| (y.saturating_sub(bs - 1), y.min(size - bs));
            let overlap = |a: (usize, usize), b: (usize, usize)| {
                let (lo, hi) = (a.0.max(b.0), a.1.min(b.1));
                if lo <= hi { (hi - lo + 1) as i32 } else { 0 }
            };
            let cells: Vec<((usize, usize), (usize, usize))> = (0..h)
                .flat_map(|y| (0..w).map(move |x| (span(y, h), span(x, w))))
                .collect();
            let kept_p = |m: i32| (1.0 - g).powi(m);
            let covering =
                |e: &((usize, usize), (usize, usize))| overlap(e.0, e.0) * overlap(e.1, e.1);
            let mean: f64 = cells.iter().map(|e| 1.0 - kept_p(covering(e))).sum();
            let mut var = 0.0;
            for a in &cells {
                for b in &cells {
                    let shared = overlap(a.0, b.0) * overlap(a.1, b.1);
                    let (ma, mb) = (covering(a), covering(b));
                    // Cov(dropped a, dropped b) = Cov(kept a, kept b).
                    var += kept_p(ma + mb - shared) - kept_p(ma) * kept_p(mb);
                }
            }
            let channels = (n * c) as f64;
            let f = fast(&d, Mode::Train, &vec![1.0; d.len()], src);
            let kept: u32 = f.mask[..d.mask_words()]
                .iter()
                .map(|w| w.count_ones())
                .sum();
            let dropped = (d.len() - kept as usize) as f64;
            let z = (dropped - channels * mean) / (channels * var).sqrt();
            assert!(
                z.abs() < 5.0,
                "bs {bs} {src:?}: {dropped} dropped, expected {}, z = {z}",
                channels * mean
            );
        }
    }
}

/// An error writes nothing: not the output, not the mask, not the caller
/// RNG; and the first failing check in the documented order is reported.
#[test]
fn errors_change_nothing() {
    // Construction: p, then the block size, then the shape.
    for p in [f32::NAN, -0.1, 1.5, f32::INFINITY] {
        let e = DropBlock::new(p, 0, [usize::MAX, 2, 1, 1]).unwrap_err();
        assert!(matches!(e, Error::InvalidProbability { .. }), "{e:?}");
    }
    let e = DropBlock::new(0.1, 0, [usize::MAX, 2, 1, 1]).unwrap_err();
    assert_eq!(e, Error::InvalidBlockSize { block_size: 0 });
    // h * w past usize on every width (2^40 with a 32-bit usize).
    let big = 1usize << (usize::BITS / 2 + 4);
    for shape in [
        [usize::MAX, 2, 1, 1],
        [usize::MAX, 2, 0, 1],
        [1, 1, big, big],
    ] {
        let e = DropBlock::new(0.1, 3, shape).unwrap_err();
        assert!(matches!(e, Error::InvalidShape { .. }), "{shape:?}: {e:?}");
    }
    let d = DropBlock::new(0.1, 0, [0, usize::MAX, usize::MAX, 1]);
    assert!(d.is_err());
    let d = DropBlock::new(0.1, 3, [0, usize::MAX, usize::MAX, 1]).unwrap();
    assert_eq!((d.len(), d.seeds()), (0, 0));

    // Calls: [2, 3, 8, 10], 480 elements in 8 words, 288 seeds.
    let d = DropBlock::new(0.3, 3, [2, 3, 8, 10]).unwrap();
    assert_eq!((d.len(), d.mask_words(), d.seeds()), (480, 8, 288));
    let xs = data(480, 1);
    let past = Keyed::new(5, u64::MAX - 286); // offset + 288 = 2^64 + 1
    let last = Keyed::new(5, u64::MAX - 287); // offset + 288 = 2^64
    let overflow = Error::PositionOverflow {
        offset: u64::MAX - 286,
        len: 288,
    };
    for mode in [Mode::Train, Mode::Eval] {
        // (input length, output length, mask words, key, expected error)
        let cases = [
            (
                480,
                479,
                0,
                past,
                Error::LengthMismatch {
                    input: 480,
                    output: 479,
                },
            ),
            (
                479,
                479,
                0,
                past,
                Error::ShapeMismatch {
                    expected: 480,
                    found: 479,
                },
            ),
            (
                481,
                481,
                8,
                last,
                Error::ShapeMismatch {
                    expected: 480,
                    found: 481,
                },
            ),
            (
                480,
                480,
                7,
                past,
                Error::MaskTooShort {
                    needed: 8,
                    found: 7,
                },
            ),
            (480, 480, 8, past, overflow),
        ];
        for (n_in, n_out, words, key, expected) in cases {
            let xs = &data(n_in, 2)[..];
            let mut out = vec![7.0_f32; n_out];
            let mut mask = vec![SENTINEL; words];
            let e = d
                .forward_to(mode, xs, &mut out, &mut mask, key)
                .unwrap_err();
            assert_eq!(e, expected);
            assert!(out.iter().all(|&y| y == 7.0) && mask.iter().all(|&m| m == SENTINEL));
            if n_in == n_out {
                let mut ys = xs.to_vec();
                assert_eq!(d.forward(mode, &mut ys, &mut mask, key), Err(expected));
                assert_eq!(d.backward(mode, &mut ys, &mut mask, key), Err(expected));
                assert!(same(&ys, xs) && mask.iter().all(|&m| m == SENTINEL));
                if !matches!(expected, Error::PositionOverflow { .. }) {
                    let mut r = rng(1);
                    assert_eq!(d.forward(mode, &mut ys, &mut mask, &mut r), Err(expected));
                    assert_eq!(r, rng(1), "the RNG advanced");
                    assert!(same(&ys, xs) && mask.iter().all(|&m| m == SENTINEL));
                    // apply_mask: the same checks but the last.
                    assert_eq!(d.apply_mask(mode, &mut ys, &mask), Err(expected));
                    assert!(same(&ys, xs));
                }
            } else {
                assert_eq!(
                    d.backward_to(mode, xs, &mut out, &mut mask, key),
                    Err(expected)
                );
                assert_eq!(d.apply_mask_to(mode, xs, &mask, &mut out), Err(expected));
                assert!(out.iter().all(|&y| y == 7.0));
            }
        }
        // The last position: fine.
        let mut mask = [0; 8];
        d.forward_to(mode, &xs, &mut vec![0.0; 480], &mut mask, last)
            .unwrap();
        let mut seeds = [0; 5];
        reference::drop_block_seeds(&d, mode, &mut seeds, last).unwrap();
        assert_eq!(
            reference::drop_block_seeds(&d, mode, &mut seeds, past),
            Err(overflow)
        );
    }
}

/// Evaluation mode and `p == 0`: the identity bit for bit, the mask all
/// kept, nothing drawn. `p == 1`: all `+0.0`, the mask all zeros, nothing
/// drawn. `gamma * 2^64 < 1`: no seed, nothing drawn, `s = 1`.
#[test]
fn identity_drop_all_and_tiny_gamma() {
    let shape = [1, 2, 6, 10];
    let xs = data(120, 3);
    let all_kept = [!0, (1 << 56) - 1];
    let cases = [
        (0.5, Mode::Eval),
        (0.0, Mode::Train),
        (-0.0, Mode::Train),
        (1.0, Mode::Eval),
        (1.0, Mode::Train),
        (1e-45, Mode::Train),
    ];
    for (p, mode) in cases {
        let d = DropBlock::new(p, 3, shape).unwrap();
        let o = fast(&d, mode, &xs, Src::Rng(8));
        assert_eq!(o.rng, Some(rng(8)), "p {p} {mode:?} drew");
        let drop_all = p == 1.0 && mode == Mode::Train;
        let mask = if drop_all { [0, 0] } else { all_kept };
        assert_eq!(o.mask[..2], mask, "p {p} {mode:?}");
        for (&x, &y) in xs.iter().zip(&o.out) {
            if drop_all {
                assert_eq!(y.to_bits(), 0);
            } else if p == 1e-45 {
                assert!(same_f32(y, x * 1.0));
            } else {
                assert_eq!(y.to_bits(), x.to_bits());
            }
        }
        // apply_mask ignores the mask in these cases.
        let mut ys = xs.clone();
        d.apply_mask(mode, &mut ys, &[0x1234, 0]).unwrap();
        if drop_all {
            assert!(ys.iter().all(|y| y.to_bits() == 0));
        } else if p != 1e-45 {
            assert!(ys.iter().zip(&xs).all(|(y, x)| y.to_bits() == x.to_bits()));
        }
    }
    let tiny = DropBlock::new(1e-45, 3, shape).unwrap();
    assert!(tiny.gamma() > 0.0 && tiny.gamma() < 2f64.powi(-64));

    // Zero dimensions: nothing to do, nothing drawn, even with a mask.
    for shape in [[0, 3, 5, 5], [2, 0, 5, 5], [2, 3, 0, 5], [2, 3, 5, 0]] {
        let d = DropBlock::new(0.5, 3, shape).unwrap();
        assert_eq!((d.len(), d.seeds(), d.mask_words()), (0, 0, 0));
        let mut r = rng(1);
        d.forward(Mode::Train, &mut [0.0_f32; 0], &mut [], &mut r)
            .unwrap();
        assert_eq!(r, rng(1));
        if shape[2] == 0 || shape[3] == 0 {
            assert_eq!((d.block_size(), d.gamma()), (0, 0.0));
        }
    }
}

/// The getters, and `gamma` as documented.
#[test]
fn getters_and_gamma() {
    let d = DropBlock::new(0.1, 7, [32, 64, 14, 14]).unwrap();
    assert_eq!(
        (d.p(), d.block_size(), d.shape()),
        (0.1, 7, [32, 64, 14, 14])
    );
    assert_eq!(
        (d.len(), d.mask_words(), d.seeds()),
        (401_408, 6272, 131_072)
    );
    assert!(!d.is_empty());
    // p h w / (bs^2 (h - bs + 1) (w - bs + 1)) = p / 16, exactly.
    assert_eq!(d.gamma(), f64::from(0.1_f32) / 16.0);
    let d = DropBlock::new(0.3, 3, [1, 1, 14, 9]).unwrap();
    let expected = 0.3_f32 as f64 * 14.0 * 9.0 / (3.0 * 3.0 * 12.0 * 7.0);
    assert_eq!(d.gamma(), expected);
    // Clipped: bs = min(block_size, h, w).
    let d = DropBlock::new(0.3, 100, [1, 1, 14, 9]).unwrap();
    assert_eq!(
        (d.block_size(), d.seeds(), d.gamma()),
        (9, 6, 0.3_f32 as f64 * 126.0 / (81.0 * 6.0))
    );
}

/// NaN and infinities are dropped to `+0.0`; kept ones stay NaN or
/// infinite; nothing kept gives `+0.0` everywhere.
#[test]
fn specials_and_nothing_kept() {
    let d = DropBlock::new(0.5, 2, [2, 3, 9, 9]).unwrap();
    let specials = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -0.0];
    let xs: Vec<f32> = (0..d.len()).map(|i| specials[i % 4]).collect();
    let o = fast(&d, Mode::Train, &xs, Src::Keyed(Keyed::new(3, 0)));
    let dropped = (0..d.len()).filter(|&i| !bit(&o.mask, i)).count();
    assert!(dropped > 50 && dropped < d.len() - 50, "{dropped}");
    check_rule(&d, Mode::Train, &xs, &o);
    for (i, (&x, &y)) in xs.iter().zip(&o.out).enumerate() {
        if !bit(&o.mask, i) {
            assert_eq!(y.to_bits(), 0);
        } else {
            assert!(x.is_nan() == y.is_nan() && x.is_infinite() == y.is_infinite());
        }
    }

    // Blocks the size of the map at p = 0.9: find a key that drops it all.
    let d = DropBlock::new(0.9, 4, [1, 1, 4, 4]).unwrap();
    let xs = [f32::NAN, f32::INFINITY, 1.0, -2.0].repeat(4);
    let key = (0..100)
        .map(|seed| Keyed::new(seed, 0))
        .find(|&key| fast(&d, Mode::Train, &xs, Src::Keyed(key)).mask[0] == 0)
        .unwrap();
    let o = fast(&d, Mode::Train, &xs, Src::Keyed(key));
    assert!(o.out.iter().all(|y| y.to_bits() == 0));
    assert!(same(
        &o.out,
        &slow(&d, Mode::Train, &xs, Src::Keyed(key)).out
    ));
    // A given mask keeping nothing, too.
    let mut ys = xs.clone();
    DropBlock::new(0.3, 2, [1, 1, 4, 4])
        .unwrap()
        .apply_mask(Mode::Train, &mut ys, &[0])
        .unwrap();
    assert!(ys.iter().all(|y| y.to_bits() == 0));
}

/// `apply_mask` with forward's mask gives forward's output (the bits past
/// `len` ignored); `backward` regenerates forward's mask and output.
#[test]
fn apply_mask_and_backward_equal_forward() {
    for (shape, bs) in SHAPES
        .into_iter()
        .skip(usize::from(cfg!(miri)) * 2)
        .take(scaled(usize::MAX, 2))
    {
        for p in [0.1, 0.3, 0.9] {
            let d = DropBlock::new(p, bs, shape).unwrap();
            let xs = data(d.len(), 4);
            let key = Keyed::new(17, 100);
            let f = fast(&d, Mode::Train, &xs, Src::Keyed(key));
            let mut mask = f.mask[..d.mask_words()].to_vec();
            if !d.len().is_multiple_of(64) {
                *mask.last_mut().unwrap() |= !0 << (d.len() % 64);
            }
            let mut ys = xs.clone();
            d.apply_mask(Mode::Train, &mut ys, &mask).unwrap();
            assert!(same(&ys, &f.out), "{shape:?} {p}");
            let mut out = vec![0.0; d.len()];
            d.apply_mask_to(Mode::Train, &xs, &mask, &mut out).unwrap();
            assert!(same(&out, &f.out));

            let mut grad = xs.clone();
            let mut regenerated = vec![0; d.mask_words()];
            d.backward(Mode::Train, &mut grad, &mut regenerated, key)
                .unwrap();
            assert!(same(&grad, &f.out));
            assert_eq!(regenerated, f.mask[..d.mask_words()]);
            let mut out = vec![0.0; d.len()];
            d.backward_to(Mode::Train, &xs, &mut out, &mut regenerated, key)
                .unwrap();
            assert!(same(&out, &f.out));
        }
    }
}
