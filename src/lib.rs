//! Inverted dropout over `f32`, `bf16` and `f16` slices: exact,
//! allocation-free, `no_std`, with portable SIMD lanes and a mask of one bit
//! per decision, in every shape models use it: element-wise ([`Dropout`]),
//! one decision per channel, sample, row or time-step-locked unit
//! ([`Structured`], [`Units`]), fused with the residual add ([`Residual`]),
//! alpha dropout for SELU networks ([`AlphaDropout`]), Gaussian dropout and
//! noise ([`GaussianDropout`], [`GaussianNoise`]), DropBlock
//! ([`DropBlock`]),
//! with keys derived per layer and step ([`derive_seed`]), on one thread or
//! all cores (`par_` calls, feature `rayon`).
//!
//! # Quick start
//!
//! ```
//! use bitdrop::{Dropout, Keyed, Mode};
//!
//! let dropout = Dropout::new(0.1)?;
//! let mut activations = vec![1.0_f32; 4096];
//!
//! // Training: each element is dropped (+0.0) with probability 0.1 and the
//! // rest are scaled by 1 / 0.9. The decisions come from the keyed stream
//! // (seed 7, first position 0), or from any `rand_core::Rng`.
//! dropout.forward(Mode::Train, &mut activations, Keyed::new(7, 0))?;
//! let kept = activations.iter().filter(|&&x| x != 0.0).count();
//! assert!((3500..3900).contains(&kept));
//!
//! // Backward: regenerate the same mask from the same key; nothing stored.
//! let mut grad = vec![1.0_f32; 4096];
//! dropout.backward(Mode::Train, &mut grad, Keyed::new(7, 0))?;
//! assert_eq!(grad, activations);
//!
//! // Inference: the identity, bit for bit.
//! let mut inference = vec![0.5_f32; 4096];
//! dropout.forward(Mode::Eval, &mut inference, Keyed::new(7, 0))?;
//! assert!(inference.iter().all(|&x| x == 0.5));
//! # Ok::<(), bitdrop::Error>(())
//! ```
//!
//! # Semantics
//!
//! [`Dropout::new`] takes the drop probability `p` and rejects anything
//! outside `0.0..=1.0`, NaN included, with [`Error::InvalidProbability`].
//!
//! | case | output element | randomness drawn |
//! |---|---|---|
//! | [`Mode::Eval`], any `p` | `x`, bit for bit (NaN payloads, `-0.0`, subnormals) | none |
//! | [`Mode::Train`], `p == 0` | `x`, bit for bit | none |
//! | [`Mode::Train`], `p == 1` | `+0.0` | none |
//! | [`Mode::Train`], kept | `x * s`, one `f32` multiply, round to nearest | yes |
//! | [`Mode::Train`], dropped | `+0.0`, whatever `x` is (NaN and ±inf too) | yes |
//!
//! `s = 1 / (1 - p)` is computed in `f64` and rounded once to `f32`
//! ([`Dropout::scale`]). Dropped elements are selected, not multiplied by
//! zero, so they are `+0.0` even when `x` is NaN, infinite or negative.
//!
//! **NaN.** A kept NaN stays a NaN. Its payload is what the target's `f32`
//! multiply makes of it, which IEEE 754 leaves open (x86-64 and aarch64 keep
//! the input's payload, quieted; wasm32 may not). So every statement of
//! bit-identical results in these docs (SIMD against the reference, one
//! target against another) holds for every output that is not NaN, and a
//! NaN output is a NaN everywhere. Evaluation mode, and `p == 0`, multiply
//! nothing and keep every bit, NaN payloads included.
//!
//! **Tiny `p`.** For `0 < p < 2^-64`, `D = floor(p * 2^64)` is 0: every
//! element is kept, scaled by `s = 1.0` (so `x` itself, a signaling NaN
//! aside), and nothing is drawn: a caller RNG is not advanced.
//!
//! **Masks.** An operation that writes a mask writes all ones (every unit
//! kept) in evaluation mode and in training at `p == 0`, and all zeros in
//! training at `p == 1`, in both cases drawing nothing. The bits past the
//! last unit are always `0`.
//!
//! **Errors.** Every argument is checked before the first write and before
//! anything is drawn, so a call that fails has changed nothing. When several
//! checks fail, the first in this order is reported:
//! [`Error::InvalidProbability`] (at [`Dropout::new`]), then
//! [`Error::LengthMismatch`] and [`Error::BiasMismatch`] (the operands
//! among themselves), [`Error::ShapeMismatch`] (the data against its
//! [`Units`]), [`Error::MaskTooShort`], and [`Error::PositionOverflow`].
//!
//! # Precision
//!
//! Each element is dropped independently with probability
//! `D / 2^64`, `D = floor(p * 2^64)` ([`Dropout::drop_numerator`]): exactly
//! `p` for every `f32` `p >= 2^-41`, where most frameworks compare a 24-bit
//! float. Element `j` is kept iff a uniform 64-bit number `u_j >= D`. The
//! numbers are never built: 64 of them are compared at once, bit-sliced, most
//! significant bit first, one random word per bit position. Bit `63 - t` of
//! `u_j` is bit `j` of the `t`-th word (`t = 0, 1, ...`). After each word, an
//! element whose bit differs from `D`'s is decided (kept if its bit is 1);
//! the comparison stops when every element is decided or after the lowest
//! set bit of `D`, and elements still undecided then are kept (`u >= D`).
//! A caller RNG is consumed so: about 7 words decide 64 elements at any
//! `p`, one at `p = 0.5`. The keyed stream decides 512 at once and draws
//! a fixed number of words per batch that depends on `p` only ([mask
//! stream v2](#mask-stream-v2)): 5 per 64 elements at most, 1 at
//! `p = 0.5` (see `examples/words_per_group.rs`).
//!
//! # Structured dropout
//!
//! [`Dropout::structured`] makes a [`Structured`]: the same operations with
//! one decision per *unit* of a [`Units`] shape, broadcast to the unit's
//! elements (channel dropout channels first or last, DropPath per sample,
//! rows of an embedding, variational dropout locked across time steps,
//! attention masks shared across heads, any Keras `noise_shape`). A shape is
//! four numbers `[outer, shared, inner, run]`: element
//! `((o * shared + s) * inner + i) * run + r` belongs to unit `o * inner + i`.
//! Masks hold one bit per unit; with a [`Keyed`] source unit `u` takes
//! stream position `offset + u`; a caller RNG decides the units in order, 64
//! at a time, as it decides elements. Scaling and the dropped value are as
//! above. The element-wise operations are the case of one unit per element.
//!
//! # Fused residual
//!
//! [`Dropout::residual_add`] and [`Structured::residual_add`] compute
//! `r + dropout(x)`, or `r + dropout(x + b)` with a bias `b` broadcast over
//! rows (Megatron's bias-dropout-add), in one pass, in place on either
//! operand or into a third buffer ([`Residual`]). Per element: `x + b` is
//! one `f32` addition; the dropout of it is exactly the rule above
//! (dropped `+0.0`, kept one `f32` multiply by `s`, `x + b` itself in
//! evaluation mode); then one `f32` addition of `r`. Nothing is fused into a
//! multiply-add, so every target rounds alike.
//!
//! # Alpha dropout
//!
//! [`AlphaDropout`] (PyTorch `AlphaDropout` and `FeatureAlphaDropout`,
//! Keras `AlphaDropout`) keeps the mean 0 and variance 1 of a SELU
//! network's activations: it makes [`Dropout`]'s decisions (the same masks
//! from the same sources), and a kept element becomes `x * a + b`, a dropped
//! one the constant `alpha' * a + b`, each one `f32` multiply then one `f32`
//! add, never fused, with `a` and `b` computed once in `f64` and rounded to
//! `f32` (the formulas are on the type). Element-wise, or per unit of a
//! [`Units`] shape for whole channels. At `p == 1` every output is `+0.0`.
//!
//! # Gaussian dropout and noise
//!
//! [`GaussianDropout`] (Keras `GaussianDropout`) multiplies each element by
//! its own `g ~ N(1, p / (1 - p))`; [`GaussianNoise`] (Keras
//! `GaussianNoise`) adds `n ~ N(0, std_dev^2)`. Their standard normal
//! variates come from a caller RNG or a [`Keyed`] position, by "normal
//! stream v1", and depend on nothing else.
//!
//! ## Normal stream v1
//!
//! Frozen by golden test vectors; `mix`, `GAMMA` and [`derive_seed`] as
//! documented for mask stream v2 and key derivation v1, all arithmetic on
//! `u64` wrapping, `log`, `sin` and `cos` the `f64` functions of the `libm`
//! crate 0.2 (software implementations: the same bits on every target),
//! `sqrt` the correctly rounded square root of IEEE 754:
//!
//! ```text
//! pair(w0, w1):  u1 = ((w0 >> 11) + 1) * 2^-53        in (0, 1]
//!                u2 = (w1 >> 11) * 2^-53              in [0, 1)
//!                r  = sqrt(-2 * log(u1))
//!                t  = TAU * u2                        TAU = 2 pi as an f64
//!                return (r * cos(t), r * sin(t))
//! ```
//!
//! - **Keyed** `(seed, offset)`: let `S = derive_seed(seed, [0x6E6F726D616C7631])`
//!   (the path is "normalv1" in ASCII, so the normal stream of a seed is
//!   unrelated to its mask stream) and `word(i) = mix(S + (i + 1) * GAMMA)`,
//!   output `i` of SplitMix64 seeded with `S`. Position `q` takes pair
//!   `k = q / 2`: the first variate of `pair(word(2k), word(2k + 1))` if `q`
//!   is even, the second if odd. Element `i` of a call is position
//!   `offset + i`, so chunks, threads and the backward pass see the same
//!   variates.
//! - **Caller RNG**: elements `2j` and `2j + 1` of the call take the first
//!   and second variate of `pair(w0, w1)`, `w0` and `w1` the next two
//!   `next_u64` in order; an odd last element draws a whole pair.
//!
//! Box-Muller with 53-bit uniforms reaches `|z|` up to about 8.6; the tests
//! check the moments, a Kolmogorov-Smirnov statistic and the tails beyond
//! 4 and 5 standard deviations at fixed seeds. Calls that draw nothing
//! (evaluation mode, `p == 0`, `p == 1`, `std_dev == 0`) leave a caller RNG
//! as it was.
//!
//! # DropBlock
//!
//! [`DropBlock`] drops `bs x bs` squares of each channel of a
//! channels-first `[n, c, h, w]` tensor (Ghiasi et al. 2018): a seed is
//! drawn at each top-left corner where a block fits, with the paper's rate
//! `gamma` as an exact 64-bit threshold (seed `k` at keyed stream position
//! `offset + k`), each drawn seed clears its square in the one-bit element
//! mask (caller-provided, the only scratch), and the survivors are scaled
//! by `numel / kept`, dropped elements `+0.0` by a select. The mask, kept
//! for the backward pass, is applied by [`DropBlock::apply_mask`]. Its
//! exact definition and its differences from timm's and torchvision's
//! are on the type.
//!
//! # Element types
//!
//! Every operation takes `f32` slices, and with the `half` feature
//! [`half::bf16`](https://docs.rs/half) and `half::f16` slices (the
//! [`Element`] types), through the same code. For the 16-bit types:
//!
//! - The same key (or the same caller RNG state) gives the same mask bits
//!   as for `f32`: the decisions never depend on the element type.
//! - A dropped element is `+0.0` of the type (bits `0x0000`), by a select.
//! - A kept element is the exact product `x * s` (`s` the `f32` scale)
//!   rounded once to the type, to nearest, ties to even: the *correctly
//!   rounded* product. This is not always the `f32` product `x * s` narrowed
//!   to the type (what PyTorch's CPU kernels compute): the exact product has
//!   up to 35 bits, and rounding it to `f32` first is a second rounding that
//!   can move a value onto a tie of the type and then to the wrong side
//!   (at `p = 0.14914425`, `s = 1.1752874`, for 64 finite `f16` values and
//!   508 finite `bf16` values; at `p` = 0.1, 0.2, 0.3 and 0.5, for none). A kept
//!   infinity stays infinite and a kept NaN is the same NaN with its quiet
//!   bit set, exactly, on every target. An `f16` product past the largest
//!   finite value, 65504, is rounded like any other: from 65520 on it is
//!   infinite.
//! - The additions of [`Residual`] (`x + b`, then `r + ...`) are each the
//!   exact sum rounded once to the type (computing the sum in `f32` and
//!   rounding it to the type gives that same result, as 24 bits are at
//!   least twice the type's precision plus two).
//! - Evaluation mode and `p == 0` keep every bit.
//!
//! The tests check the products on every bit pattern of both types at
//! dozens of scales, and the sums on millions of pairs, against an
//! independent computation on the integer significands.
//!
//! # Keys for layers and steps
//!
//! [`derive_seed`] (and [`Keyed::derived`]) derive independent stream seeds
//! from one seed and any integers, such as `(layer, step)` in training or
//! `(layer, pass)` in Monte Carlo dropout, so that no two dropout calls
//! share a mask by accident. "Key derivation v1" is documented there and
//! frozen by golden vectors.
//!
//! # All cores, and many machines
//!
//! With the `rayon` feature, every keyed operation has a `par_` form (for
//! example [`Dropout::par_forward`]) that splits the call into pieces (at
//! stream blocks, between units, at outer indices, along a shared axis,
//! inside a long unit; see [`par`]) and runs them on rayon's current thread
//! pool, with the serial call's
//! result, bit for bit, for any number of threads. Calls under
//! [`par::SERIAL_BELOW`] elements stay on the calling thread. The `par_`
//! forms take keys only: a caller RNG's words come in one order, and no
//! split of them between threads would give the serial result.
//!
//! The same property carries a mask across machines. In data-parallel or
//! sequence-parallel training, a rank holding elements `a..b` of a logical
//! tensor calls with `Keyed::new(seed, offset + a)`; in tensor-parallel
//! training, a rank holding columns `c..d` of a row-major `[rows, cols]`
//! tensor calls once per row `r`, on its slice of that row, with
//! `Keyed::new(seed, offset + r * cols + c)`. Every rank then draws the bits
//! the unsharded call would, with nothing communicated but the seed (which
//! [`derive_seed`] can make from the layer and step every rank knows).
//! For [`Structured`] dropout the position is the unit's: a rank holding
//! whole units `u..v` starts at `offset + u`. `examples/sharded.rs` shows
//! both splits on four threads.
//!
//! # The mask
//!
//! One bit per element (per unit, for [`Structured`]) in `u64` words:
//! element `i` is bit `i % 64` (bit 0 the least significant) of word
//! `i / 64`, and `1` means kept. `n` elements take [`mask_words`]`(n) = ceil(n / 64)` words; the bits past `n`
//! are written as `0`, so the popcount is the kept count. Operations take
//! caller-provided `&mut [u64]`; [`Mask`] adds the helpers (kept count, one
//! bit, iteration, conversion to and from the `u32` layout of ONNX Runtime's
//! BitmaskDropout), and owns its words with the `alloc` feature.
//!
//! # Randomness
//!
//! Every operation that draws takes a [`Randomness`]:
//!
//! - `&mut rng`, any [`rand_core::Rng`] (for example
//!   [`rand_xoshiro::Xoshiro256PlusPlus`]), consumed in order: for each group
//!   of 64 consecutive elements of the call (the last group may be shorter,
//!   with only its elements taking part), one `next_u64` per comparison step
//!   above. A call with no element that writes no mask draws nothing, even
//!   with units (a zero `shared` or `run` axis gives units no elements).
//! - [`Keyed`]`::new(seed, offset)`: the keyed stream below. Whether the
//!   element at index `i` of a call is kept depends only on `seed`, `p` and
//!   the position `offset + i`. Chunks of a tensor processed in any order, on
//!   any thread, give the same result as one call; a backward pass
//!   regenerates the mask instead of storing it; and the result is the same
//!   on every target and SIMD width.
//!
//! ## Mask stream v2
//!
//! This is the exact construction, frozen by golden test vectors: changing
//! it is a breaking change. (bitdrop 0.1 had "mask stream v1"; see
//! `CHANGELOG.md`.) `mix` is SplitMix64's output function, and all
//! arithmetic on `u64` wraps:
//!
//! ```text
//! mix(z): z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
//!         z = (z ^ (z >> 27)) * 0x94D049BB133111EB
//!         return z ^ (z >> 31)
//! GAMMA = 0x9E3779B97F4A7C15
//! ```
//!
//! 1. **Keys.** `key[i] = mix(seed + (i + 1) * GAMMA)` for `i = 0..4`: the
//!    first four outputs of `SplitMix64` seeded with `seed`; and the tail
//!    key `T = derive_seed(seed, [0x6D61736B7461696C])` ([`derive_seed`];
//!    the path is "masktail" in ASCII).
//! 2. **Blocks and lanes.** Positions are cut into blocks of 4096 (64 mask
//!    words). Position `q` lies in block `B = q / 4096`, word
//!    `w = (q / 64) % 64` of it, bit `q % 64` of that word. Word `w` belongs to
//!    batch `w / 8` and lane `w % 8`; within its batch, position `q` has
//!    index `q % 512`.
//! 3. **Generators.** Each block has 8 xoshiro256++ generators, one per
//!    lane. Lane `j` of block `B` is stream `n = 8 B + j`, and its state is
//!    `s[i] = mix(key[i] + (n + 1) * GAMMA)` for `i = 0..4`: output `n + 1`
//!    of `SplitMix64` seeded with `key[i]`. (In `rand_xoshiro` terms:
//!    `Xoshiro256PlusPlus::from_seed` of those four words, little-endian.)
//!    The batches of a block are decided in order 0 to 7, the generators
//!    carrying on from one batch to the next.
//! 4. **Draws.** Let `b` be the number of bits of `D` the comparison
//!    reads, `64 - trailing_zeros(D)` (0 when `D == 0`). Each batch draws,
//!    from every generator in turn, `f = min(4, b)` words `W[0..f]` (the
//!    first stage), then one more, `P`, if `b > 4` (the pool). Generator
//!    `j`'s words are `W[t][j]` and `P[j]`. So a batch draws `8 (f + [b > 4])`
//!    words: a number that depends on `p` only, 5 per 64 positions at
//!    `p = 0.1` or `0.9`, 1 at `p = 0.5`.
//! 5. **Numbers.** Position `q` of lane `j`, bit `k = q % 64`, has the
//!    64-bit number `u` whose bits, from the most significant, are:
//!    - bits `63 .. 64 - f`: bit `k` of `W[0][j]`, `W[1][j]`, ... (bit
//!      `63 - t` of `u` is bit `k` of `W[t][j]`);
//!    - if `b > 4` and these 4 bits equal `D`'s (the position is *tied*),
//!      and the position is among the first 64 tied positions of its batch
//!      in index order, with rank `r` (0 for the first): the next 8 bits,
//!      bit `59 - c` of `u` being bit `r` of `P[c]` for `c = 0..8`;
//!    - if the position is tied and its bits so far equal `D`'s and `D`
//!      has bits below them: the rest, from the tail word
//!      `tail(q) = mix(T + (q + 1) * GAMMA)` read from its most
//!      significant bit on (`u |= tail(q) >> used`, `used` = 12 with pool
//!      bits, 4 without);
//!    - any other bit is 0 (it cannot change the comparison).
//!
//!    Position `q` is kept iff `u >= D`.
//!
//! Each position's `u` is uniform and independent of the others': the
//! first-stage bits are its own; which pool bit a tied position reads
//! depends on the other positions' first-stage bits, but the pool is drawn
//! independently of those, and distinct tied positions read distinct bits;
//! the tail word is a function of the position alone. So `P(drop) = D / 2^64`
//! exactly, as the crate's tests check with scripted words as well as
//! statistically. About one position in 4096 reads a tail word
//! (`2^-12` per position at `b > 12`). The decisions of a position never
//! depend on where a call starts: a call that starts inside a block steps
//! the generators over the block's earlier batches (a fixed number of
//! steps each).
//!
//! The implementation steps the generators in SIMD lanes (4 or 8 at once),
//! decides the first stage bit-sliced, and moves the pool's decisions
//! back to the tied positions with one bit deposit per lane (x86 `PDEP`
//! where the CPU has BMI2 and runs it in hardware, a loop over set bits
//! elsewhere). Nothing in it
//! branches on random data but the tail, taken by about one batch in 8.
//! At `p = 0.5` (and wherever `b <= 4`) it decides exactly as mask stream v1
//! did.
//!
//! Different seeds give independent masks, consecutive seeds included (the
//! tests check it): every state word goes through `mix`, and the states of
//! two (seed, stream) pairs coincide only if `key[i] - key'[i]` is the same
//! multiple of `GAMMA` for all four `i`. Within a seed that never happens;
//! across seeds, whose keys are unrelated SplitMix64 outputs, its chance is
//! about 2^-190 per pair of streams.
//!
//! # SIMD
//!
//! The fast path uses `wide`'s `f32x8`, `u32x8` and `u64x4`, whose
//! instructions are chosen at compile time: an x86-64 build without flags
//! gets SSE2. With the `std` feature, x86-64 builds check the CPU once and
//! run the kernel compiled for the best of two levels it has: AVX-512F
//! (with FMA and F16C, which rustc's `avx512f` implies), or
//! AVX2 with BMI2 and POPCNT. There `f32` elements are computed in 16
//! lanes of an AVX-512 register (the keep bits a mask register, folded
//! into the multiply) or 8 of an AVX2 one, the keyed stream's eight
//! generators in one AVX-512 register or two AVX2 ones (`core::arch`
//! intrinsics: `wide`'s types of a default build are SSE2 registers even
//! there, where mask generation ran 1.8 times slower and applying a mask
//! took four operations per four elements), bit counts take one
//! instruction, and the stream's second stage uses `PDEP` (but on AMD CPUs
//! before Zen 3, whose `PDEP` is microcoded, about 300 cycles on Zen 2).
//! `bf16` and `f16` are computed in `wide`'s lanes, in VEX or EVEX
//! encoding. Build with `RUSTFLAGS="-C target-cpu=native"` (or `-C
//! target-cpu=x86-64-v3`, `x86-64-v4`; `-C target-feature=+simd128` on
//! wasm32) for the full width without the check, and on other targets. The results are
//! bit-identical on every target and width (NaN payloads aside, see
//! [Semantics](#semantics)), and equal to the scalar
//! [`reference`](mod@reference) implementation.
//!
//! # Features
//!
//! - `alloc`: the owned [`Mask`]`<Vec<u64>>` constructors.
//! - `std` (default): implies `alloc`; on x86-64, run-time AVX-512 and
//!   AVX2 dispatch.
//! - `half`: the `bf16` and `f16` element types of the `half` crate
//!   (re-exported as `bitdrop::half`); `no_std` like the rest.
//! - `rayon`: the `par_` calls; implies `std`.
//!
//! Without features the crate needs neither `std` nor an allocator.

#![doc = include_str!("../GUIDE.md")]
#![no_std]
#![deny(unsafe_code, clippy::undocumented_unsafe_blocks)]
#![deny(missing_docs, missing_debug_implementations)]
#![doc(test(attr(deny(warnings))))]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

// Shared definitions, below both paths.
mod decide;
mod dropout;
mod element;
mod error;
mod key;
mod mask;
mod math;
#[cfg(feature = "half")]
mod narrow;
mod run;
mod stream;
mod units;
// The randomness sources, and the fast path.
mod dispatch;
mod kernel;
mod keyed;
mod lanes;
mod source;
// The operations: one file per variant.
mod alpha;
mod drop_block;
mod gaussian;
mod inverted;
mod ops;
#[cfg(feature = "rayon")]
pub mod par;
mod residual;
mod structured;
// The oracle: imports the shared definitions, imported by nothing.
pub mod reference;

pub use alpha::{ALPHA_PRIME, AlphaDropout};
pub use drop_block::DropBlock;
pub use dropout::{Dropout, Mode};
pub use element::Element;
pub use error::Error;
pub use gaussian::{GaussianDropout, GaussianNoise};
#[cfg(feature = "half")]
pub use half;
pub use key::derive_seed;
pub use mask::{Mask, mask_words};
pub use rand_core;
pub use residual::Residual;
pub use source::{Keyed, Randomness};
pub use structured::Structured;
pub use units::Units;

// The README's examples run as doc tests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
