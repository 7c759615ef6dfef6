//! The granularity plug-in point: which elements share one keep decision.

use crate::Error;

/// Which elements of a tensor share one keep decision (a *unit*), for
/// structured dropout ([`Dropout::structured`](crate::Dropout::structured)).
///
/// Every shape with broadcast axes reduces to four numbers: the data is a
/// row-major `[outer, shared, inner, run]` array, and element
/// `((o * shared + s) * inner + i) * run + r` belongs to unit `o * inner + i`.
/// So a unit is `run` consecutive elements, repeated at every index of the
/// `shared` axis; there are `outer * inner` units, decided in unit order.
/// Element-wise dropout is `[1, 1, len, 1]`.
///
/// | layer | tensor | constructor | unit |
/// |---|---|---|---|
/// | PyTorch `Dropout1d/2d/3d` | `[N, C, *spatial]` | [`channels_first`](Units::channels_first) | `(n, c)`, a run of `spatial` |
/// | Keras `SpatialDropout*` | `[N, *spatial, C]` | [`channels_last`](Units::channels_last) | `(n, c)`, every `C`-th element |
/// | DropPath (stochastic depth) | `[N, ...]` | [`per_sample`](Units::per_sample) | one sample |
/// | embedding rows, DropConnect rows | `[R, D]` | [`rows`](Units::rows) | one row |
/// | variational (locked) RNN dropout | `[T, B, H]` | [`time_steps`](Units::time_steps) | `(b, h)`, at every step |
/// | attention shared across heads | `[B, H, L, S]` | [`broadcast`](Units::broadcast)`(&[B, H, L, S], &[1])` | `(b, l, s)` |
/// | Keras `noise_shape`, Flax `broadcast_dims` | any | [`broadcast`](Units::broadcast) | one index of the non-broadcast axes |
///
/// PyTorch's `Dropout2d`, given a 3-D input, treats it as `[N, C, L]`
/// (channel dropout over `L`, channels on axis 1, with a warning), not as
/// an unbatched `[C, H, W]` image. Here the shape is always explicit:
/// `channels_first(N, C, L)` is what PyTorch does with such an input, and
/// `channels_first(1, C, H * W)` is channel dropout of one unbatched image.
/// Dropout with timm's `drop_path(scale_by_keep=False)` is
/// [`Dropout::scale_by_keep`](crate::Dropout::scale_by_keep)`(false)` with [`per_sample`](Units::per_sample).
///
/// ```
/// use bitdrop::Units;
///
/// // A batch of 8 feature maps with 64 channels of 14 x 14.
/// let units = Units::channels_first(8, 64, 14 * 14)?;
/// assert_eq!(units.len(), 8 * 64 * 196);
/// assert_eq!(units.count(), 8 * 64);
///
/// // The same, channels last: one decision per (n, c), broadcast over space.
/// let nhwc = Units::broadcast(&[8, 14, 14, 64], &[1, 2])?;
/// assert_eq!(nhwc, Units::channels_last(8, 14 * 14, 64)?);
/// # Ok::<(), bitdrop::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Units {
    pub(crate) outer: usize,
    pub(crate) shared: usize,
    pub(crate) inner: usize,
    pub(crate) run: usize,
}

impl Units {
    /// `[outer, shared, inner, run]`, as in the type's description.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidShape`] if the element count or the unit count
    /// (`outer * inner`, which a zero `shared` or `run` leaves unbounded by
    /// the element count) overflows `usize`.
    pub fn new(outer: usize, shared: usize, inner: usize, run: usize) -> Result<Self, Error> {
        let units = Units {
            outer,
            shared,
            inner,
            run,
        };
        outer.checked_mul(inner).ok_or(Error::InvalidShape {
            reason: "the unit count overflows usize",
        })?;
        // In the order `len` multiplies, so that no step of it overflows.
        outer
            .checked_mul(shared)
            .and_then(|n| n.checked_mul(inner))
            .and_then(|n| n.checked_mul(run))
            .ok_or(Error::InvalidShape {
                reason: "the element count overflows usize",
            })?;
        Ok(units)
    }

    /// One decision per element: `[1, 1, len, 1]`.
    pub const fn elements(len: usize) -> Self {
        Units {
            outer: 1,
            shared: 1,
            inner: len,
            run: 1,
        }
    }

    /// Channel dropout, channels first: `[batch, channels, spatial]` with
    /// `spatial` the product of the spatial sizes (`L`, `H * W` or
    /// `D * H * W`). Unit `(n, c)` is the contiguous run of `spatial`
    /// elements of channel `c` of sample `n`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidShape`] if the element count overflows `usize`.
    pub fn channels_first(batch: usize, channels: usize, spatial: usize) -> Result<Self, Error> {
        Units::new(1, 1, mul(batch, channels)?, spatial)
    }

    /// Channel dropout, channels last: `[batch, spatial, channels]`. Unit
    /// `(n, c)` is every `channels`-th element of sample `n`, from `c` on.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidShape`] if the element count overflows `usize`.
    pub fn channels_last(batch: usize, spatial: usize, channels: usize) -> Result<Self, Error> {
        Units::new(batch, spatial, channels, 1)
    }

    /// One decision per sample of `sample_len` consecutive elements:
    /// DropPath / stochastic depth on a residual branch.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidShape`] if the element count overflows `usize`.
    pub fn per_sample(batch: usize, sample_len: usize) -> Result<Self, Error> {
        Units::new(1, 1, batch, sample_len)
    }

    /// One decision per row of `row_len` consecutive elements: embedding
    /// rows, or DropConnect on whole rows of a weight matrix.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidShape`] if the element count overflows `usize`.
    pub fn rows(rows: usize, row_len: usize) -> Result<Self, Error> {
        Units::new(1, 1, rows, row_len)
    }

    /// Variational (locked) dropout over `[steps, step_len]`, for example a
    /// `[T, batch, hidden]` sequence with `step_len = batch * hidden`: one
    /// mask of `step_len` decisions, the same at every time step.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidShape`] if the element count overflows `usize`.
    pub fn time_steps(steps: usize, step_len: usize) -> Result<Self, Error> {
        Units::new(1, steps, step_len, 1)
    }

    /// A row-major `shape` whose decisions are broadcast along `axes`
    /// (Keras' `noise_shape` has a 1 on those axes; Flax calls them
    /// `broadcast_dims`): one decision per index of the other axes.
    ///
    /// Axes of size 1 are ignored, and neighbouring axes of the same kind
    /// merge. What remains must fit `[outer, shared, inner, run]`: kept,
    /// broadcast, kept, broadcast, outermost first, each part optional.
    /// That covers every case in the table of [`Units`]; a pattern with
    /// more alternations, such as `[N, 1, C, 1, W]` broadcast on the two
    /// middle axes of a 5-D shape, is refused.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidShape`] if an axis is out of range or repeated, the
    /// pattern does not fit, or the element or unit count overflows `usize`.
    ///
    /// ```
    /// use bitdrop::Units;
    ///
    /// // Attention probabilities [B, H, L, S], one mask shared by all heads.
    /// let units = Units::broadcast(&[2, 12, 128, 128], &[1])?;
    /// assert_eq!(units.count(), 2 * 128 * 128);
    /// # Ok::<(), bitdrop::Error>(())
    /// ```
    pub fn broadcast(shape: &[usize], axes: &[usize]) -> Result<Self, Error> {
        let mut broadcast = [false; 64];
        if shape.len() > broadcast.len() {
            return Err(Error::InvalidShape {
                reason: "more than 64 axes",
            });
        }
        for &axis in axes {
            match broadcast.get_mut(axis) {
                Some(b) if axis < shape.len() && !*b => *b = true,
                _ => {
                    return Err(Error::InvalidShape {
                        reason: "a broadcast axis is out of range or repeated",
                    });
                }
            }
        }
        // Merge into alternating segments, outermost first: (size, broadcast).
        let mut segments = [(1usize, false); 4];
        let mut count = 0;
        for (&size, &shared) in shape.iter().zip(&broadcast) {
            if size == 1 {
                continue;
            }
            if count > 0 && segments[count - 1].1 == shared {
                segments[count - 1].0 = mul(segments[count - 1].0, size)?;
            } else if count < segments.len() {
                segments[count] = (size, shared);
                count += 1;
            } else {
                return Err(TOO_MANY_ALTERNATIONS);
            }
        }
        // Fill the slots `[outer, shared, inner, run]` from the innermost;
        // the odd ones are broadcast.
        let mut parts = [1usize; 4];
        let mut slot = parts.len();
        for &(size, shared) in segments[..count].iter().rev() {
            slot = (0..slot)
                .rev()
                .find(|&s| (s % 2 == 1) == shared)
                .ok_or(TOO_MANY_ALTERNATIONS)?;
            parts[slot] = size;
        }
        let [outer, shared, inner, run] = parts;
        Units::new(outer, shared, inner, run)
    }

    /// Number of elements: `outer * shared * inner * run`.
    pub const fn len(&self) -> usize {
        self.outer * self.shared * self.inner * self.run
    }

    /// Whether there are no elements.
    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of units, that is of decisions and of mask bits:
    /// `outer * inner`.
    pub const fn count(&self) -> usize {
        self.outer * self.inner
    }

    /// The four sizes `[outer, shared, inner, run]`.
    pub const fn dims(&self) -> [usize; 4] {
        [self.outer, self.shared, self.inner, self.run]
    }

    /// The unit of element `i`, or `None` if `i >= len`.
    ///
    /// ```
    /// let units = bitdrop::Units::channels_last(2, 3, 4)?; // [N=2, L=3, C=4]
    /// assert_eq!(units.unit_of(0), Some(0));
    /// assert_eq!(units.unit_of(5), Some(1)); // n = 0, l = 1, c = 1
    /// assert_eq!(units.unit_of(13), Some(5)); // n = 1, l = 0, c = 1
    /// assert_eq!(units.unit_of(24), None);
    /// # Ok::<(), bitdrop::Error>(())
    /// ```
    pub const fn unit_of(&self, i: usize) -> Option<usize> {
        if i >= self.len() {
            return None;
        }
        let q = i / self.run;
        let inner = q % self.inner;
        let outer = q / self.inner / self.shared;
        Some(outer * self.inner + inner)
    }
}

const TOO_MANY_ALTERNATIONS: Error = Error::InvalidShape {
    reason: "the broadcast pattern has more than kept, broadcast, kept, broadcast",
};

fn mul(a: usize, b: usize) -> Result<usize, Error> {
    a.checked_mul(b).ok_or(Error::InvalidShape {
        reason: "the element count overflows usize",
    })
}
