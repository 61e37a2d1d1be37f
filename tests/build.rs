//! Renders test catalogs into `OUT_DIR` so that `src/lib.rs` compiles the generated code (the
//! snapshot tests in sync-schema pin what is generated; this proves it builds):
//! * `sample.rs`: `sync_schema::testing::sample_catalog()`, every column type;
//! * `fixtures.rs`: a mapping over every field of each real describe fixture.

use std::path::{Path, PathBuf};

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    println!("cargo:rerun-if-changed=build.rs");

    let sample = sync_schema::rust::render_file(&sync_schema::testing::sample_catalog());
    write_if_changed(&out.join("sample.rs"), &sample);

    let fixtures = manifest.join("../sync-schema/tests/fixtures/real");
    println!("cargo:rerun-if-changed={}", fixtures.display());
    let catalog = match sync_schema::load_dir(&fixtures) {
        Ok(catalog) => catalog,
        Err(diagnostics) => {
            eprintln!("{diagnostics}");
            std::process::exit(1);
        }
    };
    write_if_changed(
        &out.join("fixtures.rs"),
        &sync_schema::rust::render_file(&catalog),
    );
}

fn write_if_changed(path: &Path, contents: &str) {
    if std::fs::read_to_string(path).ok().as_deref() != Some(contents) {
        std::fs::write(path, contents).expect("OUT_DIR is writable");
    }
}
