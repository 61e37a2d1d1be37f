//! The `forcesync` binary of this repository: the command over the generated mappings
//! (`generated::salesforce::REGISTRY`, `generated::MIGRATIONS`), plus `demo`.

mod cluster;
mod demo;

use std::process::ExitCode;

use sync_runtime::cli::{App, Extension};

fn main() -> ExitCode {
    sync_runtime::cli::main(
        App::new(&generated::salesforce::REGISTRY, &generated::MIGRATIONS).with_extension(
            Extension {
                command: demo::command,
                run: demo::run,
            },
        ),
    )
}
