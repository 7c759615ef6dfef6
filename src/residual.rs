//! Dropout fused with the residual add: `out = residual + dropout(x)`, or
//! `residual + dropout(x + bias)`, in one pass over memory.

use crate::Element;
use crate::dispatch::{Cpu, Level};
use crate::kernel::{CHUNK_WORDS, Fast, lanes, prefetch, take_bits};
use crate::lanes::{Lanes, Rule};
use crate::run::{Decision, Decisions, Operands, run};
use crate::source::Randomness;
use crate::{Dropout, Error, Mode, Structured, Units};

/// The operands of a fused residual dropout, and where its result goes:
/// in place on either operand, or into a third buffer. All of one length.
///
/// Each element is `r + d`, one `f32` addition, where `d` is the dropout
/// of `x` (or of `x + b`, one `f32` addition first) exactly as
/// [`Dropout::forward`] computes it: `+0.0` if dropped, `x * s` if kept, `x`
/// itself in evaluation mode. So a dropped element gives `r + 0.0`, which is
/// `r` except that `-0.0` becomes `+0.0`.
#[derive(Debug)]
pub enum Residual<'a, E = f32> {
    /// `residual[i] = residual[i] + dropout(x)[i]`: the residual stream
    /// updated in place.
    IntoResidual {
        /// The branch output to drop.
        x: &'a [E],
        /// The residual stream, overwritten with the sum.
        residual: &'a mut [E],
    },
    /// `x[i] = residual[i] + dropout(x)[i]`.
    IntoX {
        /// The branch output to drop, overwritten with the sum.
        x: &'a mut [E],
        /// The residual stream.
        residual: &'a [E],
    },
    /// `out[i] = residual[i] + dropout(x)[i]`.
    Into {
        /// The branch output to drop.
        x: &'a [E],
        /// The residual stream.
        residual: &'a [E],
        /// The sum.
        out: &'a mut [E],
    },
}

impl<E> Residual<'_, E> {
    pub(crate) fn len(&self) -> usize {
        match self {
            Residual::IntoResidual { x, .. } | Residual::Into { x, .. } => x.len(),
            Residual::IntoX { x, .. } => x.len(),
        }
    }

    /// The length of the other operands, if one differs from `x`'s.
    fn mismatch(&self) -> Option<usize> {
        let n = self.len();
        match self {
            Residual::IntoResidual { residual, .. } => Some(residual.len()),
            Residual::IntoX { residual, .. } => Some(residual.len()),
            Residual::Into { residual, out, .. } => Some(if residual.len() != n {
                residual.len()
            } else {
                out.len()
            }),
        }
        .filter(|&len| len != n)
    }
}

impl Structured {
    /// Fused residual dropout: `residual + dropout(x)`, or with a `bias`,
    /// `residual + dropout(x + bias)` where `bias` (the row length) is
    /// broadcast over the rows of `x` (element `i` adds `bias[i % bias.len()]`,
    /// as in Megatron's bias-dropout-add). One pass over memory; decisions
    /// per unit as in [`forward`](Structured::forward), from the same
    /// stream positions. With per-sample units this is
    /// `residual + drop_path(branch)`.
    ///
    /// The backward pass: the gradient of `x` (and of `x + bias`) is
    /// [`backward`](Structured::backward) of the output gradient with the
    /// same key; the residual's gradient is the output gradient itself;
    /// the bias's is the sum over rows of `x`'s gradient.
    ///
    /// # Errors
    ///
    /// [`Error::LengthMismatch`] if the operands differ in length (the
    /// length of `x` is the input's), [`Error::BiasMismatch`] if `bias`
    /// does not divide `x` into rows, then as
    /// [`forward`](Structured::forward).
    ///
    /// ```
    /// use bitdrop::{Dropout, Keyed, Mode, Residual, Units};
    ///
    /// // A pre-norm transformer block's residual: h = h + drop_path(f(h)),
    /// // per sample of a [4, 8] batch.
    /// let units = Units::per_sample(4, 8)?;
    /// let drop_path = Dropout::new(0.5)?.structured(units);
    /// let branch = [1.0_f32; 32];
    /// let mut h = [10.0_f32; 32];
    /// let io = Residual::IntoResidual { x: &branch, residual: &mut h };
    /// drop_path.residual_add(Mode::Train, io, None, Keyed::new(8, 0))?;
    /// for sample in h.chunks(8) {
    ///     assert!(sample.iter().all(|&v| v == 10.0) || sample.iter().all(|&v| v == 12.0));
    /// }
    /// # Ok::<(), bitdrop::Error>(())
    /// ```
    pub fn residual_add<E: Element>(
        &self,
        mode: Mode,
        io: Residual<'_, E>,
        bias: Option<&[E]>,
        source: impl Randomness,
    ) -> Result<(), Error> {
        let ops = Fused::new(io, bias, self.dropout.scale())?;
        let decisions = Decisions::Draw { source, mask: None };
        run(&self.dropout, mode, ops, &self.units, decisions, Fast)
    }

    /// [`residual_add`](Structured::residual_add) that also writes the
    /// mask, one bit per unit, in the same pass.
    ///
    /// # Errors
    ///
    /// As [`residual_add`](Structured::residual_add), and
    /// [`Error::MaskTooShort`].
    pub fn residual_add_with_mask<E: Element>(
        &self,
        mode: Mode,
        io: Residual<'_, E>,
        bias: Option<&[E]>,
        mask: &mut [u64],
        source: impl Randomness,
    ) -> Result<(), Error> {
        let ops = Fused::new(io, bias, self.dropout.scale())?;
        let mask = Some(mask);
        run(
            &self.dropout,
            mode,
            ops,
            &self.units,
            Decisions::Draw { source, mask },
            Fast,
        )
    }
}

impl Dropout {
    /// Fused residual dropout, one decision per element:
    /// `residual + dropout(x [+ bias])` in one pass. See
    /// [`Structured::residual_add`] for the exact rule, the backward pass
    /// and the errors.
    ///
    /// ```
    /// use bitdrop::{Dropout, Keyed, Mode, Residual};
    ///
    /// // Megatron's bias-dropout-add on 2 tokens of hidden size 4.
    /// let dropout = Dropout::new(0.1)?;
    /// let x = [1.0_f32; 8];
    /// let bias = [0.5_f32; 4];
    /// let residual = [2.0_f32; 8];
    /// let mut out = [0.0_f32; 8];
    /// let io = Residual::Into { x: &x, residual: &residual, out: &mut out };
    /// dropout.residual_add(Mode::Train, io, Some(&bias), Keyed::new(1, 0))?;
    /// let kept = 2.0 + 1.5 * dropout.scale();
    /// assert!(out.iter().all(|&v| v == 2.0 || v == kept));
    /// # Ok::<(), bitdrop::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Structured::residual_add`].
    pub fn residual_add<E: Element>(
        &self,
        mode: Mode,
        io: Residual<'_, E>,
        bias: Option<&[E]>,
        source: impl Randomness,
    ) -> Result<(), Error> {
        let units = Units::elements(io.len());
        self.structured(units).residual_add(mode, io, bias, source)
    }

    /// [`residual_add`](Dropout::residual_add) that also writes the mask.
    ///
    /// # Errors
    ///
    /// As [`Structured::residual_add_with_mask`].
    pub fn residual_add_with_mask<E: Element>(
        &self,
        mode: Mode,
        io: Residual<'_, E>,
        bias: Option<&[E]>,
        mask: &mut [u64],
        source: impl Randomness,
    ) -> Result<(), Error> {
        let units = Units::elements(io.len());
        self.structured(units)
            .residual_add_with_mask(mode, io, bias, mask, source)
    }
}

/// The residual rule over validated operands.
pub(crate) struct Fused<'a, E> {
    io: Residual<'a, E>,
    /// Empty when there is no bias.
    bias: &'a [E],
    /// The bias column of element 0 (not 0 in a piece of a parallel call).
    phase: usize,
    scale: f32,
}

impl<'a, E: Element> Fused<'a, E> {
    pub(crate) fn new(
        io: Residual<'a, E>,
        bias: Option<&'a [E]>,
        scale: f32,
    ) -> Result<Self, Error> {
        let len = io.len();
        if let Some(output) = io.mismatch() {
            return Err(Error::LengthMismatch { input: len, output });
        }
        let bias = match bias {
            None => &[],
            Some(b) if b.is_empty() && len == 0 => b,
            Some(b) if !b.is_empty() && len.is_multiple_of(b.len()) => b,
            Some(b) => {
                return Err(Error::BiasMismatch { bias: b.len(), len });
            }
        };
        Ok(Fused {
            io,
            bias,
            phase: 0,
            scale,
        })
    }

    /// Elements `start..start + len` with keep bits `words`, scaled by
    /// `scale`, or passed (no scaling, no decision) if `scale` is `None`.
    #[inline(always)]
    fn compute<I: Level>(
        &mut self,
        start: usize,
        len: usize,
        words: &[u64],
        scale: Option<f32>,
        cpu: Cpu<I>,
    ) {
        if self.bias.is_empty() {
            fused(cpu, &mut self.io, start..start + len, None, words, scale);
            return;
        }
        // Row by row, so that the bias is one contiguous slice per piece.
        let row = self.bias.len();
        let mut part = [0u64; CHUNK_WORDS];
        let mut at = start;
        while at < start + len {
            let col = (at + self.phase) % row;
            let n = (row - col).min(start + len - at);
            let bits: &[u64] = if (at - start).is_multiple_of(64) {
                &words[(at - start) / 64..]
            } else {
                take_bits(words, at - start, n, &mut part);
                &part
            };
            let bias = &self.bias[col..col + n];
            fused(cpu, &mut self.io, at..at + n, Some(bias), bits, scale);
            at += n;
        }
    }
}

/// The fused rule on one range, with a bias slice of its length or none.
#[inline(always)]
fn fused<E: Element, I: Level>(
    cpu: Cpu<I>,
    io: &mut Residual<'_, E>,
    range: core::ops::Range<usize>,
    bias: Option<&[E]>,
    words: &[u64],
    scale: Option<f32>,
) {
    let r = range.clone();
    match (io, bias) {
        (Residual::IntoResidual { x, residual }, None) => lanes::<E, 1, true, _>(
            cpu,
            &mut residual[r],
            [&x[range]],
            words,
            IntoResidual(scale),
        ),
        (Residual::IntoResidual { x, residual }, Some(b)) => {
            let ins = [&x[range], b];
            lanes::<E, 2, true, _>(cpu, &mut residual[r], ins, words, IntoResidual(scale))
        }
        (Residual::IntoX { x, residual }, None) => {
            lanes::<E, 1, true, _>(cpu, &mut x[r], [&residual[range]], words, IntoX(scale))
        }
        (Residual::IntoX { x, residual }, Some(b)) => {
            let ins = [&residual[range], b];
            lanes::<E, 2, true, _>(cpu, &mut x[r], ins, words, IntoX(scale))
        }
        (Residual::Into { x, residual, out }, None) => {
            let ins = [&x[range.clone()], &residual[range]];
            lanes::<E, 2, false, _>(cpu, &mut out[r], ins, words, Into(scale))
        }
        (Residual::Into { x, residual, out }, Some(b)) => {
            let ins = [&x[range.clone()], &residual[range], b];
            lanes::<E, 3, false, _>(cpu, &mut out[r], ins, words, Into(scale))
        }
    }
}

/// `r + d`, where `d` is `x` dropped out: `select(keep, x * s)` with a
/// scale, `x` itself (passed) without.
#[inline(always)]
fn plus_dropped<E, L: Lanes<E>>(r: L, x: L, scale: Option<f32>, keep: L::Keep) -> L {
    let d = match scale {
        Some(s) => L::select(keep, x.scaled(s)),
        None => x,
    };
    r.plus(d)
}

/// The lane rules of the three forms, each with a bias (the last input)
/// or without: into the residual, which is read (inputs `x [, b]`); into
/// `x`, which is read (inputs `r [, b]`); into a third buffer (inputs
/// `x, r [, b]`).
#[derive(Clone, Copy)]
struct IntoResidual(Option<f32>);
#[derive(Clone, Copy)]
struct IntoX(Option<f32>);
#[derive(Clone, Copy)]
struct Into(Option<f32>);

impl<E: Element> Rule<E, 1> for IntoResidual {
    #[inline(always)]
    fn lanes<L: Lanes<E>>(self, r: L, [x]: [L; 1], keep: L::Keep) -> L {
        plus_dropped(r, x, self.0, keep)
    }
}

impl<E: Element> Rule<E, 2> for IntoResidual {
    #[inline(always)]
    fn lanes<L: Lanes<E>>(self, r: L, [x, b]: [L; 2], keep: L::Keep) -> L {
        plus_dropped(r, x.plus(b), self.0, keep)
    }
}

impl<E: Element> Rule<E, 1> for IntoX {
    #[inline(always)]
    fn lanes<L: Lanes<E>>(self, x: L, [r]: [L; 1], keep: L::Keep) -> L {
        plus_dropped(r, x, self.0, keep)
    }
}

impl<E: Element> Rule<E, 2> for IntoX {
    #[inline(always)]
    fn lanes<L: Lanes<E>>(self, x: L, [r, b]: [L; 2], keep: L::Keep) -> L {
        plus_dropped(r, x.plus(b), self.0, keep)
    }
}

impl<E: Element> Rule<E, 2> for Into {
    #[inline(always)]
    fn lanes<L: Lanes<E>>(self, _: L, [x, r]: [L; 2], keep: L::Keep) -> L {
        plus_dropped(r, x, self.0, keep)
    }
}

impl<E: Element> Rule<E, 3> for Into {
    #[inline(always)]
    fn lanes<L: Lanes<E>>(self, _: L, [x, r, b]: [L; 3], keep: L::Keep) -> L {
        plus_dropped(r, x.plus(b), self.0, keep)
    }
}

#[cfg(feature = "rayon")]
impl<E: Element> crate::run::Split for Fused<'_, E> {
    fn split_at(self, mid: usize) -> (Self, Self) {
        let (left, right) = match self.io {
            Residual::IntoResidual { x, residual } => {
                let ((a, b), (c, d)) = (x.split_at(mid), residual.split_at_mut(mid));
                (
                    Residual::IntoResidual { x: a, residual: c },
                    Residual::IntoResidual { x: b, residual: d },
                )
            }
            Residual::IntoX { x, residual } => {
                let ((a, b), (c, d)) = (x.split_at_mut(mid), residual.split_at(mid));
                (
                    Residual::IntoX { x: a, residual: c },
                    Residual::IntoX { x: b, residual: d },
                )
            }
            Residual::Into { x, residual, out } => {
                let ((a, b), (c, d)) = (x.split_at(mid), residual.split_at(mid));
                let (e, f) = out.split_at_mut(mid);
                (
                    Residual::Into {
                        x: a,
                        residual: c,
                        out: e,
                    },
                    Residual::Into {
                        x: b,
                        residual: d,
                        out: f,
                    },
                )
            }
        };
        let phase = match self.bias.len() {
            0 => 0,
            row => (self.phase + mid) % row,
        };
        (
            Fused { io: left, ..self },
            Fused {
                io: right,
                phase,
                ..self
            },
        )
    }
}

impl<E: Element> Operands for Fused<'_, E> {
    fn len(&self) -> usize {
        self.io.len()
    }

    #[inline(always)]
    fn apply<I: Level>(&mut self, start: usize, len: usize, words: &[u64], cpu: Cpu<I>) {
        self.compute(start, len, words, Some(self.scale), cpu);
    }

    /// The streams: `x`, the residual, the output (the bias repeats
    /// each row, and stays in cache).
    #[inline(always)]
    fn prefetch(&self, start: usize, len: usize) {
        match &self.io {
            Residual::IntoResidual { x, residual } => {
                prefetch(x, start, len);
                prefetch(residual, start, len);
            }
            Residual::IntoX { x, residual } => {
                prefetch(x, start, len);
                prefetch(residual, start, len);
            }
            Residual::Into { x, residual, out } => {
                prefetch(x, start, len);
                prefetch(residual, start, len);
                prefetch(out, start, len);
            }
        }
    }

    fn pass(&mut self) {
        let len = self.len();
        let mut start = 0;
        while start < len {
            let n = (len - start).min(64 * CHUNK_WORDS);
            self.compute(start, n, &[!0; CHUNK_WORDS], None, Cpu::BUILD);
            start += n;
        }
    }

    fn element(&mut self, i: usize, decision: Decision) {
        let b = |x: E| match self.bias.len() {
            0 => x,
            row => x.plus(self.bias[(i + self.phase) % row]),
        };
        let d = |x: E| match decision {
            Decision::Pass => b(x),
            Decision::Keep => b(x).scaled(self.scale),
            Decision::Drop => E::ZERO,
        };
        match &mut self.io {
            Residual::IntoResidual { x, residual } => residual[i] = residual[i].plus(d(x[i])),
            Residual::IntoX { x, residual } => x[i] = residual[i].plus(d(x[i])),
            Residual::Into { x, residual, out } => out[i] = residual[i].plus(d(x[i])),
        }
    }
}
