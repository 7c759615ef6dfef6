//! The SIMD lanes the element rules compute in, and the rules' plug-in
//! point: each variant writes its rule once, over any [`Lanes`], and each
//! element type runs it in the widest lanes the CPU offers that type.
//!
//! `wide` fixes its instructions when it is compiled: in a default x86-64
//! build its `f32x8` is two SSE2 registers, even inside the kernels that
//! `dispatch` compiles for AVX2 or AVX-512, and applying a mask there took
//! four vector operations per four elements against the floor's one
//! (`benches/README.md`). So on x86-64, where the dispatched kernel says
//! the CPU has them, `f32` rules run in AVX-512 registers (16 lanes, the
//! keep bits a mask register: the select folds into the multiply) or in
//! AVX2 registers (8 lanes), through `core::arch`. Everywhere else, and
//! for the 16-bit types (whose rounding is written on `wide`'s lanes),
//! rules run in `wide`'s 8 lanes. Every lane type computes each element as
//! the scalar rule does: the same bits (NaN payloads aside).

use crate::dispatch::{self, Cpu, Kernel, Level};
use crate::element::sealed::Sealed;
use core::marker::PhantomData;
use wide::u32x8;

/// Elements of type `E` in SIMD lanes of `f32`, and the rules' operations
/// on them, each rounded as the scalar rule rounds.
pub trait Lanes<E>: Copy {
    /// Elements per value: 8 or 16 (a divisor of 64).
    const WIDTH: usize;
    /// Which lanes are kept.
    type Keep: Copy;
    /// The lanes of elements `WIDTH * block ..` of a group of 64 whose
    /// keep word is `word` (bit `j` for element `j`).
    fn keep(word: u64, block: usize) -> Self::Keep;
    /// Lanes from the first `WIDTH` elements of `x` (it has them).
    fn load(x: &[E]) -> Self;
    /// The lanes to the first `WIDTH` elements of `out` (it has them).
    fn store(self, out: &mut [E]);
    /// `x` in every lane.
    fn splat(x: E) -> Self;
    /// `x * s`, rounded once to `E` ([`Sealed::scaled`]).
    fn scaled(self, s: f32) -> Self;
    /// `self + other`, rounded once to `E` ([`Sealed::plus`]).
    fn plus(self, other: Self) -> Self;
    /// `v` where kept, `+0.0` where not: a select, so NaN and inf cannot
    /// leak.
    fn select(keep: Self::Keep, v: Self) -> Self;
    /// `kept` where kept, `dropped` where not.
    fn either(keep: Self::Keep, kept: Self, dropped: Self) -> Self;
}

/// An element rule over `K` inputs, written once for every lane type:
/// `current` is the element being written (as it was, if the call reads
/// it), `ins` the inputs at the same index.
pub trait Rule<E, const K: usize>: Copy {
    fn lanes<L: Lanes<E>>(self, current: L, ins: [L; K], keep: L::Keep) -> L;
}

/// Work to run in some lane type: what [`Sealed::in_widest`] calls with
/// the lanes it picked.
pub trait LaneTask<E> {
    fn run<L: Lanes<E>>(self);
}

/// `wide`'s eight lanes, for every element type: its loads, stores and
/// arithmetic are the type's own (`Sealed`'s `*_lanes` functions).
#[derive(Clone, Copy)]
pub(crate) struct Portable<E: Sealed>(E::Lanes);

impl<E: Sealed> Lanes<E> for Portable<E> {
    const WIDTH: usize = 8;
    type Keep = u32x8;

    #[inline(always)]
    fn keep(word: u64, block: usize) -> u32x8 {
        let half = u32x8::splat((word >> (32 * (block / 4))) as u32);
        let bits = u32x8::new(LANE_BITS[block % 4]);
        (half & bits).simd_eq(bits)
    }

    // Straight from and to the caller's elements, never through a local
    // copy: with one, the optimizer's work on the 16-bit types' residual
    // kernels (scalar replacement of the copies) took minutes per test
    // build.
    #[inline(always)]
    fn load(x: &[E]) -> Self {
        match x.first_chunk() {
            Some(lanes) => Portable(E::load(lanes)),
            None => Self::splat(E::ZERO),
        }
    }

    #[inline(always)]
    fn store(self, out: &mut [E]) {
        if let Some(lanes) = out.first_chunk_mut() {
            E::store(self.0, lanes);
        }
    }

    #[inline(always)]
    fn splat(x: E) -> Self {
        Portable(E::load(&[x; 8]))
    }

    #[inline(always)]
    fn scaled(self, s: f32) -> Self {
        Portable(E::scaled_lanes(self.0, s))
    }

    #[inline(always)]
    fn plus(self, other: Self) -> Self {
        Portable(E::plus_lanes(self.0, other.0))
    }

    #[inline(always)]
    fn select(keep: u32x8, v: Self) -> Self {
        Portable(E::select_lanes(keep, v.0))
    }

    #[inline(always)]
    fn either(keep: u32x8, kept: Self, dropped: Self) -> Self {
        Portable(E::either_lanes(keep, kept.0, dropped.0))
    }
}

/// Runs `task` in [`Portable`] lanes, compiled once per level in a
/// function of its own that the kernels call. Inlined into them, the
/// 16-bit types' rounding was built again at every call site (36 in the
/// fused residual kernel, three copies of it), and the test suite took
/// six times as long to build; a call per piece of up to 1024 elements
/// costs little next to those types' conversions. (A fused residual with
/// a bias calls once per bias row, so short rows pay a call each; not
/// measured. `f32`'s rules are a few instructions, and inlined.)
#[inline(never)]
pub(crate) fn in_portable<E: Sealed, I: Level>(cpu: Cpu<I>, task: impl LaneTask<E>) {
    dispatch::run_on(cpu, InPortable(task, PhantomData));
}

/// [`in_portable`]'s task as a kernel.
struct InPortable<T, E>(T, PhantomData<E>);

impl<E: Sealed, T: LaneTask<E>> Kernel for InPortable<T, E> {
    #[inline(always)]
    fn run<I: Level>(self, _: Cpu<I>) {
        self.0.run::<Portable<E>>();
    }
}

/// Lane `i` of block `b` tests bit `8 b + i` of a 32-bit half word.
const LANE_BITS: [[u32; 8]; 4] = {
    let mut bits = [[0; 8]; 4];
    let mut b = 0;
    while b < 4 {
        let mut i = 0;
        while i < 8 {
            bits[b][i] = 1 << (8 * b + i);
            i += 1;
        }
        b += 1;
    }
    bits
};

/// Runs `task` for `f32` in the widest lanes level `I` offers (only that
/// branch is generated: `I`'s flags are constants).
#[inline(always)]
pub(crate) fn widest_f32<I: Level>(cpu: Cpu<I>, task: impl LaneTask<f32>) {
    #[cfg(target_arch = "x86_64")]
    {
        if I::AVX512 {
            return task.run::<x86::F32x16>();
        }
        if I::AVX2 {
            return task.run::<x86::F32x8>();
        }
    }
    let _ = cpu;
    task.run::<Portable<f32>>();
}

/// `f32` lanes in AVX-512 and AVX2 registers.
///
/// Values of these types are made only by `widest_f32`'s tasks, and only
/// when its level says the CPU has the type's instructions (AVX-512F for
/// `F32x16`, AVX2 for `F32x8`): detected at run time by `dispatch::run`,
/// or required by the build's target. That is the safety argument of
/// every `unsafe` block below, each an intrinsic of those instructions on
/// values of these types or on slices the caller has checked.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod x86 {
    use super::Lanes;
    use core::arch::x86_64::*;

    /// 16 `f32` lanes; the keep bits are a mask register.
    #[derive(Clone, Copy)]
    pub(crate) struct F32x16(__m512);

    impl Lanes<f32> for F32x16 {
        const WIDTH: usize = 16;
        type Keep = __mmask16;

        #[inline(always)]
        fn keep(word: u64, block: usize) -> __mmask16 {
            (word >> (16 * block)) as __mmask16
        }

        #[inline(always)]
        fn load(x: &[f32]) -> Self {
            let x = &x[..16];
            // SAFETY: see the module: the CPU has AVX-512F; the read is of
            // the 16 elements of `x`, unaligned loads allowed.
            F32x16(unsafe { _mm512_loadu_ps(x.as_ptr()) })
        }

        #[inline(always)]
        fn store(self, out: &mut [f32]) {
            let out = &mut out[..16];
            // SAFETY: see the module: the CPU has AVX-512F; the write is of
            // the 16 elements of `out`, unaligned stores allowed.
            unsafe { _mm512_storeu_ps(out.as_mut_ptr(), self.0) }
        }

        #[inline(always)]
        fn splat(x: f32) -> Self {
            // SAFETY: see the module: the CPU has AVX-512F.
            F32x16(unsafe { _mm512_set1_ps(x) })
        }

        #[inline(always)]
        fn scaled(self, s: f32) -> Self {
            // SAFETY: see the module: the CPU has AVX-512F.
            F32x16(unsafe { _mm512_mul_ps(self.0, _mm512_set1_ps(s)) })
        }

        #[inline(always)]
        fn plus(self, other: Self) -> Self {
            // SAFETY: see the module: the CPU has AVX-512F.
            F32x16(unsafe { _mm512_add_ps(self.0, other.0) })
        }

        #[inline(always)]
        fn select(keep: __mmask16, v: Self) -> Self {
            // SAFETY: see the module: the CPU has AVX-512F.
            F32x16(unsafe { _mm512_maskz_mov_ps(keep, v.0) })
        }

        #[inline(always)]
        fn either(keep: __mmask16, kept: Self, dropped: Self) -> Self {
            // SAFETY: see the module: the CPU has AVX-512F.
            F32x16(unsafe { _mm512_mask_blend_ps(keep, dropped.0, kept.0) })
        }
    }

    /// 8 `f32` lanes; the keep bits spread to whole lanes.
    #[derive(Clone, Copy)]
    pub(crate) struct F32x8(__m256);

    impl Lanes<f32> for F32x8 {
        const WIDTH: usize = 8;
        type Keep = __m256;

        #[inline(always)]
        fn keep(word: u64, block: usize) -> __m256 {
            let byte = (word >> (8 * block)) as u8;
            // SAFETY: see the module: the CPU has AVX2.
            unsafe {
                // Bit i of the byte to lane i's sign, then to all its bits.
                let top = _mm256_sllv_epi32(
                    _mm256_set1_epi32(i32::from(byte)),
                    _mm256_setr_epi32(31, 30, 29, 28, 27, 26, 25, 24),
                );
                _mm256_castsi256_ps(_mm256_srai_epi32::<31>(top))
            }
        }

        #[inline(always)]
        fn load(x: &[f32]) -> Self {
            let x = &x[..8];
            // SAFETY: see the module: the CPU has AVX2; the read is of the
            // 8 elements of `x`, unaligned loads allowed.
            F32x8(unsafe { _mm256_loadu_ps(x.as_ptr()) })
        }

        #[inline(always)]
        fn store(self, out: &mut [f32]) {
            let out = &mut out[..8];
            // SAFETY: see the module: the CPU has AVX2; the write is of the
            // 8 elements of `out`, unaligned stores allowed.
            unsafe { _mm256_storeu_ps(out.as_mut_ptr(), self.0) }
        }

        #[inline(always)]
        fn splat(x: f32) -> Self {
            // SAFETY: see the module: the CPU has AVX2.
            F32x8(unsafe { _mm256_set1_ps(x) })
        }

        #[inline(always)]
        fn scaled(self, s: f32) -> Self {
            // SAFETY: see the module: the CPU has AVX2.
            F32x8(unsafe { _mm256_mul_ps(self.0, _mm256_set1_ps(s)) })
        }

        #[inline(always)]
        fn plus(self, other: Self) -> Self {
            // SAFETY: see the module: the CPU has AVX2.
            F32x8(unsafe { _mm256_add_ps(self.0, other.0) })
        }

        #[inline(always)]
        fn select(keep: __m256, v: Self) -> Self {
            // SAFETY: see the module: the CPU has AVX2.
            F32x8(unsafe { _mm256_and_ps(keep, v.0) })
        }

        #[inline(always)]
        fn either(keep: __m256, kept: Self, dropped: Self) -> Self {
            // SAFETY: see the module: the CPU has AVX2.
            F32x8(unsafe { _mm256_blendv_ps(dropped.0, kept.0, keep) })
        }
    }
}
