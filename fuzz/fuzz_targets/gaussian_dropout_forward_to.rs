//! `GaussianDropout::forward_to` (and the reference it must equal) on arbitrary calls.
#![no_main]

use bitdrop_fuzz::contract::{Call, variants};

libfuzzer_sys::fuzz_target!(|call: Call| variants::check_gaussian(
    &call,
    "gaussian_dropout_forward_to"
));
