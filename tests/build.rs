//! Renders the test catalogs into `OUT_DIR` so that `src/lib.rs` compiles the generated code:
//! the snapshot tests in sync-schema check what is generated, this checks that it builds.

use std::path::PathBuf;

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let sample = sync_schema::rust::render_file(&sync_schema::testing::sample_catalog());
    write_if_changed(&out.join("sample.rs"), &sample);
    println!("cargo:rerun-if-changed=build.rs");
}

fn write_if_changed(path: &std::path::Path, contents: &str) {
    if std::fs::read_to_string(path).ok().as_deref() != Some(contents) {
        std::fs::write(path, contents).expect("OUT_DIR is writable");
    }
}
