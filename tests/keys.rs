//! Key derivation v1: golden vectors, the documented construction rebuilt
//! from `rand_xoshiro`'s SplitMix64, and no collisions over a grid.

use bitdrop::{Dropout, Keyed, Mask, Mode, derive_seed, mask_words};
use rand_xoshiro::SplitMix64;
use rand_xoshiro::rand_core::{Rng, SeedableRng};
use std::collections::HashSet;

const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64's output function, as its first output after seeding with
/// `z - GAMMA`.
fn mix(z: u64) -> u64 {
    SplitMix64::seed_from_u64(z.wrapping_sub(GAMMA)).next_u64()
}

/// The construction in `derive_seed`'s docs, transcribed.
fn documented(seed: u64, path: &[u64]) -> u64 {
    let mut h = mix(seed.wrapping_add(GAMMA));
    for &x in path {
        h = mix((h ^ x).wrapping_add(GAMMA));
    }
    mix(h.wrapping_add((path.len() as u64 + 1).wrapping_mul(GAMMA)))
}

#[test]
fn golden_vectors_of_key_derivation_v1() {
    let golden: [(u64, &[u64], u64); 6] = [
        (0, &[], 0xa706_dd2f_4d19_7e6f),
        (0, &[0], 0xf89a_2566_b582_2c54),
        (0, &[0, 0], 0xab9a_a3da_fba6_b4ac),
        (1, &[], 0x5e41_ab08_7439_611e),
        (2024, &[3, 17], 0x7f22_c4c9_88e1_6a30),
        (u64::MAX, &[u64::MAX, 1, 2, 3], 0xec8e_fec2_20e4_2e9b),
    ];
    for (seed, path, expected) in golden {
        assert_eq!(derive_seed(seed, path), expected, "{seed} {path:?}");
        assert_eq!(documented(seed, path), expected, "docs {seed} {path:?}");
        assert_eq!(Keyed::derived(seed, path, 5), Keyed::new(expected, 5));
    }
}

#[test]
fn no_collisions_over_a_grid() {
    let (layers, steps) = if cfg!(miri) { (4, 16) } else { (64, 2048) };
    let mut seen = HashSet::new();
    for seed in 0..4u64 {
        assert!(seen.insert(derive_seed(seed, &[])));
        for layer in 0..layers {
            assert!(seen.insert(derive_seed(seed, &[layer])));
            for step in 0..steps {
                let key = derive_seed(seed, &[layer, step]);
                assert!(seen.insert(key), "collision at {seed} {layer} {step}");
                assert_eq!(key, documented(seed, &[layer, step]));
            }
        }
    }
    // Prefixes, extensions by zero and permutations differ.
    for seed in 0..100 {
        let all = [
            derive_seed(seed, &[]),
            derive_seed(seed, &[0]),
            derive_seed(seed, &[0, 0]),
            derive_seed(seed, &[1, 2]),
            derive_seed(seed, &[2, 1]),
            derive_seed(seed, &[1, 2, 0]),
        ];
        let unique: HashSet<_> = all.iter().collect();
        assert_eq!(unique.len(), all.len(), "seed {seed}");
    }
}

/// Masks of derived keys for neighbouring layers agree on about
/// `q^2 + (1-q)^2` of the positions, as independent masks do (6 sigma).
#[test]
fn derived_keys_give_independent_masks() {
    let n = if cfg!(miri) { 4096 } else { 1 << 20 };
    let d = Dropout::new(0.5).unwrap();
    let mask = |key| {
        let mut words = vec![0; mask_words(n)];
        d.fill_mask(Mode::Train, n, &mut words, key).unwrap();
        words
    };
    for layer in 0..4 {
        let a = mask(Keyed::derived(9, &[layer, 0], 0));
        let b = mask(Keyed::derived(9, &[layer + 1, 0], 0));
        let agree: u64 = a
            .iter()
            .zip(&b)
            .map(|(x, y)| u64::from((!(x ^ y)).count_ones()))
            .sum();
        let expected = n as f64 / 2.0;
        let sigma = (n as f64 * 0.25).sqrt();
        assert!(
            (agree as f64 - expected).abs() < 6.0 * sigma,
            "layers {layer}, {}: {agree} agreements of {n}",
            layer + 1
        );
        assert_eq!(Mask::new(&a[..], n).unwrap().len(), n);
    }
}
