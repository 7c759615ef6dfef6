//! The inverted-dropout element rule: kept `x * s`, dropped `+0.0`, and in
//! evaluation mode the input itself.

use crate::Element;
use crate::Error;
use crate::dispatch::{Cpu, Level};
use crate::kernel::{lanes, prefetch};
use crate::lanes::{Lanes, Rule};
use crate::run::{Decision, Operands};

/// The data of a call: in place, from a source to an output of the same
/// length, or none at all (a mask only).
pub(crate) enum Data<'a, E> {
    InPlace(&'a mut [E]),
    Copy(&'a [E], &'a mut [E]),
    MaskOnly(usize),
}

impl<'a, E> Data<'a, E> {
    /// The out-of-place data of a call, if the lengths agree.
    pub(crate) fn copy(xs: &'a [E], out: &'a mut [E]) -> Result<Self, Error> {
        if xs.len() != out.len() {
            return Err(Error::LengthMismatch {
                input: xs.len(),
                output: out.len(),
            });
        }
        Ok(Data::Copy(xs, out))
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            Data::InPlace(xs) => xs.len(),
            Data::Copy(_, out) => out.len(),
            Data::MaskOnly(len) => *len,
        }
    }
}

impl<E: Copy> Data<'_, E> {
    /// Element `i` becomes `rule(x_i)` (nothing without data).
    #[inline(always)]
    pub(crate) fn set(&mut self, i: usize, rule: impl FnOnce(E) -> E) {
        match self {
            Data::InPlace(xs) => xs[i] = rule(xs[i]),
            Data::Copy(xs, out) => out[i] = rule(xs[i]),
            Data::MaskOnly(_) => {}
        }
    }

    /// [`Operands::prefetch`] for this data.
    #[inline(always)]
    pub(crate) fn prefetch(&self, start: usize, len: usize) {
        match self {
            Data::InPlace(xs) => prefetch(xs, start, len),
            Data::Copy(xs, out) => {
                prefetch(xs, start, len);
                prefetch(out, start, len);
            }
            Data::MaskOnly(_) => {}
        }
    }

    /// Every element as it is: the identity.
    pub(crate) fn pass(&mut self) {
        if let Data::Copy(xs, out) = self {
            out.copy_from_slice(xs);
        }
    }
}

#[cfg(feature = "rayon")]
impl<E: Element> crate::run::Split for Inverted<'_, E> {
    fn split_at(self, mid: usize) -> (Self, Self) {
        let (left, right) = match self.data {
            Data::InPlace(xs) => {
                let (a, b) = xs.split_at_mut(mid);
                (Data::InPlace(a), Data::InPlace(b))
            }
            Data::Copy(xs, out) => {
                let ((a, b), (c, d)) = (xs.split_at(mid), out.split_at_mut(mid));
                (Data::Copy(a, c), Data::Copy(b, d))
            }
            Data::MaskOnly(len) => (Data::MaskOnly(mid), Data::MaskOnly(len - mid)),
        };
        let scale = self.scale;
        (
            Inverted { data: left, scale },
            Inverted { data: right, scale },
        )
    }
}

impl Inverted<'static, f32> {
    /// No data: the operands of a call that only writes the mask of `len`
    /// elements (the element type and scale do not matter).
    pub(crate) const fn mask_only(len: usize) -> Self {
        Inverted {
            data: Data::MaskOnly(len),
            scale: 1.0,
        }
    }
}

/// Inverted dropout with scale `s`.
pub(crate) struct Inverted<'a, E> {
    pub(crate) data: Data<'a, E>,
    pub(crate) scale: f32,
}

impl<E: Element> Operands for Inverted<'_, E> {
    fn len(&self) -> usize {
        self.data.len()
    }

    #[inline(always)]
    fn apply<I: Level>(&mut self, start: usize, len: usize, words: &[u64], cpu: Cpu<I>) {
        let rule = Scaled(self.scale);
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
        let scale = self.scale;
        self.data.set(i, |x| match decision {
            Decision::Pass => x,
            Decision::Keep => x.scaled(scale),
            Decision::Drop => E::ZERO,
        });
    }
}

/// The lane rule: kept `x * s`, dropped `+0.0`; in place (`x` the element
/// written) or from one input.
#[derive(Clone, Copy)]
struct Scaled(f32);

impl<E: Element> Rule<E, 0> for Scaled {
    #[inline(always)]
    fn lanes<L: Lanes<E>>(self, x: L, _: [L; 0], keep: L::Keep) -> L {
        L::select(keep, x.scaled(self.0))
    }
}

impl<E: Element> Rule<E, 1> for Scaled {
    #[inline(always)]
    fn lanes<L: Lanes<E>>(self, _: L, [x]: [L; 1], keep: L::Keep) -> L {
        L::select(keep, x.scaled(self.0))
    }
}
