//! The one runner behind every operation, fast or reference: validate,
//! plan (identity, drop all, random), then dispatch to an executor.

use crate::decide::Threshold;
use crate::dispatch::{Cpu, Level};
use crate::mask::{check_words, low_bits, mask_words};
use crate::source::Randomness;
use crate::{Dropout, Error, Mode, Units};

/// What a call does to its data, once mode and `p` are known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Plan {
    /// Evaluation mode, or `p == 0`: every element passes, nothing drawn.
    Identity,
    /// `p == 1`: every element dropped, nothing drawn.
    DropAll,
    /// A decision per unit against this threshold.
    Random(Threshold),
}

impl Plan {
    pub(crate) fn of(dropout: &Dropout, mode: Mode) -> Plan {
        if mode == Mode::Eval || dropout.p() == 0.0 {
            Plan::Identity
        } else if dropout.p() == 1.0 {
            Plan::DropAll
        } else {
            Plan::Random(dropout.threshold())
        }
    }
}

/// What happens to one element.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Evaluation mode or `p == 0`.
    Pass,
    Keep,
    Drop,
}

/// The data of one call and its element rule: the plug-in point of the
/// variants (inverted dropout, residual add, ...). Every check on the
/// operands themselves (lengths, bias) is made when they are built.
pub(crate) trait Operands {
    /// Number of elements.
    fn len(&self) -> usize;
    /// The fast path: elements `start..start + len` (`len <=
    /// kernel::CHUNK`, in range), element `start + j` kept iff bit `j` of
    /// `words` is set, in the lanes `cpu` offers.
    fn apply<I: Level>(&mut self, start: usize, len: usize, words: &[u64], cpu: Cpu<I>);
    /// A hint: the fast path applies `start..start + len` next, so the
    /// operands' elements
    /// [`PREFETCH_BYTES`](crate::kernel::PREFETCH_BYTES) bytes past those
    /// may be loaded now ([`kernel::prefetch`](crate::kernel::prefetch)).
    fn prefetch(&self, start: usize, len: usize);
    /// The fast path: every element as in evaluation mode.
    fn pass(&mut self);
    /// The reference: element `i`, by the scalar rule.
    fn element(&mut self, i: usize, decision: Decision);
}

/// Operands that split in two at an element, for the parallel calls: the
/// left part holds elements `..mid`, the right part the rest, renumbered
/// from 0.
#[cfg(feature = "rayon")]
pub(crate) trait Split: Operands + Sized + Send {
    fn split_at(self, mid: usize) -> (Self, Self);
}

/// Where a call's decisions come from.
pub(crate) enum Decisions<'m, S> {
    /// Drawn from a source, one per unit in unit order, and written to
    /// `mask` if there is one.
    Draw {
        source: S,
        mask: Option<&'m mut [u64]>,
    },
    /// Given: unit `u`'s bit is bit `first + u` of the words (`first` is
    /// not 0 only for a piece of a parallel call).
    Given(&'m [u64], usize),
}

/// Who computes: the fast path or the reference.
pub(crate) trait Executor {
    fn pass(&self, ops: &mut impl Operands);
    fn drop_all(&self, ops: &mut impl Operands);
    /// `mask`, if any, has exactly `mask_words(units.count())` words.
    fn draw(
        &self,
        ops: &mut impl Operands,
        units: &Units,
        threshold: Threshold,
        source: impl Randomness,
        mask: Option<&mut [u64]>,
    );
    /// Unit `u`'s bit is bit `first + u` of `mask` (`first < 64`), and
    /// `mask` has exactly `mask_words(first + units.count())` words.
    fn given(&self, ops: &mut impl Operands, units: &Units, mask: &[u64], first: usize);
}

/// Every check of a call, in the documented order (shape, then mask, then
/// stream positions; lengths and bias are checked earlier, when the
/// operands are built).
pub(crate) fn check<S: Randomness>(
    len: usize,
    units: &Units,
    decisions: &Decisions<'_, S>,
) -> Result<(), Error> {
    if len != units.len() {
        return Err(Error::ShapeMismatch {
            expected: units.len(),
            found: len,
        });
    }
    let count = units.count();
    match decisions {
        Decisions::Draw { source, mask } => {
            if let Some(mask) = mask {
                check_words(count, mask.len())?;
            }
            source.check(count)
        }
        Decisions::Given(mask, first) => check_words(first + count, mask.len()),
    }
}

/// Every operation: all checks before the first write, then one pass.
pub(crate) fn run<S: Randomness>(
    dropout: &Dropout,
    mode: Mode,
    mut ops: impl Operands,
    units: &Units,
    decisions: Decisions<'_, S>,
    exec: impl Executor,
) -> Result<(), Error> {
    check(ops.len(), units, &decisions)?;
    // No element to write and no mask: nothing to decide, even when a zero
    // `shared` or `run` leaves units without elements.
    if ops.len() == 0 && !matches!(decisions, Decisions::Draw { mask: Some(_), .. }) {
        return Ok(());
    }
    let count = units.count();
    let words = mask_words(count);
    match (Plan::of(dropout, mode), decisions) {
        (Plan::Identity, decisions) => {
            if let Decisions::Draw {
                mask: Some(mask), ..
            } = decisions
            {
                fill_kept(&mut mask[..words], count);
            }
            exec.pass(&mut ops);
        }
        (Plan::DropAll, decisions) => {
            if let Decisions::Draw {
                mask: Some(mask), ..
            } = decisions
            {
                mask[..words].fill(0);
            }
            exec.drop_all(&mut ops);
        }
        (Plan::Random(threshold), Decisions::Draw { source, mask }) => {
            let mask = mask.map(|m| &mut m[..words]);
            exec.draw(&mut ops, units, threshold, source, mask);
        }
        (Plan::Random(_), Decisions::Given(mask, first)) => {
            let mask = &mask[first / 64..mask_words(first + count)];
            exec.given(&mut ops, units, mask, first % 64)
        }
    }
    Ok(())
}

/// A mask keeping all `len` elements, bits past `len` clear.
pub(crate) fn fill_kept(words: &mut [u64], len: usize) {
    for (i, word) in words.iter_mut().enumerate() {
        *word = low_bits(len - 64 * i);
    }
}
