//! The table of data operations: every public operation on data is a row of
//! [`OPS`]. For each row there is ONE way to call it ([`Op::call`]), ONE
//! way to compute what it must do from the scalar reference
//! ([`Op::reference`]), ONE statement of the error it must return
//! ([`Op::expected_error`]) and ONE statement of its element rule
//! ([`Op::rule`]). The contract, equivalence, error, allocation and fuzz
//! tests iterate [`OPS`], so a new operation is covered everywhere by a new
//! row here. A new [`Entry`] (or [`Level`]) needs an arm in each of those
//! functions, which the compiler asks for; a new row needs a cargo-fuzz
//! target named like it (a file in `fuzz/fuzz_targets/` and a `[[bin]]`
//! in `fuzz/Cargo.toml`, which `tests/fuzz_contract.rs` asks for) and a
//! seed corpus, which `cargo test --test fuzz_contract -- --ignored
//! write_missing_seed_corpora` writes.

use super::{low_bits, rng, same};
use bitdrop::{AlphaDropout, Dropout, Error, Keyed, Mode, Residual, Units, mask_words, reference};
use rand_xoshiro::Xoshiro256PlusPlus;

/// What an output buffer holds before a call: a NaN no operation makes.
pub const SENTINEL: f32 = f32::from_bits(0x7FC0_DEAD);
/// What a mask buffer holds before a call that writes one.
pub const MASK_SENTINEL: u64 = 0xDEAD_BEEF_DEAD_BEEF;

/// Whose method: [`Dropout`] (one decision per element) or
/// [`Structured`](bitdrop::Structured) (one per unit of a [`Units`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Elements,
    Units,
}

/// Whose element rule: [`Dropout`]'s (and its fused residual's) or
/// [`AlphaDropout`]'s. Both decide alike.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Dropout,
    Alpha,
}

/// Where a fused residual writes: the [`Residual`] variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Io {
    IntoResidual,
    IntoX,
    Into,
}

/// The method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entry {
    Forward,
    ForwardTo,
    ForwardWithMask,
    ForwardToWithMask,
    FillMask,
    ApplyMask,
    ApplyMaskTo,
    Backward,
    BackwardTo,
    ResidualAdd(Io),
    ResidualAddWithMask(Io),
}

/// One row: a public data operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Op {
    /// The row's name, and its cargo-fuzz target's.
    pub name: &'static str,
    pub entry: Entry,
    pub level: Level,
    pub kind: Kind,
}

const fn row(name: &'static str, entry: Entry, level: Level) -> Op {
    Op {
        name,
        entry,
        level,
        kind: Kind::Dropout,
    }
}

const fn alpha(name: &'static str, entry: Entry, level: Level) -> Op {
    Op {
        name,
        entry,
        level,
        kind: Kind::Alpha,
    }
}

/// Every public data operation.
pub const OPS: &[Op] = &[
    row("forward", Entry::Forward, Level::Elements),
    row("forward_to", Entry::ForwardTo, Level::Elements),
    row("forward_with_mask", Entry::ForwardWithMask, Level::Elements),
    row(
        "forward_to_with_mask",
        Entry::ForwardToWithMask,
        Level::Elements,
    ),
    row("fill_mask", Entry::FillMask, Level::Elements),
    row("apply_mask", Entry::ApplyMask, Level::Elements),
    row("apply_mask_to", Entry::ApplyMaskTo, Level::Elements),
    row("backward", Entry::Backward, Level::Elements),
    row("backward_to", Entry::BackwardTo, Level::Elements),
    row(
        "residual_add_into_residual",
        Entry::ResidualAdd(Io::IntoResidual),
        Level::Elements,
    ),
    row(
        "residual_add_into_x",
        Entry::ResidualAdd(Io::IntoX),
        Level::Elements,
    ),
    row(
        "residual_add_into_out",
        Entry::ResidualAdd(Io::Into),
        Level::Elements,
    ),
    row(
        "residual_add_with_mask_into_residual",
        Entry::ResidualAddWithMask(Io::IntoResidual),
        Level::Elements,
    ),
    row(
        "residual_add_with_mask_into_x",
        Entry::ResidualAddWithMask(Io::IntoX),
        Level::Elements,
    ),
    row(
        "residual_add_with_mask_into_out",
        Entry::ResidualAddWithMask(Io::Into),
        Level::Elements,
    ),
    row("structured_forward", Entry::Forward, Level::Units),
    row("structured_forward_to", Entry::ForwardTo, Level::Units),
    row(
        "structured_forward_with_mask",
        Entry::ForwardWithMask,
        Level::Units,
    ),
    row(
        "structured_forward_to_with_mask",
        Entry::ForwardToWithMask,
        Level::Units,
    ),
    row("structured_fill_mask", Entry::FillMask, Level::Units),
    row("structured_apply_mask", Entry::ApplyMask, Level::Units),
    row("structured_apply_mask_to", Entry::ApplyMaskTo, Level::Units),
    row("structured_backward", Entry::Backward, Level::Units),
    row("structured_backward_to", Entry::BackwardTo, Level::Units),
    row(
        "structured_residual_add_into_residual",
        Entry::ResidualAdd(Io::IntoResidual),
        Level::Units,
    ),
    row(
        "structured_residual_add_into_x",
        Entry::ResidualAdd(Io::IntoX),
        Level::Units,
    ),
    row(
        "structured_residual_add_into_out",
        Entry::ResidualAdd(Io::Into),
        Level::Units,
    ),
    row(
        "structured_residual_add_with_mask_into_residual",
        Entry::ResidualAddWithMask(Io::IntoResidual),
        Level::Units,
    ),
    row(
        "structured_residual_add_with_mask_into_x",
        Entry::ResidualAddWithMask(Io::IntoX),
        Level::Units,
    ),
    row(
        "structured_residual_add_with_mask_into_out",
        Entry::ResidualAddWithMask(Io::Into),
        Level::Units,
    ),
    alpha("alpha_forward", Entry::Forward, Level::Elements),
    alpha("alpha_forward_to", Entry::ForwardTo, Level::Elements),
    alpha(
        "alpha_forward_with_mask",
        Entry::ForwardWithMask,
        Level::Elements,
    ),
    alpha(
        "alpha_forward_to_with_mask",
        Entry::ForwardToWithMask,
        Level::Elements,
    ),
    alpha("alpha_apply_mask", Entry::ApplyMask, Level::Elements),
    alpha("alpha_apply_mask_to", Entry::ApplyMaskTo, Level::Elements),
    alpha("alpha_backward", Entry::Backward, Level::Elements),
    alpha("alpha_backward_to", Entry::BackwardTo, Level::Elements),
    alpha("feature_alpha_forward", Entry::Forward, Level::Units),
    alpha("feature_alpha_forward_to", Entry::ForwardTo, Level::Units),
    alpha(
        "feature_alpha_forward_with_mask",
        Entry::ForwardWithMask,
        Level::Units,
    ),
    alpha(
        "feature_alpha_forward_to_with_mask",
        Entry::ForwardToWithMask,
        Level::Units,
    ),
    alpha("feature_alpha_apply_mask", Entry::ApplyMask, Level::Units),
    alpha(
        "feature_alpha_apply_mask_to",
        Entry::ApplyMaskTo,
        Level::Units,
    ),
    alpha("feature_alpha_backward", Entry::Backward, Level::Units),
    alpha("feature_alpha_backward_to", Entry::BackwardTo, Level::Units),
];

/// The row called `name`.
pub fn op(name: &str) -> &'static Op {
    OPS.iter()
        .find(|op| op.name == name)
        .unwrap_or_else(|| panic!("no operation {name} in the table"))
}

/// The buffer a row writes its result to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// In place: [`Buffers::data`] (also `x` of [`Residual::IntoX`]).
    Data,
    /// [`Buffers::out`].
    Out,
    /// [`Buffers::residual`] ([`Residual::IntoResidual`]).
    Residual,
    /// A mask only.
    Nothing,
}

/// What a row does with its mask buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MaskRole {
    None,
    Written,
    Read,
}

/// What a call does once mode and `p` are known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plan {
    /// Evaluation mode or `p == 0`: every element passes, nothing drawn.
    Identity,
    /// `p == 1`: every element dropped, nothing drawn.
    DropAll,
    /// A decision per unit.
    Random,
}

/// What happens to one element.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Pass,
    Keep,
    Drop,
}

impl Op {
    pub fn target(&self) -> Target {
        match self.entry {
            Entry::Forward | Entry::ForwardWithMask | Entry::ApplyMask | Entry::Backward => {
                Target::Data
            }
            Entry::ForwardTo
            | Entry::ForwardToWithMask
            | Entry::ApplyMaskTo
            | Entry::BackwardTo => Target::Out,
            Entry::FillMask => Target::Nothing,
            Entry::ResidualAdd(io) | Entry::ResidualAddWithMask(io) => match io {
                Io::IntoResidual => Target::Residual,
                Io::IntoX => Target::Data,
                Io::Into => Target::Out,
            },
        }
    }

    /// Writes a separate output buffer, which must have the input's length.
    pub fn writes_out(&self) -> bool {
        self.target() == Target::Out
    }

    pub fn mask(&self) -> MaskRole {
        match self.entry {
            Entry::ForwardWithMask
            | Entry::ForwardToWithMask
            | Entry::FillMask
            | Entry::ResidualAddWithMask(_) => MaskRole::Written,
            Entry::ApplyMask | Entry::ApplyMaskTo => MaskRole::Read,
            _ => MaskRole::None,
        }
    }

    /// Takes a source of randomness (the others take a mask).
    pub fn draws(&self) -> bool {
        self.mask() != MaskRole::Read
    }

    /// Takes a [`Keyed`] source only.
    pub fn keyed_only(&self) -> bool {
        matches!(self.entry, Entry::Backward | Entry::BackwardTo)
    }

    pub fn residual(&self) -> Option<Io> {
        match self.entry {
            Entry::ResidualAdd(io) | Entry::ResidualAddWithMask(io) => Some(io),
            _ => None,
        }
    }

    /// Takes data (the others only a length, or the units).
    pub fn takes_data(&self) -> bool {
        self.entry != Entry::FillMask
    }

    /// The row's units on `case`: element-wise rows have one per element.
    pub fn units(&self, case: &Case) -> Units {
        match self.level {
            Level::Elements => Units::elements(case.xs.len()),
            Level::Units => case.units,
        }
    }

    /// The reference computes the row in one call of one entry point, so
    /// it must refuse what the row refuses, writing nothing. (It has none
    /// for forward-with-mask: those are fill_mask then apply_mask_to, each
    /// refusing what it refuses as the rows that call it.)
    pub fn one_reference_call(&self) -> bool {
        self.kind == Kind::Alpha
            || !matches!(
                self.entry,
                Entry::ForwardWithMask | Entry::ForwardToWithMask
            )
    }

    /// Whether the row runs in the tests Miri interprets (scaled down to
    /// fit its time): every dropout row, and of the alpha rows one of each
    /// lane rule and data form (the others differ only in arguments).
    pub fn under_miri(&self) -> bool {
        self.kind == Kind::Dropout
            || matches!(
                self.entry,
                Entry::Forward | Entry::ApplyMaskTo | Entry::BackwardTo
            )
    }

    /// The row's element rule, which rows of one level share: `None` for
    /// the residual rows, whose operands differ.
    pub fn rule_kind(&self) -> Option<(Kind, bool)> {
        let backward = matches!(self.entry, Entry::Backward | Entry::BackwardTo);
        match self.residual() {
            Some(_) => None,
            None => Some((self.kind, self.kind == Kind::Alpha && backward)),
        }
    }

    /// The alpha dropout of the row on `case`.
    pub fn alpha(&self, case: &Case) -> AlphaDropout {
        let alpha = AlphaDropout::new(case.dropout.p()).expect("a valid p");
        match self.level {
            Level::Elements => alpha,
            Level::Units => alpha.structured(case.units),
        }
    }

    /// Calls the row on `case`, writing `bufs` (see [`Buffers::new`]).
    ///
    /// # Panics
    ///
    /// On a caller RNG for a row that takes a key only.
    pub fn call(&self, case: &Case, bufs: &mut Buffers, source: Source<'_>) -> Result<(), Error> {
        let (d, mode, bias) = (&case.dropout, case.mode, case.bias.as_deref());
        let st = d.structured(case.units);
        let Buffers {
            data,
            out,
            residual,
            mask,
        } = bufs;
        let key = || match source {
            Source::Keyed(key) => key,
            Source::Rng(_) => panic!("{} takes a key only", self.name),
        };
        // The method of `Dropout` or of `Structured`, and the source last.
        macro_rules! call {
            ($method:ident($($arg:expr),*)) => {
                match (self.level, source) {
                    (Level::Elements, Source::Keyed(k)) => d.$method($($arg),*, k),
                    (Level::Elements, Source::Rng(r)) => d.$method($($arg),*, r),
                    (Level::Units, Source::Keyed(k)) => st.$method($($arg),*, k),
                    (Level::Units, Source::Rng(r)) => st.$method($($arg),*, r),
                }
            };
        }
        macro_rules! given {
            ($method:ident($($arg:expr),*)) => {
                match self.level {
                    Level::Elements => d.$method($($arg),*),
                    Level::Units => st.$method($($arg),*),
                }
            };
        }
        let xs = &case.xs[..];
        if self.kind == Kind::Alpha {
            let a = self.alpha(case);
            macro_rules! draw {
                ($method:ident($($arg:expr),*)) => {
                    match source {
                        Source::Keyed(k) => a.$method($($arg),*, k),
                        Source::Rng(r) => a.$method($($arg),*, r),
                    }
                };
            }
            return match self.entry {
                Entry::Forward => draw!(forward(mode, data)),
                Entry::ForwardTo => draw!(forward_to(mode, xs, out)),
                Entry::ForwardWithMask => draw!(forward_with_mask(mode, data, mask)),
                Entry::ForwardToWithMask => draw!(forward_to_with_mask(mode, xs, out, mask)),
                Entry::ApplyMask => a.apply_mask(mode, data, mask),
                Entry::ApplyMaskTo => a.apply_mask_to(mode, xs, mask, out),
                Entry::Backward => a.backward(mode, data, key()),
                Entry::BackwardTo => a.backward_to(mode, xs, out, key()),
                _ => panic!("{}: no such alpha operation", self.name),
            };
        }
        match self.entry {
            Entry::Forward => call!(forward(mode, data)),
            Entry::ForwardTo => call!(forward_to(mode, xs, out)),
            Entry::ForwardWithMask => call!(forward_with_mask(mode, data, mask)),
            Entry::ForwardToWithMask => call!(forward_to_with_mask(mode, xs, out, mask)),
            Entry::FillMask => match (self.level, source) {
                (Level::Elements, Source::Keyed(k)) => d.fill_mask(mode, xs.len(), mask, k),
                (Level::Elements, Source::Rng(r)) => d.fill_mask(mode, xs.len(), mask, r),
                (Level::Units, Source::Keyed(k)) => st.fill_mask(mode, mask, k),
                (Level::Units, Source::Rng(r)) => st.fill_mask(mode, mask, r),
            },
            Entry::ApplyMask => given!(apply_mask(mode, data, mask)),
            Entry::ApplyMaskTo => given!(apply_mask_to(mode, xs, mask, out)),
            Entry::Backward => given!(backward(mode, data, key())),
            Entry::BackwardTo => given!(backward_to(mode, xs, out, key())),
            Entry::ResidualAdd(io) => {
                let io = io.of(xs, &case.residual, data, residual, out);
                call!(residual_add(mode, io, bias))
            }
            Entry::ResidualAddWithMask(io) => {
                let io = io.of(xs, &case.residual, data, residual, out);
                call!(residual_add_with_mask(mode, io, bias, mask))
            }
        }
    }

    /// What the scalar reference says the row does: writes `bufs` and
    /// draws from `source` as the row must. Forward-with-mask is the
    /// reference's fill_mask, then its apply_mask_to with that mask.
    pub fn reference(
        &self,
        case: &Case,
        bufs: &mut Buffers,
        source: Source<'_>,
    ) -> Result<(), Error> {
        let (d, mode, bias) = (&case.dropout, case.mode, case.bias.as_deref());
        let st = d.structured(self.units(case));
        let Buffers {
            data,
            out,
            residual,
            mask,
        } = bufs;
        let xs = &case.xs[..];
        macro_rules! with {
            ($source:expr, $f:ident($($arg:expr),*)) => {
                match $source {
                    Source::Keyed(k) => $f($($arg),*, k),
                    Source::Rng(r) => $f($($arg),*, r),
                }
            };
        }
        let forward_to = |out: &mut [f32], source: Source<'_>| match self.level {
            Level::Elements => with!(source, ref_forward_to(d, mode, xs, out)),
            Level::Units => with!(source, ref_structured_forward_to(&st, mode, xs, out)),
        };
        let fill_mask = |mask: &mut [u64], source: Source<'_>| match self.level {
            Level::Elements => with!(source, ref_fill_mask(d, mode, xs.len(), mask)),
            Level::Units => with!(source, ref_structured_fill_mask(&st, mode, mask)),
        };
        if self.kind == Kind::Alpha {
            let a = self.alpha(case);
            let key = || match source {
                Source::Keyed(key) => key,
                Source::Rng(_) => panic!("{} takes a key only", self.name),
            };
            let fwd = |out: &mut [f32], mask: Option<&mut [u64]>, source: Source<'_>| match source {
                Source::Keyed(k) => reference::alpha_forward_to(&a, mode, xs, out, mask, k),
                Source::Rng(r) => reference::alpha_forward_to(&a, mode, xs, out, mask, r),
            };
            // The in-place rows compute from the input, which `data` holds.
            return match self.entry {
                Entry::Forward => fwd(data, None, source),
                Entry::ForwardTo => fwd(out, None, source),
                Entry::ForwardWithMask => fwd(data, Some(mask), source),
                Entry::ForwardToWithMask => fwd(out, Some(mask), source),
                Entry::ApplyMask => reference::alpha_apply_mask_to(&a, mode, xs, mask, data),
                Entry::ApplyMaskTo => reference::alpha_apply_mask_to(&a, mode, xs, mask, out),
                Entry::Backward => reference::alpha_backward_to(&a, mode, xs, data, key()),
                Entry::BackwardTo => reference::alpha_backward_to(&a, mode, xs, out, key()),
                _ => panic!("{}: no such alpha operation", self.name),
            };
        }
        let apply_mask_to = |mask: &[u64], out: &mut [f32]| match self.level {
            Level::Elements => reference::apply_mask_to(d, mode, xs, mask, out),
            Level::Units => reference::structured_apply_mask_to(&st, mode, xs, mask, out),
        };
        match self.entry {
            Entry::Forward | Entry::Backward => forward_to(data, source),
            Entry::ForwardTo | Entry::BackwardTo => forward_to(out, source),
            Entry::ForwardWithMask => {
                fill_mask(mask, source)?;
                apply_mask_to(mask, data)
            }
            Entry::ForwardToWithMask => {
                fill_mask(mask, source)?;
                apply_mask_to(mask, out)
            }
            Entry::FillMask => fill_mask(mask, source),
            Entry::ApplyMask => apply_mask_to(mask, data),
            Entry::ApplyMaskTo => apply_mask_to(mask, out),
            Entry::ResidualAdd(io) => {
                let io = io.of(xs, &case.residual, data, residual, out);
                with!(source, ref_residual_add(&st, mode, io, bias, None))
            }
            Entry::ResidualAddWithMask(io) => {
                let io = io.of(xs, &case.residual, data, residual, out);
                with!(source, ref_residual_add(&st, mode, io, bias, Some(mask)))
            }
        }
    }

    /// The decisions of the row's units drawn from `src`, by the reference
    /// (whatever the mode: the row's [`Plan`] says whether they are used).
    pub fn reference_decisions(&self, case: &Case, src: Src) -> Vec<u64> {
        let units = self.units(case);
        let st = case.dropout.structured(units);
        let mut words = vec![0; mask_words(units.count())];
        let mut r = src.rng();
        let source = src.with(&mut r);
        let drawn = match source {
            Source::Keyed(k) => reference::structured_fill_mask(&st, Mode::Train, &mut words, k),
            Source::Rng(r) => reference::structured_fill_mask(&st, Mode::Train, &mut words, r),
        };
        drawn.expect("the reference refused the decisions of a valid call");
        words
    }

    /// The error the row must return on `case` with `src`, if any: the
    /// documented checks in the documented order.
    pub fn expected_error(&self, case: &Case, src: Src) -> Option<Error> {
        let n = case.xs.len();
        let units = self.units(case);
        let count = units.count();
        let length = |output: usize| Error::LengthMismatch { input: n, output };
        if let Some(io) = self.residual() {
            if case.residual.len() != n {
                return Some(length(case.residual.len()));
            }
            if io == Io::Into && case.out_len != n {
                return Some(length(case.out_len));
            }
            if let Some(b) = &case.bias
                && ((b.is_empty() && n != 0) || (!b.is_empty() && !n.is_multiple_of(b.len())))
            {
                return Some(Error::BiasMismatch {
                    bias: b.len(),
                    len: n,
                });
            }
        } else if self.writes_out() && case.out_len != n {
            return Some(length(case.out_len));
        }
        if self.takes_data() && n != units.len() {
            return Some(Error::ShapeMismatch {
                expected: units.len(),
                found: n,
            });
        }
        let needed = mask_words(count);
        let found = case.mask_len(self);
        if self.mask() != MaskRole::None && found < needed {
            return Some(Error::MaskTooShort { needed, found });
        }
        match src {
            Src::Keyed(key)
                if self.draws() && u128::from(key.offset()) + count as u128 > 1 << 64 =>
            {
                Some(Error::PositionOverflow {
                    offset: key.offset(),
                    len: count,
                })
            }
            _ => None,
        }
    }

    /// Element `i` of the row's result when its unit is decided
    /// `decision`, by the documented rule: kept `x * s`, dropped `+0.0`,
    /// passed `x`; a residual row adds that to `r` (after `x + b`).
    pub fn rule(&self, case: &Case, i: usize, decision: Decision) -> f32 {
        if self.kind == Kind::Alpha {
            let (a, x) = (self.alpha(case), case.xs[i]);
            let backward = matches!(self.entry, Entry::Backward | Entry::BackwardTo);
            return match (decision, backward) {
                (Decision::Pass, _) => x,
                (Decision::Keep, false) => x * a.a() + a.b(),
                (Decision::Keep, true) => x * a.a(),
                (Decision::Drop, false) => a.dropped_value(),
                (Decision::Drop, true) => 0.0,
            };
        }
        let mut x = case.xs[i];
        if self.residual().is_some()
            && let Some(b) = case.bias.as_deref().filter(|b| !b.is_empty())
        {
            x += b[i % b.len()];
        }
        let d = match decision {
            Decision::Pass => x,
            Decision::Keep => x * case.dropout.scale(),
            Decision::Drop => 0.0,
        };
        match self.residual() {
            Some(_) => case.residual[i] + d,
            None => d,
        }
    }

    /// Whether `y` is what [`rule`](Op::rule) gives: bit for bit where
    /// the rule is the identity or a dropped element's `+0.0`, else equal
    /// with any NaN for any NaN (a multiply or an add need not keep NaN
    /// payloads).
    pub fn obeys(&self, case: &Case, i: usize, decision: Decision, y: f32) -> bool {
        let expected = self.rule(case, i, decision);
        if self.residual().is_none() && decision != Decision::Keep {
            y.to_bits() == expected.to_bits()
        } else {
            super::same_f32(y, expected)
        }
    }
}

impl Io {
    /// The operands of a residual call on a case's input and residual and
    /// the call's buffers.
    pub fn of<'a>(
        self,
        xs: &'a [f32],
        rs: &'a [f32],
        data: &'a mut [f32],
        residual: &'a mut [f32],
        out: &'a mut [f32],
    ) -> Residual<'a> {
        match self {
            Io::IntoResidual => Residual::IntoResidual { x: xs, residual },
            Io::IntoX => Residual::IntoX {
                x: data,
                residual: rs,
            },
            Io::Into => Residual::Into {
                x: xs,
                residual: rs,
                out,
            },
        }
    }
}

// The reference's entry points as functions of the source, for `with!`.
fn ref_forward_to<S: bitdrop::Randomness>(
    d: &Dropout,
    mode: Mode,
    xs: &[f32],
    out: &mut [f32],
    source: S,
) -> Result<(), Error> {
    reference::forward_to(d, mode, xs, out, source)
}

fn ref_structured_forward_to<S: bitdrop::Randomness>(
    st: &bitdrop::Structured,
    mode: Mode,
    xs: &[f32],
    out: &mut [f32],
    source: S,
) -> Result<(), Error> {
    reference::structured_forward_to(st, mode, xs, out, source)
}

fn ref_fill_mask<S: bitdrop::Randomness>(
    d: &Dropout,
    mode: Mode,
    len: usize,
    mask: &mut [u64],
    source: S,
) -> Result<(), Error> {
    reference::fill_mask(d, mode, len, mask, source)
}

fn ref_structured_fill_mask<S: bitdrop::Randomness>(
    st: &bitdrop::Structured,
    mode: Mode,
    mask: &mut [u64],
    source: S,
) -> Result<(), Error> {
    reference::structured_fill_mask(st, mode, mask, source)
}

fn ref_residual_add<S: bitdrop::Randomness>(
    st: &bitdrop::Structured,
    mode: Mode,
    io: Residual<'_>,
    bias: Option<&[f32]>,
    mask: Option<&mut [u64]>,
    source: S,
) -> Result<(), Error> {
    reference::residual_add(st, mode, io, bias, mask, source)
}

/// The operands of a call, any row's: what a test varies.
#[derive(Clone, Debug)]
pub struct Case {
    pub dropout: Dropout,
    pub mode: Mode,
    /// The units of the structured rows (element-wise rows have one per
    /// element of `xs`).
    pub units: Units,
    /// The input, `x`: also the in-place buffer's contents before a call.
    pub xs: Vec<f32>,
    /// The residual operand of the residual rows.
    pub residual: Vec<f32>,
    /// The bias of the residual rows.
    pub bias: Option<Vec<f32>>,
    /// Length of the separate output buffer.
    pub out_len: usize,
    /// Length of the mask buffer; `None`: the words the row's units need.
    pub mask_len: Option<usize>,
    /// The seed of the caller RNG that decides the given mask of the rows
    /// that read one.
    pub given: u64,
}

impl Case {
    /// A valid call of every row on `xs` (of `units.len()` elements for
    /// the structured rows), with a residual operand and no bias.
    pub fn new(dropout: Dropout, mode: Mode, units: Units, xs: Vec<f32>) -> Case {
        let n = xs.len();
        Case {
            dropout,
            mode,
            units,
            residual: super::data(n, n as u64 ^ 0x7E5),
            xs,
            bias: None,
            out_len: n,
            mask_len: None,
            given: n as u64,
        }
    }

    /// The mask buffer's length for `op`.
    pub fn mask_len(&self, op: &Op) -> usize {
        self.mask_len
            .unwrap_or_else(|| mask_words(op.units(self).count()))
    }

    /// What `op` does with these operands when every call that draws
    /// decides something.
    pub fn plan(&self) -> Plan {
        let p = self.dropout.p();
        if self.mode == Mode::Eval || p == 0.0 {
            Plan::Identity
        } else if p == 1.0 {
            Plan::DropAll
        } else {
            Plan::Random
        }
    }
}

/// Every buffer a call may write, before or after it.
#[derive(Clone, Debug, PartialEq)]
pub struct Buffers {
    /// The in-place buffer: the input before the call.
    pub data: Vec<f32>,
    /// The output buffer: [`SENTINEL`] before the call.
    pub out: Vec<f32>,
    /// The residual operand (written by [`Residual::IntoResidual`]).
    pub residual: Vec<f32>,
    /// The mask: a given mask for the rows that read one, else
    /// [`MASK_SENTINEL`], before the call.
    pub mask: Vec<u64>,
}

impl Buffers {
    /// The buffers of `op` on `case` before the call. A given mask has the
    /// reference's decisions at the case's `p` from a caller RNG seeded by
    /// [`Case::given`] in its first words, then garbage: set bits past the
    /// units, [`MASK_SENTINEL`] words past the words needed.
    pub fn new(op: &Op, case: &Case) -> Buffers {
        let len = case.mask_len(op);
        let mut mask = vec![MASK_SENTINEL; len];
        if op.mask() == MaskRole::Read {
            let count = op.units(case).count();
            let needed = mask_words(count);
            if len >= needed {
                let units = Units::elements(count);
                reference::structured_fill_mask(
                    &case.dropout.structured(units),
                    Mode::Train,
                    &mut mask[..needed],
                    &mut rng(case.given),
                )
                .expect("a given mask");
                if !count.is_multiple_of(64) {
                    mask[needed - 1] |= !low_bits(count % 64);
                }
            }
        }
        Buffers {
            data: case.xs.clone(),
            out: vec![SENTINEL; case.out_len],
            residual: case.residual.clone(),
            mask,
        }
    }

    /// The float buffer `target` names (empty for [`Target::Nothing`]).
    pub fn get(&self, target: Target) -> &[f32] {
        match target {
            Target::Data => &self.data,
            Target::Out => &self.out,
            Target::Residual => &self.residual,
            Target::Nothing => &[],
        }
    }

    /// Equal bit for bit, NaN payloads included.
    pub fn identical(&self, other: &Buffers) -> bool {
        super::identical(&self.data, &other.data)
            && super::identical(&self.out, &other.out)
            && super::identical(&self.residual, &other.residual)
            && self.mask == other.mask
    }

    /// Equal bit for bit, except that any two NaNs are equal.
    pub fn same(&self, other: &Buffers) -> bool {
        same(&self.data, &other.data)
            && same(&self.out, &other.out)
            && same(&self.residual, &other.residual)
            && self.mask == other.mask
    }
}

/// A call's source of randomness, before the call: a key, or the seed of
/// a caller RNG.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Src {
    Keyed(Keyed),
    Rng(u64),
}

impl Src {
    /// The caller RNG of the call: the seed's, or for a key its seed's
    /// (which a keyed call must not touch).
    pub fn rng(self) -> Xoshiro256PlusPlus {
        match self {
            Src::Keyed(key) => rng(key.seed()),
            Src::Rng(seed) => rng(seed),
        }
    }

    /// The source of a call, drawing from `rng` if it is a caller RNG.
    pub fn with(self, rng: &mut Xoshiro256PlusPlus) -> Source<'_> {
        match self {
            Src::Keyed(key) => Source::Keyed(key),
            Src::Rng(_) => Source::Rng(rng),
        }
    }
}

/// A call's source of randomness.
#[derive(Debug)]
pub enum Source<'r> {
    Keyed(Keyed),
    Rng(&'r mut Xoshiro256PlusPlus),
}

/// The unit of element `e` of `units`, from the documented layout:
/// element `((o * shared + s) * inner + i) * run + r` is in unit
/// `o * inner + i`.
pub fn unit_of(units: &Units, e: usize) -> usize {
    let [_, shared, inner, run] = units.dims();
    let q = e / run;
    (q / inner / shared) * inner + q % inner
}

/// A handful of shapes of `n` elements: channels first and last, per
/// sample, time steps, all four axes, and for `n == 0` units without
/// elements.
pub fn shapes(n: usize) -> Vec<Units> {
    if n == 0 {
        return vec![
            Units::elements(0),
            Units::new(3, 0, 70, 2).unwrap(),
            Units::new(2, 5, 33, 0).unwrap(),
            Units::new(0, 4, 9, 1).unwrap(),
        ];
    }
    let factor = |m: usize| (2..=m).find(|&f| m.is_multiple_of(f)).unwrap_or(1);
    let a = factor(n);
    let b = factor(n / a);
    let c = n / a / b;
    let d = factor(c);
    vec![
        Units::channels_first(a, b, c).unwrap(),
        Units::channels_last(a, c, b).unwrap(),
        Units::per_sample(a, n / a).unwrap(),
        Units::time_steps(a, n / a).unwrap(),
        Units::new(a, b, d, c / d).unwrap(),
    ]
}
