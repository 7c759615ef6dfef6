//! Structured dropout and the fused residual: per-unit broadcasting
//! checked element by element against a naive loop, the SIMD path against
//! the reference, chunking over units, and the shape constructors.

mod common;
mod support;

use bitdrop::{Dropout, Error, Keyed, Mask, Mode, Residual, Units, mask_words, reference};
use common::config;
use proptest::prelude::*;
use support::{EDGE_P, data, rng, same, same_f32};

/// Shapes `[outer, shared, inner, run]` with every part 0..=5 or larger.
fn units() -> impl Strategy<Value = Units> {
    let dim = prop_oneof![0usize..6, 1usize..70, Just(64), Just(65), Just(513)];
    (dim.clone(), dim.clone(), dim.clone(), dim)
        .prop_filter("small enough", |(o, s, i, r)| {
            o * s * i * r <= support::scaled(20_000, 300)
        })
        .prop_map(|(o, s, i, r)| Units::new(o, s, i, r).unwrap())
}

/// The naive definition: element `((o * S + s) * I + i) * R + r` belongs to
/// unit `o * I + i`.
fn naive_unit(u: &Units, e: usize) -> usize {
    let [outer, shared, inner, run] = u.dims();
    for o in 0..outer {
        for s in 0..shared {
            for i in 0..inner {
                for r in 0..run {
                    if ((o * shared + s) * inner + i) * run + r == e {
                        return o * inner + i;
                    }
                }
            }
        }
    }
    unreachable!("element {e} outside {u:?}")
}

proptest! {
    #![proptest_config(config(64))]

    /// Every element follows its unit's mask bit: kept `x * s`, dropped
    /// `+0.0`, for both sources, and the fast path equals the reference.
    #[test]
    fn units_broadcast_their_decision(units in units(), p in proptest::sample::select(&EDGE_P[..]), seed: u64, offset in 0u64..10_000) {
        let d = Dropout::new(p).unwrap();
        let st = d.structured(units);
        let n = units.len();
        let xs = data(n, seed);
        let mut ys = xs.clone();
        let mut mask = vec![!0u64; mask_words(units.count()) + 1];
        st.forward_with_mask(Mode::Train, &mut ys, &mut mask, Keyed::new(seed, offset)).unwrap();
        prop_assert_eq!(mask[mask_words(units.count())], !0, "wrote past the mask");
        let m = Mask::new(&mask[..], units.count()).unwrap();
        prop_assert_eq!(m.kept_count() as u32, mask.iter().take(mask_words(units.count())).map(|w| w.count_ones()).sum::<u32>());
        for e in 0..n {
            let u = if n <= 2000 { naive_unit(&units, e) } else { units.unit_of(e).unwrap() };
            prop_assert_eq!(units.unit_of(e), Some(u));
            if m.get(u).unwrap() {
                prop_assert!(same_f32(ys[e], xs[e] * d.scale()) || (p == 0.0 && ys[e].to_bits() == xs[e].to_bits()));
            } else {
                prop_assert_eq!(ys[e].to_bits(), 0);
            }
        }
        let mut slow = vec![0.0; n];
        reference::structured_forward_to(&st, Mode::Train, &xs, &mut slow, Keyed::new(seed, offset)).unwrap();
        prop_assert!(same(&ys, &slow));
        let mut slow_mask = vec![0; mask_words(units.count())];
        reference::structured_fill_mask(&st, Mode::Train, &mut slow_mask, Keyed::new(seed, offset)).unwrap();
        prop_assert_eq!(&slow_mask[..], &mask[..mask_words(units.count())]);

        // A caller RNG, consumed as the reference consumes it.
        let (mut fast_rng, mut slow_rng) = (rng(seed), rng(seed));
        let mut fast = vec![0.0; n];
        st.forward_to(Mode::Train, &xs, &mut fast, &mut fast_rng).unwrap();
        reference::structured_forward_to(&st, Mode::Train, &xs, &mut slow, &mut slow_rng).unwrap();
        prop_assert!(same(&fast, &slow));
        prop_assert_eq!(fast_rng, slow_rng);

        // Applying the mask again gives the same output.
        let mut again = xs.clone();
        st.apply_mask(Mode::Train, &mut again, &mask).unwrap();
        prop_assert!(same(&again, &ys));
        reference::structured_apply_mask_to(&st, Mode::Train, &xs, &mask, &mut slow).unwrap();
        prop_assert!(same(&again, &slow));
    }

    /// The fused residual equals the reference, and `r + forward(x)`.
    #[test]
    fn residual_equals_reference(units in units(), p in proptest::sample::select(&EDGE_P[..]), seed: u64, row in 1usize..40, with_bias: bool, train: bool) {
        let d = Dropout::new(p).unwrap();
        let st = d.structured(units);
        let mode = if train { Mode::Train } else { Mode::Eval };
        let n = units.len();
        let xs = data(n, seed);
        let rs = data(n, seed ^ 1);
        let row = if n % row == 0 { row } else { 1 };
        let bias = data(row, seed ^ 2);
        let bias = with_bias.then_some(&bias[..]);
        let key = Keyed::new(seed, 7);
        let mut expected = rs.clone();
        reference::residual_add(&st, mode, Residual::IntoResidual { x: &xs, residual: &mut expected }, bias, None, key).unwrap();
        // The rule, spelled out.
        let mut dropped = xs.clone();
        if let Some(b) = bias {
            for (i, x) in dropped.iter_mut().enumerate() { *x += b[i % b.len()]; }
        }
        st.forward(mode, &mut dropped, key).unwrap();
        let sum: Vec<f32> = rs.iter().zip(&dropped).map(|(r, d)| r + d).collect();
        prop_assert!(same(&expected, &sum));

        let mut a = rs.clone();
        st.residual_add(mode, Residual::IntoResidual { x: &xs, residual: &mut a }, bias, key).unwrap();
        prop_assert!(same(&a, &expected), "into residual");
        let mut b = xs.clone();
        st.residual_add(mode, Residual::IntoX { x: &mut b, residual: &rs }, bias, key).unwrap();
        prop_assert!(same(&b, &expected), "into x");
        let mut c = vec![0.0; n];
        let mut mask = vec![0; mask_words(units.count())];
        st.residual_add_with_mask(mode, Residual::Into { x: &xs, residual: &rs, out: &mut c }, bias, &mut mask, key).unwrap();
        prop_assert!(same(&c, &expected), "into out");
        let mut plain_mask = vec![0; mask_words(units.count())];
        st.fill_mask(mode, &mut plain_mask, key).unwrap();
        prop_assert_eq!(mask, plain_mask);
    }
}

#[test]
fn shapes() {
    assert_eq!(
        Units::broadcast(&[2, 3, 4], &[]).unwrap(),
        Units::elements(24)
    );
    assert_eq!(
        Units::broadcast(&[2, 3, 4, 5], &[2, 3]).unwrap(),
        Units::channels_first(2, 3, 20).unwrap()
    );
    assert_eq!(
        Units::broadcast(&[7, 2, 3], &[0]).unwrap(),
        Units::time_steps(7, 6).unwrap()
    );
    assert_eq!(
        Units::broadcast(&[2, 5, 5, 3], &[1, 2]).unwrap(),
        Units::channels_last(2, 25, 3).unwrap()
    );
    assert_eq!(
        Units::broadcast(&[4, 1, 9], &[1, 2]).unwrap(),
        Units::per_sample(4, 9).unwrap()
    );
    assert_eq!(
        Units::broadcast(&[2, 12, 8, 8], &[1]).unwrap().dims(),
        [2, 12, 64, 1]
    );
    assert_eq!(
        Units::broadcast(&[2, 12, 8, 8], &[0, 1]).unwrap().dims(),
        [1, 24, 64, 1]
    );
    assert!(matches!(
        Units::broadcast(&[2, 3, 4, 5, 6], &[1, 3]),
        Err(Error::InvalidShape { .. })
    ));
    assert!(matches!(
        Units::broadcast(&[2, 3], &[2]),
        Err(Error::InvalidShape { .. })
    ));
    assert!(matches!(
        Units::broadcast(&[2, 3], &[0, 0]),
        Err(Error::InvalidShape { .. })
    ));
    assert!(matches!(
        Units::new(usize::MAX, 2, 1, 1),
        Err(Error::InvalidShape { .. })
    ));
}
