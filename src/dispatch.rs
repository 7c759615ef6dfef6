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
//! (`PDEP`) in one instruction for mask stream v2's second stage, unless
//! the CPU runs it in microcode (AMD before Zen 3). The results are the
//! same bits either way. Under Miri the check reports the features given
//! with `-C`, so `-C target-feature=+avx2,+bmi2,+popcnt` runs this path
//! there too.
#![allow(unsafe_code)]

/// A computation to run with the best instructions available.
pub(crate) trait Kernel {
    /// Must be `#[inline(always)]`, as must everything it calls, so that
    /// the whole computation is generated inside the dispatched function.
    fn run(self, cpu: Cpu);
}

/// What the kernel may use beyond the build's target. Private fields: only
/// `run` and `BUILD` set them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cpu {
    /// The CPU has AVX2 (and, where `run` set it beyond `BUILD`, BMI2 and
    /// POPCNT too).
    avx2: bool,
    /// The CPU has BMI2 and runs `PDEP` in hardware.
    pdep: bool,
}

impl Cpu {
    /// What the build's target guarantees. (A build for a Zen 2 CPU, with
    /// BMI2, gets the microcoded `PDEP` only without `std`: with it,
    /// `run` checks the CPU.)
    pub(crate) const BUILD: Cpu = Cpu {
        avx2: cfg!(all(target_arch = "x86_64", target_feature = "avx2")),
        pdep: cfg!(all(target_arch = "x86_64", target_feature = "bmi2")),
    };

    /// Nothing beyond the baseline: the portable code everywhere.
    #[cfg(test)]
    pub(crate) const PORTABLE: Cpu = Cpu {
        avx2: false,
        pdep: false,
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
        if self.pdep {
            // SAFETY: `pdep` is true only when the CPU has BMI2: in
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
        unsafe { avx2(kernel, !pdep_is_microcoded()) };
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
    if cpu.avx2 && !Cpu::BUILD.avx2 {
        // SAFETY: only `run` sets `avx2` beyond `BUILD`, after detecting
        // AVX2, BMI2 and POPCNT at run time.
        unsafe { avx2(kernel, cpu.pdep) };
        return;
    }
    // Here `cpu.avx2` is the build's: a constant.
    kernel.run(Cpu {
        avx2: Cpu::BUILD.avx2,
        pdep: cpu.pdep,
    });
}

/// `kernel` compiled with AVX2, BMI2 and POPCNT enabled, and `PDEP` used
/// if `pdep`. (`avx2` is a constant there, so the kernel's tests of it
/// fold away; `pdep` stays a flag, tested once per bit deposit, so that
/// the kernel is not compiled twice for CPUs of a rare kind.)
#[cfg(all(feature = "std", target_arch = "x86_64"))]
#[target_feature(enable = "avx2,bmi2,popcnt")]
fn avx2(kernel: impl Kernel, pdep: bool) {
    kernel.run(Cpu { avx2: true, pdep });
}

/// Whether this CPU runs `PDEP` in microcode: AMD's before Zen 3 (family
/// 19h; Excavator, Zen, Zen 2) and Hygon's (Zen-based) do, about 300
/// cycles a call on Zen 2, where Zen 3 and Intel take 3 and the loop over
/// set bits a few per bit. Asked once, then cached. (Miri cannot run
/// `CPUID`: there, no.)
#[cfg(all(feature = "std", target_arch = "x86_64"))]
fn pdep_is_microcoded() -> bool {
    use core::sync::atomic::{AtomicU8, Ordering::Relaxed};
    // 0: not asked yet; 1: no; 2: yes.
    static ANSWER: AtomicU8 = AtomicU8::new(0);
    if ANSWER.load(Relaxed) == 0 {
        let slow = !cfg!(miri) && {
            use core::arch::x86_64::__cpuid;
            // SAFETY: every x86-64 CPU has `CPUID`, with leaves 0 and 1.
            // (A safe function in Rust 1.95, unsafe in 1.89, the MSRV.)
            #[allow(unused_unsafe)]
            let (vendor, signature) = unsafe { (__cpuid(0), __cpuid(1).eax) };
            let mut name = [0; 12];
            for (bytes, word) in name.chunks_mut(4).zip([vendor.ebx, vendor.edx, vendor.ecx]) {
                bytes.copy_from_slice(&word.to_le_bytes());
            }
            microcoded_pdep(&name, signature)
        };
        ANSWER.store(1 + u8::from(slow), Relaxed);
    }
    ANSWER.load(Relaxed) == 2
}

/// Whether a CPU of `vendor` (`CPUID` leaf 0) and `signature` (leaf 1,
/// `EAX`) runs `PDEP` in microcode.
#[cfg_attr(not(all(feature = "std", target_arch = "x86_64")), allow(dead_code))]
fn microcoded_pdep(vendor: &[u8; 12], signature: u32) -> bool {
    let base = (signature >> 8) & 0xF;
    let family = if base == 0xF {
        base + ((signature >> 20) & 0xFF)
    } else {
        base
    };
    match vendor {
        b"AuthenticAMD" => family < 0x19,
        b"HygonGenuine" => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::microcoded_pdep;

    #[test]
    fn pdep_is_microcoded_on_amd_before_zen_3_only() {
        // CPUID leaf 1 signatures of real CPUs.
        let cases: [(&[u8; 12], u32, bool); 8] = [
            (b"AuthenticAMD", 0x0080_0F12, true),  // Zen (EPYC 7001)
            (b"AuthenticAMD", 0x0083_0F10, true),  // Zen 2 (EPYC 7002)
            (b"HygonGenuine", 0x0090_0F01, true),  // Hygon Dhyana
            (b"AuthenticAMD", 0x00A0_0F11, false), // Zen 3 (EPYC 7003)
            (b"AuthenticAMD", 0x00A1_0F11, false), // Zen 4 (EPYC 9004)
            (b"AuthenticAMD", 0x0066_0F01, true),  // Excavator, family 15h
            (b"AuthenticAMD", 0x00B4_0F40, false), // Zen 5, family 1Ah
            (b"GenuineIntel", 0x0005_0657, false), // Cascade Lake, family 6
        ];
        for (vendor, signature, slow) in cases {
            assert_eq!(microcoded_pdep(vendor, signature), slow, "{signature:#x}");
        }
    }
}
