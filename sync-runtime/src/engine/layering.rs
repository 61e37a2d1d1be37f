//! The read path's layers and the rule between them: the per-mapping **driver** (`driver.rs`)
//! sequences the **operations** (`load`, `poll`, `cdc`, `reread`, `deletes`, `formulas`), which
//! are built on the **shared** modules (`apply`, `ingest`, `state`, `read_errors`, `hub`, …).
//! An operation imports no other operation and not the driver; a shared module imports neither
//! an operation nor the driver. So an operation can be read, tested and replaced on its own, and
//! a new one (a second streaming transport's apply, a new repair) is one module the driver calls.
//!
//! The tests read every file under `src/engine/` and fail on an engine module named through
//! `super::…` or `crate::engine::…`, alone or in a `{…}` group (paths read as the module-graph
//! test reads them, `module_graph::named_paths`), against the rule. Comments and a file's `#[cfg(test)]` part are not read; every operation must be a
//! single file.

use crate::module_graph::{code_of, named_paths};

/// The operations: each one thing the driver runs.
const OPERATIONS: &[&str] = &["load", "poll", "cdc", "reread", "deletes", "formulas"];

/// The per-mapping driver.
const DRIVER: &str = "driver";

/// The module path of a file under `src/engine/` (`apply/row.rs` → `["apply", "row"]`,
/// `hub/mod.rs` → `["hub"]`, `mod.rs` → `[]`).
fn module_path(path: &str) -> Vec<&str> {
    let mut segs: Vec<&str> = path.trim_end_matches(".rs").split('/').collect();
    if segs.last() == Some(&"mod") {
        segs.pop();
    }
    segs
}

/// The engine modules (`engine::x`) a line's code names from module `module` of the engine
/// (`crate::engine::x`, `super::…::x`; see [`named_paths`]).
fn engine_modules(code: &str, module: &[&str]) -> Vec<String> {
    let full: Vec<String> = std::iter::once("engine")
        .chain(module.iter().copied())
        .map(str::to_owned)
        .collect();
    named_paths(code, &full)
        .into_iter()
        .filter(|path| path.len() > 1 && path[0] == "engine")
        .map(|path| path[1].clone())
        .collect()
}

/// Every import in `files` (`(path under src/engine/, text)`) that breaks the rule, as
/// `path:line: message`.
fn violations<'a>(files: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<String> {
    let mut out = Vec::new();
    for (path, text) in files {
        let module = module_path(path);
        let Some(&top) = module.first() else {
            continue; // `mod.rs` declares them all.
        };
        if top == DRIVER {
            continue;
        }
        let operation = OPERATIONS.contains(&top);
        if operation && module.len() > 1 {
            out.push(format!("{path}: an operation is one file (`{top}.rs`)"));
        }
        for (n, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("#[cfg(test)]") {
                break;
            }
            for name in engine_modules(code_of(line), &module) {
                let name = name.as_str();
                let upper = name == DRIVER || (OPERATIONS.contains(&name) && name != top);
                if !upper {
                    continue;
                }
                let what = if name == DRIVER {
                    "the driver".to_owned()
                } else {
                    format!("the operation `{name}`")
                };
                out.push(if operation {
                    format!("{path}:{}: the operation `{top}` imports {what}", n + 1)
                } else {
                    format!(
                        "{path}:{}: `{top}` (below the operations) imports {what}",
                        n + 1
                    )
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::module_graph::sources;

    #[test]
    fn operations_import_neither_one_another_nor_the_driver() {
        let files = sources("engine");
        for name in OPERATIONS.iter().chain([&DRIVER]) {
            assert!(
                files.iter().any(|(p, _)| *p == format!("{name}.rs")),
                "no source file `src/engine/{name}.rs`"
            );
        }
        let found = violations(files.iter().map(|(p, t)| (p.as_str(), t.as_str())));
        assert!(
            found.is_empty(),
            "imports against the engine's layers (see engine/layering.rs):\n{}",
            found.join("\n")
        );
    }

    #[test]
    fn an_import_across_operations_or_up_to_the_driver_is_reported() {
        let files = [
            (
                "load.rs",
                "use super::apply::{self, qualified};\nuse super::{ingest, poll, soql};\n",
            ),
            (
                "poll.rs",
                "        super::load::load_rows(ctx, false).await?;\n",
            ),
            ("cdc.rs", "use crate::engine::driver::load; // the driver\n"),
            (
                "deletes.rs",
                "use super::deletes::plan;\nuse super::state::StateStore;\n",
            ),
            (
                "formulas.rs",
                "// see super::poll for the cursor\nuse super::apply;\n",
            ),
            (
                "reread.rs",
                "use super::apply;\n#[cfg(test)]\nmod tests {\n    use super::super::poll;\n}\n",
            ),
            (
                "ingest.rs",
                "use super::{apply, reread::retry_read_errors};\n",
            ),
            (
                "apply/row.rs",
                "use super::super::cdc;\nuse super::parents;\n",
            ),
            ("apply/mod.rs", "pub use super::read_errors::record;\n"),
            (
                "writer/store/mod.rs",
                "use super::super::poll::poll_once;\n",
            ),
            ("driver.rs", "use super::{deletes, formulas, reread};\n"),
            ("mod.rs", "pub mod load;\npub use driver::run_mapping;\n"),
            ("cdc/extra.rs", "use super::apply;\n"),
        ];
        assert_eq!(
            violations(files),
            vec![
                "load.rs:2: the operation `load` imports the operation `poll`".to_string(),
                "poll.rs:1: the operation `poll` imports the operation `load`".to_string(),
                "cdc.rs:1: the operation `cdc` imports the driver".to_string(),
                "ingest.rs:1: `ingest` (below the operations) imports the operation `reread`"
                    .to_string(),
                "apply/row.rs:1: `apply` (below the operations) imports the operation `cdc`"
                    .to_string(),
                "writer/store/mod.rs:1: `writer` (below the operations) imports the operation \
                 `poll`"
                    .to_string(),
                "cdc/extra.rs: an operation is one file (`cdc.rs`)".to_string(),
            ]
        );
    }
}
