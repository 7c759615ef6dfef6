//! No operation allocates: a counting global allocator watches every call.

use bitdrop::{Dropout, Keyed, Mask, Mode, mask_words, reference};
use rand_xoshiro::Xoshiro256PlusPlus;
use rand_xoshiro::rand_core::SeedableRng;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

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

#[test]
fn no_operation_allocates() {
    let n = if cfg!(miri) { 301 } else { 10_037 };
    let xs = vec![1.5f32; n];
    let mut ys = vec![0.0f32; n];
    let mut out = vec![0.0f32; n];
    let mut mask = vec![0u64; mask_words(n)];
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
    let mut halves = vec![0u32; n.div_ceil(32)];
    let mut back = vec![0u64; mask_words(n)];
    for p in [0.0, 0.1, 0.5, 1.0] {
        for mode in [Mode::Train, Mode::Eval] {
            // Across a block edge (a short way into one under Miri).
            let key = Keyed::new(9, if cfg!(miri) { 100 } else { 4093 });
            let count = allocations(|| {
                let d = Dropout::new(p).unwrap();
                ys.copy_from_slice(&xs);
                d.forward(mode, &mut ys, key).unwrap();
                d.forward(mode, &mut ys, &mut rng).unwrap();
                d.forward_to(mode, &xs, &mut out, key).unwrap();
                d.forward_with_mask(mode, &mut ys, &mut mask, &mut rng)
                    .unwrap();
                d.forward_to_with_mask(mode, &xs, &mut out, &mut mask, key)
                    .unwrap();
                d.fill_mask(mode, n, &mut mask, key).unwrap();
                d.apply_mask(mode, &mut ys, &mask).unwrap();
                d.apply_mask_to(mode, &xs, &mask, &mut out).unwrap();
                d.backward(mode, &mut ys, key).unwrap();
                d.backward_to(mode, &xs, &mut out, key).unwrap();
                let _ = d.forward_to(mode, &xs, &mut out[1..], key).unwrap_err();
                let view = Mask::new(&mask[..], n).unwrap();
                let _ = view.kept_count() + view.dropped_count();
                let _ = view.iter().filter(|&k| k).count();
                view.to_u32_words(&mut halves).unwrap();
                let _ = Mask::from_u32_words(&halves, n, &mut back[..]).unwrap();
                reference::forward_to(&d, mode, &xs, &mut out, key).unwrap();
                reference::fill_mask(&d, mode, n, &mut mask, &mut rng).unwrap();
                reference::apply_mask_to(&d, mode, &xs, &mask, &mut out).unwrap();
            });
            assert_eq!(count, 0, "p = {p}, {mode:?}: {count} allocations");
        }
    }
    // The counter works: an allocation is seen.
    assert_eq!(allocations(|| drop(std::hint::black_box(vec![0u8; 16]))), 1);
}
