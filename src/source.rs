//! The two sources of randomness: any caller RNG, and the keyed stream.

use crate::Error;
use crate::decide::{self, Threshold};
use crate::dispatch::{Cpu, Level};
use crate::keyed::KeyedWords;
use crate::mask::low_bits;
use rand_core::Rng;

/// A position in the keyed mask stream ("mask stream v2", see the crate
/// docs): the element at index `i` of a call is decided by stream position
/// `offset + i` of stream `seed`, and by nothing else.
///
/// So a tensor may be processed in chunks, in any order and on any thread,
/// each chunk with `offset` set to its first element's index, and the result
/// is the same as one call over the whole tensor. A backward pass can
/// regenerate the mask from the same `Keyed` instead of storing it.
///
/// ```
/// use bitdrop::{Dropout, Keyed, Mode};
///
/// let dropout = Dropout::new(0.5)?;
/// let mut whole = [1.0_f32; 100];
/// dropout.forward(Mode::Train, &mut whole, Keyed::new(7, 0))?;
///
/// let mut parts = [1.0_f32; 100];
/// let (head, tail) = parts.split_at_mut(30);
/// dropout.forward(Mode::Train, tail, Keyed::new(7, 30))?;
/// dropout.forward(Mode::Train, head, Keyed::new(7, 0))?;
/// assert_eq!(whole, parts);
/// # Ok::<(), bitdrop::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Keyed {
    seed: u64,
    offset: u64,
}

impl Keyed {
    /// The stream `seed`, starting at position `offset`.
    pub const fn new(seed: u64, offset: u64) -> Self {
        Keyed { seed, offset }
    }

    /// The stream's seed.
    pub const fn seed(&self) -> u64 {
        self.seed
    }

    /// The stream position of a call's first element.
    pub const fn offset(&self) -> u64 {
        self.offset
    }

    /// The same stream, `n` positions further on, or `None` past `2^64 - 1`.
    pub const fn advanced(&self, n: u64) -> Option<Self> {
        match self.offset.checked_add(n) {
            Some(offset) => Some(Keyed::new(self.seed, offset)),
            None => None,
        }
    }
}

/// Where the keep decisions come from: `&mut R` for any
/// [`rand_core::Rng`] `R`, or a [`Keyed`] stream position.
///
/// A caller RNG is consumed in order: for each group of 64 consecutive
/// elements of the call (the last group may be shorter), one `next_u64` per
/// comparison step, as the crate docs describe. Calls that need no decision
/// (evaluation mode, `p == 0`, `p == 1`, and calls with no element that
/// write no mask, even structured ones with units but no elements) draw
/// nothing.
///
/// This trait is sealed: those two are the only sources.
pub trait Randomness: sealed::Sealed {}

pub(crate) mod sealed {
    use super::*;

    /// The crate-internal face of [`Randomness`].
    pub trait Sealed {
        /// The keep-word generator for one call.
        type Words: Words;
        /// Rejects a call of `len` elements that this source cannot serve.
        fn check(&self, len: usize) -> Result<(), Error>;
        /// The generator for one call of `threshold`.
        fn words(self, threshold: Threshold) -> Self::Words;
        /// The raw source, for the reference to decide from on its own.
        fn raw(self) -> Raw<Self::Rng>;
        /// The caller RNG's type (`Infallible` for the keyed stream).
        type Rng: NextWord;
    }

    /// A source as it is, before any decision is drawn from it.
    #[derive(Debug)]
    pub enum Raw<R> {
        /// A caller RNG, to be consumed in order.
        Rng(R),
        /// A keyed stream position.
        Keyed(Keyed),
    }

    /// One 64-bit word from a caller RNG.
    pub trait NextWord {
        /// `next_u64`.
        fn next_word(&mut self) -> u64;
    }

    impl<R: Rng + ?Sized> NextWord for &mut R {
        fn next_word(&mut self) -> u64 {
            self.next_u64()
        }
    }

    impl NextWord for core::convert::Infallible {
        fn next_word(&mut self) -> u64 {
            match *self {}
        }
    }

    /// Produces keep words for consecutive elements of one call.
    pub trait Words {
        /// Fills `out` (`len.div_ceil(64)` words) with the keep bits of the
        /// next `len` elements; bits past `len` are cleared.
        /// `cpu` is what the dispatched kernel may use.
        fn fill<I: Level>(&mut self, out: &mut [u64], len: usize, cpu: Cpu<I>);
    }
}

use sealed::{Sealed, Words};

impl<R: Rng + ?Sized> Randomness for &mut R {}

impl<'a, R: Rng + ?Sized> Sealed for &'a mut R {
    type Words = RngWords<'a, R>;

    fn check(&self, _len: usize) -> Result<(), Error> {
        Ok(())
    }

    fn words(self, threshold: Threshold) -> Self::Words {
        RngWords {
            rng: self,
            threshold,
        }
    }

    type Rng = Self;

    fn raw(self) -> sealed::Raw<Self> {
        sealed::Raw::Rng(self)
    }
}

/// Keep words drawn from a caller RNG, one group of 64 elements at a time.
pub struct RngWords<'a, R: ?Sized> {
    rng: &'a mut R,
    threshold: Threshold,
}

impl<R: ?Sized> core::fmt::Debug for RngWords<'_, R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RngWords").finish_non_exhaustive()
    }
}

impl<R: Rng + ?Sized> Words for RngWords<'_, R> {
    #[inline(always)]
    fn fill<I: Level>(&mut self, out: &mut [u64], len: usize, _: Cpu<I>) {
        let mut remaining = len;
        for slot in out {
            let lanes = remaining.min(64);
            *slot = decide::word(self.threshold, low_bits(lanes), || self.rng.next_u64());
            remaining -= lanes;
        }
    }
}

impl Randomness for Keyed {}

impl Sealed for Keyed {
    type Words = KeyedWords;

    fn check(&self, len: usize) -> Result<(), Error> {
        let end = u128::from(self.offset) + len as u128;
        if end > 1 << 64 {
            return Err(Error::PositionOverflow {
                offset: self.offset,
                len,
            });
        }
        Ok(())
    }

    fn words(self, threshold: Threshold) -> Self::Words {
        KeyedWords::new(self.seed, self.offset, threshold)
    }

    type Rng = core::convert::Infallible;

    fn raw(self) -> sealed::Raw<Self::Rng> {
        sealed::Raw::Keyed(self)
    }
}

impl Words for KeyedWords {
    #[inline(always)]
    fn fill<I: Level>(&mut self, out: &mut [u64], len: usize, cpu: Cpu<I>) {
        KeyedWords::fill(self, out, len, cpu);
    }
}
