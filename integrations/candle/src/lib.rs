//! Inverted dropout for [candle](https://github.com/huggingface/candle)
//! tensors on the CPU, from [`bitdrop`]'s keyed mask stream: a custom op
//! with a backward pass that stores no mask ([`DropoutOp`], and the
//! function [`dropout`]), a layer that mirrors `candle_nn::Dropout`
//! ([`Dropout`]), and an in-place op for Monte Carlo dropout at inference
//! ([`DropoutInplace`]), over `f32`, `f16` and `bf16` tensors.
//!
//! # Why
//!
//! [`candle_nn::ops::dropout`](https://docs.rs/candle-nn/0.11.1/candle_nn/ops/fn.dropout.html) draws a uniform `f32` tensor, compares it
//! with `p`, and multiplies by the resulting `f32`-per-element mask, which
//! autograd keeps alive until the backward pass. Its CPU random numbers
//! cannot be seeded. Here instead:
//!
//! - **No mask memory.** The op holds `p`, the scale and a 64-bit key
//!   ([`bitdrop::Keyed`]). The backward pass regenerates the mask from the
//!   key and applies it to the gradient: zero bytes of mask live between
//!   the forward and the backward pass (candle keeps a mask of the input's
//!   dtype: 4 bytes per element for `f32`).
//! - **Seedable and reproducible.** The same key gives the same mask on
//!   every machine, thread count and dtype; keys for layers, steps and
//!   Monte Carlo passes come from one seed by [`bitdrop::derive_seed`].
//! - **Exact `p`.** Each element is dropped with probability
//!   `floor(p * 2^64) / 2^64` (exactly `p` for every `f32` `p >= 2^-41`),
//!   kept elements are scaled by `1 / (1 - p)` rounded once to `f32`, and
//!   dropped elements are `+0.0`, even when the input is NaN or infinite.
//! - **bf16 and f16.** A kept element is the exact product `x * scale`
//!   rounded once to the type, computed in SIMD lanes, with no `f32` copy
//!   of the tensor.
//! - **One pass.** Mask generation and scaling run in one pass over the
//!   data, on rayon's thread pool from 512 Ki elements on.
//!
//! # Example
//!
//! A training step through a layer and its backward pass, then the same
//! model at inference:
//!
//! ```
//! use bitdrop_candle::Dropout;
//! use candle_core::{DType, Device, Tensor, Var};
//!
//! let device = Device::Cpu;
//! let w = Var::new(&[[0.5_f32, -0.25], [1.0, 0.75]], &device)?; // [2, 2]
//! let xs = Tensor::new(&[[1.0_f32, 2.0], [3.0, 4.0], [5.0, 6.0]], &device)?; // [3, 2]
//! let drop = Dropout::with_seed(0.5, 2026);
//!
//! // Training: h = dropout(xs w), loss = sum(h). The layer is a ModuleT.
//! let h = xs.matmul(w.as_tensor())?.apply_t(&drop, true)?;
//! let grads = h.sum_all()?.backward()?;
//! let dw = grads.get(&w).expect("w has a gradient");
//! assert_eq!(dw.dims(), &[2, 2]);
//!
//! // The gradient went through the elements the forward pass kept (scaled
//! // by 2) and nowhere else: dw = xs^T (2 * mask), with the mask regenerated
//! // from the same key.
//! let kept = h.ne(0.0)?.to_dtype(DType::F32)?;
//! let expected = xs.t()?.matmul(&(kept * 2.0)?)?;
//! assert_eq!(dw.to_vec2::<f32>()?, expected.to_vec2::<f32>()?);
//!
//! // Inference: the identity.
//! let eval = drop.forward_t(&xs, false)?;
//! assert_eq!(eval.to_vec2::<f32>()?, xs.to_vec2::<f32>()?);
//!
//! // Or with an explicit key, like candle_nn::ops::dropout(&xs, 0.5):
//! let key = bitdrop::Keyed::new(bitdrop::derive_seed(2026, &[0, 1]), 0);
//! let ys = bitdrop_candle::dropout(&xs, 0.5, key)?;
//! assert_eq!(ys.dims(), xs.dims());
//! # Ok::<(), candle_core::Error>(())
//! ```
//!
//! # Positions
//!
//! With key `Keyed::new(seed, offset)`, element `i` of the tensor, counted
//! in row-major (contiguous) order from 0, is decided by position
//! `offset + i` of stream `seed` (bitdrop's "mask stream v1"), and by
//! nothing else: not the layout's start offset in its storage, not the
//! dtype, not the thread count. So the mask of a `[rows, cols]` tensor
//! equals, row `r` for row `r`, the masks of its rows dropped one at a time
//! with offset `offset + r * cols`, and a sharded tensor whose shard starts
//! at element `a` gets the unsharded mask with `offset + a`. The bits
//! themselves are those of [`bitdrop::Dropout::fill_mask`] with the same
//! key: element `i` is bit `i % 64` of word `i / 64`, `1` for kept.
//!
//! [`Dropout`] (the layer) derives a new key per training call: see its
//! documentation.
//!
//! # Errors
//!
//! Nothing here panics. Each problem is a [`candle_core::Error`] whose
//! message starts with the name of the op that met it
//! (`bitdrop-dropout`, `bitdrop-dropout-backward`,
//! `bitdrop-dropout-inplace`) and says what went wrong:
//!
//! - a drop probability outside `0.0..=1.0`, or NaN, from the constructors
//!   ([`DropoutOp::new`], [`DropoutInplace::new`]), from [`dropout`], and
//!   from each training call of a [`Dropout`] layer (whose constructor,
//!   like candle's, does not fail);
//! - an element type other than `f32`, `f16` and `bf16` (`unsupported dtype
//!   f64`, ...);
//! - a non-contiguous layout given to the ops themselves (a transposed
//!   tensor, say): call `.contiguous()` first. [`dropout`] and the layer
//!   do that for you (copying only when needed);
//! - a key whose `offset + elem_count` runs past `2^64`.
//!
//! On CUDA and Metal tensors the ops return candle's default errors for
//! custom ops without a GPU kernel: "no cuda implementation for
//! bitdrop-dropout" and "no metal implementation for bitdrop-dropout"
//! (`Error::Cuda`, `Error::Metal`); move the tensor to the CPU, or use
//! `candle_nn::ops::dropout` there.

#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]
#![doc(test(attr(deny(warnings))))]

mod cpu;
mod inplace;
mod module;
mod op;

pub use inplace::DropoutInplace;
pub use module::Dropout;
pub use op::{DropoutOp, dropout};

// The README's example runs as a doc test.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
