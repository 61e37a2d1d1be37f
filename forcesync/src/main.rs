//! The `forcesync` binary of this repository: the command over the generated mappings
//! (`generated::salesforce::REGISTRY`, `generated::MIGRATIONS`), plus `demo` and `bench`.

/// mimalloc: the writer, the loader and the embedded emulator allocate many small JSON values;
/// glibc's allocator was the largest single cost in the process. Built without transparent huge
/// pages (`no_thp`): mimalloc otherwise advises them on its arenas, and the kernel then zeroes a
/// whole 2 MiB page at each first touch. That zeroing was 13 % of all CPU during a 100,000-record
/// `bench write` (`perf record -a`: `clear_page_erms` under `mi_page_free_list_extend`); without
/// it the process's system time halved and the writer / floor ratio rose from 0.56–0.77× to
/// 0.75–0.79× in three interleaved pairs.
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
