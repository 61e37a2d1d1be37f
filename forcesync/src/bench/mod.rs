//! `forcesync bench`: benchmarks against the embedded emulator, each with a baseline measured in
//! the same run. One module per subcommand (`write.rs`, ...); this file only lists and dispatches
//! them.

mod adopt;
mod capture;
mod load;
mod org;
mod page;
mod page_open;
mod stream;
mod write;

use sync_runtime::cli::{CliError, Context};

/// The `bench` subcommand's definition.
pub fn command() -> clap::Command {
    clap::Command::new("bench")
        .about("Benchmarks against the embedded emulator, with a baseline measured in the same run")
        .subcommand_required(true)
        .subcommand(write::command())
        .subcommand(write::bare::command())
        .subcommand(load::command())
        .subcommand(stream::command())
        .subcommand(adopt::command())
        .subcommand(page::command())
        .subcommand(capture::command())
}

/// Runs the chosen benchmark.
pub fn run(ctx: &Context, matches: &clap::ArgMatches) -> Result<(), CliError> {
    match matches.subcommand() {
        Some(("write", sub)) => write::run(ctx, sub),
        Some(("bare-loop", sub)) => write::bare::run(sub),
        Some(("load", sub)) => load::run(ctx, sub),
        Some(("stream", sub)) => stream::run(ctx, sub),
        Some(("adopt", sub)) => adopt::run(ctx, sub),
        Some(("page", sub)) => page::run(ctx, sub),
        Some(("capture", sub)) => capture::run(ctx, sub),
        Some((other, _)) => Err(CliError::settings(format!(
            "`forcesync bench {other}` is not a benchmark of this binary"
        ))),
        None => Err(CliError::settings(
            "name a benchmark, e.g. `forcesync bench write`",
        )),
    }
}
