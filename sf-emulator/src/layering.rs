//! The crate's floors and the rule between them: a file imports only from its own floor or the
//! floors below (`data` ← `org` ← `routes` ← `server`/`tls`). The tests read `src/` and fail
//! on a path that points up (`crate::x`, or `super::…::x` climbing to the crate root), or on
//! a `crate::` path that names no floor (the crate root's re-exports are for other crates;
//! inside, a path says which floor it comes from). Comments are not read.

/// The floors, lowest first: a module path's first segment → its floor number.
const FLOORS: &[(&str, u8)] = &[
    ("data", 1),
    ("org", 2),
    ("routes", 3),
    ("server", 4),
    ("tls", 4),
];

/// The floor of a top-level module name (`data`, `org`, …).
fn floor_of_module(name: &str) -> Option<u8> {
    FLOORS.iter().find(|(m, _)| *m == name).map(|(_, f)| *f)
}

/// The floor of a file under `src/` (`routes/bulk1/jobs.rs` → 3); None for the crate root
/// files (`lib.rs`, `main.rs`, this file), which may name every floor.
fn floor_of_file(path: &str) -> Option<u8> {
    let first = path.split('/').next()?;
    floor_of_module(first.trim_end_matches(".rs")).filter(|_| first != "lib.rs")
}

/// The code of one line, without its `//` comment.
fn code_of(line: &str) -> &str {
    line.split_once("//").map_or(line, |(code, _)| code)
}

/// The module path of a file under `src/` (`routes/bulk1/mod.rs` → `["routes", "bulk1"]`).
fn module_path(path: &str) -> Vec<&str> {
    let mut segs: Vec<&str> = path.trim_end_matches(".rs").split('/').collect();
    if segs.last() == Some(&"mod") {
        segs.pop();
    }
    segs
}

/// The first segment after each path from the crate root in `code`: `crate::x`, and
/// `super::…::x` when the `super`s climb to the crate root from module `module`.
fn root_paths<'c>(code: &'c str, module: &[&str]) -> Vec<&'c str> {
    let ident_end = |s: &str| {
        s.find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(s.len())
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i < code.len() {
        let rest = &code[i..];
        let start = ident_end(rest);
        if start > 0 {
            let word = &rest[..start];
            let preceded = code[..i].ends_with("::");
            let mut after = &rest[start..];
            if !preceded && word == "crate" && after.starts_with("::") {
                after = &after[2..];
                out.push(&after[..ident_end(after)]);
            } else if !preceded && word == "super" {
                let mut up = 1;
                while let Some(next) = after.strip_prefix("::super") {
                    up += 1;
                    after = next;
                }
                if up >= module.len() {
                    // `super::*` / `super::{…}` from a top-level file: the crate root itself.
                    if let Some(next) = after.strip_prefix("::").filter(|n| ident_end(n) > 0) {
                        out.push(&next[..ident_end(next)]);
                    }
                }
            }
            i += start;
        } else {
            i += rest.chars().next().map_or(1, char::len_utf8);
        }
    }
    out
}

/// Every import in `files` (`(path under src/, text)`) that breaks the rule, as
/// `path:line: message`.
fn violations<'a>(files: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<String> {
    let mut out = Vec::new();
    for (path, text) in files {
        let Some(floor) = floor_of_file(path) else {
            continue;
        };
        let module = module_path(path);
        for (n, line) in text.lines().enumerate() {
            for name in root_paths(code_of(line), &module) {
                match floor_of_module(name) {
                    None => out.push(format!(
                        "{path}:{}: `crate::{name}` names no floor (use `crate::data::…`, \
                         `crate::org::…`, `crate::routes::…`)",
                        n + 1
                    )),
                    Some(to) if to > floor => out.push(format!(
                        "{path}:{}: floor {floor} imports `crate::{name}` from floor {to} above it",
                        n + 1
                    )),
                    Some(_) => {}
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// Every `.rs` file under `dir`, as (path relative to `root`, text).
    fn sources(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
        for entry in std::fs::read_dir(dir).expect("read src dir") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                sources(root, &path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(root).expect("under src");
                let text = std::fs::read_to_string(&path).expect("read source");
                out.push((rel.to_string_lossy().replace('\\', "/"), text));
            }
        }
    }

    #[test]
    fn no_floor_imports_from_a_floor_above_it() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        sources(&root, &root, &mut files);
        for (floor, _) in FLOORS {
            assert!(
                files.iter().any(|(p, _)| p
                    .split('/')
                    .next()
                    .is_some_and(|f| f.trim_end_matches(".rs") == *floor)),
                "no source file found for floor `{floor}`"
            );
        }
        let found = violations(files.iter().map(|(p, t)| (p.as_str(), t.as_str())));
        assert!(
            found.is_empty(),
            "imports against the floors (see lib.rs):\n{}",
            found.join("\n")
        );
    }

    #[test]
    fn an_upward_or_floorless_import_is_reported() {
        let files = [
            (
                "data/store.rs",
                "use crate::data::ids::SfId;\nuse crate::org::Org;\n",
            ),
            (
                "org/write.rs",
                "use crate::routes::session::Authed; // handler type\n",
            ),
            ("org/rules.rs", "let w = crate::write::defaults(o);\n"),
            (
                "routes/rest/mod.rs",
                "use crate::org::Org;\nuse crate::data::error::ApiError;\n",
            ),
            ("server.rs", "use crate::routes::router;\n"),
            ("lib.rs", "pub use org::write;\n"),
            (
                "org/cdc/mod.rs",
                "// see crate::routes::streaming for the transport\n",
            ),
            (
                "data/soql/exec.rs",
                "use super::bind::Pred;\nuse super::super::store::Store;\n",
            ),
            (
                "data/soql/render.rs",
                "use super::super::super::org::Org;\n",
            ),
            (
                "routes/bulk1/jobs.rs",
                "use super::super::session::Authed;\n",
            ),
            ("tls.rs", "use super::*;\n"),
        ];
        assert_eq!(
            violations(files),
            vec![
                "data/store.rs:2: floor 1 imports `crate::org` from floor 2 above it".to_string(),
                "org/write.rs:1: floor 2 imports `crate::routes` from floor 3 above it".to_string(),
                "org/rules.rs:1: `crate::write` names no floor (use `crate::data::…`, \
                 `crate::org::…`, `crate::routes::…`)"
                    .to_string(),
                "data/soql/render.rs:1: floor 1 imports `crate::org` from floor 2 above it"
                    .to_string(),
            ]
        );
    }
}
