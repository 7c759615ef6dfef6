//! The SIMD path equals the scalar reference, bit for bit, for every
//! operation, both sources of randomness, every length 0..=1100.

mod common;

use bitdrop::{Dropout, Keyed, Mode, mask_words, reference};
use common::{EDGE_P, data, rng, same, scaled};
use rand_xoshiro::rand_core::Rng;

/// Offsets for length `len`: at the start, inside a block, just before a
/// block edge, far out, and at the very end of the stream.
fn offsets(len: usize, salt: u64) -> [u64; 5] {
    let end = u64::MAX - (len as u64).saturating_sub(1);
    [
        0,
        salt % 4096,
        (salt % 1000 + 1) * 4096 - 1 - salt % 7,
        salt.wrapping_mul(0x9E37_79B9_7F4A_7C15) % end,
        end,
    ]
}

/// Every keyed operation of the fast path against the reference.
fn check_keyed(dropout: &Dropout, mode: Mode, xs: &[f32], key: Keyed) {
    let n = xs.len();
    let mut expected = vec![0.0; n];
    reference::forward_to(dropout, mode, xs, &mut expected, key).unwrap();
    let mut expected_mask = vec![0; mask_words(n)];
    reference::fill_mask(dropout, mode, n, &mut expected_mask, key).unwrap();
    let ctx = format!("p={} mode={mode:?} len={n} key={key:?}", dropout.p());

    let mut inplace = xs.to_vec();
    dropout.forward(mode, &mut inplace, key).unwrap();
    assert!(same(&inplace, &expected), "forward {ctx}");

    let mut out = vec![f32::NAN; n];
    dropout.forward_to(mode, xs, &mut out, key).unwrap();
    assert!(same(&out, &expected), "forward_to {ctx}");

    let mut with_mask = xs.to_vec();
    let mut mask = vec![!0; mask_words(n)];
    dropout
        .forward_with_mask(mode, &mut with_mask, &mut mask, key)
        .unwrap();
    assert!(same(&with_mask, &expected), "forward_with_mask {ctx}");
    assert_eq!(mask, expected_mask, "forward_with_mask's mask {ctx}");

    let mut mask_only = vec![!0; mask_words(n)];
    dropout.fill_mask(mode, n, &mut mask_only, key).unwrap();
    assert_eq!(mask_only, expected_mask, "fill_mask {ctx}");

    let mut grad = xs.to_vec();
    dropout.backward(mode, &mut grad, key).unwrap();
    assert!(same(&grad, &expected), "backward {ctx}");

    let mut expected_applied = vec![0.0; n];
    reference::apply_mask_to(dropout, mode, xs, &expected_mask, &mut expected_applied).unwrap();
    let mut applied = xs.to_vec();
    dropout
        .apply_mask(mode, &mut applied, &expected_mask)
        .unwrap();
    assert!(same(&applied, &expected_applied), "apply_mask {ctx}");
    let mut applied_to = vec![0.0; n];
    dropout
        .apply_mask_to(mode, xs, &expected_mask, &mut applied_to)
        .unwrap();
    assert!(same(&applied_to, &expected_applied), "apply_mask_to {ctx}");
}

/// Every RNG operation of the fast path against the reference, including
/// how far each advanced the caller's generator.
fn check_rng(dropout: &Dropout, mode: Mode, xs: &[f32], seed: u64) {
    let n = xs.len();
    let ctx = format!("p={} mode={mode:?} len={n} seed={seed}", dropout.p());
    let mut reference_rng = rng(seed);
    let mut expected = vec![0.0; n];
    reference::forward_to(dropout, mode, xs, &mut expected, &mut reference_rng).unwrap();
    let mut expected_mask = vec![0; mask_words(n)];
    reference::fill_mask(dropout, mode, n, &mut expected_mask, &mut rng(seed)).unwrap();

    let mut fast_rng = rng(seed);
    let mut inplace = xs.to_vec();
    dropout.forward(mode, &mut inplace, &mut fast_rng).unwrap();
    assert!(same(&inplace, &expected), "forward {ctx}");
    assert_eq!(fast_rng, reference_rng, "RNG consumption {ctx}");

    let mut out = vec![f32::NAN; n];
    dropout
        .forward_to(mode, xs, &mut out, &mut rng(seed))
        .unwrap();
    assert!(same(&out, &expected), "forward_to {ctx}");

    let mut with_mask = vec![f32::NAN; n];
    let mut mask = vec![!0; mask_words(n)];
    dropout
        .forward_to_with_mask(mode, xs, &mut with_mask, &mut mask, &mut rng(seed))
        .unwrap();
    assert!(same(&with_mask, &expected), "forward_to_with_mask {ctx}");
    assert_eq!(mask, expected_mask, "forward_to_with_mask's mask {ctx}");

    let mut mask_only = vec![!0; mask_words(n)];
    dropout
        .fill_mask(mode, n, &mut mask_only, &mut rng(seed))
        .unwrap();
    assert_eq!(mask_only, expected_mask, "fill_mask {ctx}");
}

#[test]
fn simd_equals_reference_for_every_length() {
    let mut salt = rng(0x5EED);
    // Under Miri: lengths past a word and past a 512-element chunk.
    let lengths: Vec<usize> = if cfg!(miri) {
        vec![513]
    } else {
        (0..=1100).collect()
    };
    for n in lengths {
        let xs = data(n, n as u64);
        let p = EDGE_P[n % EDGE_P.len()];
        let dropout = Dropout::new(p).unwrap();
        let mode = if n % 13 == 0 { Mode::Eval } else { Mode::Train };
        let s = salt.next_u64();
        let offsets = offsets(n, s);
        // Under Miri: the offset just before a block edge.
        let taken = if cfg!(miri) { 2..3 } else { 0..5 };
        for &offset in &offsets[taken] {
            check_keyed(&dropout, mode, &xs, Keyed::new(s >> 3, offset));
        }
        check_rng(&dropout, mode, &xs, s);
    }
}

#[test]
fn simd_equals_reference_for_every_p_on_long_slices() {
    // Under Miri: D = 0, D = 1, and a long and a one-step threshold.
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
        let xs = data(n, i as u64);
        check_keyed(
            &dropout,
            Mode::Train,
            &xs,
            Keyed::new(i as u64, 12_345 * i as u64),
        );
        check_rng(&dropout, Mode::Train, &xs, i as u64);
    }
}
