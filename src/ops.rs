//! The element-wise operations: structured dropout with one unit per
//! element.

use crate::source::{Keyed, Randomness};
use crate::{Dropout, Element, Error, Mode, Units};

impl Dropout {
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
    pub fn forward<E: Element>(
        &self,
        mode: Mode,
        xs: &mut [E],
        source: impl Randomness,
    ) -> Result<(), Error> {
        self.structured(Units::elements(xs.len()))
            .forward(mode, xs, source)
    }

    /// Dropout from `xs` into `out`.
    ///
    /// # Errors
    ///
    /// [`Error::LengthMismatch`] if `out.len() != xs.len()`;
    /// [`Error::PositionOverflow`] as for [`forward`](Dropout::forward).
    pub fn forward_to<E: Element>(
        &self,
        mode: Mode,
        xs: &[E],
        out: &mut [E],
        source: impl Randomness,
    ) -> Result<(), Error> {
        self.structured(Units::elements(xs.len()))
            .forward_to(mode, xs, out, source)
    }

    /// Dropout in place that also writes the mask, in the same pass, to the
    /// first [`mask_words`](crate::mask_words)`(xs.len())` words of `mask` (see [`Mask`](crate::Mask)
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
    pub fn forward_with_mask<E: Element>(
        &self,
        mode: Mode,
        xs: &mut [E],
        mask: &mut [u64],
        source: impl Randomness,
    ) -> Result<(), Error> {
        self.structured(Units::elements(xs.len()))
            .forward_with_mask(mode, xs, mask, source)
    }

    /// Dropout from `xs` into `out` that also writes the mask, as
    /// [`forward_with_mask`](Dropout::forward_with_mask).
    ///
    /// # Errors
    ///
    /// [`Error::LengthMismatch`], [`Error::MaskTooShort`],
    /// [`Error::PositionOverflow`], as for the operations above.
    pub fn forward_to_with_mask<E: Element>(
        &self,
        mode: Mode,
        xs: &[E],
        out: &mut [E],
        mask: &mut [u64],
        source: impl Randomness,
    ) -> Result<(), Error> {
        self.structured(Units::elements(xs.len()))
            .forward_to_with_mask(mode, xs, out, mask, source)
    }

    /// Writes the mask of `len` elements to the first [`mask_words`](crate::mask_words)`(len)`
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
        self.structured(Units::elements(len))
            .fill_mask(mode, mask, source)
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
    /// [`mask_words`](crate::mask_words)`(xs.len())` words.
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
    pub fn apply_mask<E: Element>(
        &self,
        mode: Mode,
        xs: &mut [E],
        mask: &[u64],
    ) -> Result<(), Error> {
        self.structured(Units::elements(xs.len()))
            .apply_mask(mode, xs, mask)
    }

    /// Applies a given mask from `xs` into `out`, as
    /// [`apply_mask`](Dropout::apply_mask).
    ///
    /// # Errors
    ///
    /// [`Error::LengthMismatch`], [`Error::MaskTooShort`].
    pub fn apply_mask_to<E: Element>(
        &self,
        mode: Mode,
        xs: &[E],
        mask: &[u64],
        out: &mut [E],
    ) -> Result<(), Error> {
        self.structured(Units::elements(xs.len()))
            .apply_mask_to(mode, xs, mask, out)
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
    pub fn backward<E: Element>(
        &self,
        mode: Mode,
        grad: &mut [E],
        key: Keyed,
    ) -> Result<(), Error> {
        self.forward(mode, grad, key)
    }

    /// The backward pass from `grad` into `out`, as
    /// [`backward`](Dropout::backward).
    ///
    /// # Errors
    ///
    /// [`Error::LengthMismatch`], [`Error::PositionOverflow`].
    pub fn backward_to<E: Element>(
        &self,
        mode: Mode,
        grad: &[E],
        out: &mut [E],
        key: Keyed,
    ) -> Result<(), Error> {
        self.forward_to(mode, grad, out, key)
    }
}
