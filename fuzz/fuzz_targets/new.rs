//! `Dropout::new`, its getters and `Keyed::advanced` on arbitrary input.
#![no_main]

use bitdrop_fuzz::contract;

libfuzzer_sys::fuzz_target!(|input: (u32, u64, u64, u64)| {
    let (p_bits, seed, offset, step) = input;
    contract::check_config(p_bits, seed, offset, step);
});
