//! `AlphaDropout::backward_to` (and the reference it must equal) on arbitrary calls.
#![no_main]

use bitdrop_fuzz::{contract, support::ops};

libfuzzer_sys::fuzz_target!(|call: contract::Call| {
    contract::check_call(&call, ops::op("alpha_backward_to"))
});
