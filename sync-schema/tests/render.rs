//! Snapshots of everything generated from real mappings: this repo's `mappings/` and a mapping
//! over every field of each real describe fixture (Account, Contact, Opportunity, Lead, Case).
//! The `generated` crate compiles the first, `forcesync-tests` compiles the second.

use std::path::{Path, PathBuf};

use sync_schema::catalog::Catalog;
use sync_schema::load::load_dir_as;
use sync_schema::sql::plan;

fn load(dir: &str) -> Catalog {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(dir);
    load_dir_as(&path, Path::new(dir)).unwrap_or_else(|d| panic!("{dir} did not load:\n{d}"))
}

#[test]
fn the_repo_mappings_render_to_rust() {
    insta::assert_snapshot!(
        "repo_rust",
        sync_schema::rust::render_file(&load("../mappings"))
    );
}

#[test]
fn the_repo_mappings_render_to_an_initial_migration() {
    let plan = plan(None, &load("../mappings")).unwrap();
    insta::assert_snapshot!("repo_up_sql", plan.up_sql());
    insta::assert_snapshot!("repo_down_sql", plan.down_sql());
}

#[test]
fn every_field_of_the_real_fixtures_renders_to_rust() {
    insta::assert_snapshot!(
        "fixtures_rust",
        sync_schema::rust::render_file(&load("tests/fixtures/real"))
    );
}

#[test]
fn every_field_of_the_real_fixtures_renders_to_an_initial_migration() {
    let plan = plan(None, &load("tests/fixtures/real")).unwrap();
    insta::assert_snapshot!("fixtures_up_sql", plan.up_sql());
    insta::assert_snapshot!("fixtures_down_sql", plan.down_sql());
}
