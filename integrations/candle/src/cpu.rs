//! The CPU kernels shared by the ops: the contiguous elements of a storage,
//! run through bitdrop, and the errors the ops report.

use bitdrop::half::{bf16, f16};
use bitdrop::{Element, Keyed, Mode};
use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, Error, Layout, Result, Shape};
use std::fmt::Display;

/// An error of op `op`: its message names the op (every name starts with
/// `bitdrop-`) and the problem.
pub(crate) fn error(op: &str, problem: impl Display) -> Error {
    Error::msg(format!("{op}: {problem}"))
}

/// Elements `start..end` of the storage: the tensor's elements in
/// row-major order, if its layout is contiguous.
fn range(op: &str, layout: &Layout) -> Result<(usize, usize)> {
    layout.contiguous_offsets().ok_or_else(|| {
        error(
            op,
            format_args!(
                "the input is not contiguous (shape {:?}, stride {:?}); call `.contiguous()` on it first",
                layout.dims(),
                layout.stride()
            ),
        )
    })
}

fn outside(op: &str, (start, end): (usize, usize), len: usize) -> Error {
    error(
        op,
        format_args!("layout elements {start}..{end} lie outside a storage of {len} elements"),
    )
}

fn unsupported(op: &str, storage: &CpuStorage) -> Error {
    error(
        op,
        format_args!(
            "unsupported dtype {} (bitdrop drops f32, f16 and bf16 elements)",
            storage.dtype().as_str()
        ),
    )
}

/// Which of bitdrop's keyed calls a kernel runs. Both apply the mask drawn
/// from the key: the backward pass regenerates the forward pass's.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Pass {
    Forward,
    Backward,
}

/// `dropout` over the elements of `xs` into a new vector.
fn run_to<E: Element + Default>(
    op: &str,
    dropout: &bitdrop::Dropout,
    key: Keyed,
    pass: Pass,
    xs: &[E],
) -> Result<Vec<E>> {
    let mut out = vec![E::default(); xs.len()];
    let done = match pass {
        Pass::Forward => dropout.par_forward_to(Mode::Train, xs, &mut out, key),
        Pass::Backward => dropout.par_backward_to(Mode::Train, xs, &mut out, key),
    };
    done.map_err(|e| error(op, e))?;
    Ok(out)
}

fn elements<'a, E>(op: &str, xs: &'a [E], range: (usize, usize)) -> Result<&'a [E]> {
    xs.get(range.0..range.1)
        .ok_or_else(|| outside(op, range, xs.len()))
}

/// The out-of-place kernel of a [`CustomOp1`](candle_core::CustomOp1): a
/// new storage holding `dropout` of the tensor's elements, element `i`
/// (row-major) at stream position `key.offset() + i`.
pub(crate) fn out_of_place(
    op: &str,
    dropout: &bitdrop::Dropout,
    key: Keyed,
    pass: Pass,
    storage: &CpuStorage,
    layout: &Layout,
) -> Result<(CpuStorage, Shape)> {
    let range = range(op, layout)?;
    let out = match storage {
        CpuStorage::F32(xs) => {
            CpuStorage::F32(run_to(op, dropout, key, pass, elements(op, xs, range)?)?)
        }
        CpuStorage::F16(xs) => CpuStorage::F16(run_to::<f16>(
            op,
            dropout,
            key,
            pass,
            elements(op, xs, range)?,
        )?),
        CpuStorage::BF16(xs) => CpuStorage::BF16(run_to::<bf16>(
            op,
            dropout,
            key,
            pass,
            elements(op, xs, range)?,
        )?),
        other => return Err(unsupported(op, other)),
    };
    Ok((out, layout.shape().clone()))
}

fn run_in_place<E: Element>(
    op: &str,
    dropout: &bitdrop::Dropout,
    key: Keyed,
    xs: &mut [E],
    range: (usize, usize),
) -> Result<()> {
    let len = xs.len();
    let xs = xs
        .get_mut(range.0..range.1)
        .ok_or_else(|| outside(op, range, len))?;
    dropout
        .par_forward(Mode::Train, xs, key)
        .map_err(|e| error(op, e))
}

/// The kernel of an [`InplaceOp1`](candle_core::InplaceOp1): `dropout` of
/// the tensor's elements, written over them.
pub(crate) fn in_place(
    op: &str,
    dropout: &bitdrop::Dropout,
    key: Keyed,
    storage: &mut CpuStorage,
    layout: &Layout,
) -> Result<()> {
    let range = range(op, layout)?;
    match storage {
        CpuStorage::F32(xs) => run_in_place(op, dropout, key, xs, range),
        CpuStorage::F16(xs) => run_in_place(op, dropout, key, xs, range),
        CpuStorage::BF16(xs) => run_in_place(op, dropout, key, xs, range),
        other => Err(unsupported(op, other)),
    }
}
