//! The checks the targets run, compiled once for all of them: the table of
//! operations and the helpers (`tests/support`) and the contract
//! (`tests/contract`), shared with `cargo test` by path.

#[path = "../../tests/support/mod.rs"]
pub mod support;

#[path = "../../tests/contract/mod.rs"]
pub mod contract;
