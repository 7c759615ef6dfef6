//! Runs a kernel with the best instructions for the CPU at hand.
//!
//! `wide` fixes its instructions when it is compiled, so a default x86-64
//! build runs SSE2. With the `std` feature, an x86-64 build checks the CPU
//! (std caches the answer; a build that already targets AVX2 knows it at
//! compile time) and, where AVX2 and POPCNT are present (every AVX2 CPU has
//! both), runs the kernel compiled inside an AVX2 `#[target_feature]`
//! function: the same `wide` code, in VEX-encoded instructions, measured
//! about 15% faster on a default build (see `benches/README.md`), and bit
//! counts in one instruction. The results are the same bits
//! either way. Under Miri the check reports the features given with `-C`,
//! so `-C target-feature=+avx2,+popcnt` runs this path there too.
#![allow(unsafe_code)]

/// A computation to run with the best instructions available.
pub(crate) trait Kernel {
    /// Must be `#[inline(always)]`, as must everything it calls, so that
    /// the whole computation is generated inside the dispatched function.
    fn run(self);
}

/// Runs `kernel`, with AVX2 and POPCNT enabled where the CPU has them.
#[inline]
pub(crate) fn run(kernel: impl Kernel) {
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("popcnt") {
        // SAFETY: `avx2` requires only that the CPU supports AVX2 and
        // POPCNT, which were detected at run time just above.
        unsafe { avx2(kernel) };
        return;
    }
    kernel.run();
}

/// `kernel` compiled with AVX2 and POPCNT enabled.
#[cfg(all(feature = "std", target_arch = "x86_64"))]
#[target_feature(enable = "avx2,popcnt")]
fn avx2(kernel: impl Kernel) {
    kernel.run();
}
