//! `Dropout::backward_to` (and the reference it must equal) on arbitrary calls.
#![no_main]

#[path = "../../tests/contract/mod.rs"]
mod contract;

libfuzzer_sys::fuzz_target!(|call: contract::Call| contract::check_call(
    &call,
    contract::Op::BackwardTo
));
