//! The element type plug-in point: everything an operation needs to know
//! about the type it computes on. Only `f32` today; `bf16` and `f16` plug in
//! here, each as a new implementation of [`Element`].
//!
//! Each type gives the element rule twice: one element at a time (what the
//! reference computes) and eight at a time in `wide` lanes (what the fast
//! path computes). The tests hold the two bit-identical.

use wide::{f32x8, u32x8};

/// An element type of the operations: `f32` (and, later, the `half` types).
///
/// Sealed: the crate implements it for the types it supports.
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
}
