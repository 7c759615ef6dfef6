//! Alpha dropout, for self-normalizing (SELU) networks: the decisions of
//! [`Dropout`], an affine element rule that keeps mean 0 and variance 1.

use crate::dispatch::{Cpu, Level};
use crate::inverted::{Data, Inverted};
use crate::kernel::{Fast, lanes};
use crate::lanes::{Lanes, Rule};
use crate::run::{Decision, Decisions, Operands, run};
use crate::source::{Keyed, Randomness};
use crate::{Dropout, Element, Error, Mode, Units};

/// `alpha' = -lambda * alpha`, SELU's negative saturation value: what a
/// dropped element stands for before the affine correction.
pub const ALPHA_PRIME: f64 = -1.758_099_340_847_376_6;

/// Alpha dropout (PyTorch `AlphaDropout` and `FeatureAlphaDropout`, Keras
/// `AlphaDropout`): for inputs of mean 0 and variance 1, such as a SELU
/// network's activations, the output keeps mean 0 and variance 1.
///
/// The decisions are [`Dropout`]'s for the same `p` and source, bit for bit
/// (the same masks, the same stream positions, the same caller-RNG words);
/// only the element rule differs. With `alpha' =` [`ALPHA_PRIME`]:
///
/// ```text
/// v = (1 - p) * (1 + p * (alpha' * alpha'))     in f64, each operation rounded
/// a = 1 / sqrt(v)                               in f64, then rounded to f32
/// b = -(a64 * alpha') * p                       in f64 (a64 the unrounded a), then rounded to f32
/// kept:    x * a + b                            one f32 multiply, then one f32 add
/// dropped: alpha' * a + b                       alpha' rounded to f32, the same two operations
/// ```
///
/// Never a fused multiply-add, so every target rounds alike. `sqrt` is the
/// correctly rounded square root. The dropped value is one constant,
/// [`dropped_value`](AlphaDropout::dropped_value), selected, never computed
/// from `x`, so NaN and infinite inputs cannot leak through a dropped
/// element. For `bf16` and `f16` elements each operation rounds to the type:
/// `x * a` correctly rounded as in [`Dropout`], plus `b` rounded to the
/// type, the sum rounded once.
///
/// In [`Mode::Eval`] and with `p == 0` every operation is the identity, bit
/// for bit, and nothing is drawn; with `p == 1` every output is `+0.0`
/// (PyTorch returns zeros there too) and nothing is drawn.
///
/// Element-wise by default; [`structured`](AlphaDropout::structured) makes
/// one decision per unit of a [`Units`] (FeatureAlphaDropout: whole
/// channels, every element of a dropped channel set to the dropped value).
///
/// The backward pass multiplies the gradient by `a` where kept and gives
/// `+0.0` where dropped ([`backward`](AlphaDropout::backward)), which is
/// [`Dropout`]'s apply with the scale `a`.
///
/// ```
/// use bitdrop::{AlphaDropout, Keyed, Mode};
///
/// let alpha = AlphaDropout::new(0.1)?;
/// let mut xs = [0.5_f32; 256];
/// alpha.forward(Mode::Train, &mut xs, Keyed::new(7, 0))?;
/// let kept = 0.5 * alpha.a() + alpha.b();
/// assert!(xs.iter().all(|&y| y == kept || y == alpha.dropped_value()));
///
/// // FeatureAlphaDropout on a [2, 4, 8] NCL tensor: whole channels.
/// let channels = AlphaDropout::new(0.5)?.structured(bitdrop::Units::channels_first(2, 4, 8)?);
/// let mut ys = [0.5_f32; 64];
/// channels.forward(Mode::Train, &mut ys, Keyed::new(7, 0))?;
/// for channel in ys.chunks(8) {
///     assert!(channel.iter().all(|&y| y == channel[0]));
/// }
/// # Ok::<(), bitdrop::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AlphaDropout {
    dropout: Dropout,
    units: Option<Units>,
    a: f32,
    b: f32,
    dropped: f32,
}

impl AlphaDropout {
    /// Element-wise alpha dropout with drop probability `p`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidProbability`] unless `0.0 <= p <= 1.0`.
    ///
    /// ```
    /// let alpha = bitdrop::AlphaDropout::new(0.1)?;
    /// assert_eq!(alpha.a(), 0.921_284_5);
    /// assert_eq!(alpha.b(), 0.161_970_97);
    /// assert_eq!(alpha.dropped_value(), -1.457_738_6);
    /// # Ok::<(), bitdrop::Error>(())
    /// ```
    pub fn new(p: f32) -> Result<Self, Error> {
        let dropout = Dropout::new(p)?;
        let p = f64::from(p);
        let a = 1.0 / crate::math::sqrt((1.0 - p) * (1.0 + p * (ALPHA_PRIME * ALPHA_PRIME)));
        let b = -(a * ALPHA_PRIME) * p;
        let (a, b) = (a as f32, b as f32);
        let dropped = if p == 1.0 {
            0.0
        } else {
            ALPHA_PRIME as f32 * a + b
        };
        Ok(AlphaDropout {
            dropout,
            units: None,
            a,
            b,
            dropped,
        })
    }

    /// One decision per unit of `units` (FeatureAlphaDropout for channels):
    /// the data of every call then has `units.len()` elements, masks one
    /// bit per unit, and with a [`Keyed`] source unit `u` takes position
    /// `offset + u`, as in [`Structured`](crate::Structured).
    #[must_use]
    pub const fn structured(self, units: Units) -> Self {
        AlphaDropout {
            units: Some(units),
            ..self
        }
    }

    /// The drop probability.
    pub const fn p(&self) -> f32 {
        self.dropout.p()
    }

    /// The [`Dropout`] whose decisions this makes (its scale is not used).
    pub const fn dropout(&self) -> &Dropout {
        &self.dropout
    }

    /// The units, or `None` for element-wise.
    pub const fn units(&self) -> Option<&Units> {
        self.units.as_ref()
    }

    /// The multiplier `a` (`+inf` at `p == 1`, where it is not used).
    pub const fn a(&self) -> f32 {
        self.a
    }

    /// The offset `b` (`+inf` at `p == 1`, where it is not used).
    pub const fn b(&self) -> f32 {
        self.b
    }

    /// What a dropped `f32` element becomes in training: `alpha' * a + b`,
    /// or `+0.0` at `p == 1`.
    pub const fn dropped_value(&self) -> f32 {
        self.dropped
    }

    /// Alpha dropout in place.
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] if structured and `xs` is not
    /// `units.len()` long; [`Error::PositionOverflow`] if `source` is a
    /// [`Keyed`] position with `offset` plus the units past `2^64`.
    pub fn forward<E: Element>(
        &self,
        mode: Mode,
        xs: &mut [E],
        source: impl Randomness,
    ) -> Result<(), Error> {
        self.draw(mode, Data::InPlace(xs), None, source)
    }

    /// Alpha dropout from `xs` into `out`.
    ///
    /// # Errors
    ///
    /// [`Error::LengthMismatch`] if `out.len() != xs.len()`, then as
    /// [`forward`](AlphaDropout::forward).
    pub fn forward_to<E: Element>(
        &self,
        mode: Mode,
        xs: &[E],
        out: &mut [E],
        source: impl Randomness,
    ) -> Result<(), Error> {
        self.draw(mode, Data::copy(xs, out)?, None, source)
    }

    /// Alpha dropout in place that also writes the mask (one bit per
    /// element, or per unit), in the same pass: the mask
    /// [`Dropout::forward_with_mask`] writes with the same source.
    ///
    /// # Errors
    ///
    /// As [`forward`](AlphaDropout::forward), and [`Error::MaskTooShort`].
    pub fn forward_with_mask<E: Element>(
        &self,
        mode: Mode,
        xs: &mut [E],
        mask: &mut [u64],
        source: impl Randomness,
    ) -> Result<(), Error> {
        self.draw(mode, Data::InPlace(xs), Some(mask), source)
    }

    /// Alpha dropout from `xs` into `out` that also writes the mask.
    ///
    /// # Errors
    ///
    /// As [`forward_to`](AlphaDropout::forward_to), and
    /// [`Error::MaskTooShort`].
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

    /// Applies a given mask in place: kept `x * a + b`, dropped the dropped
    /// value (the identity in evaluation mode and at `p == 0`, `+0.0` at
    /// `p == 1`, whatever the mask says).
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

    /// The backward pass in place, the mask regenerated from `key`: the
    /// gradient times `a` where the forward pass kept, `+0.0` where it
    /// dropped (the identity in evaluation mode and at `p == 0`, `+0.0`
    /// everywhere at `p == 1`). One `f32` multiply per kept element.
    ///
    /// # Errors
    ///
    /// As [`forward`](AlphaDropout::forward).
    ///
    /// ```
    /// use bitdrop::{AlphaDropout, Keyed, Mode};
    ///
    /// let alpha = AlphaDropout::new(0.2)?;
    /// let key = Keyed::new(5, 0);
    /// let mut ys = [1.0_f32; 100];
    /// alpha.forward(Mode::Train, &mut ys, key)?;
    /// let mut grad = [1.0_f32; 100];
    /// alpha.backward(Mode::Train, &mut grad, key)?;
    /// for (g, y) in grad.iter().zip(&ys) {
    ///     assert_eq!(*g, if *y == alpha.dropped_value() { 0.0 } else { alpha.a() });
    /// }
    /// # Ok::<(), bitdrop::Error>(())
    /// ```
    pub fn backward<E: Element>(
        &self,
        mode: Mode,
        grad: &mut [E],
        key: Keyed,
    ) -> Result<(), Error> {
        self.gradient(mode, Data::InPlace(grad), key)
    }

    /// The backward pass from `grad` into `out`.
    ///
    /// # Errors
    ///
    /// As [`forward_to`](AlphaDropout::forward_to).
    pub fn backward_to<E: Element>(
        &self,
        mode: Mode,
        grad: &[E],
        out: &mut [E],
        key: Keyed,
    ) -> Result<(), Error> {
        self.gradient(mode, Data::copy(grad, out)?, key)
    }

    /// The units of a call on `len` elements.
    pub(crate) fn units_of(&self, len: usize) -> Units {
        self.units.unwrap_or(Units::elements(len))
    }

    /// The forward rule on `data`.
    pub(crate) fn affine<'a, E: Element>(&self, data: Data<'a, E>) -> Affine<'a, E> {
        Affine {
            data,
            a: self.a,
            b: E::from_f32_rounded(self.b),
            dropped: match self.p() {
                1.0 => E::ZERO,
                _ => E::from_f32_rounded(ALPHA_PRIME as f32)
                    .scaled(self.a)
                    .plus(E::from_f32_rounded(self.b)),
            },
        }
    }

    /// The backward rule on `data`: inverted dropout with the scale `a`.
    pub(crate) fn derivative<'a, E: Element>(&self, data: Data<'a, E>) -> Inverted<'a, E> {
        Inverted {
            data,
            scale: self.a,
        }
    }

    fn draw<E: Element>(
        &self,
        mode: Mode,
        data: Data<'_, E>,
        mask: Option<&mut [u64]>,
        source: impl Randomness,
    ) -> Result<(), Error> {
        let units = self.units_of(data.len());
        let decisions = Decisions::Draw { source, mask };
        run(
            &self.dropout,
            mode,
            self.affine(data),
            &units,
            decisions,
            Fast,
        )
    }

    fn given<E: Element>(&self, mode: Mode, data: Data<'_, E>, mask: &[u64]) -> Result<(), Error> {
        let units = self.units_of(data.len());
        let decisions = Decisions::<Keyed>::Given(mask, 0);
        run(
            &self.dropout,
            mode,
            self.affine(data),
            &units,
            decisions,
            Fast,
        )
    }

    fn gradient<E: Element>(&self, mode: Mode, data: Data<'_, E>, key: Keyed) -> Result<(), Error> {
        let units = self.units_of(data.len());
        let decisions = Decisions::Draw {
            source: key,
            mask: None,
        };
        run(
            &self.dropout,
            mode,
            self.derivative(data),
            &units,
            decisions,
            Fast,
        )
    }
}

/// The alpha rule: kept `x * a + b`, dropped a constant, passed `x`.
pub(crate) struct Affine<'a, E> {
    data: Data<'a, E>,
    a: f32,
    b: E,
    dropped: E,
}

impl<E: Element> Operands for Affine<'_, E> {
    fn len(&self) -> usize {
        self.data.len()
    }

    #[inline(always)]
    fn apply<I: Level>(&mut self, start: usize, len: usize, words: &[u64], cpu: Cpu<I>) {
        let rule = AffineRule {
            a: self.a,
            b: self.b,
            dropped: self.dropped,
        };
        let range = start..start + len;
        match &mut self.data {
            Data::InPlace(xs) => lanes::<E, 0, true, _>(cpu, &mut xs[range], [], words, rule),
            Data::Copy(xs, out) => {
                lanes::<E, 1, false, _>(cpu, &mut out[range.clone()], [&xs[range]], words, rule)
            }
            Data::MaskOnly(_) => {}
        }
    }

    #[inline(always)]
    fn prefetch(&self, start: usize, len: usize) {
        self.data.prefetch(start, len);
    }

    fn pass(&mut self) {
        self.data.pass();
    }

    fn element(&mut self, i: usize, decision: Decision) {
        let (a, b, dropped) = (self.a, self.b, self.dropped);
        self.data.set(i, |x| match decision {
            Decision::Pass => x,
            Decision::Keep => x.scaled(a).plus(b),
            Decision::Drop => dropped,
        });
    }
}

/// The lane rule: kept `x * a + b`, dropped a constant; in place (`x` the
/// element written) or from one input.
#[derive(Clone, Copy)]
struct AffineRule<E> {
    a: f32,
    b: E,
    dropped: E,
}

impl<E: Element> AffineRule<E> {
    #[inline(always)]
    fn of<L: Lanes<E>>(self, x: L, keep: L::Keep) -> L {
        L::either(
            keep,
            x.scaled(self.a).plus(L::splat(self.b)),
            L::splat(self.dropped),
        )
    }
}

impl<E: Element> Rule<E, 0> for AffineRule<E> {
    #[inline(always)]
    fn lanes<L: Lanes<E>>(self, x: L, _: [L; 0], keep: L::Keep) -> L {
        self.of(x, keep)
    }
}

impl<E: Element> Rule<E, 1> for AffineRule<E> {
    #[inline(always)]
    fn lanes<L: Lanes<E>>(self, _: L, [x]: [L; 1], keep: L::Keep) -> L {
        self.of(x, keep)
    }
}
