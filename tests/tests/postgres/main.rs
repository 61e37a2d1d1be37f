//! Tests against a real Postgres (see `forcesync_tests::pg`): migrations, triggers, typed models,
//! and migrations planned from changed mappings.

mod support;

mod generated_models;
mod hc_format;
mod mapping_change;
mod migrations;
mod models;
mod triggers;
