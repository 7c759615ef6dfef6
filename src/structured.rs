//! Structured dropout: the operations, with one decision per unit. The
//! element-wise operations of [`Dropout`] are these with one unit per
//! element.

use crate::inverted::{Data, Inverted};
use crate::kernel::Fast;
use crate::run::{Decisions, run};
use crate::source::{Keyed, Randomness};
use crate::{Dropout, Element, Error, Mode, Units};

/// Dropout with one decision per unit ([`Units`]): channel dropout,
/// DropPath, variational dropout, row dropout, masks shared across
/// attention heads. Made by [`Dropout::structured`].
///
/// Each unit is dropped with probability `floor(p * 2^64) / 2^64`, and all
/// its elements with it: a dropped unit's elements become `+0.0`, a kept
/// unit's `x * s`, exactly as in [`Dropout`]. Masks hold one bit per unit,
/// in unit order ([`Units::count`] bits). With a [`Keyed`] source, unit `u`
/// takes stream position `offset + u`, so a call over units `a..b` with
/// offset `offset + a` decides them as one call over all units would; a
/// caller RNG decides the units in order, in groups of 64 consecutive units,
/// exactly as element-wise dropout decides elements.
///
/// The data always has [`Units::len`] elements, else
/// [`Error::ShapeMismatch`].
///
/// ```
/// use bitdrop::{Dropout, Keyed, Mask, Mode, Units};
///
/// // Variational dropout on a [T = 5, batch * hidden = 100] sequence: one
/// // mask of 100 decisions, the same at every time step.
/// let units = Units::time_steps(5, 100)?;
/// let locked = Dropout::new(0.25)?.structured(units);
/// let mut seq = vec![1.0_f32; units.len()];
/// let mut mask = [0_u64; 2];
/// locked.forward_with_mask(Mode::Train, &mut seq, &mut mask, Keyed::new(3, 0))?;
/// let mask = Mask::new(&mask[..], 100)?;
/// for step in seq.chunks(100) {
///     assert!(step.iter().zip(mask.iter()).all(|(&x, kept)| (x != 0.0) == kept));
/// }
/// # Ok::<(), bitdrop::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Structured {
    pub(crate) dropout: Dropout,
    pub(crate) units: Units,
}

impl Structured {
    /// The dropout configuration.
    pub const fn dropout(&self) -> &Dropout {
        &self.dropout
    }

    /// The units.
    pub const fn units(&self) -> &Units {
        &self.units
    }

    /// Structured dropout in place.
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`]; [`Error::PositionOverflow`] if `source` is
    /// a [`Keyed`] position with `offset + units.count() > 2^64`.
    pub fn forward<E: Element>(
        &self,
        mode: Mode,
        xs: &mut [E],
        source: impl Randomness,
    ) -> Result<(), Error> {
        self.draw(mode, Data::InPlace(xs), None, source)
    }

    /// Structured dropout from `xs` into `out`.
    ///
    /// # Errors
    ///
    /// [`Error::LengthMismatch`] if `out.len() != xs.len()`, then as
    /// [`forward`](Structured::forward).
    pub fn forward_to<E: Element>(
        &self,
        mode: Mode,
        xs: &[E],
        out: &mut [E],
        source: impl Randomness,
    ) -> Result<(), Error> {
        self.draw(mode, Data::copy(xs, out)?, None, source)
    }

    /// Structured dropout in place that also writes the mask, one bit per
    /// unit, to the first [`mask_words`](crate::mask_words)`(units.count())`
    /// words of `mask`, in the same pass. In evaluation mode the mask keeps
    /// every unit.
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`], [`Error::MaskTooShort`],
    /// [`Error::PositionOverflow`].
    pub fn forward_with_mask<E: Element>(
        &self,
        mode: Mode,
        xs: &mut [E],
        mask: &mut [u64],
        source: impl Randomness,
    ) -> Result<(), Error> {
        self.draw(mode, Data::InPlace(xs), Some(mask), source)
    }

    /// Structured dropout from `xs` into `out` that also writes the mask.
    ///
    /// # Errors
    ///
    /// [`Error::LengthMismatch`], [`Error::ShapeMismatch`],
    /// [`Error::MaskTooShort`], [`Error::PositionOverflow`].
    pub fn forward_to_with_mask<E: Element>(
        &self,
        mode: Mode,
        xs: &[E],
        out: &mut [E],
        mask: &mut [u64],
        source: impl Randomness,
    ) -> Result<(), Error> {
        self.draw(mode, Data::copy(xs, out)?, Some(mask), source)
    }

    /// Writes the mask of the units (one bit each) without touching data:
    /// the decisions [`forward`](Structured::forward) makes with the same
    /// `source`.
    ///
    /// # Errors
    ///
    /// [`Error::MaskTooShort`], [`Error::PositionOverflow`].
    pub fn fill_mask(
        &self,
        mode: Mode,
        mask: &mut [u64],
        source: impl Randomness,
    ) -> Result<(), Error> {
        self.draw(
            mode,
            Data::<f32>::MaskOnly(self.units.len()),
            Some(mask),
            source,
        )
    }

    /// Applies a given mask of one bit per unit in place: a kept unit's
    /// elements become `x * s`, a dropped unit's `+0.0`. Evaluation mode and
    /// `p == 0` are the identity, and `p == 1` drops everything, whatever
    /// the mask says.
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`], [`Error::MaskTooShort`].
    pub fn apply_mask<E: Element>(
        &self,
        mode: Mode,
        xs: &mut [E],
        mask: &[u64],
    ) -> Result<(), Error> {
        self.given(mode, Data::InPlace(xs), mask)
    }

    /// Applies a given mask from `xs` into `out`.
    ///
    /// # Errors
    ///
    /// [`Error::LengthMismatch`], [`Error::ShapeMismatch`],
    /// [`Error::MaskTooShort`].
    pub fn apply_mask_to<E: Element>(
        &self,
        mode: Mode,
        xs: &[E],
        mask: &[u64],
        out: &mut [E],
    ) -> Result<(), Error> {
        self.given(mode, Data::copy(xs, out)?, mask)
    }

    /// The backward pass in place, regenerating the mask from `key`: the
    /// same computation as [`forward`](Structured::forward), on the
    /// gradient.
    ///
    /// # Errors
    ///
    /// As [`forward`](Structured::forward).
    pub fn backward<E: Element>(
        &self,
        mode: Mode,
        grad: &mut [E],
        key: Keyed,
    ) -> Result<(), Error> {
        self.forward(mode, grad, key)
    }

    /// The backward pass from `grad` into `out`.
    ///
    /// # Errors
    ///
    /// As [`forward_to`](Structured::forward_to).
    pub fn backward_to<E: Element>(
        &self,
        mode: Mode,
        grad: &[E],
        out: &mut [E],
        key: Keyed,
    ) -> Result<(), Error> {
        self.forward_to(mode, grad, out, key)
    }

    /// Inverted dropout of `data` with this configuration's scale.
    pub(crate) fn inverted<'a, E: Element>(&self, data: Data<'a, E>) -> Inverted<'a, E> {
        Inverted {
            data,
            scale: self.dropout.scale(),
        }
    }

    fn draw<E: Element>(
        &self,
        mode: Mode,
        data: Data<'_, E>,
        mask: Option<&mut [u64]>,
        source: impl Randomness,
    ) -> Result<(), Error> {
        let ops = self.inverted(data);
        let decisions = Decisions::Draw { source, mask };
        run(&self.dropout, mode, ops, &self.units, decisions, Fast)
    }

    fn given<E: Element>(&self, mode: Mode, data: Data<'_, E>, mask: &[u64]) -> Result<(), Error> {
        let ops = self.inverted(data);
        let decisions = Decisions::<Keyed>::Given(mask, 0);
        run(&self.dropout, mode, ops, &self.units, decisions, Fast)
    }
}
