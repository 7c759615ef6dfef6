//! Runs a kernel with the best instructions for the CPU at hand.
//!
//! `wide` fixes its instructions when it is compiled, so a default x86-64
//! build runs SSE2. With the `std` feature, an x86-64 build checks the CPU
//! (std caches the answer; a build that already targets AVX2 knows it at
//! compile time) and, where AVX2, BMI2 and POPCNT are present (every AVX2
//! CPU has the other two), runs the kernel compiled inside a
//! `#[target_feature]` function: the same `wide` code, in VEX-encoded
//! instructions, measured about 15% faster on a default build (see
//! `benches/README.md`), bit counts in one instruction, and bit deposit
//! (`PDEP`) in one instruction for mask stream v2's second stage. The
//! results are the same bits either way. Under Miri the check reports the
//! features given with `-C`, so `-C target-feature=+avx2,+bmi2,+popcnt`
//! runs this path there too.
#![allow(unsafe_code)]

/// A computation to run with the best instructions available.
pub(crate) trait Kernel {
    /// Must be `#[inline(always)]`, as must everything it calls, so that
    /// the whole computation is generated inside the dispatched function.
    fn run(self, cpu: Cpu);
}

/// What the kernel may use beyond the build's target: a constant in each
/// dispatched copy of the kernel, so its tests fold away.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cpu {
    /// The CPU has AVX2 and BMI2. Private: only `run` and `BUILD` set it.
    avx2: bool,
    bmi2: bool,
}

impl Cpu {
    /// What the build's target guarantees.
    pub(crate) const BUILD: Cpu = Cpu {
        avx2: cfg!(all(target_arch = "x86_64", target_feature = "avx2")),
        bmi2: cfg!(all(target_arch = "x86_64", target_feature = "bmi2")),
    };

    /// Nothing beyond the baseline: the portable code everywhere.
    #[cfg(test)]
    pub(crate) const PORTABLE: Cpu = Cpu {
        avx2: false,
        bmi2: false,
    };

    /// The CPU has AVX2: code that may run only there is allowed. (Only
    /// x86-64 builds below AVX-512 have such code.)
    #[cfg_attr(
        not(all(target_arch = "x86_64", not(target_feature = "avx512f"))),
        allow(dead_code)
    )]
    #[inline(always)]
    pub(crate) fn avx2(self) -> bool {
        self.avx2
    }

    /// The low bits of `src`, in order, moved to the set bits of `mask`,
    /// lowest first (x86 `PDEP`); the other bits clear.
    #[inline(always)]
    pub(crate) fn deposit(self, src: u64, mask: u64) -> u64 {
        #[cfg(target_arch = "x86_64")]
        if self.bmi2 {
            // SAFETY: `bmi2` is true only when the CPU has BMI2: in
            // `BUILD` when the target guarantees it, in `run` after
            // detecting it at run time.
            return unsafe { core::arch::x86_64::_pdep_u64(src, mask) };
        }
        let (mut out, mut src, mut mask) = (0, src, mask);
        while mask != 0 {
            let lowest = mask & mask.wrapping_neg();
            out |= lowest & (src & 1).wrapping_neg();
            src >>= 1;
            mask &= mask - 1;
        }
        out
    }
}

/// Runs `kernel`, with AVX2, BMI2 and POPCNT enabled where the CPU has them.
#[inline]
pub(crate) fn run(kernel: impl Kernel) {
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    if std::is_x86_feature_detected!("avx2")
        && std::is_x86_feature_detected!("bmi2")
        && std::is_x86_feature_detected!("popcnt")
    {
        // SAFETY: `avx2` requires only that the CPU supports AVX2, BMI2
        // and POPCNT, which were detected at run time just above.
        unsafe { avx2(kernel) };
        return;
    }
    kernel.run(Cpu::BUILD);
}

/// Runs `kernel` with the instructions of `cpu` (which `run` or
/// [`Cpu::BUILD`] made): for code compiled once, in a function of its own
/// that the kernels call, rather than inlined into each of them.
#[inline(always)]
pub(crate) fn run_on(cpu: Cpu, kernel: impl Kernel) {
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    if cpu.avx2 && cpu.bmi2 && cpu != Cpu::BUILD {
        // SAFETY: only `run` sets both beyond `BUILD`, after detecting
        // AVX2, BMI2 and POPCNT at run time.
        unsafe { avx2(kernel) };
        return;
    }
    kernel.run(cpu);
}

/// `kernel` compiled with AVX2, BMI2 and POPCNT enabled.
#[cfg(all(feature = "std", target_arch = "x86_64"))]
#[target_feature(enable = "avx2,bmi2,popcnt")]
fn avx2(kernel: impl Kernel) {
    kernel.run(Cpu {
        avx2: true,
        bmi2: true,
    });
}
