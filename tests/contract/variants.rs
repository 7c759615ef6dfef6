//! The contract of the entry points whose element rule is not one decision
//! per unit, which the table of operations cannot state: Gaussian dropout
//! and noise (a variate per element) and DropBlock (blocks, and a scale
//! that depends on the mask). Same promises: the error due and nothing
//! written or drawn then, the identity in evaluation, the reference's
//! result and caller-RNG consumption, the documented rule.

use super::{Call, Delta, MAX_LEN, P, Source, repeat};
use crate::support::ops::{MASK_SENTINEL, SENTINEL};
use crate::support::{bit, identical, low_bits, same, same_f32};
use arbitrary::Arbitrary;
use bitdrop::{
    DropBlock, Error, GaussianDropout, GaussianNoise, Keyed, Mode, mask_words, reference,
};

/// The Gaussian entry points, each a fuzz target named like it.
pub const GAUSSIAN_TARGETS: [&str; 6] = [
    "gaussian_dropout_forward",
    "gaussian_dropout_forward_to",
    "gaussian_dropout_backward",
    "gaussian_dropout_backward_to",
    "gaussian_noise_forward",
    "gaussian_noise_forward_to",
];

/// The DropBlock entry points, each a fuzz target named like it.
pub const DROP_BLOCK_TARGETS: [&str; 6] = [
    "drop_block_forward",
    "drop_block_forward_to",
    "drop_block_apply_mask",
    "drop_block_apply_mask_to",
    "drop_block_backward",
    "drop_block_backward_to",
];

/// A call's source: a key (the only source of the backward calls, which
/// take a caller RNG's seed as a key's), or a caller RNG's seed.
fn source(source: Source, keyed_only: bool) -> Result<Keyed, u64> {
    match source {
        Source::Keyed { seed, offset } => Ok(Keyed::new(seed, offset.value())),
        Source::Rng { seed } if keyed_only => Ok(Keyed::new(seed, 0)),
        Source::Rng { seed } => Err(seed),
    }
}

/// `$call` with the source as `$s`: the key, or a caller RNG seeded from
/// the seed; the caller RNG's state afterwards (or the seed's, untouched,
/// for a key).
macro_rules! drawing {
    ($src:expr, |$s:ident| $call:expr) => {
        match $src {
            Ok(key) => {
                let $s = key;
                ($call, crate::support::rng(key.seed()))
            }
            Err(seed) => {
                let mut generator = crate::support::rng(seed);
                let $s = &mut generator;
                ($call, generator)
            }
        }
    };
}

/// The position overflow a keyed call of `count` positions must refuse.
fn overflow(src: Result<Keyed, u64>, count: usize) -> Option<Error> {
    let key = src.ok()?;
    (u128::from(key.offset()) + count as u128 > 1 << 64).then_some(Error::PositionOverflow {
        offset: key.offset(),
        len: count,
    })
}

/// Checks one call of the Gaussian target `name`. The call's `p` is the
/// rate of Gaussian dropout, or the standard deviation of the noise.
pub fn check_gaussian(call: &Call, name: &str) {
    let param = call.p.value();
    let xs: Vec<f32> = call
        .data
        .iter()
        .take(MAX_LEN)
        .map(|&b| f32::from_bits(b))
        .collect();
    let n = xs.len();
    let mode = if call.train { Mode::Train } else { Mode::Eval };
    let (dropout, to) = (name.starts_with("gaussian_dropout"), name.ends_with("_to"));
    let backward = name.contains("backward");
    let src = source(call.source, backward);
    let (g, noise) = if dropout {
        let valid = (0.0..=1.0).contains(&param);
        match GaussianDropout::new(param) {
            Ok(g) => (Some(g), None),
            Err(e) => {
                assert!(
                    !valid && matches!(e, Error::InvalidProbability { .. }),
                    "{e:?}"
                );
                return;
            }
        }
    } else {
        let valid = param.is_finite() && param >= 0.0;
        match GaussianNoise::new(param) {
            Ok(noise) => (None, Some(noise)),
            Err(e) => {
                assert!(!valid && matches!(e, Error::InvalidStdDev { .. }), "{e:?}");
                return;
            }
        }
    };
    let out_len = if to { call.out.apply(n) } else { n };
    let before = vec![SENTINEL; out_len];
    let mut fast = if to { before.clone() } else { xs.clone() };
    let (result, fast_rng) = drawing!(src, |s| match (g, noise, to, backward) {
        (Some(g), _, false, false) => g.forward(mode, &mut fast, s),
        (Some(g), _, true, false) => g.forward_to(mode, &xs, &mut fast, s),
        (Some(g), _, false, true) => g.backward(mode, &mut fast, src.unwrap()),
        (Some(g), _, true, true) => g.backward_to(mode, &xs, &mut fast, src.unwrap()),
        (_, Some(noise), false, _) => noise.forward(mode, &mut fast, s),
        (_, Some(noise), true, _) => noise.forward_to(mode, &xs, &mut fast, s),
        _ => unreachable!("a Gaussian dropout or a Gaussian noise"),
    });
    let untouched = drawing!(src, |_s| ()).1;
    let expected = if out_len != n {
        Some(Error::LengthMismatch {
            input: n,
            output: out_len,
        })
    } else {
        overflow(src, n)
    };
    if let Some(error) = expected {
        assert_eq!(result, Err(error), "{name}");
        let unchanged = if to { &before } else { &xs };
        assert!(identical(&fast, unchanged), "{name}: an error wrote");
        assert_eq!(fast_rng, untouched, "{name}: an error drew");
        return;
    }
    result.unwrap_or_else(|e| panic!("{name}: valid call failed: {e:?}"));
    let mut slow = vec![0.0; n];
    let (refused, slow_rng) = drawing!(src, |s| match (g, noise) {
        (Some(g), _) => reference::gaussian_dropout_forward_to(&g, mode, &xs, &mut slow, s),
        (_, Some(noise)) => reference::gaussian_noise_forward_to(&noise, mode, &xs, &mut slow, s),
        _ => unreachable!("a Gaussian dropout or a Gaussian noise"),
    });
    refused.unwrap_or_else(|e| panic!("{name}: the reference refused: {e:?}"));
    assert!(same(&fast, &slow), "{name}: differs from the reference");
    assert_eq!(fast_rng, slow_rng, "{name}: caller-RNG consumption");
    let identity = mode == Mode::Eval || param == 0.0;
    if identity {
        assert!(identical(&fast, &xs), "{name}: not the identity");
        assert_eq!(fast_rng, untouched, "{name}: the identity drew");
    } else if dropout && param == 1.0 {
        assert!(fast.iter().all(|y| y.to_bits() == 0), "{name}: p == 1");
    }
}

/// One DropBlock call: its parameters, its shape (each side small), data of
/// `len.apply(numel)` elements (the bit patterns of `data` repeated), an
/// output and a mask buffer of lengths relative to the needed ones, and
/// the words of a given mask.
#[derive(Arbitrary, Debug)]
pub struct BlockCall {
    pub p: P,
    pub train: bool,
    pub block_size: u8,
    pub shape: [u8; 4],
    pub data: Vec<u32>,
    pub len: Delta,
    pub out: Delta,
    pub mask: Delta,
    pub given: Vec<u64>,
    pub source: Source,
}

/// Checks one call of the DropBlock target `name`.
pub fn check_drop_block(call: &BlockCall, name: &str) {
    let p = call.p.value();
    let bs = usize::from(call.block_size % 9);
    let [n, c, h, w] = call.shape;
    let shape = [n % 3, c % 4, h % 24, w % 24].map(usize::from);
    let drop_block = match DropBlock::new(p, bs, shape) {
        Ok(d) => d,
        Err(e) => {
            let expected = if (0.0..=1.0).contains(&p) {
                Error::InvalidBlockSize { block_size: bs }
            } else {
                Error::InvalidProbability { p }
            };
            assert!(e == expected || p.is_nan(), "{name}: {e:?}");
            return;
        }
    };
    let mode = if call.train { Mode::Train } else { Mode::Eval };
    let len = drop_block.len();
    let xs = repeat(&call.data, call.len.apply(len), 0);
    let (to, reads) = (name.ends_with("_to"), name.contains("apply_mask"));
    let backward = name.contains("backward");
    let src = source(call.source, backward);
    let out_len = if to {
        call.out.apply(xs.len())
    } else {
        xs.len()
    };
    let mask_len = call.mask.apply(mask_words(len));
    let mask_before: Vec<u64> = match (reads, call.given.is_empty()) {
        (true, false) => (0..mask_len)
            .map(|i| call.given[i % call.given.len()])
            .collect(),
        (true, true) => vec![!0; mask_len],
        (false, _) => vec![MASK_SENTINEL; mask_len],
    };
    let before = vec![SENTINEL; out_len];
    let mut fast = if to { before.clone() } else { xs.clone() };
    let mut mask = mask_before.clone();
    let d = &drop_block;
    let (result, fast_rng) = drawing!(src, |s| match (reads, to, backward) {
        (true, false, _) => d.apply_mask(mode, &mut fast, &mask),
        (true, true, _) => d.apply_mask_to(mode, &xs, &mask, &mut fast),
        (false, false, false) => d.forward(mode, &mut fast, &mut mask, s),
        (false, true, false) => d.forward_to(mode, &xs, &mut fast, &mut mask, s),
        (false, false, true) => d.backward(mode, &mut fast, &mut mask, src.unwrap()),
        (false, true, true) => d.backward_to(mode, &xs, &mut fast, &mut mask, src.unwrap()),
    });
    let untouched = drawing!(src, |_s| ()).1;
    let expected = if to && out_len != xs.len() {
        Some(Error::LengthMismatch {
            input: xs.len(),
            output: out_len,
        })
    } else if xs.len() != len {
        Some(Error::ShapeMismatch {
            expected: len,
            found: xs.len(),
        })
    } else if mask_len < mask_words(len) {
        Some(Error::MaskTooShort {
            needed: mask_words(len),
            found: mask_len,
        })
    } else if reads {
        None
    } else {
        overflow(src, drop_block.seeds())
    };
    if let Some(error) = expected {
        assert_eq!(result, Err(error), "{name}");
        let unchanged = if to { &before } else { &xs };
        assert!(identical(&fast, unchanged), "{name}: an error wrote");
        assert_eq!(mask, mask_before, "{name}: an error wrote the mask");
        assert_eq!(fast_rng, untouched, "{name}: an error drew");
        return;
    }
    result.unwrap_or_else(|e| panic!("{name}: valid call failed: {e:?}"));
    let words = mask_words(len);
    if reads {
        assert_eq!(mask, mask_before, "{name}: wrote the given mask");
    } else {
        let mut slow = vec![0.0; len];
        let mut slow_mask = mask_before.clone();
        let (refused, slow_rng) = drawing!(src, |s| reference::drop_block_forward_to(
            d,
            mode,
            &xs,
            &mut slow,
            &mut slow_mask,
            s
        ));
        refused.unwrap_or_else(|e| panic!("{name}: the reference refused: {e:?}"));
        assert!(same(&fast, &slow), "{name}: differs from the reference");
        assert_eq!(mask, slow_mask, "{name}: mask differs from the reference");
        assert_eq!(fast_rng, slow_rng, "{name}: caller-RNG consumption");
        assert!(
            mask[words..].iter().all(|&m| m == MASK_SENTINEL),
            "{name}: past the mask"
        );
        if len % 64 != 0 {
            assert_eq!(
                mask[words - 1] & !low_bits(len % 64),
                0,
                "{name}: tail bits"
            );
        }
    }
    // The rule, from the mask: kept x * (len / kept), dropped +0.0.
    let kept = (0..len).filter(|&i| bit(&mask, i)).count();
    let s = (len as f64 / kept as f64) as f32;
    for (i, (&x, &y)) in xs.iter().zip(&fast).enumerate() {
        let ok = if mode == Mode::Eval || p == 0.0 {
            x.to_bits() == y.to_bits()
        } else if p == 1.0 || !bit(&mask, i) {
            y.to_bits() == 0
        } else {
            same_f32(y, x * s)
        };
        assert!(ok, "{name}: element {i}: {x} became {y} (s = {s})");
    }
}
