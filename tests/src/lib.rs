//! forcesync integration tests: the Postgres harness, and code generated from test catalogs
//! (compiled here to prove the generated code builds).

/// Code generated from `sync_schema::testing::sample_catalog()` (every column type).
pub mod sample {
    include!(concat!(env!("OUT_DIR"), "/sample.rs"));
}
