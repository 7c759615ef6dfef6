//! Chunked keyed calls, in any order, against one call; and the stream's
//! word count (`reference::keyed_words_drawn`).
#![no_main]

use bitdrop_fuzz::contract;

libfuzzer_sys::fuzz_target!(|input: contract::Chunked| contract::check_chunks(&input));
