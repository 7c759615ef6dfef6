//! The SIMD path equals the scalar reference, bit for bit, for every
//! operation (every row of the table), both sources of randomness, every
//! length 0..=1100 and the lengths next to the kernel's pieces and chunks
//! up to 3073 (512 and 1024 elements), and for the structured operations
//! a handful of shapes of each length; and the element-wise operations on
//! slices long enough for the kernel's prefetch hints.

mod support;

use bitdrop::{Dropout, Keyed, Mode, Units};
use rand_xoshiro::rand_core::Rng;
use support::ops::{Buffers, Case, Level, OPS, Op, Src, shapes};
use support::{EDGE_P, data, divisors, rng, scaled};

/// Offsets for a call of `count` units: at the start, inside a block, just
/// before a block edge, far out, and at the very end of the stream.
fn offsets(count: usize, salt: u64) -> [u64; 5] {
    let end = u64::MAX - (count as u64).saturating_sub(1);
    [
        0,
        salt % 4096,
        (salt % 1000 + 1) * 4096 - 1 - salt % 7,
        salt.wrapping_mul(0x9E37_79B9_7F4A_7C15) % end,
        end,
    ]
}

/// The offsets a call of `count` units is checked at; under Miri only the
/// one numbered `miri` (a keyed call costs a block there, or two across a
/// block edge).
fn keys(count: usize, salt: u64, miri: usize) -> Vec<Keyed> {
    let taken = if cfg!(miri) { miri..miri + 1 } else { 0..5 };
    offsets(count, salt)[taken]
        .iter()
        .map(|&offset| Keyed::new(salt >> 3, offset))
        .collect()
}

/// A bias for `n` elements, or none: a row length dividing `n`, chosen by
/// `k` (empty for empty data).
fn bias(n: usize, k: u64) -> Option<Vec<f32>> {
    if k.is_multiple_of(3) {
        return None;
    }
    let divisors = divisors(n);
    let row = divisors.get(k as usize % divisors.len().max(1)).copied();
    Some(data(row.unwrap_or(0), k))
}

/// One row on `case` from `src`: the fast path against the reference,
/// every buffer and the caller's generator.
fn check_row(op: &Op, case: &Case, src: Src) {
    let before = Buffers::new(op, case);
    let (mut fast, mut slow) = (before.clone(), before);
    let (mut fast_rng, mut slow_rng) = (src.rng(), src.rng());
    let ctx = || {
        format!(
            "{} p={} mode={:?} len={} units={:?} bias={:?} src={src:?}",
            op.name,
            case.dropout.p(),
            case.mode,
            case.xs.len(),
            op.units(case),
            case.bias.as_ref().map(Vec::len),
        )
    };
    op.call(case, &mut fast, src.with(&mut fast_rng))
        .unwrap_or_else(|e| panic!("{e:?}: {}", ctx()));
    op.reference(case, &mut slow, src.with(&mut slow_rng))
        .unwrap_or_else(|e| panic!("reference: {e:?}: {}", ctx()));
    assert!(fast.same(&slow), "{}", ctx());
    assert_eq!(fast_rng, slow_rng, "RNG consumption {}", ctx());
}

/// Every row of `level` on `case`, as [`check_row_sources`].
fn check_level(case: &Case, level: Level, keys: &[Keyed], seed: u64) {
    let rows = OPS.iter().filter(|op| !cfg!(miri) || op.under_miri());
    for op in rows.filter(|op| op.level == level) {
        check_row_sources(op, case, keys, seed);
    }
}

/// One row on `case`: from each key and from a caller RNG seeded by
/// `seed`; if it applies a given mask, a mask for each key.
fn check_row_sources(op: &Op, case: &Case, keys: &[Keyed], seed: u64) {
    for &key in keys {
        if op.draws() {
            check_row(op, case, Src::Keyed(key));
        } else {
            let given = Case {
                given: key.offset() ^ key.seed(),
                ..case.clone()
            };
            check_row(op, &given, Src::Keyed(key));
        }
    }
    if op.draws() && !op.keyed_only() {
        check_row(op, case, Src::Rng(seed));
    }
}

/// Lengths `range` of 0..=1100 and of those next to a multiple of 512 up
/// to 3073 (past two chunks of 1024), each with its own salt: the quarters
/// run as four tests, so that the test threads share them.
fn every_length_in(range: core::ops::RangeInclusive<usize>) {
    let mut salt = rng(0x5EED);
    // Under Miri: lengths past a word and past a 512-element piece.
    let lengths: Vec<usize> = if cfg!(miri) {
        vec![513]
    } else {
        let edges = (3..=6).flat_map(|k| [512 * k - 1, 512 * k, 512 * k + 1]);
        (0..=1100).chain(edges).collect()
    };
    for n in lengths {
        let s = salt.next_u64();
        if !range.contains(&n) {
            continue;
        }
        let p = EDGE_P[n % EDGE_P.len()];
        let dropout = Dropout::new(p).unwrap();
        let mode = if n % 13 == 0 { Mode::Eval } else { Mode::Train };
        let mut case = Case::new(dropout, mode, Units::elements(n), data(n, n as u64));
        case.bias = bias(n, s);
        // Under Miri: the element-wise rows just before a block edge, the
        // structured ones on one shape from an offset inside a block.
        check_level(&case, Level::Elements, &keys(n, s, 2), s);
        for units in shapes(n).into_iter().take(scaled(usize::MAX, 1)) {
            case.units = units;
            check_level(&case, Level::Units, &keys(units.count(), s, 1), s);
        }
    }
}

#[test]
fn simd_equals_reference_for_every_length_first_quarter() {
    every_length_in(0..=275);
}

#[test]
fn simd_equals_reference_for_every_length_second_quarter() {
    every_length_in(276..=550);
}

#[test]
fn simd_equals_reference_for_every_length_third_quarter() {
    every_length_in(551..=825);
}

#[test]
fn simd_equals_reference_for_every_length_fourth_quarter() {
    every_length_in(826..=3073);
}

#[test]
fn simd_equals_reference_for_every_p_on_long_slices() {
    // Under Miri: D = 1, and a long and a one-step threshold.
    let ps: Vec<f32> = if cfg!(miri) {
        vec![5.421_011e-20, 0.1]
    } else {
        EDGE_P
            .iter()
            .chain(&[0.01, 0.3, 0.7, 0.99])
            .copied()
            .collect()
    };
    for (i, &p) in ps.iter().enumerate() {
        let dropout = Dropout::new(p).unwrap();
        let n = scaled(20_000, 300) + 37 * i;
        let seed = i as u64;
        let mut case = Case::new(dropout, Mode::Train, Units::elements(n), data(n, seed));
        case.bias = bias(n, seed + 1);
        let key = [Keyed::new(seed, 12_345 * seed)];
        if cfg!(miri) {
            // The element-wise rows without a residual, as before the
            // others existed: all rows run in the test above.
            for op in OPS.iter().filter(|op| op.level == Level::Elements) {
                if op.residual().is_none() && op.under_miri() {
                    check_row_sources(op, &case, &key, seed);
                }
            }
            continue;
        }
        check_level(&case, Level::Elements, &key, seed);
        for units in shapes(n).into_iter().skip(i % 3).take(2) {
            case.units = units;
            check_level(&case, Level::Units, &key, seed);
        }
    }
}

/// Calls of 512 KiB per operand and more, where the x86-64 kernel hints
/// the operands' cache lines ahead of the elements it applies
/// (`kernel::prefetch`): every element-wise row, both sources. Not under
/// Miri, where a row of this length costs minutes: the hints' `unsafe`
/// call (`_mm_prefetch`, x86-64 only) is therefore never run under Miri.
#[test]
#[cfg_attr(miri, ignore = "too long under Miri; the short lengths run above")]
fn simd_equals_reference_on_slices_long_enough_for_prefetch_hints() {
    for (i, p) in [0.1_f32, 0.5].into_iter().enumerate() {
        let n = (512 << 10) / size_of::<f32>() + 4099 * (i + 1);
        let seed = 77 + i as u64;
        let mut case = Case::new(
            Dropout::new(p).unwrap(),
            Mode::Train,
            Units::elements(n),
            data(n, seed),
        );
        case.bias = bias(n, seed);
        let key = [Keyed::new(seed, 4096 * 3 + 1000)];
        check_level(&case, Level::Elements, &key, seed);
    }
}
