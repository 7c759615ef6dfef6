//! Dropout in place, for Monte Carlo dropout at inference.

use crate::cpu::{self, error};
use bitdrop::Keyed;
use candle_core::{CpuStorage, InplaceOp1, Layout, Result};

/// The name of [`DropoutInplace`], which starts every message of its
/// errors.
const NAME: &str = "bitdrop-dropout-inplace";

/// Inverted dropout written over a tensor's own elements, as a candle
/// [`InplaceOp1`] (`tensor.inplace_op1(&op)`): Monte Carlo dropout at
/// inference without a new tensor per pass.
///
/// The same rule and the same positions as [`DropoutOp`](crate::DropoutOp):
/// element `i` of the tensor (row-major) takes stream position
/// `key.offset() + i`, so for the same key both ops drop the same elements
/// and give the same values. On the CPU it takes contiguous `f32`, `f16`
/// and `bf16` tensors; it changes only the tensor's own elements (its
/// layout's range of the storage), and every tensor that shares that
/// storage (clones, views) sees the change. There is no backward pass:
/// use it on tensors that no gradient will go through. Errors are as for
/// [`DropoutOp`](crate::DropoutOp), under the name
/// `bitdrop-dropout-inplace`; on an error the tensor is unchanged.
///
/// Monte Carlo dropout: keep dropout on at inference and average over
/// passes, each with its own mask, here with the key of pass `k` derived
/// from one seed by [`bitdrop::derive_seed`]`(seed, &[k])` (add a layer
/// index to the path when several layers drop):
///
/// ```
/// use bitdrop::{Keyed, derive_seed};
/// use bitdrop_candle::DropoutInplace;
/// use candle_core::{Device, Tensor};
///
/// let device = Device::Cpu;
/// let x = Tensor::new(&[[0.5_f32, -1.0, 2.0]], &device)?; // [1, 3]
/// let w1 = Tensor::new(&[[1.0_f32; 64]; 3], &device)?; // [3, 64]
/// let w2 = Tensor::new(&[[0.25_f32]; 64], &device)?; // [64, 1]
///
/// let seed = 7;
/// let mut outputs = Vec::new();
/// for pass in 0..16_u64 {
///     let hidden = x.matmul(&w1)?.relu()?; // a new tensor each pass
///     let op = DropoutInplace::new(0.5, Keyed::new(derive_seed(seed, &[pass]), 0))?;
///     hidden.inplace_op1(&op)?;
///     outputs.push(hidden.matmul(&w2)?.squeeze(0)?);
/// }
/// let outputs = Tensor::stack(&outputs, 0)?; // [16, 1]
/// let mean = outputs.mean_all()?.to_scalar::<f32>()?;
/// let spread = outputs.to_dtype(candle_core::DType::F64)?.var(0)?; // predictive variance
///
/// // Without dropout the output is 0.25 * 64 * 1.5 = 24; the passes scatter
/// // around it, and the same seed gives the same passes.
/// assert!((16.0..32.0).contains(&mean));
/// assert!(spread.to_vec1::<f64>()?[0] > 0.0);
/// # Ok::<(), candle_core::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DropoutInplace {
    dropout: bitdrop::Dropout,
    key: Keyed,
}

impl DropoutInplace {
    /// Dropout with drop probability `p` and the mask of stream `key`.
    ///
    /// # Errors
    ///
    /// Unless `0.0 <= p <= 1.0` (NaN is rejected).
    ///
    /// ```
    /// use bitdrop::Keyed;
    /// use bitdrop_candle::{DropoutInplace, DropoutOp};
    /// use candle_core::{DType, Device, Tensor};
    ///
    /// let xs = Tensor::ones((3, 100), DType::F16, &Device::Cpu)?;
    /// let key = Keyed::new(5, 1000);
    /// let out_of_place = xs.apply_op1_no_bwd(&DropoutOp::new(0.75, key)?)?;
    /// xs.inplace_op1(&DropoutInplace::new(0.75, key)?)?;
    /// // The same elements dropped, the same values.
    /// assert_eq!(xs.to_vec2::<bitdrop::half::f16>()?, out_of_place.to_vec2::<bitdrop::half::f16>()?);
    ///
    /// assert!(DropoutInplace::new(f32::NAN, key).is_err());
    /// # Ok::<(), candle_core::Error>(())
    /// ```
    pub fn new(p: f32, key: Keyed) -> Result<Self> {
        let dropout = bitdrop::Dropout::new(p).map_err(|e| error(NAME, e))?;
        Ok(Self::from_dropout(dropout, key))
    }

    /// The op of a configured [`bitdrop::Dropout`].
    ///
    /// ```
    /// use bitdrop::Keyed;
    /// use bitdrop_candle::DropoutInplace;
    ///
    /// let op = DropoutInplace::from_dropout(bitdrop::Dropout::new(0.2)?, Keyed::new(3, 0));
    /// assert_eq!(op.dropout().p(), 0.2);
    /// assert_eq!(op.key(), Keyed::new(3, 0));
    /// # Ok::<(), bitdrop::Error>(())
    /// ```
    pub const fn from_dropout(dropout: bitdrop::Dropout, key: Keyed) -> Self {
        DropoutInplace { dropout, key }
    }

    /// The dropout configuration: `p` and the scale.
    pub const fn dropout(&self) -> bitdrop::Dropout {
        self.dropout
    }

    /// The key: stream seed, and the position of the first element.
    pub const fn key(&self) -> Keyed {
        self.key
    }
}

impl InplaceOp1 for DropoutInplace {
    fn name(&self) -> &'static str {
        NAME
    }

    fn cpu_fwd(&self, storage: &mut CpuStorage, layout: &Layout) -> Result<()> {
        cpu::in_place(NAME, &self.dropout, self.key, storage, layout)
    }
}
