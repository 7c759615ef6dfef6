//! The fuzz targets' contract checks on every `cargo test`: the committed
//! seed corpus of each target in `fuzz/corpus/`, then random inputs decoded
//! the way libFuzzer decodes them. Every row of the table of operations is
//! a target, and every target has a seed corpus.

mod common;
mod contract;
mod support;

use arbitrary::{Arbitrary, Unstructured};
use common::config;
use contract::variants::{self, BlockCall, DROP_BLOCK_TARGETS, GAUSSIAN_TARGETS};
use contract::{Call, Chunked, MaskInput};
use proptest::prelude::*;
use std::path::Path;
use support::ops::{self, OPS};

/// The targets that are not rows of the table: `half` and `par` check
/// the 16-bit types and the parallel calls (with their features); the
/// Gaussian and DropBlock targets their own contracts
/// (`tests/contract/variants.rs`).
const OTHER_TARGETS: [&str; 5] = ["new", "mask", "chunks", "half", "par"];

/// Whether a target's checks are built (its feature is on).
fn built(target: &str) -> bool {
    let features = [
        ("half", cfg!(feature = "half")),
        ("par", cfg!(feature = "rayon")),
    ];
    !features.iter().any(|&(name, on)| name == target && !on)
}

/// Runs `check` on an input decoded from `bytes` as `fuzz_target!` does:
/// bytes that do not decode are skipped. Whether they decoded.
fn decode<'a, T: Arbitrary<'a>>(bytes: &'a [u8], check: impl FnOnce(T)) -> bool {
    match T::arbitrary_take_rest(Unstructured::new(bytes)) {
        Ok(input) => {
            check(input);
            true
        }
        Err(_) => false,
    }
}

/// One target's input, checked; whether it decoded.
fn check(target: &str, bytes: &[u8]) -> bool {
    match target {
        "new" => decode(bytes, |(p, seed, offset, step): (u32, u64, u64, u64)| {
            contract::check_config(p, seed, offset, step)
        }),
        "mask" => decode(bytes, |input: MaskInput| contract::check_mask(&input)),
        "chunks" => decode(bytes, |input: Chunked| contract::check_chunks(&input)),
        #[cfg(feature = "half")]
        "half" => decode(bytes, |call: Call| contract::check_half(&call)),
        #[cfg(feature = "rayon")]
        "par" => decode(bytes, |input: Chunked| contract::check_par(&input)),
        #[cfg(not(feature = "half"))]
        "half" => false,
        #[cfg(not(feature = "rayon"))]
        "par" => false,
        gaussian if GAUSSIAN_TARGETS.contains(&gaussian) => decode(bytes, |call: Call| {
            variants::check_gaussian(&call, gaussian)
        }),
        block if DROP_BLOCK_TARGETS.contains(&block) => decode(bytes, |call: BlockCall| {
            variants::check_drop_block(&call, block)
        }),
        row => decode(bytes, |call: Call| {
            contract::check_call(&call, ops::op(row))
        }),
    }
}

fn targets() -> impl Iterator<Item = &'static str> {
    let variants = GAUSSIAN_TARGETS.into_iter().chain(DROP_BLOCK_TARGETS);
    OPS.iter()
        .map(|op| op.name)
        .chain(OTHER_TARGETS)
        .chain(variants)
}

fn fuzz_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

#[test]
fn seed_corpus_keeps_the_contract() {
    let mut replayed = 0;
    for target in targets() {
        let dir = fuzz_dir().join("corpus").join(target);
        let mut entries: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| entry.expect("corpus entry").path())
            .collect();
        entries.sort();
        assert!(!entries.is_empty(), "{target}: no seed corpus");
        // Under Miri, a taste of each target's corpus.
        let mut decoded = 0;
        for path in entries.iter().take(if cfg!(miri) { 1 } else { usize::MAX }) {
            let bytes = std::fs::read(path).expect("corpus file");
            decoded += usize::from(check(target, &bytes));
            replayed += 1;
        }
        assert!(
            decoded > 0 || !built(target),
            "{target}: no corpus file decodes"
        );
    }
    assert!(
        replayed >= targets().count(),
        "the seed corpus is missing ({replayed} files)"
    );
}

/// Every row of the table is a cargo-fuzz target named like it, with a
/// file that checks that row, and there are no others.
#[test]
fn every_row_is_a_fuzz_target() {
    let manifest = std::fs::read_to_string(fuzz_dir().join("Cargo.toml")).expect("fuzz/Cargo.toml");
    let bins: Vec<&str> = manifest
        .lines()
        .filter_map(|line| line.strip_prefix("name = \""))
        .filter_map(|rest| rest.strip_suffix('"'))
        .filter(|&name| name != "bitdrop-fuzz")
        .collect();
    let mut expected: Vec<&str> = targets().collect();
    let mut found = bins.clone();
    expected.sort_unstable();
    found.sort_unstable();
    assert_eq!(found, expected, "fuzz/Cargo.toml's [[bin]] targets");
    for op in OPS {
        let path = fuzz_dir()
            .join("fuzz_targets")
            .join(format!("{}.rs", op.name));
        let source =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(
            source.contains(&format!("ops::op(\"{}\")", op.name)),
            "{} does not check its row",
            path.display()
        );
        assert!(
            manifest.contains(&format!("path = \"fuzz_targets/{}.rs\"", op.name)),
            "{}: no [[bin]] path",
            op.name
        );
    }
}

/// Writes a seed corpus for every row whose target has none: a dozen
/// inputs of 64 to 512 random bytes (a fixed seed per target), chosen so
/// that most decode into valid calls that decide something (past a mask
/// word, not all kept), the others into calls that pass, drop everything,
/// or are refused with each error the row can return. After adding a row:
/// `cargo test --test fuzz_contract -- --ignored write_missing_seed_corpora`.
#[test]
#[ignore = "writes fuzz/corpus; run after adding a row"]
fn write_missing_seed_corpora() {
    use rand_xoshiro::rand_core::Rng;
    use std::collections::hash_map::DefaultHasher;
    use std::hash::{Hash, Hasher};
    for op in OPS {
        let dir = fuzz_dir().join("corpus").join(op.name);
        if dir.exists() {
            continue;
        }
        std::fs::create_dir_all(&dir).expect("corpus directory");
        let mut generator = support::rng(op.name.bytes().map(u64::from).sum());
        let (mut deciding, mut kinds) = (0, Vec::new());
        for _ in 0..100_000 {
            if deciding >= 9 && kinds.len() >= 5 {
                break;
            }
            let len = 64 + (generator.next_u64() % 449) as usize;
            let mut bytes: Vec<u8> = (0..len).map(|_| generator.next_u64() as u8).collect();
            if op.level == ops::Level::Elements && generator.next_u64().is_multiple_of(2) {
                // Random bytes make short vectors (each element goes on
                // with an odd byte): write 40 to 90 elements of data.
                let mut u = Unstructured::new(&bytes);
                let _ = contract::P::arbitrary(&mut u);
                let _ = <(bool, u16)>::arbitrary(&mut u);
                let start = bytes.len() - u.len();
                let elements = 40 + (generator.next_u64() % 51) as usize;
                let mut patched = bytes[..start].to_vec();
                for _ in 0..elements {
                    let r = generator.next_u64();
                    patched.push(r as u8 | 1);
                    patched.extend_from_slice(&r.to_le_bytes()[1..5]);
                }
                patched.push(generator.next_u64() as u8 & !1);
                patched.extend_from_slice(&bytes[start..]);
                patched.truncate(512);
                bytes = patched;
            }
            let Ok(call) = Call::arbitrary_take_rest(Unstructured::new(&bytes)) else {
                continue;
            };
            let Some((case, src)) = contract::case_of(&call, op) else {
                continue;
            };
            let kind = match op.expected_error(&case, src) {
                Some(error) => format!("{error:?}").split(' ').next().unwrap().to_string(),
                None => format!("{:?}", case.plan()),
            };
            let keep = if kind == "Random" {
                deciding < 9 && op.units(&case).count() > 64
            } else {
                !kinds.contains(&kind)
            };
            if !keep {
                continue;
            }
            if kind == "Random" {
                deciding += 1;
            } else {
                kinds.push(kind);
            }
            contract::check_call(&call, op);
            let mut hasher = DefaultHasher::new();
            bytes.hash(&mut hasher);
            let path = dir.join(format!("{:016x}", hasher.finish()));
            std::fs::write(&path, &bytes).expect("corpus file");
        }
        assert!(deciding > 0, "{}: no deciding call found", op.name);
    }
    // The Gaussian and DropBlock targets: a dozen random inputs that decode.
    for target in GAUSSIAN_TARGETS.into_iter().chain(DROP_BLOCK_TARGETS) {
        let dir = fuzz_dir().join("corpus").join(target);
        if dir.exists() {
            continue;
        }
        std::fs::create_dir_all(&dir).expect("corpus directory");
        let mut generator = support::rng(target.bytes().map(u64::from).sum());
        let mut written = 0;
        while written < 12 {
            let len = 64 + (generator.next_u64() % 449) as usize;
            let bytes: Vec<u8> = (0..len).map(|_| generator.next_u64() as u8).collect();
            if check(target, &bytes) {
                let mut hasher = DefaultHasher::new();
                bytes.hash(&mut hasher);
                let path = dir.join(format!("{:016x}", hasher.finish()));
                std::fs::write(&path, &bytes).expect("corpus file");
                written += 1;
            }
        }
    }
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
