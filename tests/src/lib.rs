//! forcesync integration tests: the Postgres harness ([`pg`]), and code generated from the sample
//! test catalog (compiled here to prove the generated code builds; see `build.rs`). The wide
//! every-field fixture tables build in `tests/fixture-models`, so this crate and the demo need
//! only Diesel's default 32 columns.

pub mod engine;
pub mod heroku_connect;
pub mod pg;

/// Code generated from `sync_schema::testing::sample_catalog()` (every column type).
pub mod sample {
    include!(concat!(env!("OUT_DIR"), "/sample.rs"));
}

/// With `RUST_LOG` set, the engine's logs go to the test's output (shown when it fails, or with
/// `--nocapture`): `RUST_LOG=sync_runtime=debug cargo test --test engine_write <name>`.
pub fn logs() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}

/// Runs each named scenario, an `async fn name(transport: Transport)` of the test file, over both
/// streaming transports as the tests `name::cometd` and `name::pubsub` (parametrised, never
/// copied).
#[macro_export]
macro_rules! over_both_transports {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn cometd() {
                super::$name(::sync_runtime::engine::hub::Transport::Cometd).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn pubsub() {
                super::$name(::sync_runtime::engine::hub::Transport::PubSub).await
            }
        }
    )+};
}
