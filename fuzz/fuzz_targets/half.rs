//! The 16-bit element types on arbitrary structured calls: fast path
//! against the reference, and the mask against the `f32` call's.
#![no_main]

use bitdrop_fuzz::contract;

libfuzzer_sys::fuzz_target!(|call: contract::Call| contract::check_half(&call));
