//! Renders `sync_schema::testing::sample_catalog()` (every column type) into `OUT_DIR/sample.rs`
//! so that `src/lib.rs` compiles the generated code (the snapshot tests in sync-schema pin what is
//! generated; this proves it builds). The every-field fixture tables are `tests/fixture-models`.

use std::path::{Path, PathBuf};

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    println!("cargo:rerun-if-changed=build.rs");

    let sample = sync_schema::rust::render_file(&sync_schema::testing::sample_catalog());
    write_if_changed(&out.join("sample.rs"), &sample);
}

fn write_if_changed(path: &Path, contents: &str) {
    if std::fs::read_to_string(path).ok().as_deref() != Some(contents) {
        std::fs::write(path, contents).expect("OUT_DIR is writable");
    }
}
