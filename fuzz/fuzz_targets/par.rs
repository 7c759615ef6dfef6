//! The `par_` calls on arbitrary shapes past the parallel threshold and
//! arbitrary keys, against the serial calls.
#![no_main]

use bitdrop_fuzz::contract;

libfuzzer_sys::fuzz_target!(|input: contract::Chunked| contract::check_par(&input));
