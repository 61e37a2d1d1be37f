//! The `forcesync` binary of this repository: the command over the generated mappings
//! (`generated::salesforce::REGISTRY`, `generated::MIGRATIONS`), plus `demo` and `bench`.

/// mimalloc: the writer, the loader and the embedded emulator allocate many small JSON values;
/// glibc's allocator was the largest single cost in the process.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod bench;
mod demo;
mod sf_user;

use std::process::ExitCode;

use sync_runtime::cli::{App, Extension};

const EXTENSIONS: &[Extension] = &[
    Extension {
        command: demo::command,
        run: demo::run,
        // The demo's own progress and feed lines are the point; the engine's INFO lines only
        // interleave with them (RUST_LOG=info brings them back).
        log_level: "warn",
    },
    Extension {
        command: bench::command,
        run: bench::run,
        log_level: "info",
    },
];

fn main() -> ExitCode {
    sync_runtime::salesforce::http::install_crypto_provider();
    sync_runtime::cli::main(
        App::new(&generated::salesforce::REGISTRY, &generated::MIGRATIONS)
            .with_extensions(EXTENSIONS),
    )
}
