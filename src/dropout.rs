//! The validated configuration and the operations.

use crate::Error;
use crate::decide::Threshold;
use crate::dispatch::{self, Kernel};
use crate::kernel::Io;
use crate::mask::{check_words, low_bits, mask_words};
use crate::source::sealed::Words;
use crate::source::{Keyed, Randomness};

/// Training or evaluation (inference). Every operation takes one, so that
/// forgetting to switch dropout off at inference cannot go unnoticed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Drop elements with probability `p` and scale the rest by `1/(1-p)`.
    Train,
    /// The identity: outputs equal inputs bit for bit, masks are all kept,
    /// and no randomness is drawn.
    Eval,
}

/// What a call does to its data, once mode and `p` are known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Plan {
    /// Evaluation mode, or `p == 0`: copy, keep everything.
    Identity,
    /// `p == 1`: every element becomes `+0.0`.
    DropAll,
    /// Draw a decision per element against this threshold.
    Random(Threshold),
}

/// Inverted dropout with a fixed drop probability `p`.
///
/// In [`Mode::Train`] each element is dropped with probability exactly
/// `floor(p * 2^64) / 2^64` (that is `p` itself for every `p >= 2^-41`);
/// a dropped element becomes `+0.0`, a kept one `x * scale()`, one `f32`
/// multiply. In [`Mode::Eval`], and in training with `p == 0`, every
/// operation is the identity; with `p == 1` every output is `+0.0`.
///
/// Each operation takes the decisions from a [`Randomness`]: `&mut rng` for
/// any [`rand_core::Rng`], or a [`Keyed`] stream position. None allocates,
/// none panics, and each checks all arguments before writing anything.
///
/// ```
/// use bitdrop::{Dropout, Keyed, Mode};
///
/// let dropout = Dropout::new(0.5)?;
/// assert_eq!(dropout.scale(), 2.0);
///
/// let mut xs = [1.0_f32; 8];
/// dropout.forward(Mode::Train, &mut xs, Keyed::new(42, 0))?;
/// assert!(xs.iter().all(|&x| x == 0.0 || x == 2.0));
///
/// let mut ys = [1.0_f32; 8];
/// dropout.forward(Mode::Eval, &mut ys, Keyed::new(42, 0))?;
/// assert_eq!(ys, [1.0; 8]);
/// # Ok::<(), bitdrop::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Dropout {
    p: f32,
    scale: f32,
    /// `floor(p * 2^64)`, saturated: only read when `0 < p < 1`.
    threshold: Threshold,
}

impl Dropout {
    /// Dropout with drop probability `p`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidProbability`] unless `0.0 <= p <= 1.0` (so NaN and
    /// the infinities are rejected).
    ///
    /// ```
    /// use bitdrop::{Dropout, Error};
    ///
    /// assert!(Dropout::new(0.1).is_ok());
    /// assert_eq!(Dropout::new(1.5), Err(Error::InvalidProbability { p: 1.5 }));
    /// assert!(Dropout::new(f32::NAN).is_err());
    /// ```
    pub fn new(p: f32) -> Result<Self, Error> {
        if !(0.0..=1.0).contains(&p) {
            return Err(Error::InvalidProbability { p });
        }
        let p64 = f64::from(p);
        // Exact: p has 24 significant bits, so p * 2^64 is an f64, and `as`
        // truncates it (saturating at p == 1, which never reads it).
        let threshold = Threshold((p64 * 18_446_744_073_709_551_616.0) as u64);
        Ok(Dropout {
            p,
            scale: (1.0 / (1.0 - p64)) as f32,
            threshold,
        })
    }

    /// The drop probability given to [`new`](Dropout::new).
    pub const fn p(&self) -> f32 {
        self.p
    }

    /// The factor `1 / (1 - p)` for kept elements, computed in `f64` and
    /// rounded once to `f32`: `(1.0 / (1.0 - p as f64)) as f32`. It is
    /// `+inf` at `p == 1`, where no element is ever kept.
    pub const fn scale(&self) -> f32 {
        self.scale
    }

    /// The exact drop probability as a numerator over `2^64`:
    /// `floor(p * 2^64)`, which is `2^64` at `p == 1`.
    ///
    /// ```
    /// let d = bitdrop::Dropout::new(0.25)?;
    /// assert_eq!(d.drop_numerator(), 1 << 62);
    /// # Ok::<(), bitdrop::Error>(())
    /// ```
    pub const fn drop_numerator(&self) -> u128 {
        if self.p == 1.0 {
            1 << 64
        } else {
            self.threshold.0 as u128
        }
    }

    pub(crate) fn plan(&self, mode: Mode) -> Plan {
        if mode == Mode::Eval || self.p == 0.0 {
            Plan::Identity
        } else if self.p == 1.0 {
            Plan::DropAll
        } else {
            Plan::Random(self.threshold)
        }
    }

    /// Dropout in place.
    ///
    /// # Errors
    ///
    /// [`Error::PositionOverflow`] if `source` is a [`Keyed`] position with
    /// `offset + xs.len() > 2^64`.
    ///
    /// ```
    /// use bitdrop::{Dropout, Mode};
    /// use rand_xoshiro::{Xoshiro256PlusPlus, rand_core::SeedableRng};
    ///
    /// let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
    /// let dropout = Dropout::new(0.1)?;
    /// let mut xs = vec![0.5_f32; 1000];
    /// dropout.forward(Mode::Train, &mut xs, &mut rng)?;
    /// let kept = xs.iter().filter(|&&x| x != 0.0).count();
    /// assert!((800..1000).contains(&kept));
    /// # Ok::<(), bitdrop::Error>(())
    /// ```
    pub fn forward(
        &self,
        mode: Mode,
        xs: &mut [f32],
        source: impl Randomness,
    ) -> Result<(), Error> {
        self.run(mode, Io::InPlace(xs), None, source)
    }

    /// Dropout from `xs` into `out`.
    ///
    /// # Errors
    ///
    /// [`Error::LengthMismatch`] if `out.len() != xs.len()`;
    /// [`Error::PositionOverflow`] as for [`forward`](Dropout::forward).
    pub fn forward_to(
        &self,
        mode: Mode,
        xs: &[f32],
        out: &mut [f32],
        source: impl Randomness,
    ) -> Result<(), Error> {
        self.run(mode, copy_io(xs, out)?, None, source)
    }

    /// Dropout in place that also writes the mask, in the same pass, to the
    /// first [`mask_words`]`(xs.len())` words of `mask` (see [`Mask`](crate::Mask)
    /// for the layout). In evaluation mode the mask keeps every element.
    ///
    /// # Errors
    ///
    /// [`Error::MaskTooShort`] if `mask` is shorter;
    /// [`Error::PositionOverflow`] as for [`forward`](Dropout::forward).
    ///
    /// ```
    /// use bitdrop::{Dropout, Keyed, Mode};
    ///
    /// let dropout = Dropout::new(0.3)?;
    /// let mut xs = [2.0_f32; 70];
    /// let mut mask = [0_u64; 2];
    /// dropout.forward_with_mask(Mode::Train, &mut xs, &mut mask, Keyed::new(5, 0))?;
    /// for (i, &x) in xs.iter().enumerate() {
    ///     let kept = mask[i / 64] >> (i % 64) & 1 == 1;
    ///     assert_eq!(x, if kept { 2.0 * dropout.scale() } else { 0.0 });
    /// }
    /// # Ok::<(), bitdrop::Error>(())
    /// ```
    pub fn forward_with_mask(
        &self,
        mode: Mode,
        xs: &mut [f32],
        mask: &mut [u64],
        source: impl Randomness,
    ) -> Result<(), Error> {
        self.run(mode, Io::InPlace(xs), Some(mask), source)
    }

    /// Dropout from `xs` into `out` that also writes the mask, as
    /// [`forward_with_mask`](Dropout::forward_with_mask).
    ///
    /// # Errors
    ///
    /// [`Error::LengthMismatch`], [`Error::MaskTooShort`],
    /// [`Error::PositionOverflow`], as for the operations above.
    pub fn forward_to_with_mask(
        &self,
        mode: Mode,
        xs: &[f32],
        out: &mut [f32],
        mask: &mut [u64],
        source: impl Randomness,
    ) -> Result<(), Error> {
        self.run(mode, copy_io(xs, out)?, Some(mask), source)
    }

    /// Writes the mask of `len` elements to the first [`mask_words`]`(len)`
    /// words of `mask`, without touching any data: the decisions that
    /// [`forward`](Dropout::forward) would make with the same `source`.
    ///
    /// # Errors
    ///
    /// [`Error::MaskTooShort`], [`Error::PositionOverflow`].
    ///
    /// ```
    /// use bitdrop::{Dropout, Keyed, Mask, Mode};
    ///
    /// let dropout = Dropout::new(0.5)?;
    /// let mut words = [0_u64; 16];
    /// dropout.fill_mask(Mode::Train, 1000, &mut words, Keyed::new(3, 0))?;
    /// let kept = Mask::new(&words[..], 1000)?.kept_count();
    /// assert!((400..600).contains(&kept));
    /// # Ok::<(), bitdrop::Error>(())
    /// ```
    pub fn fill_mask(
        &self,
        mode: Mode,
        len: usize,
        mask: &mut [u64],
        source: impl Randomness,
    ) -> Result<(), Error> {
        check_words(len, mask.len())?;
        source.check(len)?;
        let words = &mut mask[..mask_words(len)];
        match self.plan(mode) {
            Plan::Identity => fill_kept(words, len),
            Plan::DropAll => words.fill(0),
            Plan::Random(threshold) => dispatch::run(FillMask {
                words: source.words(threshold),
                out: words,
                len,
            }),
        }
        Ok(())
    }

    /// Applies a given mask in place: element `i` becomes `x * scale()`
    /// where the mask keeps it and `+0.0` where it drops it. This is the
    /// reuse of one mask across time steps (variational dropout), and the
    /// backward pass `grad * mask * scale` of a forward that wrote `mask`.
    ///
    /// In evaluation mode, and with `p == 0`, it is the identity; with
    /// `p == 1` every element becomes `+0.0`, whatever the mask says.
    ///
    /// # Errors
    ///
    /// [`Error::MaskTooShort`] if `mask` has fewer than
    /// [`mask_words`]`(xs.len())` words.
    ///
    /// ```
    /// use bitdrop::{Dropout, Keyed, Mode};
    ///
    /// let dropout = Dropout::new(0.5)?;
    /// let mut activations = [1.0_f32; 64];
    /// let mut mask = [0_u64; 1];
    /// dropout.forward_with_mask(Mode::Train, &mut activations, &mut mask, Keyed::new(9, 0))?;
    ///
    /// // Backward: the gradient flows through the kept elements only.
    /// let mut grad = [1.0_f32; 64];
    /// dropout.apply_mask(Mode::Train, &mut grad, &mask)?;
    /// assert_eq!(grad, activations);
    /// # Ok::<(), bitdrop::Error>(())
    /// ```
    pub fn apply_mask(&self, mode: Mode, xs: &mut [f32], mask: &[u64]) -> Result<(), Error> {
        self.run_mask(mode, Io::InPlace(xs), mask)
    }

    /// Applies a given mask from `xs` into `out`, as
    /// [`apply_mask`](Dropout::apply_mask).
    ///
    /// # Errors
    ///
    /// [`Error::LengthMismatch`], [`Error::MaskTooShort`].
    pub fn apply_mask_to(
        &self,
        mode: Mode,
        xs: &[f32],
        mask: &[u64],
        out: &mut [f32],
    ) -> Result<(), Error> {
        self.run_mask(mode, copy_io(xs, out)?, mask)
    }

    /// The backward pass in place, regenerating the mask from the keyed
    /// stream instead of storing it: `grad * mask * scale`, with the mask
    /// that [`forward`](Dropout::forward) drew from the same `key`. It is
    /// the same computation as that forward, applied to the gradient.
    ///
    /// # Errors
    ///
    /// [`Error::PositionOverflow`] if `offset + grad.len() > 2^64`.
    ///
    /// ```
    /// use bitdrop::{Dropout, Keyed, Mode};
    ///
    /// let dropout = Dropout::new(0.2)?;
    /// let key = Keyed::new(2024, 1 << 40);
    /// let mut ys = [3.0_f32; 300];
    /// dropout.forward(Mode::Train, &mut ys, key)?;
    ///
    /// let mut grad = [1.0_f32; 300];
    /// dropout.backward(Mode::Train, &mut grad, key)?;
    /// for (g, y) in grad.iter().zip(&ys) {
    ///     assert_eq!(*g == 0.0, *y == 0.0);
    /// }
    /// # Ok::<(), bitdrop::Error>(())
    /// ```
    pub fn backward(&self, mode: Mode, grad: &mut [f32], key: Keyed) -> Result<(), Error> {
        self.forward(mode, grad, key)
    }

    /// The backward pass from `grad` into `out`, as
    /// [`backward`](Dropout::backward).
    ///
    /// # Errors
    ///
    /// [`Error::LengthMismatch`], [`Error::PositionOverflow`].
    pub fn backward_to(
        &self,
        mode: Mode,
        grad: &[f32],
        out: &mut [f32],
        key: Keyed,
    ) -> Result<(), Error> {
        self.forward_to(mode, grad, out, key)
    }

    /// Every forward operation: checks, then one pass.
    fn run(
        &self,
        mode: Mode,
        io: Io<'_>,
        mask: Option<&mut [u64]>,
        source: impl Randomness,
    ) -> Result<(), Error> {
        let len = io.len();
        if let Some(mask) = &mask {
            check_words(len, mask.len())?;
        }
        source.check(len)?;
        let mask = mask.map(|m| &mut m[..mask_words(len)]);
        match self.plan(mode) {
            Plan::Identity => {
                if let Some(words) = mask {
                    fill_kept(words, len);
                }
                io.identity();
            }
            Plan::DropAll => {
                if let Some(words) = mask {
                    words.fill(0);
                }
                io.zero();
            }
            Plan::Random(threshold) => dispatch::run(Forward {
                io,
                words: source.words(threshold),
                mask,
                scale: self.scale,
            }),
        }
        Ok(())
    }

    /// Every apply-mask operation: checks, then one pass.
    fn run_mask(&self, mode: Mode, io: Io<'_>, mask: &[u64]) -> Result<(), Error> {
        check_words(io.len(), mask.len())?;
        match self.plan(mode) {
            Plan::Identity => io.identity(),
            Plan::DropAll => io.zero(),
            Plan::Random(_) => dispatch::run(ApplyMask {
                io,
                mask,
                scale: self.scale,
            }),
        }
        Ok(())
    }
}

/// The out-of-place data of a call, if the lengths agree.
pub(crate) fn copy_io<'a>(xs: &'a [f32], out: &'a mut [f32]) -> Result<Io<'a>, Error> {
    if xs.len() != out.len() {
        return Err(Error::LengthMismatch {
            input: xs.len(),
            output: out.len(),
        });
    }
    Ok(Io::Copy(xs, out))
}

/// A mask keeping all `len` elements, bits past `len` clear.
pub(crate) fn fill_kept(words: &mut [u64], len: usize) {
    for (i, word) in words.iter_mut().enumerate() {
        *word = low_bits(len - 64 * i);
    }
}

/// Draws the decisions and applies them, writing the mask if there is one.
struct Forward<'a, W> {
    io: Io<'a>,
    words: W,
    mask: Option<&'a mut [u64]>,
    scale: f32,
}

impl<W: Words> Kernel for Forward<'_, W> {
    #[inline(always)]
    fn run(mut self) {
        self.io.apply_from(&mut self.words, self.mask, self.scale);
    }
}

/// Applies a given mask.
struct ApplyMask<'a> {
    io: Io<'a>,
    mask: &'a [u64],
    scale: f32,
}

impl Kernel for ApplyMask<'_> {
    #[inline(always)]
    fn run(self) {
        self.io.apply(self.mask, self.scale);
    }
}

/// Draws the decisions into a mask.
struct FillMask<'a, W> {
    words: W,
    out: &'a mut [u64],
    len: usize,
}

impl<W: Words> Kernel for FillMask<'_, W> {
    #[inline(always)]
    fn run(mut self) {
        self.words.fill(self.out, self.len);
    }
}
