//! The `f64` functions the formulas of the family use, as they are
//! documented: `libm`'s (software implementations, the same bits on every
//! target), except where the hardware gives the same bits faster.

pub(crate) use libm::{log, sincos};

/// The correctly rounded square root: the instruction where `std` has it
/// (`libm` without its `arch` feature computes it in software, which cost
/// the Gaussian calls a third of their speed), `libm`'s otherwise. IEEE 754
/// fixes the result, so both give the same bits.
#[cfg(feature = "std")]
#[inline(always)]
pub(crate) fn sqrt(x: f64) -> f64 {
    x.sqrt()
}

/// The correctly rounded square root, in software.
#[cfg(not(feature = "std"))]
#[inline(always)]
pub(crate) fn sqrt(x: f64) -> f64 {
    libm::sqrt(x)
}
