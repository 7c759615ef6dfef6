//! The element type plug-in point: everything an operation needs to know
//! about the type it computes on: `f32` here, `bf16` and `f16` in
//! `narrow.rs`, each an implementation of [`Element`].
//!
//! Each type gives the element rule twice: one element at a time (what the
//! reference computes) and over SIMD lanes (what the fast path computes:
//! `wide`'s eight lanes, or for `f32` 16 AVX-512 or 8 AVX2 lanes where the
//! CPU has them, `lanes.rs`). The tests hold the two bit-identical.

use crate::dispatch::{Cpu, Level};
use crate::lanes::{self, LaneTask};
use wide::{f32x8, u32x8};

/// An element type of the operations: `f32`, and with the `half` feature
/// `half::bf16` and `half::f16`. Every operation is generic over it; the
/// mask bits never depend on it. See [the crate docs](crate#element-types)
/// for how each type rounds.
///
/// Sealed: the crate implements it for the types it supports.
///
/// ```
/// # #[cfg(feature = "half")] {
/// use bitdrop::half::bf16;
/// use bitdrop::{Dropout, Keyed, Mode};
///
/// let dropout = Dropout::new(0.25)?;
/// let mut xs = vec![bf16::from_f32(1.5); 300];
/// let mut wide = vec![1.5_f32; 300];
/// dropout.forward(Mode::Train, &mut xs, Keyed::new(3, 0))?;
/// dropout.forward(Mode::Train, &mut wide, Keyed::new(3, 0))?;
/// // The same decisions; a kept 1.5 * s (s = 4/3 rounded to f32) is 2.0
/// // in both types.
/// for (x, w) in xs.iter().zip(&wide) {
///     assert_eq!(x.to_bits() == 0, *w == 0.0);
///     assert!(x.to_bits() == 0 || *x == bf16::from_f32(2.0));
/// }
/// # }
/// # Ok::<(), bitdrop::Error>(())
/// ```
pub trait Element: sealed::Sealed {}

impl Element for f32 {}

#[cfg(feature = "half")]
impl Element for half::bf16 {}

#[cfg(feature = "half")]
impl Element for half::f16 {}

pub(crate) mod sealed {
    use super::*;

    /// The crate-internal face of [`Element`].
    pub trait Sealed: Copy + core::fmt::Debug + Send + Sync + 'static {
        /// `+0.0` of the type: what a dropped element becomes.
        const ZERO: Self;
        /// Eight elements in SIMD lanes.
        type Lanes: Copy;

        /// A kept element: `x * scale`, rounded once to the type.
        fn scaled(self, scale: f32) -> Self;
        /// One addition, rounded once to the type.
        fn plus(self, other: Self) -> Self;

        /// `v` rounded once to the type, to nearest, ties to even.
        fn from_f32_rounded(v: f32) -> Self;

        /// Lanes from eight elements.
        fn load(x: &[Self; 8]) -> Self::Lanes;
        /// Lanes back to eight elements.
        fn store(v: Self::Lanes, out: &mut [Self; 8]);
        /// [`scaled`](Sealed::scaled), lane by lane.
        fn scaled_lanes(v: Self::Lanes, scale: f32) -> Self::Lanes;
        /// [`plus`](Sealed::plus), lane by lane.
        fn plus_lanes(a: Self::Lanes, b: Self::Lanes) -> Self::Lanes;
        /// `v` where `keep` is all ones, [`ZERO`](Sealed::ZERO) where it is
        /// all zeros: a select on the bits, so NaN and inf cannot leak.
        fn select_lanes(keep: u32x8, v: Self::Lanes) -> Self::Lanes;
        /// `kept` where `keep` is all ones, `dropped` where it is all
        /// zeros, on the bits.
        fn either_lanes(keep: u32x8, kept: Self::Lanes, dropped: Self::Lanes) -> Self::Lanes;

        /// Runs `task` in the widest lanes `cpu` offers this type:
        /// `wide`'s eight, the lanes of the functions above, in a function
        /// of their own, unless the type says otherwise.
        #[inline(always)]
        fn in_widest<I: Level>(cpu: Cpu<I>, task: impl LaneTask<Self>) {
            lanes::in_portable(cpu, task);
        }
    }
}

impl sealed::Sealed for f32 {
    const ZERO: Self = 0.0;
    type Lanes = f32x8;

    #[inline(always)]
    fn scaled(self, scale: f32) -> Self {
        self * scale
    }

    #[inline(always)]
    fn plus(self, other: Self) -> Self {
        self + other
    }

    fn from_f32_rounded(v: f32) -> Self {
        v
    }

    #[inline(always)]
    fn load(x: &[Self; 8]) -> f32x8 {
        f32x8::new(*x)
    }

    #[inline(always)]
    fn store(v: f32x8, out: &mut [Self; 8]) {
        *out = v.to_array();
    }

    #[inline(always)]
    fn scaled_lanes(v: f32x8, scale: f32) -> f32x8 {
        v * f32x8::splat(scale)
    }

    #[inline(always)]
    fn plus_lanes(a: f32x8, b: f32x8) -> f32x8 {
        a + b
    }

    #[inline(always)]
    fn select_lanes(keep: u32x8, v: f32x8) -> f32x8 {
        f32x8::from_bits(v.to_bits() & keep)
    }

    #[inline(always)]
    fn either_lanes(keep: u32x8, kept: f32x8, dropped: f32x8) -> f32x8 {
        f32x8::from_bits(keep.bitselect(kept.to_bits(), dropped.to_bits()))
    }

    #[inline(always)]
    fn in_widest<I: Level>(cpu: Cpu<I>, task: impl LaneTask<Self>) {
        lanes::widest_f32(cpu, task);
    }
}
