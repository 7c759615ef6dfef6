//! The fuzz targets' contract checks on every `cargo test`: the committed
//! seed corpus of each target in `fuzz/corpus/`, then random inputs decoded
//! the way libFuzzer decodes them.

mod common;
mod contract;

use arbitrary::{Arbitrary, Unstructured};
use common::config;
use contract::{Call, Chunked, MaskInput, Op};
use proptest::prelude::*;
use std::path::Path;

const OPS: [(&str, Op); 9] = [
    ("forward", Op::Forward),
    ("forward_to", Op::ForwardTo),
    ("forward_with_mask", Op::ForwardWithMask),
    ("forward_to_with_mask", Op::ForwardToWithMask),
    ("fill_mask", Op::FillMask),
    ("apply_mask", Op::ApplyMask),
    ("apply_mask_to", Op::ApplyMaskTo),
    ("backward", Op::Backward),
    ("backward_to", Op::BackwardTo),
];

/// Runs `check` on an input decoded from `bytes` as `fuzz_target!` does:
/// bytes that do not decode are skipped.
fn decode<'a, T: Arbitrary<'a>>(bytes: &'a [u8], check: impl FnOnce(T)) {
    if let Ok(input) = T::arbitrary_take_rest(Unstructured::new(bytes)) {
        check(input);
    }
}

/// One target's input, checked.
fn check(target: &str, bytes: &[u8]) {
    match target {
        "new" => decode(bytes, |(p, seed, offset, step): (u32, u64, u64, u64)| {
            contract::check_config(p, seed, offset, step)
        }),
        "mask" => decode(bytes, |input: MaskInput| contract::check_mask(&input)),
        "chunks" => decode(bytes, |input: Chunked| contract::check_chunks(&input)),
        _ => {
            let (_, op) = OPS
                .iter()
                .find(|(name, _)| *name == target)
                .expect("known target");
            decode(bytes, |call: Call| contract::check_call(&call, *op));
        }
    }
}

fn targets() -> impl Iterator<Item = &'static str> {
    OPS.iter()
        .map(|(name, _)| *name)
        .chain(["new", "mask", "chunks"])
}

#[test]
fn seed_corpus_keeps_the_contract() {
    let mut replayed = 0;
    for target in targets() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/corpus")
            .join(target);
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        // Under Miri, a taste of each target's corpus.
        for entry in entries.take(if cfg!(miri) { 1 } else { usize::MAX }) {
            let path = entry.expect("corpus entry").path();
            let bytes = std::fs::read(&path).expect("corpus file");
            check(target, &bytes);
            replayed += 1;
        }
    }
    assert!(
        replayed >= 12,
        "the seed corpus is missing ({replayed} files)"
    );
}

proptest! {
    #![proptest_config(config(if cfg!(miri) { 1 } else { 300 }))]

    #[test]
    fn random_inputs_keep_the_contract(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        for target in targets() {
            check(target, &bytes);
        }
    }
}
