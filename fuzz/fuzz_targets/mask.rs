//! `Mask`: its view, helpers and u32 conversions on arbitrary words.
#![no_main]

#[path = "../../tests/contract/mod.rs"]
mod contract;

libfuzzer_sys::fuzz_target!(|input: contract::MaskInput| contract::check_mask(&input));
