//! forcesync integration tests: the Postgres harness ([`pg`]), and code generated from test
//! catalogs (compiled here to prove the generated code builds; see `build.rs`).

pub mod engine;
pub mod pg;

/// Code generated from `sync_schema::testing::sample_catalog()` (every column type).
pub mod sample {
    include!(concat!(env!("OUT_DIR"), "/sample.rs"));
}

/// Code generated from a mapping over every field of each real describe fixture
/// (`sync-schema/tests/fixtures/real`: Account, Case, Contact, Lead, Opportunity).
pub mod fixtures {
    include!(concat!(env!("OUT_DIR"), "/fixtures.rs"));
}
