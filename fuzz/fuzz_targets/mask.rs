//! `Mask`: its view, helpers and u32 conversions on arbitrary words.
#![no_main]

use bitdrop_fuzz::contract;

libfuzzer_sys::fuzz_target!(|input: contract::MaskInput| contract::check_mask(&input));
