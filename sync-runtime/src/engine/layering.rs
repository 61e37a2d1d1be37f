//! The read path's layers and the rule between them: the per-mapping **driver** (`driver.rs`)
//! sequences the **operations** (`load`, `poll`, `cdc`, `reread`, `deletes`, `formulas`), which
//! are built on the **shared** modules (`apply`, `ingest`, `state`, `read_errors`, `hub`, …).
//! An operation imports no other operation and not the driver; a shared module imports neither
//! an operation nor the driver. So an operation can be read, tested and replaced on its own, and
//! a new one (a second streaming transport's apply, a new repair) is one module the driver calls.
//!
//! The tests read every file under `src/engine/` and fail on an engine module named through
//! `super::…` (climbing to `engine`) or `crate::engine::…`, alone or in a `{…}` group, against
//! the rule. Comments and a file's `#[cfg(test)]` part are not read; every operation must be a
//! single file.

use crate::module_graph::{code_of, ident_len};

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

/// The first segment of each path in a `{…}` group (`{self, a, b::c}` → `a`, `b`), or of the
/// path itself.
fn heads(after: &str) -> Vec<&str> {
    match after.strip_prefix('{') {
        Some(group) => {
            let group = group.split_once('}').map_or(group, |(g, _)| g);
            group
                .split(',')
                .map(str::trim)
                .map(|item| &item[..ident_len(item)])
                .filter(|name| !name.is_empty() && *name != "self")
                .collect()
        }
        None => {
            let name = &after[..ident_len(after)];
            if name.is_empty() {
                Vec::new()
            } else {
                vec![name]
            }
        }
    }
}

/// The engine modules (`engine::x`) a line's code names, from module `module` of the engine:
/// `crate::engine::x`, and `super::…::x` when the `super`s climb exactly to `engine`.
fn engine_modules<'c>(code: &'c str, module: &[&str]) -> Vec<&'c str> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < code.len() {
        let rest = &code[i..];
        let len = ident_len(rest);
        if len == 0 {
            i += rest.chars().next().map_or(1, char::len_utf8);
            continue;
        }
        let word = &rest[..len];
        let preceded = code[..i].ends_with("::");
        let after = &rest[len..];
        if !preceded && word == "crate" {
            if let Some(next) = after.strip_prefix("::engine::") {
                out.extend(heads(next));
            }
        } else if !preceded && word == "super" {
            let mut up = 1;
            let mut after = after;
            while let Some(next) = after.strip_prefix("::super") {
                up += 1;
                after = next;
            }
            if up == module.len() {
                if let Some(next) = after.strip_prefix("::") {
                    out.extend(heads(next));
                }
            }
        }
        i += len;
    }
    out
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
    use std::path::Path;

    #[test]
    fn operations_import_neither_one_another_nor_the_driver() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/engine");
        let mut files = Vec::new();
        sources(&root, &root, &mut files);
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
