//! Writes the keyed stream's raw mask bits at p = 0.5 to standard output,
//! 64 decisions per little-endian `u64`, for statistical test batteries:
//!
//! ```sh
//! cargo run --release --example stream_bits | dieharder -a -g 200
//! cargo run --release --example stream_bits -- SEED BYTES > bits.bin
//! ```
//!
//! At p = 0.5 a kept element is exactly one whose first random bit is 1,
//! so the mask is the stream's bits themselves, decision for decision.
//! Without BYTES it runs until the reader stops reading.

use bitdrop::{Dropout, Keyed, Mode};
use std::io::{self, Write};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let seed: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(0);
    let limit: Option<u64> = args.next().map(|s| s.parse()).transpose()?;
    let dropout = Dropout::new(0.5)?;
    let mut words = vec![0u64; 1 << 16];
    let mut bytes = vec![0u8; 8 * words.len()];
    let mut out = io::stdout().lock();
    let (mut position, mut written) = (0u64, 0u64);
    loop {
        let len = 64 * words.len();
        dropout.fill_mask(Mode::Train, len, &mut words, Keyed::new(seed, position))?;
        position += len as u64;
        for (chunk, word) in bytes.chunks_exact_mut(8).zip(&words) {
            chunk.copy_from_slice(&word.to_le_bytes());
        }
        let take = limit.map_or(bytes.len() as u64, |l| {
            (l - written).min(bytes.len() as u64)
        });
        match out.write_all(&bytes[..take as usize]) {
            // The reader has what it wanted.
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(()),
            result => result?,
        }
        written += take;
        if limit == Some(written) {
            return Ok(());
        }
    }
}
