//! The bit-packed mask: one bit per element in `u64` words.

use crate::Error;
#[cfg(feature = "alloc")]
use alloc::vec::Vec;

/// Words needed for a mask of `len` elements: `len.div_ceil(64)`.
///
/// ```
/// assert_eq!(bitdrop::mask_words(0), 0);
/// assert_eq!(bitdrop::mask_words(64), 1);
/// assert_eq!(bitdrop::mask_words(65), 2);
/// ```
pub const fn mask_words(len: usize) -> usize {
    len.div_ceil(64)
}

/// A word with its lowest `bits` bits set (`bits <= 64`).
#[inline(always)]
pub(crate) fn low_bits(bits: usize) -> u64 {
    if bits >= 64 { !0 } else { (1 << bits) - 1 }
}

/// Sets bits `start..end` of `words` (all inside `words`).
pub(crate) fn set_bits(words: &mut [u64], start: usize, end: usize) {
    let mut at = start;
    while at < end {
        let n = (end - at).min(64 - at % 64);
        if let Some(word) = words.get_mut(at / 64) {
            *word |= low_bits(n) << (at % 64);
        }
        at += n;
    }
}

/// Checks that `found` words hold a mask of `len` elements.
pub(crate) fn check_words(len: usize, found: usize) -> Result<(), Error> {
    let needed = mask_words(len);
    if found < needed {
        return Err(Error::MaskTooShort { needed, found });
    }
    Ok(())
}

/// A mask of `len` elements over words `W`: borrowed (`&[u64]`,
/// `&mut [u64]`) or, with the `alloc` feature, owned (`Vec<u64>`).
///
/// Element `i` is bit `i % 64` (bit 0 the least significant) of word
/// `i / 64`, and `1` means kept. `len` elements take [`mask_words`]`(len)`
/// words; the masks this crate writes clear the bits past `len`, and the
/// helpers here ignore them, whatever they hold.
///
/// The operations of [`Dropout`](crate::Dropout) take the raw words
/// ([`words_mut`](Mask::words_mut)); this type adds the helpers.
///
/// ```
/// use bitdrop::{Dropout, Keyed, Mask, Mode};
///
/// let dropout = Dropout::new(0.25)?;
/// let mut xs = [1.0_f32; 100];
/// let mut words = [0_u64; 2];
/// dropout.forward_with_mask(Mode::Train, &mut xs, &mut words, Keyed::new(1, 0))?;
///
/// let mask = Mask::new(&words[..], xs.len())?;
/// assert_eq!(mask.kept_count(), xs.iter().filter(|&&x| x != 0.0).count());
/// assert_eq!(mask.get(3), Some(xs[3] != 0.0));
/// assert!(mask.iter().zip(&xs).all(|(kept, &x)| kept == (x != 0.0)));
/// # Ok::<(), bitdrop::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Mask<W> {
    words: W,
    len: usize,
}

impl<W: AsRef<[u64]>> Mask<W> {
    /// A mask of `len` elements over `words`.
    ///
    /// # Errors
    ///
    /// [`Error::MaskTooShort`] if `words` has fewer than
    /// [`mask_words`]`(len)` words. Longer is fine: the rest is not used.
    pub fn new(words: W, len: usize) -> Result<Self, Error> {
        check_words(len, words.as_ref().len())?;
        Ok(Mask { words, len })
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the mask has no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The [`mask_words`]`(len)` words holding the mask.
    pub fn words(&self) -> &[u64] {
        let words = self.words.as_ref();
        words.get(..mask_words(self.len)).unwrap_or(words)
    }

    /// The words with the bits past `len` cleared.
    fn clean_words(&self) -> impl Iterator<Item = u64> + '_ {
        let len = self.len;
        self.words()
            .iter()
            .enumerate()
            .map(move |(i, &w)| w & low_bits(len - 64 * i))
    }

    /// Number of kept elements.
    pub fn kept_count(&self) -> usize {
        self.clean_words().map(|w| w.count_ones() as usize).sum()
    }

    /// Number of dropped elements.
    pub fn dropped_count(&self) -> usize {
        self.len - self.kept_count()
    }

    /// Whether element `i` is kept, or `None` if `i >= len`.
    pub fn get(&self, i: usize) -> Option<bool> {
        if i >= self.len {
            return None;
        }
        let word = self.words().get(i / 64)?;
        Some(word >> (i % 64) & 1 == 1)
    }

    /// The elements in order: `true` for kept.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = bool> + '_ {
        (0..self.len).map(move |i| self.get(i) == Some(true))
    }

    /// The mask as `u32` words, element `i` being bit `i % 32` of word
    /// `i / 32` (ONNX Runtime's BitmaskDropout layout), written to the first
    /// `len.div_ceil(32)` words of `out`, bits past `len` cleared.
    ///
    /// # Errors
    ///
    /// [`Error::MaskTooShort`] if `out` is shorter; nothing is written then.
    ///
    /// ```
    /// use bitdrop::Mask;
    ///
    /// let mask = Mask::new([0x0000_0003_8000_0001_u64], 40)?;
    /// let mut out = [0_u32; 2];
    /// mask.to_u32_words(&mut out)?;
    /// assert_eq!(out, [0x8000_0001, 0x0000_0003]);
    /// # Ok::<(), bitdrop::Error>(())
    /// ```
    pub fn to_u32_words(&self, out: &mut [u32]) -> Result<(), Error> {
        let needed = self.len.div_ceil(32);
        let Some(out) = out.get_mut(..needed) else {
            return Err(Error::MaskTooShort {
                needed,
                found: out.len(),
            });
        };
        let halves = self
            .clean_words()
            .flat_map(|w| [w as u32, (w >> 32) as u32]);
        for (slot, half) in out.iter_mut().zip(halves) {
            *slot = half;
        }
        Ok(())
    }

    /// The underlying words.
    pub fn into_inner(self) -> W {
        self.words
    }
}

impl<W: AsRef<[u64]> + AsMut<[u64]>> Mask<W> {
    /// The [`mask_words`]`(len)` words, to pass to the operations of
    /// [`Dropout`](crate::Dropout).
    pub fn words_mut(&mut self) -> &mut [u64] {
        let needed = mask_words(self.len);
        let words = self.words.as_mut();
        let available = words.len();
        &mut words[..needed.min(available)]
    }

    /// A mask of `len` elements read from `u32` words in ONNX Runtime's
    /// layout (element `i` is bit `i % 32` of word `i / 32`) into `words`.
    /// Bits past `len` are cleared.
    ///
    /// # Errors
    ///
    /// [`Error::MaskTooShort`] if `src` has fewer than `len.div_ceil(32)`
    /// words or `words` fewer than [`mask_words`]`(len)`.
    ///
    /// ```
    /// use bitdrop::Mask;
    ///
    /// let mask = Mask::from_u32_words(&[0x8000_0001, 0x0000_0003], 40, [0_u64; 1])?;
    /// assert_eq!(mask.words(), &[0x0000_0003_8000_0001]);
    /// assert_eq!(mask.kept_count(), 4);
    /// # Ok::<(), bitdrop::Error>(())
    /// ```
    pub fn from_u32_words(src: &[u32], len: usize, words: W) -> Result<Self, Error> {
        let needed = len.div_ceil(32);
        let Some(src) = src.get(..needed) else {
            return Err(Error::MaskTooShort {
                needed,
                found: src.len(),
            });
        };
        let mut mask = Mask::new(words, len)?;
        let mut pairs = src.chunks(2);
        for (i, slot) in mask.words_mut().iter_mut().enumerate() {
            let pair = pairs.next().unwrap_or(&[]);
            let lo = u64::from(pair.first().copied().unwrap_or(0));
            let hi = u64::from(pair.get(1).copied().unwrap_or(0));
            *slot = (lo | hi << 32) & low_bits(len - 64 * i);
        }
        Ok(mask)
    }
}

#[cfg(feature = "alloc")]
impl Mask<Vec<u64>> {
    /// An owned mask of `len` elements, all dropped (all bits zero).
    pub fn zeroed(len: usize) -> Self {
        Mask {
            words: alloc::vec![0; mask_words(len)],
            len,
        }
    }

    /// An owned mask read from `u32` words in ONNX Runtime's layout; see
    /// [`from_u32_words`](Mask::from_u32_words).
    ///
    /// # Errors
    ///
    /// [`Error::MaskTooShort`] if `src` has fewer than `len.div_ceil(32)`
    /// words.
    pub fn from_u32_slice(src: &[u32], len: usize) -> Result<Self, Error> {
        Mask::from_u32_words(src, len, alloc::vec![0; mask_words(len)])
    }

    /// The mask as `u32` words in ONNX Runtime's layout; see
    /// [`to_u32_words`](Mask::to_u32_words).
    pub fn to_u32_vec(&self) -> Vec<u32> {
        let mut out = alloc::vec![0; self.len.div_ceil(32)];
        // Cannot fail: `out` has exactly the words needed.
        let _ = self.to_u32_words(&mut out);
        out
    }
}
