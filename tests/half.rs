//! The 16-bit element types (feature `half`): every bit pattern of `bf16`
//! and `f16` through the fast path and the reference, against an oracle
//! that rounds exact integer products and sums; masks independent of the
//! element type; evaluation the identity on the raw bits; the fast path and
//! the reference bit-identical on every operation.
#![cfg(feature = "half")]

mod support;

use bitdrop::half::{bf16, f16};
use bitdrop::{
    AlphaDropout, Dropout, Element, Keyed, Mode, Residual, Units, mask_words, reference,
};
use rand_xoshiro::rand_core::Rng;
use support::{rng, scaled};

/// A 16-bit type as the oracle sees it: bit fields only, no float
/// arithmetic.
trait Bits: Element + PartialEq {
    const NAME: &'static str;
    /// Significand bits, the implicit one included.
    const P: u32;
    fn to_bits(self) -> u16;
    fn from_bits(bits: u16) -> Self;
}

impl Bits for bf16 {
    const NAME: &'static str = "bf16";
    const P: u32 = 8;
    fn to_bits(self) -> u16 {
        bf16::to_bits(self)
    }
    fn from_bits(bits: u16) -> Self {
        bf16::from_bits(bits)
    }
}

impl Bits for f16 {
    const NAME: &'static str = "f16";
    const P: u32 = 11;
    fn to_bits(self) -> u16 {
        f16::to_bits(self)
    }
    fn from_bits(bits: u16) -> Self {
        f16::from_bits(bits)
    }
}

/// A finite value as `(negative, m, e)`: `(-1)^negative * m * 2^e`.
type Exact = (bool, u128, i32);

/// The exponent field's width and bias of a 16-bit type with `p` bits.
fn layout(p: u32) -> (u32, i32) {
    let exp_bits = 16 - p;
    (exp_bits, (1 << (exp_bits - 1)) - 1)
}

/// A finite 16-bit pattern's exact value, or `None` for inf and NaN.
fn decode(bits: u16, p: u32) -> Option<Exact> {
    let (exp_bits, bias) = layout(p);
    let negative = bits >> 15 == 1;
    let field = i32::from((bits >> (p - 1)) & ((1 << exp_bits) - 1));
    let fraction = u128::from(bits & ((1 << (p - 1)) - 1));
    if field == (1 << exp_bits) - 1 {
        return None;
    }
    let min_exp = 1 - bias - (p as i32 - 1);
    Some(if field == 0 {
        (negative, fraction, min_exp)
    } else {
        (
            negative,
            fraction | 1 << (p - 1),
            field - bias - (p as i32 - 1),
        )
    })
}

/// An `f32`'s exact value (finite).
fn decode_f32(s: f32) -> Exact {
    let bits = s.to_bits();
    let field = (bits >> 23 & 0xFF) as i32;
    let fraction = u128::from(bits & 0x7F_FFFF);
    if field == 0 {
        (bits >> 31 == 1, fraction, -149)
    } else {
        (bits >> 31 == 1, fraction | 1 << 23, field - 150)
    }
}

/// `(-1)^negative * m * 2^e` rounded to nearest, ties to even, to the
/// 16-bit type with `p` significand bits: the quantum is found from the
/// position of `m`'s leading bit, the rest compared with half of it.
fn round(exact: Exact, p: u32) -> u16 {
    let (exp_bits, bias) = layout(p);
    let (negative, m, e) = exact;
    let sign = u16::from(negative) << 15;
    if m == 0 {
        return sign;
    }
    let top = 127 - m.leading_zeros() as i32 + e; // m * 2^e in [2^top, 2^(top+1))
    let min_normal = 1 - bias;
    let quantum = top.max(min_normal) - (p as i32 - 1);
    let mut k;
    if quantum <= e {
        k = m << (e - quantum); // exact
    } else {
        let shift = (quantum - e) as u32;
        if shift > 127 {
            return sign;
        }
        k = m >> shift;
        let rest = m & ((1 << shift) - 1);
        let half = 1u128 << (shift - 1);
        if rest > half || (rest == half && k & 1 == 1) {
            k += 1;
        }
    }
    // Normalize k (a carry may have made it 2^p) and encode.
    let (mut k, mut quantum) = (k, quantum);
    if k == 1 << p {
        k >>= 1;
        quantum += 1;
    }
    let inf = ((1u16 << exp_bits) - 1) << (p - 1);
    let field = if k < 1 << (p - 1) {
        0
    } else {
        quantum + (p as i32 - 1) + bias
    };
    if field >= (1 << exp_bits) - 1 {
        return sign | inf;
    }
    let fraction = (k & ((1 << (p - 1)) - 1)) as u16;
    sign | (field as u16) << (p - 1) | fraction
}

/// The oracle's kept element: the exact `x * s` rounded once; infinity
/// stays infinity and a NaN becomes itself quieted.
fn kept<T: Bits>(x: T, s: f32) -> u16 {
    let bits = x.to_bits();
    match decode(bits, T::P) {
        None if bits & ((1 << (T::P - 1)) - 1) == 0 => bits,
        None => bits | 1 << (T::P - 2),
        Some((neg, m, e)) => {
            let (_, ms, es) = decode_f32(s);
            round((neg, m * ms, e + es), T::P)
        }
    }
}

/// The oracle's sum of two finite elements, rounded once.
fn sum(a: u16, b: u16, p: u32) -> Option<u16> {
    let (na, ma, ea) = decode(a, p)?;
    let (nb, mb, eb) = decode(b, p)?;
    let signed = |n: bool, m: u128| if n { -(m as i128) } else { m as i128 };
    let e = ea.min(eb);
    if (ea - eb).abs() > 60 {
        // The smaller is below a quarter of the larger's quantum.
        return Some(if ma == 0 || (mb != 0 && ea < eb) {
            b
        } else {
            a
        });
    }
    let total = signed(na, ma << (ea - e)) + signed(nb, mb << (eb - e));
    if total == 0 {
        // x + (-x) is +0 in round to nearest; -0 + -0 is -0.
        return Some(if na && nb { 0x8000 } else { 0 });
    }
    Some(round((total < 0, total.unsigned_abs(), e), p))
}

/// A NaN pattern.
fn nan<T: Bits>(bits: u16) -> bool {
    decode(bits, T::P).is_none() && bits & ((1 << (T::P - 1)) - 1) != 0
}

/// Every bit pattern (under Miri, every 331st, and the last).
fn all_patterns<T: Bits>() -> Vec<T> {
    let step = scaled(1, 331);
    (0..=u16::MAX)
        .filter(|b| (*b as usize).is_multiple_of(step) || *b == u16::MAX)
        .map(T::from_bits)
        .collect()
}

fn bits<T: Bits>(xs: &[T]) -> Vec<u16> {
    xs.iter().map(|&x| x.to_bits()).collect()
}

/// Scales from the edges and from ordinary `p`: 1 (`scale_by_keep(false)`),
/// powers of two, short and full significands, and the largest.
fn dropouts(seed: u64, random: usize) -> Vec<Dropout> {
    // 0.149_144_25 and 0.723_232_3: scales where some bf16 significand's
    // f32 product, rounded again, lands on the wrong side of a tie.
    let mut ds: Vec<Dropout> = [
        0.1,
        0.2,
        0.25,
        0.3,
        0.5,
        0.75,
        0.9,
        1e-3,
        0.999,
        0.999_999_94,
        0.149_144_25,
        0.723_232_3,
    ]
    .into_iter()
    .map(|p| Dropout::new(p).unwrap())
    .collect();
    ds.push(Dropout::new(0.3).unwrap().scale_by_keep(false));
    let mut r = rng(seed);
    for _ in 0..random {
        let p = (r.next_u32() >> 8) as f32 / (1 << 24) as f32;
        ds.push(Dropout::new(p.max(1e-6)).unwrap());
    }
    ds
}

/// Every bit pattern, kept at each scale, through the fast path and the
/// reference, against the oracle: the correctly rounded product, `f16`
/// overflowing to infinity past 65504, NaN quieted, infinities kept. In
/// order, so that most 8-lane blocks take the fast path's short ways; then
/// with a NaN in every block, so that every pattern takes its general way.
fn exhaustive_kept<T: Bits>() {
    let nan = T::from_bits(0xFFFF);
    let mut xs = all_patterns::<T>();
    let spread = xs
        .chunks(7)
        .flat_map(|block| block.iter().copied().chain([nan]));
    xs.extend(spread.collect::<Vec<_>>());
    let keep_all = vec![!0u64; mask_words(xs.len())];
    for d in dropouts(1, 40).into_iter().take(scaled(usize::MAX, 2)) {
        let s = d.scale();
        let expected: Vec<u16> = xs.iter().map(|&x| kept(x, s)).collect();
        let mut fast = vec![T::from_bits(0x1234); xs.len()];
        d.apply_mask_to(Mode::Train, &xs, &keep_all, &mut fast)
            .unwrap();
        let mut slow = fast.clone();
        reference::apply_mask_to(&d, Mode::Train, &xs, &keep_all, &mut slow).unwrap();
        for (name, got) in [("fast", bits(&fast)), ("reference", bits(&slow))] {
            for (i, (&g, &e)) in got.iter().zip(&expected).enumerate() {
                assert_eq!(g, e, "{} {name}: x = {i:#06x}, s = {s:e}", T::NAME);
            }
        }
    }
}

#[test]
fn bf16_every_pattern_kept_is_the_correctly_rounded_product() {
    exhaustive_kept::<bf16>();
}

#[test]
fn f16_every_pattern_kept_is_the_correctly_rounded_product() {
    exhaustive_kept::<f16>();
}

/// Scales below 1: alpha dropout's backward pass multiplies kept
/// gradients by `a < 1`, which takes products of normal numbers into the
/// type's subnormal range. Every pattern, fast path and reference, against
/// the oracle (dropped: `+0.0`).
fn exhaustive_below_one<T: Bits>() {
    let xs = all_patterns::<T>();
    let key = Keyed::new(3, 0);
    for p in [0.05, 0.1, 0.3, 0.5, 0.9]
        .into_iter()
        .take(scaled(usize::MAX, 1))
    {
        let alpha = AlphaDropout::new(p).unwrap();
        let a = alpha.a();
        let mut mask = vec![0; mask_words(xs.len())];
        let d = alpha.dropout();
        d.fill_mask(Mode::Train, xs.len(), &mut mask, key).unwrap();
        let expected: Vec<u16> = (0..xs.len())
            .map(|i| match mask[i / 64] >> (i % 64) & 1 {
                1 => kept(xs[i], a),
                _ => 0,
            })
            .collect();
        let mut fast = xs.clone();
        alpha.backward(Mode::Train, &mut fast, key).unwrap();
        let mut slow = xs.clone();
        reference::alpha_backward_to(&alpha, Mode::Train, &xs, &mut slow, key).unwrap();
        for (name, got) in [("fast", bits(&fast)), ("reference", bits(&slow))] {
            for (i, (&g, &e)) in got.iter().zip(&expected).enumerate() {
                assert_eq!(g, e, "{} {name}: x = {i:#06x}, a = {a:e}", T::NAME);
            }
        }
    }
}

#[test]
fn bf16_scales_below_one_round_correctly() {
    exhaustive_below_one::<bf16>();
}

#[test]
fn f16_scales_below_one_round_correctly() {
    exhaustive_below_one::<f16>();
}

/// The cases where rounding the `f32` product again would be wrong exist
/// at the scales tested, so the exhaustive tests do test the single
/// rounding.
#[test]
#[cfg_attr(miri, ignore = "a check of the test's cases, not of the crate")]
fn rounding_the_f32_product_twice_would_differ() {
    let mut differ = [0, 0];
    for d in dropouts(1, 40) {
        let s = d.scale();
        for x in all_patterns::<f16>().into_iter().filter(|x| x.is_finite()) {
            differ[0] += usize::from(f16::from_f32(x.to_f32() * s).to_bits() != kept(x, s));
        }
        for x in all_patterns::<bf16>().into_iter().filter(|x| x.is_finite()) {
            differ[1] += usize::from(bf16::from_f32(x.to_f32() * s).to_bits() != kept(x, s));
        }
    }
    assert!(differ[0] > 0 && differ[1] > 0, "{differ:?}");
}

/// Sums (residual add in evaluation mode, `r + x`) over random pairs and
/// pairs built to sit on or next to ties, against the oracle's exact sum.
fn sums<T: Bits>() {
    let n = scaled(1 << 20, 256);
    let mut r = rng(2);
    let mut a = Vec::with_capacity(n);
    let mut b = Vec::with_capacity(n);
    for i in 0..n {
        let x = r.next_u32() as u16;
        let y = match i % 4 {
            // A neighbour of x, or of -x: cancellation and near ties.
            0 => x ^ 0x8000 ^ (r.next_u32() as u16 & 0x3),
            // A value one half-quantum-ish below x.
            1 => x.wrapping_sub((T::P as u16) << (T::P - 1)) ^ (r.next_u32() as u16 & 0xF),
            _ => r.next_u32() as u16,
        };
        a.push(T::from_bits(x));
        b.push(T::from_bits(y));
    }
    let mut fast = vec![T::from_bits(0); n];
    let key = Keyed::new(0, 0);
    let d = Dropout::new(0.5).unwrap();
    let io = Residual::Into {
        x: &a,
        residual: &b,
        out: &mut fast,
    };
    d.residual_add(Mode::Eval, io, None, key).unwrap();
    let mut slow = vec![T::from_bits(0); n];
    let io = Residual::Into {
        x: &a,
        residual: &b,
        out: &mut slow,
    };
    reference::residual_add(
        &d.structured(Units::elements(n)),
        Mode::Eval,
        io,
        None,
        None,
        key,
    )
    .unwrap();
    let mut checked = 0;
    for i in 0..n {
        let (x, y) = (a[i].to_bits(), b[i].to_bits());
        match sum(y, x, T::P) {
            Some(e) => {
                checked += 1;
                assert_eq!(
                    fast[i].to_bits(),
                    e,
                    "{} fast: {y:#06x} + {x:#06x}",
                    T::NAME
                );
                assert_eq!(
                    slow[i].to_bits(),
                    e,
                    "{} reference: {y:#06x} + {x:#06x}",
                    T::NAME
                );
            }
            None => {
                // Infinities and NaN: what IEEE 754 says, payloads aside.
                let (f, s) = (fast[i].to_bits(), slow[i].to_bits());
                let nan = |v: u16| decode(v, T::P).is_none() && v & ((1 << (T::P - 1)) - 1) != 0;
                assert!(
                    f == s || (nan(f) && nan(s)),
                    "{}: {y:#06x} + {x:#06x}",
                    T::NAME
                );
            }
        }
    }
    assert!(checked > n / 2);
}

#[test]
fn bf16_sums_are_correctly_rounded() {
    sums::<bf16>();
}

#[test]
fn f16_sums_are_correctly_rounded() {
    sums::<f16>();
}

/// The same key draws the same mask bits for `f32`, `bf16` and `f16`, and
/// each type's output follows its mask: dropped is `+0.0` of the type.
#[test]
fn masks_do_not_depend_on_the_element_type() {
    let shapes = [
        (Units::elements(scaled(10_000, 300)), 1),
        (Units::channels_last(2, 50, 37).unwrap(), 2),
        (Units::time_steps(7, 300).unwrap(), 3),
    ];
    for (units, seed) in shapes.into_iter().take(scaled(3, 1)) {
        for p in [0.1, 0.5, 0.9].into_iter().take(scaled(3, 1)) {
            let st = Dropout::new(p).unwrap().structured(units);
            let words = mask_words(units.count());
            let key = Keyed::new(seed, 99);
            let mut f32_mask = vec![0; words];
            let mut xs = vec![1.0_f32; units.len()];
            st.forward_with_mask(Mode::Train, &mut xs, &mut f32_mask, key)
                .unwrap();
            let mut bf_mask = vec![0; words];
            let mut bs = vec![bf16::NAN; units.len()];
            st.forward_with_mask(Mode::Train, &mut bs, &mut bf_mask, key)
                .unwrap();
            let mut f16_mask = vec![0; words];
            let mut hs = vec![f16::NEG_INFINITY; units.len()];
            st.forward_with_mask(Mode::Train, &mut hs, &mut f16_mask, key)
                .unwrap();
            assert_eq!(f32_mask, bf_mask);
            assert_eq!(f32_mask, f16_mask);
            for i in 0..units.len() {
                let kept = xs[i] != 0.0;
                assert_eq!(bs[i].to_bits() == 0, !kept);
                assert_eq!(hs[i].to_bits() == 0, !kept);
                assert!(!kept || (bs[i].is_nan() && hs[i] == f16::NEG_INFINITY));
            }
        }
    }
}

/// Evaluation mode and `p == 0` keep every bit of every pattern, in place
/// and out of place.
fn identity<T: Bits>() {
    let xs = all_patterns::<T>();
    for (d, mode) in [
        (Dropout::new(0.5).unwrap(), Mode::Eval),
        (Dropout::new(0.0).unwrap(), Mode::Train),
    ] {
        let mut inplace = xs.clone();
        d.forward(mode, &mut inplace, Keyed::new(1, 0)).unwrap();
        assert_eq!(bits(&inplace), bits(&xs));
        let mut out = vec![T::from_bits(7); xs.len()];
        d.forward_to(mode, &xs, &mut out, &mut rng(3)).unwrap();
        assert_eq!(bits(&out), bits(&xs));
    }
}

#[test]
fn evaluation_is_the_identity_on_the_bits() {
    identity::<bf16>();
    identity::<f16>();
}

/// Random patterns through every operation, fast against reference.
fn fast_is_reference<T: Bits>() {
    let mut r = rng(4);
    let most = scaled(1, 10) as u32; // lengths a tenth as long under Miri
    for case in 0..scaled(60, 3) {
        let units = match case % 3 {
            0 => Units::elements(1 + (r.next_u32() % (3000 / most)) as usize),
            1 => Units::channels_last(1 + case % 3, 1 + (r.next_u32() % (40 / most)) as usize, 33)
                .unwrap(),
            _ => Units::channels_first(2, 1 + (r.next_u32() % (20 / most)) as usize, 70).unwrap(),
        };
        let len = units.len();
        let p = [0.1, 0.5, 0.9, 0.0, 1.0][case % 5];
        let st = Dropout::new(p).unwrap().structured(units);
        let key = Keyed::new(r.next_u64(), r.next_u64() >> 1);
        let xs: Vec<T> = (0..len)
            .map(|_| T::from_bits(r.next_u32() as u16))
            .collect();
        let rs: Vec<T> = (0..len)
            .map(|_| T::from_bits(r.next_u32() as u16))
            .collect();
        let row = [1, 3, len][case % 3];
        let bias: Vec<T> = (0..row)
            .map(|_| T::from_bits(r.next_u32() as u16))
            .collect();
        let same = |a: &[T], b: &[T]| {
            a.iter().zip(b).all(|(x, y)| {
                x.to_bits() == y.to_bits() || (nan::<T>(x.to_bits()) && nan::<T>(y.to_bits()))
            })
        };

        let mut fast = vec![T::from_bits(0); len];
        let mut slow = fast.clone();
        st.forward_to(Mode::Train, &xs, &mut fast, key).unwrap();
        reference::structured_forward_to(&st, Mode::Train, &xs, &mut slow, key).unwrap();
        assert!(same(&fast, &slow), "{} forward_to, case {case}", T::NAME);

        let mut mask = vec![0; mask_words(units.count())];
        st.fill_mask(Mode::Train, &mut mask, key).unwrap();
        st.apply_mask_to(Mode::Train, &xs, &mask, &mut fast)
            .unwrap();
        reference::structured_apply_mask_to(&st, Mode::Train, &xs, &mask, &mut slow).unwrap();
        assert!(same(&fast, &slow), "{} apply_mask_to, case {case}", T::NAME);

        let mut seeded = xs.clone();
        st.forward(Mode::Train, &mut seeded, &mut rng(case as u64))
            .unwrap();
        reference::structured_forward_to(&st, Mode::Train, &xs, &mut slow, &mut rng(case as u64))
            .unwrap();
        assert!(
            same(&seeded, &slow),
            "{} forward (caller RNG), case {case}",
            T::NAME
        );

        for with_bias in [false, true] {
            let b = with_bias.then_some(&bias[..]);
            let mut fast = rs.clone();
            let mut slow = rs.clone();
            let io = Residual::IntoResidual {
                x: &xs,
                residual: &mut fast,
            };
            st.residual_add(Mode::Train, io, b, key).unwrap();
            let io = Residual::IntoResidual {
                x: &xs,
                residual: &mut slow,
            };
            reference::residual_add(&st, Mode::Train, io, b, None, key).unwrap();
            assert!(same(&fast, &slow), "{} residual_add, case {case}", T::NAME);
        }
    }
}

#[test]
fn bf16_fast_path_is_the_reference() {
    fast_is_reference::<bf16>();
}

#[test]
fn f16_fast_path_is_the_reference() {
    fast_is_reference::<f16>();
}

/// The oracle itself, on values worked by hand.
#[test]
fn oracle_by_hand() {
    // 1.5 * 1.25 = 1.875 exactly, in both types.
    assert_eq!(
        kept(bf16::from_f32(1.5), 1.25),
        bf16::from_f32(1.875).to_bits()
    );
    assert_eq!(
        kept(f16::from_f32(1.5), 1.25),
        f16::from_f32(1.875).to_bits()
    );
    // f16: 65504 * 1.0000001 rounds to 65504, 65504 * 1.0005 to infinity.
    assert_eq!(kept(f16::MAX, 1.000_000_1), f16::MAX.to_bits());
    assert_eq!(kept(f16::MAX, 1.0005), f16::INFINITY.to_bits());
    // The smallest f16 subnormal times 1.5 is a tie, to even: 2^-23.
    assert_eq!(kept(f16::from_bits(1), 1.5), 2);
    // bf16: 1 + 2^-8 is the tie between 1 and 1 + 2^-7; even is 1.
    assert_eq!(round((false, 257, -8), 8), bf16::ONE.to_bits());
    assert_eq!(round((false, 2 * 257 + 1, -9), 8), 0x3F81);
    // Sums: 1 + (-1) is +0; the largest f16 plus itself is infinite.
    assert_eq!(sum(0x3C00, 0xBC00, 11), Some(0));
    assert_eq!(sum(0x7BFF, 0x7BFF, 11), Some(0x7C00));
}
