//! The 16-bit element types, `bf16` and `f16` (feature `half`): both
//! computed in `f32` lanes, each result rounded once to the type.
//!
//! A kept element is the exact product `x * s` rounded to nearest even in
//! the type. The exact product of a `bf16` (8-bit significand) or `f16`
//! (11-bit) and the `f32` scale (24-bit) has up to 35 bits, so `f32`'s own
//! product, rounded again to the type, would round twice and could land on
//! the wrong side of a tie. Each path computes the single rounding its own
//! way:
//!
//! - One element ([`Sealed::scaled`], what the reference computes): the
//!   product in `f64`, where it is exact, then [`round_f64`], which rounds
//!   on the integer significand.
//! - Eight lanes (the fast path): `f32`'s product rounded to the type is
//!   already the correct rounding unless it fell exactly on a midpoint of
//!   the type's grid (the midpoints are `f32` numbers and rounding is
//!   monotone, so it cannot cross one). Blocks with such a lane (for random
//!   data about one lane in 2^13 for `f16`, 2^16 for `bf16`; none when `s`
//!   has few enough bits for `f32`'s product to be exact) take the exact
//!   way: the scale split in two so that both partial products are exact
//!   in `f32`, their sum and its error (Fast2Sum), the sum rounded to odd
//!   by that error, then rounded to the type on the bits. Rounding to odd at 24 bits and then
//!   to nearest even at 8 or 11 is the one correct rounding. Blocks with a
//!   subnormal, infinite or NaN lane, or a product near the type's overflow
//!   or below its smallest normal number (scales below 1, as alpha
//!   dropout's, reach there), take the general way, the exact one with the type's subnormal grid and
//!   overflow; tiny `bf16` inputs, whose second partial product would be an
//!   `f32` subnormal, are computed there `2^64` times larger and rounded on
//!   the type's grid scaled alike. On this machine the exact result costs
//!   no measurable speed against rounding `f32`'s product again (see
//!   `benches/README.md`).
//!
//! A sum of two elements is the exact sum rounded once to the type. One
//! element computes it in `f64`, eight in `f32`; either sum may itself be
//! rounded (a `bf16` sum in `f64` when the exponents are far apart), but a
//! sum rounded first to `q` bits and then to the type's `p` is the
//! correctly rounded sum whenever `q >= 2p + 2`, as 53 and 24 are for 8 and
//! 11.

use crate::element::sealed::Sealed;
use half::{bf16, f16};
use wide::{f32x8, u32x8};

/// What tells the two 16-bit types apart: the same sign, exponent and
/// significand layout in different proportions.
pub(crate) trait Narrow: Copy + core::fmt::Debug + Send + Sync + 'static {
    /// Significand bits, the implicit one included: 8 or 11.
    const PRECISION: u32;
    /// The exponent of the smallest normal number: -126 or -14.
    const MIN_EXP: i32;
    /// Inputs of smaller magnitude are computed `2^64` times larger, so
    /// that no partial product is an `f32` subnormal (0 where none is).
    const TINY: f32;
    /// `+0.0`.
    const POSITIVE_ZERO: Self;

    fn to_bits(self) -> u16;
    fn from_bits(bits: u16) -> Self;
    /// The value, exactly.
    fn to_f64(self) -> f64;
    /// Eight elements' bits (in the low halves) to their exact `f32` values.
    fn widen(bits: u32x8) -> f32x8;
    /// Eight `f32` values on the type's grid (or NaN) to their bits.
    fn narrow(v: f32x8) -> u32x8;
}

impl Narrow for bf16 {
    const PRECISION: u32 = 8;
    const MIN_EXP: i32 = -126;
    const TINY: f32 = 1.0 / 18_446_744_073_709_551_616.0; // 2^-64
    const POSITIVE_ZERO: Self = bf16::ZERO;

    fn to_bits(self) -> u16 {
        bf16::to_bits(self)
    }

    fn from_bits(bits: u16) -> Self {
        bf16::from_bits(bits)
    }

    fn to_f64(self) -> f64 {
        bf16::to_f64(self)
    }

    #[inline(always)]
    fn widen(bits: u32x8) -> f32x8 {
        // bf16 is the top half of an f32, subnormals and NaN payloads too.
        f32x8::from_bits(bits << 16)
    }

    #[inline(always)]
    fn narrow(v: f32x8) -> u32x8 {
        v.to_bits() >> 16
    }
}

impl Narrow for f16 {
    const PRECISION: u32 = 11;
    const MIN_EXP: i32 = -14;
    const TINY: f32 = 0.0;
    const POSITIVE_ZERO: Self = f16::ZERO;

    fn to_bits(self) -> u16 {
        f16::to_bits(self)
    }

    fn from_bits(bits: u16) -> Self {
        f16::from_bits(bits)
    }

    fn to_f64(self) -> f64 {
        f16::to_f64(self)
    }

    #[inline(always)]
    fn widen(bits: u32x8) -> f32x8 {
        let sign = (bits & u32x8::splat(0x8000)) << 16;
        let a = bits & u32x8::splat(0x7FFF);
        // Normal: rebias the exponent (127 - 15) << 23.
        let normal = (a << 13) + u32x8::splat(0x3800_0000);
        // Infinity and NaN: the top exponent, the payload shifted along.
        let special = (a << 13) | u32x8::splat(0x7F80_0000);
        // Subnormal: a * 2^-24, as (0.5 + a * 2^-24) - 0.5, both exact.
        let sub = (f32x8::from_bits(a | u32x8::splat(0x3F00_0000)) - f32x8::splat(0.5)).to_bits();
        let bits = a.simd_gt(u32x8::splat(0x7BFF)).bitselect(
            special,
            a.simd_gt(u32x8::splat(0x03FF)).bitselect(normal, sub),
        );
        f32x8::from_bits(bits | sign)
    }

    #[inline(always)]
    fn narrow(v: f32x8) -> u32x8 {
        let b = v.to_bits();
        let sign = (b >> 16) & u32x8::splat(0x8000);
        let a = b & u32x8::splat(0x7FFF_FFFF);
        let special = u32x8::splat(0x7C00) | ((a >> 13) & u32x8::splat(0x03FF));
        let normal = (a - u32x8::splat(0x3800_0000)) >> 13;
        // Subnormal k * 2^-24: the bits of 0.5 + k * 2^-24, less 0.5's.
        let sub = (f32x8::from_bits(a) + f32x8::splat(0.5)).to_bits() - u32x8::splat(0x3F00_0000);
        let bits = a.simd_gt(u32x8::splat(0x7F7F_FFFF)).bitselect(
            special,
            a.simd_gt(u32x8::splat(0x387F_FFFF)).bitselect(normal, sub),
        );
        bits | sign
    }
}

/// The bits of an infinity.
const fn inf_bits<T: Narrow>() -> u16 {
    (0x7FFF >> (T::PRECISION - 1)) << (T::PRECISION - 1)
}

/// `v` rounded to nearest, ties to even, in `T`: on the integer
/// significand, with no intermediate rounding. NaN becomes `T`'s quiet NaN
/// with `v`'s sign and the top of its payload.
pub(crate) fn round_f64<T: Narrow>(v: f64) -> T {
    let bits = v.to_bits();
    let sign = ((bits >> 63) as u16) << 15;
    let p = T::PRECISION;
    if v.is_nan() {
        let payload = (bits >> (53 - p)) as u16 & ((1 << (p - 1)) - 1);
        return T::from_bits(sign | inf_bits::<T>() | 1 << (p - 2) | payload);
    }
    let a = v.abs();
    // f64 subnormals are far below half of T's smallest subnormal.
    if a.is_infinite() || a < f64::MIN_POSITIVE {
        return T::from_bits(sign | if a.is_infinite() { inf_bits::<T>() } else { 0 });
    }
    // a = m * 2^(e - 52) with m a 53-bit integer.
    let e = ((a.to_bits() >> 52) as i32) - 1023;
    let m = a.to_bits() & ((1 << 52) - 1) | 1 << 52;
    // The result is k * 2^q: q is T's quantum at a's binade.
    let q = e.max(T::MIN_EXP) - (p as i32 - 1);
    let shift = (q - (e - 52)) as u32; // at least 53 - p
    if shift > 55 {
        return T::from_bits(sign); // below a quarter of the quantum
    }
    let mut k = m >> shift;
    let rest = m & ((1 << shift) - 1);
    let half = 1 << (shift - 1);
    if rest > half || (rest == half && k & 1 == 1) {
        k += 1;
    }
    // k's leading bit (if any) carries into the exponent field: a carry
    // out of the significand moves to the next binade, up to infinity.
    let field = (q - (T::MIN_EXP - (p as i32 - 1))) as u64;
    let magnitude = (field << (p - 1)) + k;
    let magnitude = magnitude.min(u64::from(inf_bits::<T>())) as u16;
    T::from_bits(sign | magnitude)
}

/// `x * s` rounded once to `T`: in `f64`, where the product is exact. A
/// NaN stays itself, quieted.
fn scaled_one<T: Narrow>(x: T, s: f32) -> T {
    let v = x.to_f64();
    if v.is_nan() {
        return quiet(x);
    }
    round_f64(v * f64::from(s))
}

/// A NaN with its quiet bit set.
fn quiet<T: Narrow>(x: T) -> T {
    T::from_bits(x.to_bits() | 1 << (T::PRECISION - 2))
}

const SIGN: u32 = 0x8000_0000;

/// `v` rounded to nearest even on `T`'s grid scaled by `up` (1 or `2^64`
/// lane by lane), then scaled back by `down = 1 / up`: exact, as the result
/// is on the grid. `v` carries a sticky last bit (it is rounded to odd) or
/// is exact at 24 bits, so this one rounding is the correct one.
#[inline(always)]
fn round_lanes<T: Narrow>(v: f32x8, up: f32x8, down: f32x8) -> f32x8 {
    let p = T::PRECISION;
    let bits = v.to_bits();
    let mag = v.abs();
    let relative = round_relative::<T>(v);
    // T's subnormal range: a fixed grid g = 2^(MIN_EXP - p + 1). Adding
    // c = g * 2^23 (scaled by up), whose ulp is g, rounds there; taking c
    // off is exact.
    let c = f32::from_bits(((T::MIN_EXP - p as i32 + 24 + 127) as u32) << 23);
    let c = up * f32x8::splat(c);
    let fixed = f32x8::from_bits(((mag + c) - c).to_bits() | (bits & u32x8::splat(SIGN)));
    let min_normal = up * f32x8::splat(min_normal::<T>());
    let rounded = mag.simd_lt(min_normal).bitselect(fixed, relative) * down;
    // Past T's largest finite value (only f16 gets there in f32): infinity.
    let infinite =
        f32x8::from_bits(rounded.to_bits() & u32x8::splat(SIGN) | u32x8::splat(0x7F80_0000));
    let rounded = rounded
        .abs()
        .simd_gt(f32x8::splat(max::<T>()))
        .bitselect(infinite, rounded);
    // NaN: quiet, the payload's top bits kept by the narrowing.
    let nan = f32x8::from_bits(bits | u32x8::splat(0x0040_0000));
    v.is_nan().bitselect(nan, rounded)
}

/// `T`'s largest finite value.
fn max<T: Narrow>() -> f32 {
    let p = T::PRECISION;
    (2.0 - 1.0 / (1 << (p - 1)) as f32) * f32::from_bits(((1 - T::MIN_EXP + 127) as u32) << 23)
}

/// `T`'s smallest normal value.
fn min_normal<T: Narrow>() -> f32 {
    f32::from_bits(((T::MIN_EXP + 127) as u32) << 23)
}

/// `v` rounded to nearest even to `T`'s precision, on the bits: right for
/// every finite `v` whose result is normal in `T` (or zero), and for
/// `bf16`'s subnormals, which are `f32`'s.
#[inline(always)]
fn round_relative<T: Narrow>(v: f32x8) -> f32x8 {
    let bits = v.to_bits();
    let d = 24 - T::PRECISION;
    let low = u32x8::splat((1 << d) - 1);
    let odd = (bits >> d) & u32x8::splat(1);
    f32x8::from_bits((bits + (low >> 1) + odd) & !low)
}

/// `sum + err` (the exact value, `err` below half an ulp of `sum`) rounded
/// to odd at 24 bits: an inexact `sum` with an even last bit moves one ulp
/// towards the exact value, up in magnitude when `err` has `sum`'s sign.
#[inline(always)]
fn to_odd(sum: f32x8, err: f32x8) -> f32x8 {
    let sb = sum.to_bits();
    let inexact = err.simd_ne(f32x8::splat(0.0)).to_bits();
    let even = (sb & u32x8::splat(1)).simd_eq(u32x8::splat(0));
    let same_sign = ((err.to_bits() ^ sb) & u32x8::splat(SIGN)).simd_eq(u32x8::splat(0));
    let step = same_sign.bitselect(u32x8::splat(1), u32x8::splat(u32::MAX));
    f32x8::from_bits(sb + (step & inexact & even))
}

/// `x * (s_hi + s_lo)` rounded to odd at 24 bits, from the two exact
/// partial products (an infinite product stays infinite).
#[inline(always)]
fn product_to_odd(x: f32x8, s_hi: f32x8, s_lo: f32x8) -> f32x8 {
    let hi = x * s_hi;
    let lo = x * s_lo;
    // Fast2Sum (|hi| >= |lo|): sum + err is the exact product.
    let sum = hi + lo;
    let err = lo - (sum - hi);
    // An infinite sum has a NaN err: no step.
    let err = sum.is_finite().bitselect(err, f32x8::splat(0.0));
    to_odd(sum, err)
}

/// `x * s` rounded once to `T`, eight lanes at a time (see the module docs).
#[inline(always)]
fn scaled_lanes<T: Narrow>(x: f32x8, s: f32) -> f32x8 {
    // s = s_hi + s_lo: s_hi keeps the top 24 - p bits of s's significand,
    // so x * s_hi has at most 24 bits, and s_lo the low p, so x * s_lo at
    // most 2p. Both products are exact (given no f32 subnormal).
    let split = f32::from_bits(s.to_bits() & !((1 << T::PRECISION) - 1));
    let (s_hi, s_lo) = (f32x8::splat(split), f32x8::splat(s - split));
    // Ordinary blocks (every lane zero, or normal with a normal, finite
    // product) take the short way; the rest, rare in activations, the
    // general one.
    let mag = x.abs();
    let low = f32x8::splat(if T::TINY > 0.0 {
        T::TINY
    } else {
        min_normal::<T>()
    });
    let high = f32x8::splat(max::<T>() / (2.0 * s));
    // With s < 1 (alpha dropout's a) a normal x can have a product in T's
    // subnormal range, whose grid round_relative does not know.
    let y = x * f32x8::splat(s);
    let normal = y.abs().simd_ge(f32x8::splat(min_normal::<T>()));
    let ordinary = (mag.simd_ge(low) & mag.simd_le(high) & normal) | x.simd_eq(f32x8::splat(0.0));
    if ordinary.all() {
        // f32's product, rounded again, is right unless it landed exactly
        // on a midpoint of T (T's midpoints are f32 numbers, and rounding
        // is monotone, so it cannot cross one). If s_lo is zero, f32's
        // product is exact, and a midpoint is a true tie.
        let d = 24 - T::PRECISION;
        let below = y.to_bits() & u32x8::splat((1 << d) - 1);
        if s == split || !below.simd_eq(u32x8::splat(1 << (d - 1))).any() {
            return round_relative::<T>(y);
        }
        return round_relative::<T>(product_to_odd(x, s_hi, s_lo));
    }
    let (up, down) = if T::TINY > 0.0 {
        let tiny = mag.simd_lt(f32x8::splat(T::TINY));
        let two64 = 18_446_744_073_709_551_616.0;
        (
            tiny.bitselect(f32x8::splat(two64), f32x8::splat(1.0)),
            tiny.bitselect(f32x8::splat(1.0 / two64), f32x8::splat(1.0)),
        )
    } else {
        (f32x8::splat(1.0), f32x8::splat(1.0))
    };
    let rounded = round_lanes::<T>(product_to_odd(x * up, s_hi, s_lo), up, down);
    // Infinity and NaN in: infinity, or the NaN quieted (an infinity times
    // a zero s_lo would be a NaN).
    let xb = x.to_bits();
    let payload = (xb & u32x8::splat(0x007F_FFFF)).simd_eq(u32x8::splat(0));
    let special =
        f32x8::from_bits(xb | payload.bitselect(u32x8::splat(0), u32x8::splat(0x0040_0000)));
    x.is_finite().bitselect(rounded, special)
}

/// `a + b` rounded once to `T` (the `f32` sum is exact or rounds
/// innocuously, see the module docs).
#[inline(always)]
fn plus_lanes<T: Narrow>(a: f32x8, b: f32x8) -> f32x8 {
    let sum = a + b;
    let mag = sum.abs();
    let low = f32x8::splat(if T::TINY > 0.0 {
        0.0
    } else {
        min_normal::<T>()
    });
    let ordinary = (mag.simd_ge(low) & mag.simd_le(f32x8::splat(max::<T>() / 2.0)))
        | sum.simd_eq(f32x8::splat(0.0));
    if ordinary.all() {
        return round_relative::<T>(sum);
    }
    let one = f32x8::splat(1.0);
    round_lanes::<T>(sum, one, one)
}

impl<T: Narrow> Sealed for T {
    const ZERO: Self = T::POSITIVE_ZERO;
    type Lanes = f32x8;

    #[inline(always)]
    fn scaled(self, scale: f32) -> Self {
        scaled_one(self, scale)
    }

    #[inline(always)]
    fn plus(self, other: Self) -> Self {
        round_f64(self.to_f64() + other.to_f64())
    }

    fn from_f32_rounded(v: f32) -> Self {
        round_f64(f64::from(v))
    }

    #[inline(always)]
    fn load(x: &[Self; 8]) -> f32x8 {
        T::widen(u32x8::new(x.map(|h| u32::from(h.to_bits()))))
    }

    #[inline(always)]
    fn store(v: f32x8, out: &mut [Self; 8]) {
        *out = T::narrow(v).to_array().map(|b| T::from_bits(b as u16));
    }

    #[inline(always)]
    fn scaled_lanes(v: f32x8, scale: f32) -> f32x8 {
        scaled_lanes::<T>(v, scale)
    }

    #[inline(always)]
    fn plus_lanes(a: f32x8, b: f32x8) -> f32x8 {
        plus_lanes::<T>(a, b)
    }

    #[inline(always)]
    fn select_lanes(keep: u32x8, v: f32x8) -> f32x8 {
        f32x8::from_bits(v.to_bits() & keep)
    }

    #[inline(always)]
    fn either_lanes(keep: u32x8, kept: f32x8, dropped: f32x8) -> f32x8 {
        f32x8::from_bits(keep.bitselect(kept.to_bits(), dropped.to_bits()))
    }
}
