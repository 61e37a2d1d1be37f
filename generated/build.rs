//! Keeps `generated/migrations/` in step with `../mappings`.
//!
//! Loads the mappings (failing the build with every diagnostic when they are invalid), diffs the
//! Postgres schema they need against the snapshot stored with the latest migration, and writes a
//! new migration directory when anything changed. Kept columns and tables become warnings.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use sync_schema::migrations;

fn main() -> ExitCode {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let mappings = manifest.join("../mappings");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed={}", mappings.display());

    let catalog = match sync_schema::load::load_dir_as(&mappings, Path::new("mappings")) {
        Ok(catalog) => catalog,
        Err(diagnostics) => {
            eprintln!("{diagnostics}");
            eprintln!("forcesync: fix the mappings above; no migration was written");
            return ExitCode::FAILURE;
        }
    };
    for source in &catalog.sources {
        println!("cargo:rerun-if-changed={}", source.display());
    }
    if let Err(message) = check_column_features(&catalog) {
        eprintln!("{message}");
        return ExitCode::FAILURE;
    }

    let dir = manifest.join("migrations");
    match migrations::write_next(&dir, &catalog, &migrations::today_utc()) {
        Ok(outcome) => {
            for warning in &outcome.warnings {
                println!("cargo:warning=forcesync: {warning}");
            }
            if let Some(written) = &outcome.written {
                println!(
                    "cargo:warning=forcesync: mappings changed; wrote migration {} (commit it)",
                    written.strip_prefix(&manifest).unwrap_or(written).display()
                );
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("forcesync: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Fails when a mapped table is wider than the Diesel column feature enabled for this crate.
fn check_column_features(catalog: &sync_schema::catalog::Catalog) -> Result<(), String> {
    let enabled = |feature: &str| {
        let var = format!("CARGO_FEATURE_{}", feature.to_uppercase().replace('-', "_"));
        std::env::var_os(var).is_some()
    };
    for mapping in &catalog.mappings {
        let columns = sync_schema::rust::table_columns(mapping);
        let table = format!("{} ({} columns)", mapping.table, columns);
        match sync_schema::rust::diesel_column_feature(columns) {
            Ok(None) => {}
            Ok(Some(feature)) => {
                let covered = enabled("128-column-tables")
                    || (feature == "64-column-tables" && enabled("64-column-tables"));
                if !covered {
                    return Err(format!(
                        "forcesync: the table {table} of mapping {} is wider than Diesel's \
                         default 32 columns; enable the `{feature}` feature of \
                         forcesync-generated (it makes the first build slower)",
                        mapping.object
                    ));
                }
            }
            Err(max) => {
                return Err(format!(
                    "forcesync: the table {table} of mapping {} is wider than the {max} \
                     columns Diesel supports; map fewer fields",
                    mapping.object
                ))
            }
        }
    }
    Ok(())
}
