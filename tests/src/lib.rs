//! forcesync integration tests: the Postgres harness ([`pg`]), and code generated from the sample
//! test catalog (compiled here to prove the generated code builds; see `build.rs`). The wide
//! every-field fixture tables build in `tests/fixture-models`, so this crate and the demo need
//! only Diesel's default 32 columns.

pub mod engine;
pub mod pg;

/// Code generated from `sync_schema::testing::sample_catalog()` (every column type).
pub mod sample {
    include!(concat!(env!("OUT_DIR"), "/sample.rs"));
}
