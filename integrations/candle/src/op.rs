//! Training-mode dropout as a candle custom op, and its backward pass.

use crate::cpu::{self, Pass, error};
use bitdrop::Keyed;
use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};

/// The name of [`DropoutOp`], which starts every message of its errors.
const FORWARD: &str = "bitdrop-dropout";
/// The name of the op that runs [`DropoutOp`]'s backward pass.
const BACKWARD: &str = "bitdrop-dropout-backward";

/// Training-mode inverted dropout as a candle [`CustomOp1`]: each element
/// is dropped (`+0.0`) with probability `p` and the rest are scaled by
/// `1 / (1 - p)`, with the decisions of bitdrop's keyed mask stream.
///
/// Element `i` of the tensor, counted in row-major order whatever the
/// layout's start offset, takes stream position `key.offset() + i`; the
/// rest is [`bitdrop::Dropout`]'s rule (exact `p`, `f32` scale, bf16 and
/// f16 rounded once).
///
/// The op holds only the [`bitdrop::Dropout`] (`p` and the scale) and the
/// [`Keyed`] key: the backward pass ([`CustomOp1::bwd`], or
/// [`backward`](DropoutOp::backward)) regenerates the mask from the key
/// and applies it to the gradient, so no mask memory lives between the
/// forward and the backward pass.
///
/// Apply it with [`Tensor::apply_op1`] (with backpropagation) or
/// [`Tensor::apply_op1_no_bwd`]. On the CPU it takes contiguous `f32`, `f16`
/// and `bf16` tensors and returns a new one of the same shape and dtype,
/// computed on rayon's thread pool for tensors of 512 Ki elements or more
/// and on the calling thread below. Other dtypes and non-contiguous
/// layouts are errors (see [the crate docs](crate#errors)); so are CUDA
/// and Metal tensors, with candle's default error for custom ops ("no cuda
/// implementation for bitdrop-dropout").
///
/// ```
/// use bitdrop::Keyed;
/// use bitdrop_candle::DropoutOp;
/// use candle_core::{Device, Var};
///
/// let x = Var::new(&[[1.0_f32, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]], &Device::Cpu)?;
/// let op = DropoutOp::new(0.5, Keyed::new(42, 0))?;
/// let y = x.apply_op1(op)?;
///
/// // Kept elements are doubled, dropped ones are zero.
/// let (xs, ys) = (x.flatten_all()?.to_vec1::<f32>()?, y.flatten_all()?.to_vec1::<f32>()?);
/// assert!(xs.iter().zip(&ys).all(|(x, y)| *y == 0.0 || *y == 2.0 * x));
///
/// // The gradient flows through the kept elements, scaled alike: the mask is
/// // regenerated from the key, never stored.
/// let grads = y.sum_all()?.backward()?;
/// let g = grads.get(&x).expect("x has a gradient").flatten_all()?.to_vec1::<f32>()?;
/// assert!(g.iter().zip(&ys).all(|(g, y)| *g == if *y == 0.0 { 0.0 } else { 2.0 }));
/// # Ok::<(), candle_core::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DropoutOp {
    dropout: bitdrop::Dropout,
    key: Keyed,
}

impl DropoutOp {
    /// Dropout with drop probability `p` (scaling kept elements by
    /// `1 / (1 - p)`) and the mask of stream `key`.
    ///
    /// # Errors
    ///
    /// Unless `0.0 <= p <= 1.0` (NaN is rejected): the message starts with
    /// `bitdrop-dropout:` and quotes `p`.
    ///
    /// ```
    /// use bitdrop::Keyed;
    /// use bitdrop_candle::DropoutOp;
    ///
    /// assert!(DropoutOp::new(0.1, Keyed::new(0, 0)).is_ok());
    /// let err = DropoutOp::new(1.5, Keyed::new(0, 0)).unwrap_err();
    /// assert!(err.to_string().contains("bitdrop-dropout: drop probability 1.5"));
    /// ```
    pub fn new(p: f32, key: Keyed) -> Result<Self> {
        let dropout = bitdrop::Dropout::new(p).map_err(|e| error(FORWARD, e))?;
        Ok(Self::from_dropout(dropout, key))
    }

    /// The op of a configured [`bitdrop::Dropout`], for example one with
    /// [`scale_by_keep(false)`](bitdrop::Dropout::scale_by_keep).
    ///
    /// ```
    /// use bitdrop::Keyed;
    /// use bitdrop_candle::DropoutOp;
    ///
    /// let unscaled = bitdrop::Dropout::new(0.5)?.scale_by_keep(false);
    /// let op = DropoutOp::from_dropout(unscaled, Keyed::new(1, 0));
    /// assert_eq!(op.dropout().scale(), 1.0);
    /// # Ok::<(), bitdrop::Error>(())
    /// ```
    pub const fn from_dropout(dropout: bitdrop::Dropout, key: Keyed) -> Self {
        DropoutOp { dropout, key }
    }

    /// The dropout configuration: `p` and the scale.
    pub const fn dropout(&self) -> bitdrop::Dropout {
        self.dropout
    }

    /// The key: stream seed, and the position of the first element.
    pub const fn key(&self) -> Keyed {
        self.key
    }

    /// The backward pass: the gradient of the op's input given `grad`, the
    /// gradient of its output, `grad * mask * scale` with the mask
    /// regenerated from the key. `grad` is made contiguous first (a copy
    /// only if it is not). This is what [`CustomOp1::bwd`] returns; the
    /// result does not track gradients itself (no second derivatives).
    ///
    /// # Errors
    ///
    /// As the forward pass (the op's name is `bitdrop-dropout-backward`).
    ///
    /// ```
    /// use bitdrop::Keyed;
    /// use bitdrop_candle::DropoutOp;
    /// use candle_core::{Device, Tensor};
    ///
    /// let op = DropoutOp::new(0.3, Keyed::new(9, 0))?;
    /// let ones = Tensor::ones(1000, candle_core::DType::F32, &Device::Cpu)?;
    /// // The backward pass applies the forward pass's mask.
    /// let y = ones.apply_op1_no_bwd(&op)?;
    /// let g = op.backward(&ones)?;
    /// assert_eq!(y.to_vec1::<f32>()?, g.to_vec1::<f32>()?);
    /// # Ok::<(), candle_core::Error>(())
    /// ```
    pub fn backward(&self, grad: &Tensor) -> Result<Tensor> {
        grad.contiguous()?.apply_op1_no_bwd(&Backward(*self))
    }
}

impl CustomOp1 for DropoutOp {
    fn name(&self) -> &'static str {
        FORWARD
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        cpu::out_of_place(
            FORWARD,
            &self.dropout,
            self.key,
            Pass::Forward,
            storage,
            layout,
        )
    }

    fn bwd(&self, _arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        self.backward(grad_res).map(Some)
    }
}

/// The backward pass of a [`DropoutOp`]: bitdrop's `par_backward_to`.
#[derive(Clone, Copy, Debug)]
struct Backward(DropoutOp);

impl CustomOp1 for Backward {
    fn name(&self) -> &'static str {
        BACKWARD
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        cpu::out_of_place(
            BACKWARD,
            &self.0.dropout,
            self.0.key,
            Pass::Backward,
            storage,
            layout,
        )
    }
}

/// Training-mode dropout of `xs` with drop probability `p` and the mask of
/// stream `key`, with backpropagation: `bitdrop_candle`'s counterpart of
/// [`candle_nn::ops::dropout`](https://docs.rs/candle-nn/0.11.1/candle_nn/ops/fn.dropout.html)`(xs, p)`, seeded, and storing no mask.
///
/// Applies a [`DropoutOp`] to `xs` made contiguous (a copy only if it is
/// not, which keeps element `i` in row-major order at position
/// `key.offset() + i`; autograd keeps that copy, the op's input, until the
/// backward pass, as it keeps any op's input: only a contiguous `xs` keeps
/// the promise of no memory beyond the tensors themselves). At `p == 0` it
/// returns `xs.clone()` (the same
/// storage, the identity). At `p == 1` every element is `+0.0` (candle's
/// `dropout` rejects `p == 1`).
///
/// # Errors
///
/// Unless `0.0 <= p <= 1.0`; for dtypes other than `f32`, `f16` and `bf16`
/// (when `p > 0`); on CUDA and Metal devices; and when
/// `key.offset() + xs.elem_count()` exceeds `2^64`. Each message starts
/// with `bitdrop-dropout:`.
///
/// ```
/// use bitdrop::{Keyed, derive_seed};
/// use candle_core::{DType, Device, Tensor};
///
/// let xs = Tensor::ones((4, 256), DType::BF16, &Device::Cpu)?;
/// let (seed, layer, step) = (2026, 3, 17);
/// let key = Keyed::new(derive_seed(seed, &[layer, step]), 0);
/// let ys = bitdrop_candle::dropout(&xs, 0.2, key)?;
///
/// // The same key gives the same mask; 1.25 is exact in bf16.
/// let again = bitdrop_candle::dropout(&xs, 0.2, key)?;
/// let ys = ys.flatten_all()?.to_vec1::<bitdrop::half::bf16>()?;
/// assert_eq!(ys, again.flatten_all()?.to_vec1::<bitdrop::half::bf16>()?);
/// assert!(ys.iter().all(|y| y.to_f32() == 0.0 || y.to_f32() == 1.25));
/// # Ok::<(), candle_core::Error>(())
/// ```
pub fn dropout(xs: &Tensor, p: f32, key: Keyed) -> Result<Tensor> {
    let op = DropoutOp::new(p, key)?;
    if p == 0.0 {
        return Ok(xs.clone());
    }
    xs.contiguous()?.apply_op1(op)
}
