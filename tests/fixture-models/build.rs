//! Renders a mapping over every field of each real describe fixture
//! (`sync-schema/tests/fixtures/real`) into `OUT_DIR/fixtures.rs`, which `src/lib.rs` compiles
//! (the snapshot tests in sync-schema pin what is generated; this proves it builds).

use std::path::PathBuf;

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    println!("cargo:rerun-if-changed=build.rs");
    let fixtures = manifest.join("../../sync-schema/tests/fixtures/real");
    println!("cargo:rerun-if-changed={}", fixtures.display());
    let catalog = match sync_schema::load_dir(&fixtures) {
        Ok(catalog) => catalog,
        Err(diagnostics) => {
            eprintln!("{diagnostics}");
            std::process::exit(1);
        }
    };
    for source in &catalog.sources {
        println!("cargo:rerun-if-changed={}", source.display());
    }
    let code = sync_schema::rust::render_file(&catalog);
    let path = out.join("fixtures.rs");
    if std::fs::read_to_string(&path).ok().as_deref() != Some(code.as_str()) {
        std::fs::write(&path, code).expect("OUT_DIR is writable");
    }
}
