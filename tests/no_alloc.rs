//! No operation allocates: a counting global allocator watches every call
//! of every row of the table of operations, valid and refused, of the
//! Gaussian and DropBlock calls, and of the reference and the mask helpers.

mod support;

use bitdrop::{
    DropBlock, Dropout, GaussianDropout, GaussianNoise, Keyed, Mask, Mode, Units, mask_words,
    reference,
};
use rand_xoshiro::Xoshiro256PlusPlus;
use rand_xoshiro::rand_core::SeedableRng;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use support::ops::{Buffers, Case, Level, MaskRole, OPS, Op, Src};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator unchanged; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: the caller upholds `alloc`'s contract, passed on as is.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made on this thread by `f`.
fn allocations(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

/// A call of a row, with its buffers made before counting.
struct Run {
    op: &'static Op,
    case: usize,
    src: Src,
    buffers: Buffers,
    valid: bool,
}

#[test]
fn no_operation_allocates() {
    let n = if cfg!(miri) { 301 } else { 10_037 };
    let xs = vec![1.5f32; n];
    let mut out = vec![0.0f32; n];
    let mut mask = vec![0u64; mask_words(n)];
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
    let mut halves = vec![0u32; n.div_ceil(32)];
    let mut back = vec![0u64; mask_words(n)];
    // Units past a 512-unit chunk, with every axis.
    let units = if cfg!(miri) {
        Units::new(2, 2, 37, 2).unwrap()
    } else {
        Units::new(3, 2, 700, 2).unwrap()
    };
    for p in [0.0, 0.1, 0.5, 1.0] {
        for mode in [Mode::Train, Mode::Eval] {
            let d = Dropout::new(p).unwrap();
            // Across a block edge (a short way into one under Miri).
            let key = Keyed::new(9, if cfg!(miri) { 100 } else { 4093 });
            let end = Keyed::new(9, u64::MAX);
            // Element-wise and structured, with a bias and without; and
            // with a mask too short.
            let cases: Vec<Case> = [Units::elements(n), units]
                .into_iter()
                .flat_map(|units| {
                    let plain = Case::new(d, mode, units, vec![1.5; units.len()]);
                    let bias = Case {
                        bias: Some(vec![0.25; units.dims()[2] * units.dims()[3]]),
                        ..plain.clone()
                    };
                    let short = Case {
                        mask_len: Some(0),
                        ..plain.clone()
                    };
                    [plain, bias, short]
                })
                .collect();
            // Every row on its level's plain case, and on the case with a
            // bias or with a short mask if it takes one; from the key, from
            // the end of the stream (refused if it draws) and from a caller
            // RNG.
            let mut runs = Vec::new();
            for op in OPS.iter().filter(|op| !cfg!(miri) || op.under_miri()) {
                let first = if op.level == Level::Elements { 0 } else { 3 };
                let reads = [true, op.residual().is_some(), op.mask() != MaskRole::None];
                let cases_read = cases.iter().enumerate().skip(first).take(3);
                for ((case, operands), _) in cases_read.zip(reads).filter(|(_, read)| *read) {
                    let mut srcs = vec![Src::Keyed(key), Src::Keyed(end)];
                    if !op.keyed_only() {
                        srcs.push(Src::Rng(7));
                    }
                    // Under Miri, where a keyed call costs seconds, the key
                    // only where a caller RNG cannot serve, or where it did
                    // before there were other rows.
                    let old = op.level == Level::Elements && op.residual().is_none();
                    if cfg!(miri) && !op.keyed_only() && !old {
                        srcs.remove(0);
                    }
                    for src in srcs {
                        let valid = op.expected_error(operands, src).is_none();
                        let buffers = Buffers::new(op, operands);
                        runs.push(Run {
                            op,
                            case,
                            src,
                            buffers,
                            valid,
                        });
                    }
                }
            }
            assert!(runs.iter().any(|run| !run.valid) && runs.iter().any(|run| run.valid));
            let mut reference_buffers: Vec<Buffers> =
                runs.iter().map(|r| r.buffers.clone()).collect();
            let count = allocations(|| {
                for (run, slow) in runs.iter_mut().zip(&mut reference_buffers) {
                    let case = &cases[run.case];
                    let result = run.op.call(case, &mut run.buffers, run.src.with(&mut rng));
                    assert_eq!(result.is_ok(), run.valid, "{}", run.op.name);
                    // Under Miri, the reference's entry points below only.
                    if !cfg!(miri) {
                        let reference = run.op.reference(case, slow, run.src.with(&mut rng));
                        assert_eq!(reference.is_ok(), run.valid, "{}", run.op.name);
                    }
                }
                let _ = d.forward_to(mode, &xs, &mut out[1..], key).unwrap_err();
                let view = Mask::new(&mask[..], n).unwrap();
                let _ = view.kept_count() + view.dropped_count();
                let _ = view.iter().filter(|&k| k).count();
                view.to_u32_words(&mut halves).unwrap();
                let _ = Mask::from_u32_words(&halves, n, &mut back[..]).unwrap();
                reference::forward_to(&d, mode, &xs, &mut out, key).unwrap();
                reference::fill_mask(&d, mode, n, &mut mask, &mut rng).unwrap();
                reference::apply_mask_to(&d, mode, &xs, &mask, &mut out).unwrap();
                let st = d.structured(units);
                let ys = &xs[..units.len()];
                let mut unit_mask = [0u64; 64];
                reference::structured_forward_to(&st, mode, ys, &mut out[..ys.len()], key).unwrap();
                reference::structured_fill_mask(&st, mode, &mut unit_mask, &mut rng).unwrap();
                reference::structured_apply_mask_to(
                    &st,
                    mode,
                    ys,
                    &unit_mask,
                    &mut out[..ys.len()],
                )
                .unwrap();
                let _ = reference::keyed_words_drawn(&d, mode, 9, 1);
            });
            assert_eq!(count, 0, "p = {p}, {mode:?}: {count} allocations");
        }
    }
    // The counter works: an allocation is seen.
    assert_eq!(allocations(|| drop(std::hint::black_box(vec![0u8; 16]))), 1);
}

/// The 16-bit element types allocate no more than `f32` does: nothing.
#[cfg(feature = "half")]
#[test]
fn half_types_do_not_allocate() {
    use bitdrop::Residual;
    use bitdrop::half::{bf16, f16};
    fn calls<T: bitdrop::Element + From<u8>>() -> usize {
        let n = if cfg!(miri) { 200 } else { 5_000 };
        let units = Units::channels_last(2, n / 20, 10).unwrap();
        let xs = vec![T::from(3); n];
        let mut ys = xs.clone();
        let mut out = xs.clone();
        let bias = vec![T::from(1); 10];
        let mut mask = vec![0u64; mask_words(n)];
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(2);
        let mut count = 0;
        // Under Miri, where a keyed call costs seconds, training at 0.3.
        for p in [0.3, 0.0, 1.0].into_iter().take(support::scaled(3, 1)) {
            for mode in [Mode::Train, Mode::Eval]
                .into_iter()
                .take(support::scaled(2, 1))
            {
                let d = Dropout::new(p).unwrap();
                let st = d.structured(units);
                let key = Keyed::new(4, 4000);
                count += allocations(|| {
                    d.forward(mode, &mut ys, key).unwrap();
                    d.forward_to(mode, &xs, &mut out, &mut rng).unwrap();
                    d.forward_with_mask(mode, &mut ys, &mut mask, key).unwrap();
                    d.apply_mask_to(mode, &xs, &mask, &mut out).unwrap();
                    st.forward(mode, &mut ys, &mut rng).unwrap();
                    st.apply_mask(mode, &mut ys, &mask).unwrap();
                    let io = Residual::Into {
                        x: &xs,
                        residual: &ys,
                        out: &mut out,
                    };
                    st.residual_add(mode, io, Some(&bias), key).unwrap();
                    let io = Residual::IntoResidual {
                        x: &xs,
                        residual: &mut ys,
                    };
                    d.residual_add_with_mask(mode, io, None, &mut mask, key)
                        .unwrap();
                    reference::forward_to(&d, mode, &xs, &mut out, key).unwrap();
                    let io = Residual::IntoX {
                        x: &mut ys,
                        residual: &xs,
                    };
                    reference::residual_add(&st, mode, io, Some(&bias), None, key).unwrap();
                });
            }
        }
        count
    }
    assert_eq!(calls::<bf16>(), 0);
    assert_eq!(calls::<f16>(), 0);
}

/// Gaussian dropout and noise and DropBlock, every entry point, fast and
/// reference, valid and refused, from both sources.
#[test]
fn gaussian_and_drop_block_do_not_allocate() {
    let d = DropBlock::new(0.3, 3, [2, 4, 14, 14]).unwrap();
    let xs = support::data(d.len(), 1);
    let (mut out, mut ys) = (vec![0.0; d.len()], xs.clone());
    let mut mask = vec![0; d.mask_words()];
    let mut seeds = vec![0; mask_words(d.seeds())];
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
    let key = Keyed::new(1, 9);
    let g = GaussianDropout::new(0.3).unwrap();
    let noise = GaussianNoise::new(0.5).unwrap();
    for mode in [Mode::Train, Mode::Eval] {
        let count = allocations(|| {
            d.forward(mode, &mut ys, &mut mask, key).unwrap();
            d.forward(mode, &mut ys, &mut mask, &mut rng).unwrap();
            d.forward_to(mode, &xs, &mut out, &mut mask, key).unwrap();
            d.apply_mask(mode, &mut ys, &mask).unwrap();
            d.apply_mask_to(mode, &xs, &mask, &mut out).unwrap();
            d.backward(mode, &mut ys, &mut mask, key).unwrap();
            d.backward_to(mode, &xs, &mut out, &mut mask, key).unwrap();
            d.forward(mode, &mut ys[1..], &mut mask, key).unwrap_err();
            reference::drop_block_forward_to(&d, mode, &xs, &mut out, &mut mask, key).unwrap();
            reference::drop_block_forward_to(&d, mode, &xs, &mut out, &mut mask, &mut rng).unwrap();
            reference::drop_block_seeds(&d, mode, &mut seeds, key).unwrap();
            g.forward(mode, &mut ys, key).unwrap();
            g.forward_to(mode, &xs, &mut out, &mut rng).unwrap();
            g.backward(mode, &mut ys, key).unwrap();
            g.backward_to(mode, &xs, &mut out, key).unwrap();
            g.forward_to(mode, &xs, &mut out[1..], key).unwrap_err();
            noise.forward(mode, &mut ys, &mut rng).unwrap();
            noise.forward_to(mode, &xs, &mut out, key).unwrap();
            reference::gaussian_dropout_forward_to(&g, mode, &xs, &mut out, key).unwrap();
            reference::gaussian_noise_forward_to(&noise, mode, &xs, &mut out, &mut rng).unwrap();
        });
        assert_eq!(count, 0, "{mode:?}: {count} allocations");
    }
}
