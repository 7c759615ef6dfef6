//! The crate docs' statements on the corner cases, one test each: what a
//! tiny `p` draws, what a kept NaN becomes, which error wins, and what the
//! mask holds at `p == 0` and `p == 1`.

use bitdrop::{Dropout, Error, Keyed, Mode, Residual, Units, mask_words};
use rand_xoshiro::Xoshiro256PlusPlus;
use rand_xoshiro::rand_core::SeedableRng;

/// `0 < p < 2^-64`: D = 0, everything kept with s = 1, nothing drawn.
#[test]
fn tiny_p_keeps_everything_and_draws_nothing() {
    for p in [1e-45_f32, 5.0e-20] {
        let d = Dropout::new(p).unwrap();
        assert_eq!(d.drop_numerator(), 0);
        assert_eq!(d.scale(), 1.0);
        let xs: Vec<f32> = (0..300).map(|i| i as f32 - 150.5).collect();
        let mut ys = xs.clone();
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
        let before = rng.clone();
        let mut mask = vec![0; mask_words(300)];
        d.forward_with_mask(Mode::Train, &mut ys, &mut mask, &mut rng)
            .unwrap();
        assert_eq!(rng, before, "p = {p} drew randomness");
        assert_eq!(ys, xs);
        assert_eq!(mask, [!0, !0, !0, !0, (1 << 44) - 1]);
    }
    // Just above: D = 1, decisions are drawn.
    let d = Dropout::new(5.5e-20).unwrap();
    assert_eq!(d.drop_numerator(), 1);
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
    let before = rng.clone();
    d.forward(Mode::Train, &mut [1.0; 10], &mut rng).unwrap();
    assert_ne!(rng, before);
}

/// A kept NaN is a NaN; evaluation mode keeps its payload.
#[test]
fn kept_nan_stays_nan() {
    let payload = f32::from_bits(0x7FC0_1234);
    let signaling = f32::from_bits(0x7F80_0001);
    let d = Dropout::new(0.5).unwrap();
    let xs = [payload, signaling, -payload, f32::INFINITY];
    let mut all_kept = [!0u64];
    let mut ys = xs;
    d.apply_mask(Mode::Train, &mut ys, &all_kept).unwrap();
    assert!(ys[..3].iter().all(|y| y.is_nan()), "{ys:?}");
    assert_eq!(ys[3], f32::INFINITY);
    let mut zs = xs;
    d.forward(Mode::Eval, &mut zs, Keyed::new(0, 0)).unwrap();
    assert!(zs.iter().zip(&xs).all(|(z, x)| z.to_bits() == x.to_bits()));
    all_kept[0] = 0;
    d.apply_mask(Mode::Train, &mut ys, &all_kept).unwrap();
    assert!(ys.iter().all(|y| y.to_bits() == 0));
}

/// Every check fails at once: the documented order decides the error.
#[test]
fn error_precedence() {
    let d = Dropout::new(0.5).unwrap();
    let st = d.structured(Units::per_sample(2, 8).unwrap());
    let xs = [1.0_f32; 10];
    let mut short_out = [0.0_f32; 9];
    let mut short_mask: [u64; 0] = [];
    let end = Keyed::new(0, u64::MAX);
    // Lengths first.
    assert!(matches!(
        st.forward_to_with_mask(Mode::Train, &xs, &mut short_out, &mut short_mask, end),
        Err(Error::LengthMismatch {
            input: 10,
            output: 9
        })
    ));
    let mut r = [0.0_f32; 10];
    let io = Residual::IntoResidual {
        x: &xs,
        residual: &mut r,
    };
    assert!(matches!(
        st.residual_add_with_mask(Mode::Train, io, Some(&[1.0; 3]), &mut short_mask, end),
        Err(Error::BiasMismatch { bias: 3, len: 10 })
    ));
    // Then the shape.
    let mut out = [0.0_f32; 10];
    assert!(matches!(
        st.forward_to_with_mask(Mode::Train, &xs, &mut out, &mut short_mask, end),
        Err(Error::ShapeMismatch {
            expected: 16,
            found: 10
        })
    ));
    // Then the mask, then the stream.
    let xs = [1.0_f32; 16];
    let mut out = [0.0_f32; 16];
    assert!(matches!(
        st.forward_to_with_mask(Mode::Train, &xs, &mut out, &mut short_mask, end),
        Err(Error::MaskTooShort {
            needed: 1,
            found: 0
        })
    ));
    let mut mask = [0u64; 1];
    assert!(matches!(
        st.forward_to_with_mask(Mode::Train, &xs, &mut out, &mut mask, end),
        Err(Error::PositionOverflow { len: 2, .. })
    ));
    // Evaluation mode checks the same things.
    assert!(st.forward(Mode::Eval, &mut [0.0; 3], end).is_err());
}

/// Masks at `p == 0` and in evaluation mode keep every unit; at `p == 1`
/// they drop every unit; nothing is drawn in any of these.
#[test]
fn masks_at_the_edges() {
    let units = Units::channels_last(3, 5, 70).unwrap();
    for (p, mode, word) in [
        (0.0, Mode::Train, !0u64),
        (0.7, Mode::Eval, !0),
        (1.0, Mode::Eval, !0),
        (1.0, Mode::Train, 0),
    ] {
        let st = Dropout::new(p).unwrap().structured(units);
        let mut mask = vec![0x5555_u64; mask_words(units.count()) + 1];
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
        let before = rng.clone();
        st.fill_mask(mode, &mut mask, &mut rng).unwrap();
        assert_eq!(rng, before);
        let n = units.count();
        assert_eq!(mask[..n / 64], vec![word; n / 64][..], "p = {p} {mode:?}");
        assert_eq!(mask[n / 64], word & ((1 << (n % 64)) - 1));
        assert_eq!(mask[n / 64 + 1], 0x5555, "wrote past the mask");
    }
}
