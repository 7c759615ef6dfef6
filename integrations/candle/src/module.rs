//! The dropout layer: a drop-in for `candle_nn::Dropout` that draws a new
//! key per training call.

use bitdrop::{Keyed, derive_seed};
use candle_core::{ModuleT, Result, Tensor};
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// A dropout layer, mirroring [`candle_nn::Dropout`](https://docs.rs/candle-nn/0.11.1/candle_nn/struct.Dropout.html): in training the
/// [`dropout`](crate::dropout) of its input with a fresh key per call, in
/// evaluation the identity.
///
/// **Keys.** The layer holds a 64-bit `seed`, chosen at construction from
/// the operating system's randomness ([`new`](Dropout::new), through
/// [`RandomState`]) or given ([`with_seed`](Dropout::with_seed)), and a
/// counter of training calls. Training call number `c` (counting from 0:
/// every call of [`forward_t`](Dropout::forward_t) or
/// [`forward`](Dropout::forward) with `train == true`, including calls at
/// `p == 0` and calls that fail) uses the key
///
/// ```text
/// Keyed::new(bitdrop::derive_seed(seed, &[c]), 0)
/// ```
///
/// ([`key`](Dropout::key)`(c)`), so element `i` of its input (row-major)
/// takes position `i` of stream `derive_seed(seed, &[c])`. Two layers made
/// by `with_seed` with the same seed draw the same masks call for call;
/// give each layer its own seed, for example
/// `derive_seed(run_seed, &[layer])`. Clones share the counter (and the
/// seed), so a clone and its original never draw the same key; calls from
/// several threads take the numbers in the order they arrive, so for
/// reproducible masks keep one thread per layer, or call
/// [`dropout`](crate::dropout) with keys of your own. A recomputed forward
/// pass (activation checkpointing) is a new call with a new key: recompute
/// through [`dropout`](crate::dropout) with [`key`](Dropout::key)`(c)`
/// instead. The backward pass of each call regenerates that call's mask
/// from the key it used; nothing else is stored. To resume a run from a
/// checkpoint, store [`calls`](Dropout::calls) with it and restore it with
/// [`set_calls`](Dropout::set_calls).
///
/// ```
/// use bitdrop_candle::Dropout;
/// use candle_core::{DType, Device, Tensor};
///
/// let layer = Dropout::with_seed(0.5, 1234);
/// let xs = Tensor::ones((2, 512), DType::F32, &Device::Cpu)?;
///
/// // Evaluation: the identity (the layer is a ModuleT, for Tensor::apply_t).
/// let eval = xs.apply_t(&layer, false)?;
/// assert_eq!(eval.sum_all()?.to_scalar::<f32>()?, 1024.0);
///
/// // Training: a new mask per call.
/// let a = layer.forward_t(&xs, true)?.flatten_all()?.to_vec1::<f32>()?;
/// let b = layer.forward_t(&xs, true)?.flatten_all()?.to_vec1::<f32>()?;
/// assert_ne!(a, b);
/// assert!(a.iter().all(|&v| v == 0.0 || v == 2.0));
///
/// // Call 1 used key(1): the same seed reproduces it.
/// let again = bitdrop_candle::dropout(&xs, 0.5, layer.key(1))?;
/// assert_eq!(b, again.flatten_all()?.to_vec1::<f32>()?);
/// assert_eq!(layer.calls(), 2);
/// # Ok::<(), candle_core::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Dropout {
    p: f32,
    seed: u64,
    calls: Arc<AtomicU64>,
}

impl Dropout {
    /// A layer with drop probability `p` and a seed from the operating
    /// system's randomness (the keys of `std`'s [`RandomState`]), so that
    /// every layer, and every run, draws its own masks.
    ///
    /// Like [`candle_nn::Dropout::new`](https://docs.rs/candle-nn/0.11.1/candle_nn/struct.Dropout.html#method.new) this does not fail: a `p` outside
    /// `0.0..=1.0` (or NaN) is reported as an error by each training call.
    ///
    /// ```
    /// use bitdrop_candle::Dropout;
    ///
    /// let (a, b) = (Dropout::new(0.1), Dropout::new(0.1));
    /// assert_eq!(a.p(), 0.1);
    /// assert_ne!(a.seed(), b.seed()); // two layers, two streams of masks
    /// ```
    pub fn new(p: f32) -> Dropout {
        Self::with_seed(p, RandomState::new().hash_one(p.to_bits()))
    }

    /// A layer with drop probability `p` and the given `seed`, for
    /// reproducible runs: its `c`-th training call uses
    /// `Keyed::new(derive_seed(seed, &[c]), 0)`.
    ///
    /// ```
    /// use bitdrop::derive_seed;
    /// use bitdrop_candle::Dropout;
    ///
    /// // One seed per run, one derived seed per layer.
    /// let run_seed = 2026;
    /// let layers: Vec<Dropout> =
    ///     (0..3).map(|layer| Dropout::with_seed(0.1, derive_seed(run_seed, &[layer]))).collect();
    /// assert_eq!(layers[1].seed(), derive_seed(2026, &[1]));
    /// assert_eq!(layers[1].calls(), 0);
    /// ```
    pub fn with_seed(p: f32, seed: u64) -> Dropout {
        Dropout {
            p,
            seed,
            calls: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The drop probability.
    pub const fn p(&self) -> f32 {
        self.p
    }

    /// The seed the keys are derived from.
    pub const fn seed(&self) -> u64 {
        self.seed
    }

    /// The number of training calls so far (of this layer and its clones):
    /// the number the next one will take.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// Sets the number the next training call takes (for this layer and
    /// its clones): resuming from a checkpoint, the count saved with it.
    ///
    /// ```
    /// use bitdrop_candle::Dropout;
    /// use candle_core::{DType, Device, Tensor};
    ///
    /// let xs = Tensor::ones(256, DType::F32, &Device::Cpu)?;
    /// let run = Dropout::with_seed(0.3, 99);
    /// run.forward_t(&xs, true)?;
    /// let second = run.forward_t(&xs, true)?;
    ///
    /// let resumed = Dropout::with_seed(0.3, 99);
    /// resumed.set_calls(1);
    /// let again = resumed.forward_t(&xs, true)?;
    /// assert_eq!(second.to_vec1::<f32>()?, again.to_vec1::<f32>()?);
    /// assert_eq!(resumed.calls(), 2);
    /// # Ok::<(), candle_core::Error>(())
    /// ```
    pub fn set_calls(&self, calls: u64) {
        self.calls.store(calls, Ordering::Relaxed);
    }

    /// The key of training call number `call`:
    /// `Keyed::new(derive_seed(seed, &[call]), 0)`.
    ///
    /// ```
    /// use bitdrop::{Keyed, derive_seed};
    /// use bitdrop_candle::Dropout;
    ///
    /// let layer = Dropout::with_seed(0.1, 7);
    /// assert_eq!(layer.key(3), Keyed::new(derive_seed(7, &[3]), 0));
    /// ```
    pub const fn key(&self, call: u64) -> Keyed {
        Keyed::new(derive_seed(self.seed, &[call]), 0)
    }

    /// In training (`train == true`), [`dropout`](crate::dropout)`(xs, p,
    /// key)` with the next call's key; in evaluation, `xs.clone()`.
    ///
    /// # Errors
    ///
    /// In training: a `p` outside `0.0..=1.0` (the message starts with
    /// `bitdrop-dropout:` and quotes `p`), and the errors of
    /// [`dropout`](crate::dropout).
    ///
    /// ```
    /// use bitdrop_candle::Dropout;
    /// use candle_core::{Device, Tensor};
    ///
    /// let xs = Tensor::new(&[1.0_f32, 2.0], &Device::Cpu)?;
    /// let layer = Dropout::new(1.5);
    /// assert!(layer.forward_t(&xs, false).is_ok());
    /// assert!(layer.forward_t(&xs, true).is_err());
    /// # Ok::<(), candle_core::Error>(())
    /// ```
    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        if !train {
            return Ok(xs.clone());
        }
        let call = self.calls.fetch_add(1, Ordering::Relaxed);
        crate::dropout(xs, self.p, self.key(call))
    }

    /// [`forward_t`](Dropout::forward_t), under the name of
    /// [`candle_nn::Dropout::forward`](https://docs.rs/candle-nn/0.11.1/candle_nn/struct.Dropout.html#method.forward).
    ///
    /// # Errors
    ///
    /// As [`forward_t`](Dropout::forward_t).
    ///
    /// ```
    /// use bitdrop_candle::Dropout;
    /// use candle_core::{DType, Device, Tensor};
    ///
    /// let xs = Tensor::ones(64, DType::BF16, &Device::Cpu)?;
    /// let (ours, theirs) = (Dropout::with_seed(0.5, 1), candle_nn::Dropout::new(0.5));
    /// assert_eq!(ours.forward(&xs, true)?.dims(), theirs.forward(&xs, true)?.dims());
    /// # Ok::<(), candle_core::Error>(())
    /// ```
    pub fn forward(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        self.forward_t(xs, train)
    }
}

impl ModuleT for Dropout {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        Dropout::forward_t(self, xs, train)
    }
}
