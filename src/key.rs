//! Keys for layers, steps and samples: independent seeds derived from one.

use crate::stream::{GAMMA, mix};

/// A seed for the keyed stream derived from `seed` and any integers
/// (layer, training step, Monte Carlo sample, ...), in the manner of JAX's
/// `fold_in`: so that a model with many dropout layers, or MC dropout over
/// many passes, never reuses a mask by accident.
///
/// The exact construction ("key derivation v1", frozen by golden vectors;
/// `mix` is SplitMix64's output function, documented with mask stream v2 in
/// the crate docs, `GAMMA = 0x9E3779B97F4A7C15`, wrapping arithmetic):
///
/// ```text
/// h = mix(seed + GAMMA)
/// for each x in path:  h = mix((h ^ x) + GAMMA)
/// result = mix(h + (path.len() + 1) * GAMMA)
/// ```
///
/// Each step is a bijection of `h` for a fixed `x` and of `x` for a fixed
/// `h`, so two inputs of the same length that differ in one place never
/// collide; any other pair of distinct inputs collides only by a
/// coincidence of 64-bit values from unrelated computations (a 64-bit hash
/// collision, chance about `2^-64` per pair). The length goes in last, so a
/// path and its extension by a zero differ too.
///
/// ```
/// use bitdrop::{Dropout, Keyed, Mode, derive_seed};
///
/// let dropout = Dropout::new(0.1)?;
/// let (seed, step) = (2024, 17);
/// let mut layer0 = vec![1.0_f32; 256];
/// let mut layer1 = vec![1.0_f32; 256];
/// dropout.forward(Mode::Train, &mut layer0, Keyed::new(derive_seed(seed, &[0, step]), 0))?;
/// dropout.forward(Mode::Train, &mut layer1, Keyed::new(derive_seed(seed, &[1, step]), 0))?;
/// assert_ne!(layer0, layer1); // independent masks
/// assert_ne!(derive_seed(seed, &[0, step]), derive_seed(seed, &[step, 0]));
/// assert_ne!(derive_seed(seed, &[]), derive_seed(seed, &[0]));
/// # Ok::<(), bitdrop::Error>(())
/// ```
pub const fn derive_seed(seed: u64, path: &[u64]) -> u64 {
    let mut h = mix(seed.wrapping_add(GAMMA));
    let mut i = 0;
    while i < path.len() {
        h = mix((h ^ path[i]).wrapping_add(GAMMA));
        i += 1;
    }
    mix(h.wrapping_add((path.len() as u64).wrapping_add(1).wrapping_mul(GAMMA)))
}

impl crate::Keyed {
    /// `Keyed::new(derive_seed(seed, path), offset)`: the stream of a
    /// derived seed (see [`derive_seed`]).
    ///
    /// ```
    /// use bitdrop::Keyed;
    ///
    /// let (seed, layer, pass) = (7, 3, 41);
    /// let key = Keyed::derived(seed, &[layer, pass], 0);
    /// assert_eq!(key.seed(), bitdrop::derive_seed(7, &[3, 41]));
    /// ```
    pub const fn derived(seed: u64, path: &[u64], offset: u64) -> Self {
        crate::Keyed::new(derive_seed(seed, path), offset)
    }
}
