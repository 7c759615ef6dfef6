//! Structured dropout over many units: the kept count of units is
//! Binomial, calls over chunks of units equal one call, and golden vectors
//! tie unit decisions to the stream positions they take.

use bitdrop::{Dropout, Keyed, Mask, Mode, Units, mask_words};
use rand_xoshiro::Xoshiro256PlusPlus;
use rand_xoshiro::rand_core::SeedableRng;

/// The kept count of `2^20` channels (runs of 3 elements), and of as many
/// channels-last units repeated 4 times, is Binomial(n, 1 - p) within 6
/// standard deviations, from both sources; and each kept unit keeps all
/// its elements.
#[test]
fn kept_units_are_binomial() {
    let units_n = if cfg!(miri) { 1 << 10 } else { 1 << 20 };
    for p in [0.1f32, 0.5, 0.9] {
        let d = Dropout::new(p).unwrap();
        let q = 1.0 - d.drop_numerator() as f64 / 2f64.powi(64);
        for (units, seed) in [
            (Units::channels_first(units_n / 64, 64, 3).unwrap(), 1),
            (Units::channels_last(units_n / 64, 4, 64).unwrap(), 2),
        ] {
            let st = d.structured(units);
            let mut xs = vec![1.0f32; units.len()];
            let mut mask = vec![0; mask_words(units.count())];
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
            for (name, keyed) in [("keyed", true), ("rng", false)] {
                xs.fill(1.0);
                if keyed {
                    st.forward_with_mask(Mode::Train, &mut xs, &mut mask, Keyed::new(seed, 99))
                } else {
                    st.forward_with_mask(Mode::Train, &mut xs, &mut mask, &mut rng)
                }
                .unwrap();
                let kept = Mask::new(&mask[..], units.count()).unwrap().kept_count();
                let n = units.count() as f64;
                let z = (kept as f64 - n * q) / (n * q * (1.0 - q)).sqrt();
                assert!(z.abs() < 6.0, "{name} p = {p} {units:?}: z = {z:.2}");
                let nonzero = xs.iter().filter(|&&x| x != 0.0).count();
                assert_eq!(
                    nonzero,
                    kept * units.len() / units.count(),
                    "{name} p = {p}"
                );
            }
        }
    }
}

/// Calls over whole outer indices `a..b` with offset `offset + a * inner`
/// decide the same units as one call over all of them, in any order.
#[test]
fn chunks_of_units_equal_one_call() {
    let d = Dropout::new(0.3).unwrap();
    let shapes = [
        Units::new(37, 3, 50, 2).unwrap(),
        Units::channels_first(1, 300, 7).unwrap(),
        Units::per_sample(130, 5).unwrap(),
        Units::channels_last(29, 6, 70).unwrap(),
    ];
    for (k, units) in shapes.into_iter().enumerate() {
        let [outer, shared, inner, run] = units.dims();
        // One decision per (outer, inner); make outer the chunked axis.
        let (outer, inner) = if outer == 1 {
            (inner, 1)
        } else {
            (outer, inner)
        };
        let units = Units::new(outer, shared, inner, run).unwrap();
        let per_outer = shared * inner * run;
        let key = Keyed::new(k as u64, 4090);
        let xs: Vec<f32> = (0..units.len()).map(|i| i as f32).collect();
        let mut whole = xs.clone();
        let mut whole_mask = vec![0; mask_words(units.count())];
        d.structured(units)
            .forward_with_mask(Mode::Train, &mut whole, &mut whole_mask, key)
            .unwrap();
        let cuts = [0, 1, outer / 3, outer / 2 + 1, outer];
        let mut pieces = xs.clone();
        for w in cuts.windows(2).rev() {
            let (a, b) = (w[0], w[1]);
            let part = Units::new(b - a, shared, inner, run).unwrap();
            let chunk_key = key.advanced((a * inner) as u64).unwrap();
            let mut mask = vec![0; mask_words(part.count())];
            d.structured(part)
                .forward_with_mask(
                    Mode::Train,
                    &mut pieces[a * per_outer..b * per_outer],
                    &mut mask,
                    chunk_key,
                )
                .unwrap();
            let whole = Mask::new(&whole_mask[..], units.count()).unwrap();
            let part_mask = Mask::new(&mask[..], part.count()).unwrap();
            for u in 0..part.count() {
                assert_eq!(
                    part_mask.get(u),
                    whole.get(a * inner + u),
                    "{units:?} chunk {a}..{b}"
                );
            }
        }
        assert_eq!(
            pieces.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            whole.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            "{units:?}"
        );
    }
}

/// Unit `u` takes stream position `offset + u`: a structured mask equals
/// the element-wise mask of as many elements, and both are frozen here.
#[test]
fn golden_vectors_of_unit_decisions() {
    let d = Dropout::new(0.3).unwrap();
    let units = Units::channels_last(2, 5, 64).unwrap();
    let key = Keyed::new(42, 1000);
    let mut structured = [0u64; 2];
    d.structured(units)
        .fill_mask(Mode::Train, &mut structured, key)
        .unwrap();
    let mut elements = [0u64; 2];
    d.fill_mask(Mode::Train, 128, &mut elements, key).unwrap();
    assert_eq!(structured, elements);
    assert_eq!(structured, GOLDEN);
}

const GOLDEN: [u64; 2] = [0x5dde_f7ff_fff3_9176, 0xbdd9_fece_777d_fbb8];

/// timm's `scale_by_keep=False`: kept samples unchanged, dropped ones
/// `+0.0`, the same decisions as with scaling.
#[test]
fn drop_path_without_scaling() {
    let units = Units::per_sample(64, 10).unwrap();
    for p in [0.0f32, 0.3, 1.0] {
        let scaled = Dropout::new(p).unwrap().structured(units);
        let plain = Dropout::new(p)
            .unwrap()
            .scale_by_keep(false)
            .structured(units);
        assert_eq!(plain.dropout().scale(), 1.0);
        let xs: Vec<f32> = (0..units.len()).map(|i| i as f32 - 99.5).collect();
        let (mut a, mut b) = (xs.clone(), xs.clone());
        let key = Keyed::new(5, 0);
        scaled.forward(Mode::Train, &mut a, key).unwrap();
        plain.forward(Mode::Train, &mut b, key).unwrap();
        for ((x, a), b) in xs.iter().zip(&a).zip(&b) {
            assert_eq!(*a == 0.0 && *x != 0.0, *b == 0.0 && *x != 0.0, "p = {p}");
            assert!(b.to_bits() == 0 || b == x, "p = {p}: {x} became {b}");
        }
    }
}

/// Units without elements (a zero `shared` or `run`): a unit count past
/// `usize` is an error; a call that writes no mask decides nothing (it
/// returns at once, draws nothing from a caller RNG, even for `2^63`
/// units on 64-bit targets); a call that writes the mask decides every unit, as for units
/// with elements.
#[test]
fn units_without_elements() {
    let too_many = Units::new(usize::MAX, 0, 2, 1);
    assert!(
        matches!(too_many, Err(bitdrop::Error::InvalidShape { .. })),
        "{too_many:?}"
    );
    assert!(Units::broadcast(&[usize::MAX, 0, 2], &[1]).is_err());
    // An intermediate product of the element count overflows, though the
    // count is 0.
    assert!(Units::new(usize::MAX / 2, 3, 0, 1).is_err());
    let d = Dropout::new(0.5).unwrap();
    for units in [
        Units::new(1, 0, 100, 1).unwrap(),
        Units::new(1, 0, usize::MAX / 2 + 1, 1).unwrap(),
        Units::new(2, 1, usize::MAX / 4 + 1, 0).unwrap(),
    ] {
        let st = d.structured(units);
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(5);
        let before = rng.clone();
        st.forward(Mode::Train, &mut [0.0_f32; 0], &mut rng)
            .unwrap();
        st.backward(Mode::Train, &mut [0.0_f32; 0], Keyed::new(1, 0))
            .unwrap();
        st.forward_to(Mode::Train, &[0.0_f32; 0], &mut [], Keyed::new(1, 0))
            .unwrap();
        // A given mask must still cover every unit.
        let short = st.apply_mask(Mode::Train, &mut [0.0_f32; 0], &[]);
        assert!(
            matches!(short, Err(bitdrop::Error::MaskTooShort { .. })),
            "{short:?}"
        );
        assert_eq!(rng, before, "{units:?}: drew for units without elements");
        // Past the stream's end is still an error, as for any call.
        let late = Keyed::new(1, u64::MAX - 10);
        assert!(st.forward(Mode::Train, &mut [0.0_f32; 0], late).is_err());
    }
    // With a mask, the units are decided (and a caller RNG consumed).
    let units = Units::new(1, 0, 100, 1).unwrap();
    let (mut with_rng, mut with_key) = ([0_u64; 2], [0_u64; 2]);
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(5);
    let before = rng.clone();
    d.structured(units)
        .forward_with_mask(Mode::Train, &mut [0.0_f32; 0], &mut with_rng, &mut rng)
        .unwrap();
    assert_ne!(rng, before);
    d.structured(units)
        .fill_mask(Mode::Train, &mut with_key, Keyed::new(3, 0))
        .unwrap();
    let mut elementwise = [0_u64; 2];
    d.fill_mask(Mode::Train, 100, &mut elementwise, Keyed::new(3, 0))
        .unwrap();
    assert_eq!(with_key, elementwise);
}
