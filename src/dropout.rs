//! The validated configuration: `p`, its threshold and its scale.

use crate::decide::Threshold;
use crate::{Error, Structured, Units};

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

/// Inverted dropout with a fixed drop probability `p`.
///
/// In [`Mode::Train`] each element is dropped with probability exactly
/// `floor(p * 2^64) / 2^64` (that is `p` itself for every `p >= 2^-41`);
/// a dropped element becomes `+0.0`, a kept one `x * scale()`, one `f32`
/// multiply. In [`Mode::Eval`], and in training with `p == 0`, every
/// operation is the identity; with `p == 1` every output is `+0.0`.
///
/// Each operation takes the decisions from a [`Randomness`](crate::Randomness):
/// `&mut rng` for any [`rand_core::Rng`], or a [`Keyed`](crate::Keyed) stream
/// position. None allocates,
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
    /// `+inf` at `p == 1`, where no element is ever kept, and `1.0` after
    /// [`scale_by_keep`](Dropout::scale_by_keep)`(false)`.
    pub const fn scale(&self) -> f32 {
        self.scale
    }

    /// timm's `scale_by_keep` option of `drop_path`: with `false`, kept
    /// elements are not scaled ([`scale`](Dropout::scale) becomes `1.0`,
    /// so a kept element is `x * 1.0`: `x` itself, a signaling NaN
    /// quieted), and the output no longer keeps the input's expectation.
    /// With `true` (the default of [`new`](Dropout::new)), `1 / (1 - p)`.
    ///
    /// ```
    /// use bitdrop::{Dropout, Keyed, Mode, Units};
    ///
    /// let d = Dropout::new(0.5)?.scale_by_keep(false);
    /// assert_eq!(d.scale(), 1.0);
    /// let drop_path = d.structured(Units::per_sample(4, 3)?);
    /// let mut x = [2.0_f32; 12];
    /// drop_path.forward(Mode::Train, &mut x, Keyed::new(1, 0))?;
    /// assert!(x.iter().all(|&v| v == 0.0 || v == 2.0));
    /// # Ok::<(), bitdrop::Error>(())
    /// ```
    #[must_use]
    pub fn scale_by_keep(self, scale: bool) -> Self {
        let scale = if scale {
            (1.0 / (1.0 - f64::from(self.p))) as f32
        } else {
            1.0
        };
        Dropout { scale, ..self }
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

    /// `D = floor(p * 2^64)`, saturated (only read when `0 < p < 1`).
    pub(crate) const fn threshold(&self) -> Threshold {
        self.threshold
    }

    /// Structured dropout: one decision per unit of `units`, with the
    /// operations of `Dropout` over data of `units.len()` elements and
    /// masks of one bit per unit.
    ///
    /// ```
    /// use bitdrop::{Dropout, Keyed, Mode, Units};
    ///
    /// // Dropout2d on a [2, 3, 4, 4] feature map: whole channels.
    /// let units = Units::channels_first(2, 3, 16)?;
    /// let channels = Dropout::new(0.5)?.structured(units);
    /// let mut x = vec![1.0_f32; units.len()];
    /// channels.forward(Mode::Train, &mut x, Keyed::new(1, 0))?;
    /// for channel in x.chunks(16) {
    ///     assert!(channel.iter().all(|&v| v == 0.0) || channel.iter().all(|&v| v == 2.0));
    /// }
    /// # Ok::<(), bitdrop::Error>(())
    /// ```
    pub const fn structured(&self, units: Units) -> Structured {
        Structured {
            dropout: *self,
            units,
        }
    }
}
