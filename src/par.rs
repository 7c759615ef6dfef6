//! The parallel calls (feature `rayon`): the keyed operations split into
//! pieces on rayon's current thread pool, bit-identical to the serial call
//! for any number of threads.
//!
//! A piece is an ordinary call over part of the data, with its own [`Units`]
//! and the key advanced to its first unit, so the keyed stream decides each
//! unit as the whole call would. Pieces follow the data's layout:
//!
//! - With no shared axis (element-wise dropout, channels first, per sample,
//!   rows), units and elements are both contiguous: pieces are runs of
//!   whole stream blocks ([`BLOCK_UNITS`] units), then of fewer units, then
//!   parts of one unit's run (a DropPath sample, a large channel). A piece
//!   that writes the mask holds whole blocks, so that its mask words are
//!   its own; a call with too few units for that decides the units first,
//!   into the mask, and its pieces then apply it.
//! - With a shared axis (channels last, time steps, broadcast), a piece is a
//!   group of outer indices, or part of the shared axis of one outer index.
//!   Parts of a shared axis would each draw the same units again, so the
//!   units are decided first, into the mask (the caller's, or one this call
//!   allocates: `units.count() / 8` bytes), and the pieces then apply it,
//!   unless there are enough outer indices ([`OUTER_PIECES`]) for every
//!   piece to hold whole ones.
//!
//! Calls over fewer than [`SERIAL_BELOW`] elements run on the calling
//! thread. A caller RNG has no parallel form: its words come in one order,
//! and splitting them between threads would make the result depend on the
//! split. The keyed stream is position-addressable, which is what makes the
//! split invisible.

extern crate alloc;

use crate::inverted::{Data, Inverted};
use crate::kernel::Fast;
use crate::mask::mask_words;
use crate::residual::Fused;
use crate::run::{Decisions, Plan, Split, check, run};
use crate::{Dropout, Element, Error, Keyed, Mode, Residual, Structured, Units};

/// Units per stream block: the pieces of contiguous units start at
/// multiples of it.
pub const BLOCK_UNITS: usize = 4096;

/// Below this many elements a parallel call runs on the calling thread. On
/// the benchmark machine (2 virtual CPUs, Zen 3), splitting a keyed
/// forward over `f32` elements ran at 0.6 of the serial call's speed at
/// 128 Ki, 0.86 to 1.0 at 256 Ki and 1.0 to 1.2 at 1 Mi (see
/// `benches/README.md`).
pub const SERIAL_BELOW: usize = 512 * 1024;

/// Spans of fewer than twice this many elements are not split: small enough
/// pieces to balance up to a few dozen threads over a call past the
/// threshold, large enough that a rayon join (microseconds) is a small
/// part of a piece's time (tens of microseconds).
const PIECE: usize = 64 * 1024;

/// With no shared axis, calls that write a mask split at stream blocks
/// when they have at least this many units; with fewer (and long runs),
/// the units are decided first and the pieces then apply them.
const FLAT_MASK_UNITS: usize = 16 * BLOCK_UNITS;

/// With a shared axis, at least this many outer indices let every piece
/// hold whole ones (and draw its own units); with fewer, the units are
/// decided first.
pub const OUTER_PIECES: usize = 16;

/// What one call needs besides its operands.
#[derive(Clone, Copy)]
struct Call<'a> {
    dropout: &'a Dropout,
    mode: Mode,
    units: Units,
    /// Whether a single outer index may be split along its shared axis
    /// (not when its pieces would each draw the same units).
    split_shared: bool,
    /// Whether flat spans split only at block boundaries (when their
    /// pieces write the mask, which must split at words).
    aligned: bool,
}

/// Where the decisions of a parallel call come from.
enum Source<'m> {
    /// The keyed stream, and the mask to write (only for flat spans), its
    /// words starting at the span's first unit.
    Key(Keyed, Option<&'m mut [u64]>),
    /// A given mask, all of it.
    Given(&'m [u64]),
}

/// A part of a call: with no shared axis, units `first..first + count`,
/// or elements `r` of unit `unit`'s run; with one, outer indices `o` and
/// shared indices `s` (whole unless `o` is one index).
#[derive(Clone, Copy, Debug)]
enum Span {
    Flat {
        first: usize,
        count: usize,
    },
    Part {
        unit: usize,
        r: (usize, usize),
    },
    Slabs {
        o: (usize, usize),
        s: (usize, usize),
    },
}

impl Span {
    fn units(self, all: &Units) -> Units {
        match self {
            Span::Flat { count, .. } => Units {
                outer: 1,
                shared: 1,
                inner: count,
                run: all.run,
            },
            Span::Part { r, .. } => Units {
                outer: 1,
                shared: 1,
                inner: 1,
                run: r.1 - r.0,
            },
            Span::Slabs { o, s } => Units {
                outer: o.1 - o.0,
                shared: s.1 - s.0,
                ..*all
            },
        }
    }

    /// The first unit.
    fn first(self, all: &Units) -> usize {
        match self {
            Span::Flat { first, .. } => first,
            Span::Part { unit, .. } => unit,
            Span::Slabs { o, .. } => o.0 * all.inner,
        }
    }

    /// Two halves and the element where the second starts, if the span is
    /// worth splitting.
    fn split(self, call: &Call<'_>) -> Option<(Span, Span, usize)> {
        let all = &call.units;
        if self.units(all).len() < 2 * PIECE {
            return None;
        }
        let halves = |(a, b): (usize, usize)| ((a, (a + b) / 2), ((a + b) / 2, b));
        match self {
            Span::Flat { first, count } if count >= 2 * BLOCK_UNITS || call.aligned => {
                // At a block boundary: no replay of a block's batches.
                let mid = count / 2 / BLOCK_UNITS * BLOCK_UNITS;
                let left = Span::Flat { first, count: mid };
                let right = Span::Flat {
                    first: first + mid,
                    count: count - mid,
                };
                (mid > 0).then_some((left, right, mid * all.run))
            }
            Span::Flat { first, count } if count >= 2 => {
                let mid = count / 2;
                let left = Span::Flat { first, count: mid };
                let right = Span::Flat {
                    first: first + mid,
                    count: count - mid,
                };
                Some((left, right, mid * all.run))
            }
            Span::Flat { first, .. } => Span::Part {
                unit: first,
                r: (0, all.run),
            }
            .split(call),
            Span::Part { unit, r } => {
                let (left, right) = halves(r);
                let at = left.1 - left.0;
                Some((
                    Span::Part { unit, r: left },
                    Span::Part { unit, r: right },
                    at,
                ))
            }
            Span::Slabs { o, s } if o.1 - o.0 >= 2 => {
                let (left, right) = halves(o);
                let slab = all.shared * all.inner * all.run;
                let at = (left.1 - left.0) * slab;
                Some((Span::Slabs { o: left, s }, Span::Slabs { o: right, s }, at))
            }
            Span::Slabs { o, s } if call.split_shared && s.1 - s.0 >= 2 => {
                let (left, right) = halves(s);
                let at = (left.1 - left.0) * all.inner * all.run;
                Some((Span::Slabs { o, s: left }, Span::Slabs { o, s: right }, at))
            }
            Span::Slabs { .. } => None,
        }
    }
}

/// Runs `ops` over `span`, split into pieces joined on rayon.
fn pieces<O: Split>(call: Call<'_>, ops: O, span: Span, source: Source<'_>) {
    let Some((left, right, at)) = span.split(&call) else {
        let units = span.units(&call.units);
        let first = span.first(&call.units);
        let decisions = match source {
            Source::Key(key, mask) => Decisions::Draw {
                // In range: the whole call was checked.
                source: {
                    debug_assert!(key.advanced(first as u64).is_some());
                    key.advanced(first as u64).unwrap_or(key)
                },
                mask: mask.map(|m| &mut m[..mask_words(units.count())]),
            },
            Source::Given(mask) => Decisions::Given(mask, first),
        };
        // Cannot fail: every check passed for the whole call.
        let done = run(call.dropout, call.mode, ops, &units, decisions, Fast);
        debug_assert!(done.is_ok());
        return;
    };
    let (a, b) = ops.split_at(at);
    let (sa, sb) = match source {
        Source::Key(key, Some(mask)) => {
            // Only flat spans write a mask, split at a block boundary.
            let words = (right.first(&call.units) - span.first(&call.units)) / 64;
            let (ma, mb) = mask.split_at_mut(words);
            (Source::Key(key, Some(ma)), Source::Key(key, Some(mb)))
        }
        Source::Key(key, None) => (Source::Key(key, None), Source::Key(key, None)),
        Source::Given(mask) => (Source::Given(mask), Source::Given(mask)),
    };
    rayon::join(|| pieces(call, a, left, sa), || pieces(call, b, right, sb));
}

/// One parallel call: every check of the serial call, in its order, then
/// the pieces.
fn par_call<O: Split>(
    dropout: &Dropout,
    mode: Mode,
    units: Units,
    ops: O,
    source: Source<'_>,
) -> Result<(), Error> {
    let decisions = match source {
        Source::Key(key, mask) => Decisions::Draw { source: key, mask },
        Source::Given(mask) => Decisions::Given(mask, 0),
    };
    check(ops.len(), &units, &decisions)?;
    if units.len() < SERIAL_BELOW || rayon::current_num_threads() == 1 {
        return run(dropout, mode, ops, &units, decisions, Fast);
    }
    let call = Call {
        dropout,
        mode,
        units,
        split_shared: true,
        aligned: false,
    };
    let count = units.count();
    let draws = matches!(Plan::of(dropout, mode), Plan::Random(_));
    let decisions = match decisions {
        // Nothing drawn: the mask (if any) is all ones or all zeros, and
        // the pieces need no decisions.
        Decisions::Draw { source, mask } if !draws => {
            if let Some(mask) = mask {
                let draw = Decisions::Draw {
                    source,
                    mask: Some(mask),
                };
                run(
                    dropout,
                    mode,
                    Inverted::mask_only(count),
                    &Units::elements(count),
                    draw,
                    Fast,
                )?;
            }
            Decisions::Draw { source, mask: None }
        }
        decisions => decisions,
    };
    let flat = Span::Flat { first: 0, count };
    let whole = if units.shared == 1 {
        flat
    } else {
        Span::Slabs {
            o: (0, units.outer),
            s: (0, units.shared),
        }
    };
    match decisions {
        Decisions::Given(mask, _) => pieces(call, ops, whole, Source::Given(mask)),
        // Every piece draws its own units: flat ones hold distinct units
        // (or parts of one unit's run), slabs whole outer indices.
        Decisions::Draw { source, mask: None } if units.shared == 1 => {
            pieces(call, ops, flat, Source::Key(source, None));
        }
        Decisions::Draw { source, mask: None } if !draws || units.outer >= OUTER_PIECES => {
            let call = Call {
                split_shared: !draws,
                ..call
            };
            pieces(call, ops, whole, Source::Key(source, None));
        }
        // Enough units for pieces of whole blocks, each writing its words.
        Decisions::Draw { source, mask } if units.shared == 1 && count >= FLAT_MASK_UNITS => {
            let call = Call {
                aligned: true,
                ..call
            };
            pieces(call, ops, flat, Source::Key(source, mask));
        }
        Decisions::Draw { source, mask } => {
            // Decide the units first (into the caller's mask, or one of
            // our own), then apply them.
            let mut own = alloc::vec::Vec::new();
            let mask = match mask {
                Some(mask) => &mut mask[..mask_words(count)],
                None => {
                    own.resize(mask_words(count), 0);
                    &mut own[..]
                }
            };
            let decide = Call {
                units: Units::elements(count),
                aligned: true,
                ..call
            };
            pieces(
                decide,
                Inverted::mask_only(count),
                flat,
                Source::Key(source, Some(mask)),
            );
            pieces(call, ops, whole, Source::Given(mask));
        }
    }
    Ok(())
}

/// The parallel calls of structured dropout: the serial calls' results, bit
/// for bit, for any thread count (see the module docs for how they split).
impl Structured {
    fn par<O: Split>(&self, mode: Mode, ops: O, source: Source<'_>) -> Result<(), Error> {
        par_call(&self.dropout, mode, self.units, ops, source)
    }

    /// [`forward`](Structured::forward) on rayon's current thread pool.
    ///
    /// # Errors
    ///
    /// As [`forward`](Structured::forward).
    ///
    /// ```
    /// use bitdrop::{Dropout, Keyed, Mode, Units};
    ///
    /// let st = Dropout::new(0.2)?.structured(Units::channels_first(8, 64, 1024)?);
    /// let mut serial = vec![1.0_f32; st.units().len()];
    /// let mut parallel = serial.clone();
    /// st.forward(Mode::Train, &mut serial, Keyed::new(4, 0))?;
    /// st.par_forward(Mode::Train, &mut parallel, Keyed::new(4, 0))?;
    /// assert_eq!(serial, parallel);
    /// # Ok::<(), bitdrop::Error>(())
    /// ```
    pub fn par_forward<E: Element>(
        &self,
        mode: Mode,
        xs: &mut [E],
        key: Keyed,
    ) -> Result<(), Error> {
        let ops = self.inverted(Data::InPlace(xs));
        self.par(mode, ops, Source::Key(key, None))
    }

    /// [`forward_to`](Structured::forward_to) on rayon's current thread pool.
    ///
    /// # Errors
    ///
    /// As [`forward_to`](Structured::forward_to).
    pub fn par_forward_to<E: Element>(
        &self,
        mode: Mode,
        xs: &[E],
        out: &mut [E],
        key: Keyed,
    ) -> Result<(), Error> {
        let ops = self.inverted(Data::copy(xs, out)?);
        self.par(mode, ops, Source::Key(key, None))
    }

    /// [`forward_with_mask`](Structured::forward_with_mask) on rayon's
    /// current thread pool.
    ///
    /// # Errors
    ///
    /// As [`forward_with_mask`](Structured::forward_with_mask).
    pub fn par_forward_with_mask<E: Element>(
        &self,
        mode: Mode,
        xs: &mut [E],
        mask: &mut [u64],
        key: Keyed,
    ) -> Result<(), Error> {
        let ops = self.inverted(Data::InPlace(xs));
        self.par(mode, ops, Source::Key(key, Some(mask)))
    }

    /// [`forward_to_with_mask`](Structured::forward_to_with_mask) on rayon's
    /// current thread pool.
    ///
    /// # Errors
    ///
    /// As [`forward_to_with_mask`](Structured::forward_to_with_mask).
    pub fn par_forward_to_with_mask<E: Element>(
        &self,
        mode: Mode,
        xs: &[E],
        out: &mut [E],
        mask: &mut [u64],
        key: Keyed,
    ) -> Result<(), Error> {
        let ops = self.inverted(Data::copy(xs, out)?);
        self.par(mode, ops, Source::Key(key, Some(mask)))
    }

    /// [`fill_mask`](Structured::fill_mask) on rayon's current thread pool.
    ///
    /// # Errors
    ///
    /// As [`fill_mask`](Structured::fill_mask).
    pub fn par_fill_mask(&self, mode: Mode, mask: &mut [u64], key: Keyed) -> Result<(), Error> {
        // One bit per unit, whatever the shape: the units, element-wise.
        let count = self.units.count();
        let ops = Inverted::mask_only(count);
        par_call(
            &self.dropout,
            mode,
            Units::elements(count),
            ops,
            Source::Key(key, Some(mask)),
        )
    }

    /// [`apply_mask`](Structured::apply_mask) on rayon's current thread pool.
    ///
    /// # Errors
    ///
    /// As [`apply_mask`](Structured::apply_mask).
    pub fn par_apply_mask<E: Element>(
        &self,
        mode: Mode,
        xs: &mut [E],
        mask: &[u64],
    ) -> Result<(), Error> {
        let ops = self.inverted(Data::InPlace(xs));
        self.par(mode, ops, Source::Given(mask))
    }

    /// [`apply_mask_to`](Structured::apply_mask_to) on rayon's current
    /// thread pool.
    ///
    /// # Errors
    ///
    /// As [`apply_mask_to`](Structured::apply_mask_to).
    pub fn par_apply_mask_to<E: Element>(
        &self,
        mode: Mode,
        xs: &[E],
        mask: &[u64],
        out: &mut [E],
    ) -> Result<(), Error> {
        let ops = self.inverted(Data::copy(xs, out)?);
        self.par(mode, ops, Source::Given(mask))
    }

    /// [`backward`](Structured::backward) on rayon's current thread pool.
    ///
    /// # Errors
    ///
    /// As [`backward`](Structured::backward).
    pub fn par_backward<E: Element>(
        &self,
        mode: Mode,
        grad: &mut [E],
        key: Keyed,
    ) -> Result<(), Error> {
        self.par_forward(mode, grad, key)
    }

    /// [`backward_to`](Structured::backward_to) on rayon's current thread
    /// pool.
    ///
    /// # Errors
    ///
    /// As [`backward_to`](Structured::backward_to).
    pub fn par_backward_to<E: Element>(
        &self,
        mode: Mode,
        grad: &[E],
        out: &mut [E],
        key: Keyed,
    ) -> Result<(), Error> {
        self.par_forward_to(mode, grad, out, key)
    }

    /// [`residual_add`](Structured::residual_add) on rayon's current thread
    /// pool.
    ///
    /// # Errors
    ///
    /// As [`residual_add`](Structured::residual_add).
    pub fn par_residual_add<E: Element>(
        &self,
        mode: Mode,
        io: Residual<'_, E>,
        bias: Option<&[E]>,
        key: Keyed,
    ) -> Result<(), Error> {
        let ops = Fused::new(io, bias, self.dropout.scale())?;
        self.par(mode, ops, Source::Key(key, None))
    }

    /// [`residual_add_with_mask`](Structured::residual_add_with_mask) on
    /// rayon's current thread pool.
    ///
    /// # Errors
    ///
    /// As [`residual_add_with_mask`](Structured::residual_add_with_mask).
    pub fn par_residual_add_with_mask<E: Element>(
        &self,
        mode: Mode,
        io: Residual<'_, E>,
        bias: Option<&[E]>,
        mask: &mut [u64],
        key: Keyed,
    ) -> Result<(), Error> {
        let ops = Fused::new(io, bias, self.dropout.scale())?;
        self.par(mode, ops, Source::Key(key, Some(mask)))
    }
}

/// The parallel element-wise calls: [`Structured`]'s with one unit per
/// element.
impl Dropout {
    fn elements(&self, len: usize) -> Structured {
        self.structured(Units::elements(len))
    }

    /// [`forward`](Dropout::forward) on rayon's current thread pool, bit for
    /// bit the serial result for any number of threads.
    ///
    /// # Errors
    ///
    /// As [`forward`](Dropout::forward).
    ///
    /// ```
    /// use bitdrop::{Dropout, Keyed, Mode};
    ///
    /// let dropout = Dropout::new(0.1)?;
    /// let mut serial = vec![1.0_f32; 1 << 20];
    /// let mut parallel = serial.clone();
    /// dropout.forward(Mode::Train, &mut serial, Keyed::new(9, 0))?;
    /// dropout.par_forward(Mode::Train, &mut parallel, Keyed::new(9, 0))?;
    /// assert_eq!(serial, parallel);
    /// # Ok::<(), bitdrop::Error>(())
    /// ```
    pub fn par_forward<E: Element>(
        &self,
        mode: Mode,
        xs: &mut [E],
        key: Keyed,
    ) -> Result<(), Error> {
        self.elements(xs.len()).par_forward(mode, xs, key)
    }

    /// [`forward_to`](Dropout::forward_to) on rayon's current thread pool.
    ///
    /// # Errors
    ///
    /// As [`forward_to`](Dropout::forward_to).
    pub fn par_forward_to<E: Element>(
        &self,
        mode: Mode,
        xs: &[E],
        out: &mut [E],
        key: Keyed,
    ) -> Result<(), Error> {
        self.elements(xs.len()).par_forward_to(mode, xs, out, key)
    }

    /// [`forward_with_mask`](Dropout::forward_with_mask) on rayon's current
    /// thread pool.
    ///
    /// # Errors
    ///
    /// As [`forward_with_mask`](Dropout::forward_with_mask).
    pub fn par_forward_with_mask<E: Element>(
        &self,
        mode: Mode,
        xs: &mut [E],
        mask: &mut [u64],
        key: Keyed,
    ) -> Result<(), Error> {
        self.elements(xs.len())
            .par_forward_with_mask(mode, xs, mask, key)
    }

    /// [`forward_to_with_mask`](Dropout::forward_to_with_mask) on rayon's
    /// current thread pool.
    ///
    /// # Errors
    ///
    /// As [`forward_to_with_mask`](Dropout::forward_to_with_mask).
    pub fn par_forward_to_with_mask<E: Element>(
        &self,
        mode: Mode,
        xs: &[E],
        out: &mut [E],
        mask: &mut [u64],
        key: Keyed,
    ) -> Result<(), Error> {
        self.elements(xs.len())
            .par_forward_to_with_mask(mode, xs, out, mask, key)
    }

    /// [`fill_mask`](Dropout::fill_mask) on rayon's current thread pool.
    ///
    /// # Errors
    ///
    /// As [`fill_mask`](Dropout::fill_mask).
    pub fn par_fill_mask(
        &self,
        mode: Mode,
        len: usize,
        mask: &mut [u64],
        key: Keyed,
    ) -> Result<(), Error> {
        self.elements(len).par_fill_mask(mode, mask, key)
    }

    /// [`apply_mask`](Dropout::apply_mask) on rayon's current thread pool.
    ///
    /// # Errors
    ///
    /// As [`apply_mask`](Dropout::apply_mask).
    pub fn par_apply_mask<E: Element>(
        &self,
        mode: Mode,
        xs: &mut [E],
        mask: &[u64],
    ) -> Result<(), Error> {
        self.elements(xs.len()).par_apply_mask(mode, xs, mask)
    }

    /// [`apply_mask_to`](Dropout::apply_mask_to) on rayon's current thread
    /// pool.
    ///
    /// # Errors
    ///
    /// As [`apply_mask_to`](Dropout::apply_mask_to).
    pub fn par_apply_mask_to<E: Element>(
        &self,
        mode: Mode,
        xs: &[E],
        mask: &[u64],
        out: &mut [E],
    ) -> Result<(), Error> {
        self.elements(xs.len())
            .par_apply_mask_to(mode, xs, mask, out)
    }

    /// [`backward`](Dropout::backward) on rayon's current thread pool.
    ///
    /// # Errors
    ///
    /// As [`backward`](Dropout::backward).
    pub fn par_backward<E: Element>(
        &self,
        mode: Mode,
        grad: &mut [E],
        key: Keyed,
    ) -> Result<(), Error> {
        self.par_forward(mode, grad, key)
    }

    /// [`backward_to`](Dropout::backward_to) on rayon's current thread pool.
    ///
    /// # Errors
    ///
    /// As [`backward_to`](Dropout::backward_to).
    pub fn par_backward_to<E: Element>(
        &self,
        mode: Mode,
        grad: &[E],
        out: &mut [E],
        key: Keyed,
    ) -> Result<(), Error> {
        self.par_forward_to(mode, grad, out, key)
    }

    /// [`residual_add`](Dropout::residual_add) on rayon's current thread
    /// pool.
    ///
    /// # Errors
    ///
    /// As [`residual_add`](Dropout::residual_add).
    pub fn par_residual_add<E: Element>(
        &self,
        mode: Mode,
        io: Residual<'_, E>,
        bias: Option<&[E]>,
        key: Keyed,
    ) -> Result<(), Error> {
        self.elements(io.len())
            .par_residual_add(mode, io, bias, key)
    }

    /// [`residual_add_with_mask`](Dropout::residual_add_with_mask) on
    /// rayon's current thread pool.
    ///
    /// # Errors
    ///
    /// As [`residual_add_with_mask`](Dropout::residual_add_with_mask).
    pub fn par_residual_add_with_mask<E: Element>(
        &self,
        mode: Mode,
        io: Residual<'_, E>,
        bias: Option<&[E]>,
        mask: &mut [u64],
        key: Keyed,
    ) -> Result<(), Error> {
        self.elements(io.len())
            .par_residual_add_with_mask(mode, io, bias, mask, key)
    }
}
