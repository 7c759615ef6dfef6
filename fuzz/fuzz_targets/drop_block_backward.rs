//! `DropBlock::backward` (and the reference it must equal) on arbitrary calls.
#![no_main]

use bitdrop_fuzz::contract::variants::{self, BlockCall};

libfuzzer_sys::fuzz_target!(|call: BlockCall| variants::check_drop_block(
    &call,
    "drop_block_backward"
));
