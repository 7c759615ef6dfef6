//! Runs a kernel with the best instructions for the CPU at hand.
//!
//! `wide` fixes its instructions when it is compiled, so a default x86-64
//! build runs SSE2. With the `std` feature, an x86-64 build checks the CPU
//! (std caches the answer; a build that already targets a level knows it
//! at compile time) and runs the kernel compiled inside a
//! `#[target_feature]` function: with AVX-512F where the CPU has it, else
//! with AVX2, BMI2 and POPCNT (every AVX2 CPU has the other two). There the
//! `f32` element rules and the keyed stream's generators run in 512-bit or
//! 256-bit registers (`lanes.rs`, `keyed.rs`), the rest is the same `wide`
//! code in VEX or EVEX encoding, bit counts take one instruction, and bit
//! deposit (`PDEP`) one for mask stream v2's second stage, unless the CPU
//! runs it in microcode (AMD before Zen 3). The results are the same bits
//! either way. Under Miri the check reports the features given with `-C`,
//! so `-C target-feature=+avx2,+bmi2,+popcnt` (or `-C
//! target-cpu=x86-64-v4`) runs these paths there too.
#![allow(unsafe_code)]

/// A computation to run with the best instructions available.
pub(crate) trait Kernel {
    /// Must be `#[inline(always)]`, as must everything it calls, so that
    /// the whole computation is generated inside the dispatched function.
    fn run<I: Level>(self, cpu: Cpu<I>);
}

/// An instruction level a kernel is compiled for. Its flags are constants
/// of the type, and code branches on them with `if I::AVX512` (never on a
/// run-time value): rustc then generates only the taken branch of each
/// level's copy. (Tested at run time, every kernel built the lanes of all
/// three levels into each of the three copies, and the test suite took
/// three times as long to build.)
pub trait Level: Copy {
    /// The CPU has AVX2 (and, beyond [`Build`], BMI2 and POPCNT too).
    const AVX2: bool;
    /// The CPU has AVX-512F (and AVX2, BMI2 and POPCNT).
    const AVX512: bool;
}

/// What the build's target guarantees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Build;

impl Level for Build {
    const AVX2: bool = cfg!(all(target_arch = "x86_64", target_feature = "avx2"));
    const AVX512: bool = cfg!(all(target_arch = "x86_64", target_feature = "avx512f"));
}

/// AVX2, BMI2 and POPCNT, detected at run time.
#[cfg(all(feature = "std", target_arch = "x86_64"))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Avx2;

#[cfg(all(feature = "std", target_arch = "x86_64"))]
impl Level for Avx2 {
    const AVX2: bool = true;
    const AVX512: bool = false;
}

/// AVX-512F, AVX2, BMI2 and POPCNT, detected at run time.
#[cfg(all(feature = "std", target_arch = "x86_64"))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Avx512;

#[cfg(all(feature = "std", target_arch = "x86_64"))]
impl Level for Avx512 {
    const AVX2: bool = true;
    const AVX512: bool = true;
}

/// Nothing beyond the baseline: the portable code everywhere.
#[cfg(test)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Baseline;

#[cfg(test)]
impl Level for Baseline {
    const AVX2: bool = false;
    const AVX512: bool = false;
}

/// What the kernel may use: the instructions of level `I`, and `PDEP`
/// where `pdep()`. Private fields: only `run`, `run_on` (from a `Cpu` it is
/// given) and the constants below make values, so a `Cpu<I>` exists only
/// where the CPU has `I`'s instructions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cpu<I> {
    level: I,
    /// The CPU has BMI2 and runs `PDEP` in hardware.
    pdep: bool,
}

impl Cpu<Build> {
    /// What the build's target guarantees. (A build for a Zen 2 CPU, with
    /// BMI2, gets the microcoded `PDEP` only without `std`: with it,
    /// `run` checks the CPU.)
    pub(crate) const BUILD: Cpu<Build> = Cpu {
        level: Build,
        pdep: cfg!(all(target_arch = "x86_64", target_feature = "bmi2")),
    };
}

#[cfg(test)]
impl Cpu<Baseline> {
    /// Nothing beyond the baseline: the portable code everywhere.
    pub(crate) const PORTABLE: Cpu<Baseline> = Cpu {
        level: Baseline,
        pdep: false,
    };
}

impl<I: Level> Cpu<I> {
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

/// Runs `kernel`, with AVX-512F (with FMA and F16C), or else AVX2, BMI2
/// and POPCNT, enabled where the CPU has them.
#[inline]
pub(crate) fn run(kernel: impl Kernel) {
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    if std::is_x86_feature_detected!("avx2")
        && std::is_x86_feature_detected!("bmi2")
        && std::is_x86_feature_detected!("popcnt")
    {
        let pdep = !pdep_is_microcoded();
        // rustc's `avx512f` implies FMA and F16C, so the compiler may use
        // them in `avx512`: a CPU (or a hypervisor) that reports AVX-512F
        // without them runs the AVX2 kernels.
        if std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("fma")
            && std::is_x86_feature_detected!("f16c")
        {
            // SAFETY: `avx512` requires only that the CPU supports
            // AVX-512F, FMA, F16C, AVX2, BMI2 and POPCNT, detected just
            // above.
            unsafe {
                avx512(
                    kernel,
                    Cpu {
                        level: Avx512,
                        pdep,
                    },
                )
            };
        } else {
            // SAFETY: `avx2` requires only that the CPU supports AVX2,
            // BMI2 and POPCNT, which were detected at run time just above.
            unsafe { avx2(kernel, Cpu { level: Avx2, pdep }) };
        }
        return;
    }
    kernel.run(Cpu::BUILD);
}

/// Runs `kernel` with the instructions of `cpu` (which `run` or
/// [`Cpu::BUILD`] made): for code compiled once per level, in a function
/// of its own that the kernels call, rather than inlined into each of
/// them.
#[inline(always)]
pub(crate) fn run_on<I: Level>(cpu: Cpu<I>, kernel: impl Kernel) {
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    {
        let pdep = cpu.pdep;
        if I::AVX512 && !Build::AVX512 {
            // SAFETY: a `Cpu<I>` with `I::AVX512` beyond the build's is
            // made only by `run`, after detecting AVX-512F, FMA, F16C,
            // AVX2, BMI2 and POPCNT at run time.
            unsafe {
                avx512(
                    kernel,
                    Cpu {
                        level: Avx512,
                        pdep,
                    },
                )
            };
            return;
        }
        if I::AVX2 && !Build::AVX2 {
            // SAFETY: a `Cpu<I>` with `I::AVX2` beyond the build's is made
            // only by `run`, after detecting AVX2, BMI2 and POPCNT.
            unsafe { avx2(kernel, Cpu { level: Avx2, pdep }) };
            return;
        }
    }
    // Here `I`'s instructions are the build's.
    kernel.run(Cpu {
        level: Build,
        pdep: cpu.pdep,
    });
}

/// `kernel` compiled with AVX2, BMI2 and POPCNT enabled, and `PDEP` used
/// if `cpu.pdep`. (The level is a type, so the kernel's tests of it fold
/// away; `pdep` stays a flag, tested once per bit deposit, so that the
/// kernel is not compiled twice for CPUs of a rare kind.)
#[cfg(all(feature = "std", target_arch = "x86_64"))]
#[target_feature(enable = "avx2,bmi2,popcnt")]
fn avx2(kernel: impl Kernel, cpu: Cpu<Avx2>) {
    kernel.run(cpu);
}

/// `kernel` compiled with AVX-512F (and FMA and F16C, which rustc's
/// `avx512f` implies, AVX2, BMI2, POPCNT) enabled, as `avx2` is.
#[cfg(all(feature = "std", target_arch = "x86_64"))]
#[target_feature(enable = "avx512f,fma,f16c,avx2,bmi2,popcnt")]
fn avx512(kernel: impl Kernel, cpu: Cpu<Avx512>) {
    kernel.run(cpu);
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
