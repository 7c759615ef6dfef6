//! How many random 64-bit words each 64 decisions cost, per p, for both
//! sources of randomness.
//!
//! Run with `cargo run --release --example words_per_group`.

use bitdrop::{Dropout, Keyed, Mode, mask_words, reference};
use core::convert::Infallible;
use rand_xoshiro::Xoshiro256PlusPlus;
use rand_xoshiro::rand_core::{Rng, SeedableRng, TryRng};

/// A generator that counts the words drawn from it.
struct Counting {
    inner: Xoshiro256PlusPlus,
    words: u64,
}

impl TryRng for Counting {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        self.words += 1;
        Ok(self.inner.next_u32())
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        self.words += 1;
        Ok(self.inner.next_u64())
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), Infallible> {
        self.words += dest.len().div_ceil(8) as u64;
        self.inner.fill_bytes(dest);
        Ok(())
    }
}

fn main() -> Result<(), bitdrop::Error> {
    const BLOCKS: u64 = 256;
    let n = 4096 * BLOCKS as usize;
    let ps = [0.01f32, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99];
    println!("random 64-bit words per 64 decisions ({n} decisions per p)");
    println!("{:>6} {:>12} {:>12}", "p", "keyed", "caller RNG");
    let (mut keyed_sum, mut rng_sum) = (0.0, 0.0);
    for p in ps {
        let d = Dropout::new(p)?;
        let keyed: u64 = (0..BLOCKS)
            .map(|block| reference::keyed_words_drawn(&d, Mode::Train, 1, block))
            .sum();
        let mut rng = Counting {
            inner: Xoshiro256PlusPlus::seed_from_u64(1),
            words: 0,
        };
        let mut mask = vec![0; mask_words(n)];
        d.fill_mask(Mode::Train, n, &mut mask, &mut rng)?;
        let groups = (n / 64) as f64;
        let (k, r) = (keyed as f64 / groups, rng.words as f64 / groups);
        keyed_sum += k;
        rng_sum += r;
        println!("{p:>6} {k:>12.2} {r:>12.2}");
    }
    let count = ps.len() as f64;
    println!(
        "{:>6} {:>12.2} {:>12.2}",
        "mean",
        keyed_sum / count,
        rng_sum / count
    );
    // The keyed stream's count comes from the reference; check it decides
    // the same bits as the fast path, so the count is the fast path's too.
    let d = Dropout::new(0.1)?;
    let (mut fast, mut slow) = (vec![0; 64], vec![0; 64]);
    d.fill_mask(Mode::Train, 4096, &mut fast, Keyed::new(1, 0))?;
    reference::fill_mask(&d, Mode::Train, 4096, &mut slow, Keyed::new(1, 0))?;
    assert_eq!(fast, slow);
    Ok(())
}
