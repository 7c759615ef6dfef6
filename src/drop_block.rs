//! DropBlock: seeds decided by the crate's exact machinery at the paper's
//! `gamma`, each clearing a square of the one-bit element mask, then the
//! inverted-dropout pass over that mask with the scale `numel / kept`.

use crate::decide::Threshold;
use crate::dispatch::{self, Cpu, Kernel, Level};
use crate::inverted::{Data, Inverted};
use crate::kernel::{CHUNK, CHUNK_WORDS, Fast};
use crate::mask::{check_words, low_bits, mask_words};
use crate::run::{Decisions, Operands, Plan, fill_kept, run};
use crate::source::sealed::Words;
use crate::source::{Keyed, Randomness};
use crate::{Dropout, Element, Error, Mode, Units};

/// DropBlock (Ghiasi et al. 2018) over a channels-first `[n, c, h, w]`
/// tensor, row-major: element `(ni, ci, y, x)` is at index
/// `((ni * c + ci) * h + y) * w + x`.
///
/// # Definition
///
/// - **Block size.** `bs = min(block_size, h, w)` ([`block_size`](DropBlock::block_size)),
///   so a block never exceeds the map (timm clips the same way). A shape
///   with a zero dimension is valid; it has no elements and no seeds.
/// - **Seed rate.** `gamma = p h w / (bs^2 (h - bs + 1) (w - bs + 1))`,
///   computed in `f64` exactly as
///   `(p as f64 * h as f64 * w as f64) / (bs as f64 * bs as f64 * (h - bs + 1) as f64 * (w - bs + 1) as f64)`
///   (the integer differences exact, the products left to right), then
///   clamped to at most `1.0`; it is `0.0` when `p == 0` or `h` or `w` is
///   0 ([`gamma`](DropBlock::gamma)). In exact arithmetic `gamma <= p`,
///   with equality when `bs == 1` or `bs == h == w`.
/// - **Seeds.** Each channel `(ni, ci)` has a seed at every top-left
///   corner `(h0, w0)`, `0 <= h0 <= h - bs`, `0 <= w0 <= w - bs`: seed
///   `k = ((ni * c + ci) * (h - bs + 1) + h0) * (w - bs + 1) + w0`, of
///   [`seeds`](DropBlock::seeds) `= n c (h - bs + 1) (w - bs + 1)` (0 if
///   `h` or `w` is 0). Each seed is drawn independently with probability
///   exactly `floor(gamma * 2^64) / 2^64` (every seed when `gamma == 1`),
///   by the decisions element-wise [`Dropout`] makes for a drop
///   probability with that numerator: with a [`Keyed`] source seed `k`
///   takes stream position `offset + k`; a caller RNG decides the seeds in
///   index order, 64 at a time, exactly as [`Dropout::fill_mask`] over
///   `seeds()` elements does (a seed "dropped" there is a drawn seed).
/// - **Blocks.** A drawn seed drops the square `[h0, h0 + bs) x [w0, w0 + bs)`
///   of its channel: an element is dropped iff a drawn seed of its channel
///   covers it.
/// - **The mask** (one bit per element, the crate's layout: element `i` is
///   bit `i % 64` of word `i / 64`, `1` kept, bits past `len` `0`) is
///   written to the first [`mask_words`](DropBlock::mask_words) words of the
///   caller's `mask`, which is the operation's only scratch and the input of
///   [`apply_mask`](DropBlock::apply_mask) in the backward pass.
/// - **Rescaling.** With `kept` the mask's popcount, a kept element becomes
///   `x * s`, `s = (len as f64 / kept as f64) as f32`, one multiply rounded
///   to the element type (see [the crate docs](crate#element-types)); a
///   dropped element is `+0.0`, by a select, so NaN and inf never leak. If
///   nothing is kept every output is `+0.0`.
/// - **Evaluation mode and `p == 0`**: the identity bit for bit, the mask
///   all kept, nothing drawn. **`p == 1`**: every output `+0.0`, the mask
///   all zeros, nothing drawn (timm and torchvision would still draw seeds
///   at their `gamma`). `0 < gamma < 2^-64`: no seed is drawn and nothing is
///   drawn from the source; every element is kept with `s = 1.0`.
///
/// Checks, all before the first write, first failure reported:
/// [`Error::LengthMismatch`] (input against output),
/// [`Error::ShapeMismatch`] (data length against [`len`](DropBlock::len)),
/// [`Error::MaskTooShort`], [`Error::PositionOverflow`]
/// (`offset + seeds() > 2^64`, in every mode). No operation allocates or
/// panics. The mask costs one pass over its words plus, per row of seeds,
/// `bs` bit-range clears per run of overlapping blocks.
///
/// # Differences from timm and torchvision
///
/// - timm's `drop_block_2d` draws a seed at every element and centres its
///   block there; its default `fast` form (`drop_block_fast_2d`) clips
///   blocks at the borders, the other form seeds only where the whole
///   block fits (`bs // 2` margins). Its `gamma` divides by
///   `(h - block_size + 1) (w - block_size + 1)` with the unclipped
///   `block_size`, times a `gamma_scale`; it also has `with_noise`
///   (Gaussian fill) and `batchwise` (one mask for the batch), not offered
///   here. It rescales by `numel / (kept + 1e-7)` (`1e-6` in the fast form).
/// - torchvision's `drop_block2d` draws seeds on the
///   `(h - bs + 1, w - bs + 1)` grid, pads by `bs // 2` and max-pools with a
///   `bs` kernel: for odd `bs` that is this top-left convention; even `bs`
///   and `block_size > min(h, w)` (not clipped there) differ. It rescales
///   by `numel / (kept + 1e-6)`.
/// - Both draw their seeds with PyTorch's floating-point Bernoulli
///   sampling, not an exact 64-bit threshold, and give zeros for finite inputs when
///   nothing is kept, but `NaN * 0` leaks NaN there; here every dropped
///   output is `+0.0`. Both round `numel / (kept + eps)`; here
///   `numel / kept` is exact up to one `f64` and one `f32` rounding.
///
/// ```
/// use bitdrop::{DropBlock, Keyed, Mode};
///
/// // A [2, 3, 8, 8] feature map, 3 x 3 blocks, 10% of the elements dropped
/// // on average.
/// let drop_block = DropBlock::new(0.1, 3, [2, 3, 8, 8])?;
/// let mut x = vec![1.0_f32; drop_block.len()];
/// let mut mask = vec![0_u64; drop_block.mask_words()];
/// drop_block.forward(Mode::Train, &mut x, &mut mask, Keyed::new(7, 0))?;
/// let kept: u32 = mask.iter().map(|w| w.count_ones()).sum();
/// let s = (x.len() as f64 / f64::from(kept)) as f32;
/// assert!(x.iter().all(|&v| v == 0.0 || v == s));
///
/// // The backward pass: the gradient through the same mask and scale.
/// let mut grad = vec![1.0_f32; drop_block.len()];
/// drop_block.apply_mask(Mode::Train, &mut grad, &mask)?;
/// assert_eq!(grad, x);
/// # Ok::<(), bitdrop::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DropBlock {
    /// `p`, and through it the plan: identity, drop all, or random.
    dropout: Dropout,
    shape: [usize; 4],
    /// The effective block size `bs`.
    block: usize,
    len: usize,
    gamma: f64,
}

impl DropBlock {
    /// DropBlock with drop probability `p`, blocks of `block_size` (clipped
    /// to the map), over data of shape `[n, c, h, w]`.
    ///
    /// # Errors
    ///
    /// In this order: [`Error::InvalidProbability`] unless
    /// `0.0 <= p <= 1.0`; [`Error::InvalidBlockSize`] if `block_size == 0`;
    /// [`Error::InvalidShape`] if `n * c * h * w`, multiplied left to
    /// right, overflows `usize` at any step.
    ///
    /// ```
    /// use bitdrop::{DropBlock, Error};
    ///
    /// let d = DropBlock::new(0.1, 7, [1, 1, 5, 9])?;
    /// assert_eq!(d.block_size(), 5);
    /// assert_eq!(d.seeds(), 5);
    /// assert_eq!(DropBlock::new(0.1, 0, [1, 1, 5, 9]), Err(Error::InvalidBlockSize { block_size: 0 }));
    /// # Ok::<(), bitdrop::Error>(())
    /// ```
    pub fn new(p: f32, block_size: usize, shape: [usize; 4]) -> Result<Self, Error> {
        let dropout = Dropout::new(p)?;
        if block_size == 0 {
            return Err(Error::InvalidBlockSize { block_size });
        }
        let [n, c, h, w] = shape;
        let len = n
            .checked_mul(c)
            .and_then(|m| m.checked_mul(h))
            .and_then(|m| m.checked_mul(w))
            .ok_or(Error::InvalidShape {
                reason: "the element count overflows usize",
            })?;
        let block = block_size.min(h).min(w);
        let gamma = if p == 0.0 || block == 0 {
            0.0
        } else {
            let (bs, rows, cols) = (block as f64, (h - block + 1) as f64, (w - block + 1) as f64);
            let rate = f64::from(p) * h as f64 * w as f64 / (bs * bs * rows * cols);
            rate.min(1.0)
        };
        Ok(DropBlock {
            dropout,
            shape,
            block,
            len,
            gamma,
        })
    }

    /// The drop probability given to [`new`](DropBlock::new).
    pub const fn p(&self) -> f32 {
        self.dropout.p()
    }

    /// The effective block size `min(block_size, h, w)`.
    pub const fn block_size(&self) -> usize {
        self.block
    }

    /// The shape `[n, c, h, w]`.
    pub const fn shape(&self) -> [usize; 4] {
        self.shape
    }

    /// The seed rate `gamma` (see [the definition](DropBlock#definition)).
    pub const fn gamma(&self) -> f64 {
        self.gamma
    }

    /// The number of elements, `n * c * h * w`.
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no elements.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Words of the element mask: [`mask_words`](crate::mask_words)`(len)`.
    pub const fn mask_words(&self) -> usize {
        mask_words(self.len)
    }

    /// The number of seeds, `n * c * (h - bs + 1) * (w - bs + 1)` (0 when
    /// `h` or `w` is 0): the keyed stream positions a call takes, from its
    /// offset on.
    pub const fn seeds(&self) -> usize {
        let [n, c, h, w] = self.shape;
        if h == 0 || w == 0 {
            return 0;
        }
        // At most `len`, which does not overflow.
        n * c * (h - self.block + 1) * (w - self.block + 1)
    }

    /// DropBlock in place, writing the element mask to `mask`.
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`], [`Error::MaskTooShort`],
    /// [`Error::PositionOverflow`].
    ///
    /// ```
    /// use bitdrop::{DropBlock, Keyed, Mode};
    ///
    /// // Blocks as large as the map: each channel is kept or dropped whole.
    /// let drop_block = DropBlock::new(0.5, 4, [1, 8, 4, 4])?;
    /// assert_eq!((drop_block.gamma(), drop_block.seeds()), (0.5, 8));
    /// let mut x = [1.0_f32; 128];
    /// let mut mask = [0_u64; 2];
    /// drop_block.forward(Mode::Train, &mut x, &mut mask, Keyed::new(1, 0))?;
    /// for channel in x.chunks(16) {
    ///     assert!(channel.iter().all(|&v| v == channel[0]));
    /// }
    ///
    /// let mut y = [3.0_f32; 128];
    /// drop_block.forward(Mode::Eval, &mut y, &mut mask, Keyed::new(1, 0))?;
    /// assert_eq!((y, mask), ([3.0; 128], [!0, !0]));
    /// # Ok::<(), bitdrop::Error>(())
    /// ```
    pub fn forward<E: Element>(
        &self,
        mode: Mode,
        xs: &mut [E],
        mask: &mut [u64],
        source: impl Randomness,
    ) -> Result<(), Error> {
        self.draw(mode, Data::InPlace(xs), mask, source)
    }

    /// DropBlock from `xs` into `out`, writing the element mask to `mask`.
    ///
    /// # Errors
    ///
    /// [`Error::LengthMismatch`] if `out.len() != xs.len()`, then as
    /// [`forward`](DropBlock::forward).
    pub fn forward_to<E: Element>(
        &self,
        mode: Mode,
        xs: &[E],
        out: &mut [E],
        mask: &mut [u64],
        source: impl Randomness,
    ) -> Result<(), Error> {
        self.draw(mode, Data::copy(xs, out)?, mask, source)
    }

    /// Applies an element mask written by [`forward`](DropBlock::forward)
    /// in place: kept `x * s` with `s = len / kept` recomputed from the
    /// mask's popcount (bits past `len` ignored), dropped `+0.0`. This is
    /// the backward pass, `grad * mask * s`. Evaluation mode and `p == 0`
    /// are the identity and `p == 1` gives `+0.0`, whatever the mask says.
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`], [`Error::MaskTooShort`].
    pub fn apply_mask<E: Element>(
        &self,
        mode: Mode,
        xs: &mut [E],
        mask: &[u64],
    ) -> Result<(), Error> {
        self.given(mode, Data::InPlace(xs), mask)
    }

    /// Applies an element mask from `xs` into `out`, as
    /// [`apply_mask`](DropBlock::apply_mask).
    ///
    /// # Errors
    ///
    /// [`Error::LengthMismatch`], [`Error::ShapeMismatch`],
    /// [`Error::MaskTooShort`].
    pub fn apply_mask_to<E: Element>(
        &self,
        mode: Mode,
        xs: &[E],
        mask: &[u64],
        out: &mut [E],
    ) -> Result<(), Error> {
        self.given(mode, Data::copy(xs, out)?, mask)
    }

    /// The backward pass in place, regenerating the mask from `key` into
    /// `mask`: the same computation as [`forward`](DropBlock::forward), on
    /// the gradient.
    ///
    /// # Errors
    ///
    /// As [`forward`](DropBlock::forward).
    pub fn backward<E: Element>(
        &self,
        mode: Mode,
        grad: &mut [E],
        mask: &mut [u64],
        key: Keyed,
    ) -> Result<(), Error> {
        self.forward(mode, grad, mask, key)
    }

    /// The backward pass from `grad` into `out`.
    ///
    /// # Errors
    ///
    /// As [`forward_to`](DropBlock::forward_to).
    pub fn backward_to<E: Element>(
        &self,
        mode: Mode,
        grad: &[E],
        out: &mut [E],
        mask: &mut [u64],
        key: Keyed,
    ) -> Result<(), Error> {
        self.forward_to(mode, grad, out, mask, key)
    }

    /// The dropout configuration: `p`, and the plan of a call.
    pub(crate) const fn dropout(&self) -> &Dropout {
        &self.dropout
    }

    /// `floor(gamma * 2^64)`, which is `2^64` when `gamma == 1`.
    pub(crate) fn seed_numerator(&self) -> u128 {
        if self.gamma >= 1.0 {
            1 << 64
        } else {
            // Exact: a power-of-two scaling, then truncation.
            (self.gamma * 18_446_744_073_709_551_616.0) as u64 as u128
        }
    }

    /// The checks after the operands' lengths, in the documented order:
    /// the data against the shape, then the mask.
    pub(crate) fn check(&self, len: usize, mask: usize) -> Result<(), Error> {
        if len != self.len {
            return Err(Error::ShapeMismatch {
                expected: self.len,
                found: len,
            });
        }
        check_words(self.len, mask)
    }

    fn draw<E: Element>(
        &self,
        mode: Mode,
        data: Data<'_, E>,
        mask: &mut [u64],
        source: impl Randomness,
    ) -> Result<(), Error> {
        let ops = Inverted { data, scale: 1.0 };
        self.check(ops.len(), mask.len())?;
        source.check(self.seeds())?;
        let mask = &mut mask[..self.mask_words()];
        fill_kept(mask, self.len);
        match Plan::of(&self.dropout, mode) {
            Plan::Identity => {}
            Plan::DropAll => mask.fill(0),
            Plan::Random(_) => self.drop_blocks(mask, source),
        }
        self.apply(mode, ops, mask)
    }

    fn given<E: Element>(&self, mode: Mode, data: Data<'_, E>, mask: &[u64]) -> Result<(), Error> {
        let ops = Inverted { data, scale: 1.0 };
        self.check(ops.len(), mask.len())?;
        self.apply(mode, ops, &mask[..self.mask_words()])
    }

    /// The inverted-dropout pass over a given mask of `mask_words()` words,
    /// with `s = len / kept`.
    fn apply<E: Element>(
        &self,
        mode: Mode,
        mut ops: Inverted<'_, E>,
        mask: &[u64],
    ) -> Result<(), Error> {
        let mut kept = 0;
        dispatch::run(KeptCount {
            mask,
            len: self.len,
            kept: &mut kept,
        });
        ops.scale = (self.len as f64 / kept as f64) as f32;
        let decisions = Decisions::<Keyed>::Given(mask, 0);
        let units = Units::elements(self.len);
        run(&self.dropout, mode, ops, &units, decisions, Fast)
    }

    /// Clears the blocks of the drawn seeds from an all-kept mask.
    fn drop_blocks(&self, mask: &mut [u64], source: impl Randomness) {
        let numerator = self.seed_numerator();
        if self.seeds() == 0 {
            return;
        }
        if numerator == 1 << 64 {
            // Every seed drawn: every element is covered, nothing drawn.
            mask.fill(0);
            return;
        }
        let [_, _, h, w] = self.shape;
        let bs = self.block;
        dispatch::run(Seeds {
            words: source.words(Threshold(numerator as u64)),
            mask,
            count: self.seeds(),
            grid: [h - bs + 1, w - bs + 1],
            map: [h, w],
            bs,
        });
    }
}

/// The kept count of a mask of `len` bits, counted in the dispatched
/// kernel: one POPCNT a word where the CPU has it (measured about a fifth
/// of the backward's time with the software count of a default build).
struct KeptCount<'a> {
    mask: &'a [u64],
    len: usize,
    kept: &'a mut u64,
}

impl Kernel for KeptCount<'_> {
    #[inline(always)]
    fn run<I: Level>(self, _: Cpu<I>) {
        let words = self.mask.iter().enumerate();
        *self.kept = words
            .map(|(i, w)| u64::from((w & low_bits(self.len - 64 * i)).count_ones()))
            .sum();
    }
}

/// The seed pass: decides the seeds `CHUNK` at a time, in index order (so
/// a caller RNG is consumed as one `fill_mask` over all of them), and
/// clears each row's overlapping blocks as one run.
struct Seeds<'m, W> {
    words: W,
    mask: &'m mut [u64],
    count: usize,
    /// Seeds per channel: `[h - bs + 1, w - bs + 1]`.
    grid: [usize; 2],
    map: [usize; 2],
    bs: usize,
}

/// Blocks of one row of seeds (`row = channel * (h - bs + 1) + h0`) that
/// cover columns `start..end`.
#[derive(Clone, Copy)]
struct Run {
    row: usize,
    start: usize,
    end: usize,
}

impl<W: Words> Kernel for Seeds<'_, W> {
    #[inline(always)]
    fn run<I: Level>(mut self, cpu: Cpu<I>) {
        let mut words = [0u64; CHUNK_WORDS];
        let mut pending: Option<Run> = None;
        let mut first = 0;
        while first < self.count {
            let m = (self.count - first).min(CHUNK);
            let words = &mut words[..mask_words(m)];
            self.words.fill(words, m, cpu);
            for (j, &word) in words.iter().enumerate() {
                // The machinery's "dropped" (a clear bit) is a drawn seed.
                let mut drawn = !word & low_bits(m - 64 * j);
                while drawn != 0 {
                    let k = first + 64 * j + drawn.trailing_zeros() as usize;
                    drawn &= drawn - 1;
                    let (row, w0) = (k / self.grid[1], k % self.grid[1]);
                    match &mut pending {
                        // Seeds come in index order: extend an overlapping run.
                        Some(run) if run.row == row && w0 <= run.end => run.end = w0 + self.bs,
                        _ => {
                            let next = Run {
                                row,
                                start: w0,
                                end: w0 + self.bs,
                            };
                            if let Some(done) = pending.replace(next) {
                                self.clear(done);
                            }
                        }
                    }
                }
            }
            first += m;
        }
        if let Some(done) = pending {
            self.clear(done);
        }
    }
}

impl<W> Seeds<'_, W> {
    /// Clears the run's columns in the `bs` rows its blocks cover.
    #[inline(always)]
    fn clear(&mut self, run: Run) {
        let (channel, h0) = (run.row / self.grid[0], run.row % self.grid[0]);
        let [h, w] = self.map;
        for y in h0..h0 + self.bs {
            let start = (channel * h + y) * w + run.start;
            clear_bits(self.mask, start, start + run.end - run.start);
        }
    }
}

/// Clears bits `start..end` of `words` (all inside `words`).
#[inline(always)]
fn clear_bits(words: &mut [u64], start: usize, end: usize) {
    let mut at = start;
    while at < end {
        let n = (end - at).min(64 - at % 64);
        if let Some(word) = words.get_mut(at / 64) {
            *word &= !(low_bits(n) << (at % 64));
        }
        at += n;
    }
}
