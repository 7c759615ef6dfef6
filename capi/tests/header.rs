//! The committed header, `include/bitdrop.h`, is what cbindgen generates
//! from the source now. After a change of the API, regenerate it with
//! `BITDROP_BLESS=1 cargo test --test header`.

use std::path::Path;

#[test]
fn header_is_current() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(root.join("cbindgen.toml")).expect("cbindgen.toml");
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_crate(root)
        .with_config(config)
        .generate()
        .expect("cbindgen could not read the crate")
        .write(&mut generated);
    let generated = String::from_utf8(generated).expect("UTF-8 header");
    let path = root.join("include/bitdrop.h");
    if std::env::var_os("BITDROP_BLESS").is_some() {
        std::fs::write(&path, &generated).expect("write the header");
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "include/bitdrop.h is stale: run `BITDROP_BLESS=1 cargo test --test header` in capi/ and commit it"
    );
}
