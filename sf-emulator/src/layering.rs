//! The crate's floors and the rule between them: a file imports only from its own floor or the
//! floors below (`data` ← `org` ← `routes` ← `server`/`tls`). The tests read `src/` and fail
//! on an import that points up, or on a `crate::` path that names no floor (the crate root's
//! re-exports are for other crates; inside, a path says which floor it comes from).

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

/// Every import in `files` (`(path under src/, text)`) that breaks the rule, as
/// `path:line: message`.
fn violations<'a>(files: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<String> {
    let mut out = Vec::new();
    for (path, text) in files {
        let Some(floor) = floor_of_file(path) else {
            continue;
        };
        for (n, line) in text.lines().enumerate() {
            let code = code_of(line);
            for (at, _) in code.match_indices("crate::") {
                if at > 0 && code[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
                    continue; // `sf_emulator_crate::`, not a path from the crate root
                }
                let rest = &code[at + "crate::".len()..];
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                match floor_of_module(&name) {
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
        ];
        assert_eq!(
            violations(files),
            vec![
                "data/store.rs:2: floor 1 imports `crate::org` from floor 2 above it".to_string(),
                "org/write.rs:1: floor 2 imports `crate::routes` from floor 3 above it".to_string(),
                "org/rules.rs:1: `crate::write` names no floor (use `crate::data::…`, \
                 `crate::org::…`, `crate::routes::…`)"
                    .to_string(),
            ]
        );
    }
}
