//! SPEC section 2: the packed mask and its helpers.

mod common;
mod support;

use bitdrop::{Error, Mask, mask_words};
use common::config;
use proptest::prelude::*;

proptest! {
    #![proptest_config(config(500))]

    /// Element i is bit i % 64 of word i / 64; the helpers see exactly the
    /// first `len` bits, whatever lies past them.
    #[test]
    fn helpers_read_the_documented_layout(
        words in prop::collection::vec(any::<u64>(), 0..6),
        cut in any::<prop::sample::Index>(),
    ) {
        let len = cut.index(64 * words.len() + 1);
        let mask = Mask::new(&words[..], len).unwrap();
        prop_assert_eq!(mask.len(), len);
        prop_assert_eq!(mask.is_empty(), len == 0);
        prop_assert_eq!(mask.words().len(), mask_words(len));
        let bits: Vec<bool> = (0..len).map(|i| words[i / 64] >> (i % 64) & 1 == 1).collect();
        prop_assert_eq!(mask.iter().collect::<Vec<_>>(), bits.clone());
        prop_assert_eq!(mask.iter().len(), len);
        for (i, &bit) in bits.iter().enumerate() {
            prop_assert_eq!(mask.get(i), Some(bit));
        }
        prop_assert_eq!(mask.get(len), None);
        let kept = bits.iter().filter(|&&b| b).count();
        prop_assert_eq!(mask.kept_count(), kept);
        prop_assert_eq!(mask.dropped_count(), len - kept);
    }

    /// u64 words to ONNX Runtime's u32 layout and back: the same bits, the
    /// tail cleared, and on little-endian targets the same memory.
    #[test]
    fn u32_round_trip(words in prop::collection::vec(any::<u64>(), 1..6), cut in any::<prop::sample::Index>()) {
        let len = cut.index(64 * words.len() + 1);
        let mask = Mask::new(&words[..], len).unwrap();
        let mut halves = vec![0xFFFF_FFFF_u32; len.div_ceil(32) + 1];
        mask.to_u32_words(&mut halves).unwrap();
        prop_assert_eq!(*halves.last().unwrap(), 0xFFFF_FFFF, "wrote past the words needed");
        halves.pop();
        for i in 0..len {
            prop_assert_eq!(halves[i / 32] >> (i % 32) & 1 == 1, mask.get(i).unwrap());
        }
        if len % 32 != 0 {
            prop_assert_eq!(halves.last().unwrap() >> (len % 32), 0);
        }
        let mut back = vec![!0u64; mask_words(len)];
        let round = Mask::from_u32_words(&halves, len, &mut back[..]).unwrap();
        prop_assert!(round.iter().eq(mask.iter()));
        prop_assert_eq!(round.kept_count(), mask.kept_count());
        let clean: Vec<u64> = back.clone();
        let popcount: u32 = clean.iter().map(|w| w.count_ones()).sum();
        prop_assert_eq!(popcount as usize, mask.kept_count(), "bits past len set");
        if cfg!(target_endian = "little") {
            let bytes: Vec<u8> = clean.iter().flat_map(|w| w.to_le_bytes()).collect();
            let from_halves: Vec<u8> = halves.iter().flat_map(|h| h.to_le_bytes()).collect();
            prop_assert_eq!(&bytes[..from_halves.len()], &from_halves[..]);
        }
        #[cfg(feature = "alloc")]
        {
            let owned = Mask::from_u32_slice(&halves, len).unwrap();
            prop_assert_eq!(owned.to_u32_vec(), halves);
        }
    }
}

#[test]
fn short_buffers_are_errors() {
    assert_eq!(
        Mask::new(&[0u64; 1][..], 65).unwrap_err(),
        Error::MaskTooShort {
            needed: 2,
            found: 1
        }
    );
    assert!(Mask::new(&[0u64; 0][..], 0).is_ok());
    let mask = Mask::new([!0u64; 2], 100).unwrap();
    let mut out = [7u32; 3];
    assert_eq!(
        mask.to_u32_words(&mut out),
        Err(Error::MaskTooShort {
            needed: 4,
            found: 3
        })
    );
    assert_eq!(out, [7; 3], "an error writes nothing");
    assert_eq!(
        Mask::from_u32_words(&[1, 2], 65, [0u64; 2]).unwrap_err(),
        Error::MaskTooShort {
            needed: 3,
            found: 2
        }
    );
    assert_eq!(
        Mask::from_u32_words(&[1, 2, 3], 65, [0u64; 1]).unwrap_err(),
        Error::MaskTooShort {
            needed: 2,
            found: 1
        }
    );
}

/// The owned mask works with the operations through `words_mut`.
#[cfg(feature = "alloc")]
#[test]
fn owned_mask_with_operations() {
    use bitdrop::{Dropout, Keyed, Mode};
    let d = Dropout::new(0.5).unwrap();
    let mut xs = vec![1.0f32; 1000];
    let mut mask = Mask::zeroed(xs.len());
    assert_eq!(mask.kept_count(), 0);
    d.forward_with_mask(Mode::Train, &mut xs, mask.words_mut(), Keyed::new(3, 0))
        .unwrap();
    assert_eq!(mask.kept_count(), xs.iter().filter(|&&x| x != 0.0).count());
    let words = mask.clone().into_inner();
    assert_eq!(words.len(), mask_words(1000));
    // A byte mask takes 8 times the memory, a float mask 32 times.
    assert_eq!(core::mem::size_of_val(&words[..]) * 8, 1000 + 24);
}
