//! The crate's module graph has no cycle: no module imports one that imports it back, directly
//! or through others. A module here is a top-level one (`adapter`) or one level below
//! (`engine::state`, `cli::page`, `salesforce::pubsub`); a file counts for the module it is in
//! (`engine/writer/run.rs` for `engine::writer`). A module and its parent or children are not an
//! import between modules (a `mod.rs` declares its children and they build on its types).
//!
//! The test reads every file under `src/` and follows the paths named through `crate::…` and
//! `super::…` (alone or in `{…}` groups). Comments, a file's `#[cfg(test)]` part and `tests.rs`
//! files are not read. `engine/layering.rs` adds the read path's own rule between its layers.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Every `.rs` file under `src/<dir>` of this crate, as (path relative to it, text) (for the
/// tests that read the crate's sources: this one and `engine/layering.rs`).
pub(crate) fn sources(dir: &str) -> Vec<(String, String)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
        for entry in std::fs::read_dir(dir).expect("read src dir") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                walk(root, &path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(root).expect("under the root");
                let text = std::fs::read_to_string(&path).expect("read source");
                out.push((rel.to_string_lossy().replace('\\', "/"), text));
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join(dir);
    let mut out = Vec::new();
    walk(&root, &root, &mut out);
    out
}

/// The module path of a file under `src/` (`engine/apply/row.rs` → `["engine", "apply", "row"]`,
/// `engine/mod.rs` → `["engine"]`, `lib.rs` → `[]`).
fn module_path(path: &str) -> Vec<String> {
    let mut segs: Vec<String> = path
        .trim_end_matches(".rs")
        .split('/')
        .map(str::to_owned)
        .collect();
    if segs.last().is_some_and(|s| s == "mod" || s == "lib") {
        segs.pop();
    }
    segs
}

/// The graph's node for a module path: its first two segments.
fn node(path: &[String]) -> Vec<String> {
    path.iter().take(2).cloned().collect()
}

/// The code of one line, without its `//` comment.
pub(crate) fn code_of(line: &str) -> &str {
    line.split_once("//").map_or(line, |(code, _)| code)
}

/// The length of the identifier `s` starts with (0: none).
fn ident_len(s: &str) -> usize {
    s.find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(s.len())
}

/// The items of a `{…}` group (its text after the `{`), split at top-level commas.
fn group_items(group: &str) -> Vec<&str> {
    let mut items = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                items.push(&group[start..i]);
                return items;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&group[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&group[start..]);
    items
}

/// The paths `text` names below `base` (`a::b::{c, d::e}` → `base::a::b::c`, `base::a::b::d::e`).
fn paths_below(base: &[String], text: &str, out: &mut Vec<Vec<String>>) {
    let mut path = base.to_vec();
    let mut rest = text.trim_start();
    loop {
        if let Some(group) = rest.strip_prefix('{') {
            for item in group_items(group) {
                paths_below(&path, item, out);
            }
            return;
        }
        let len = ident_len(rest);
        if len == 0 {
            break;
        }
        let name = &rest[..len];
        if name != "self" {
            path.push(name.to_owned());
        }
        match rest[len..].strip_prefix("::") {
            Some(next) => rest = next,
            None => break,
        }
    }
    out.push(path);
}

/// The paths a line's code names from module `module` through `crate::…` and `super::…`,
/// from the crate's root (`super::a::{b, c::d}` in `engine::x` → `engine::a::b`, `engine::a::c::d`).
pub(crate) fn named_paths(code: &str, module: &[String]) -> Vec<Vec<String>> {
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
        let mut after = &rest[len..];
        if !preceded && word == "crate" {
            if let Some(next) = after.strip_prefix("::") {
                paths_below(&[], next, &mut out);
            }
        } else if !preceded && word == "super" {
            let mut up = 1;
            while let Some(next) = after.strip_prefix("::super") {
                up += 1;
                after = next;
            }
            if let Some(next) = after.strip_prefix("::") {
                let base = &module[..module.len().saturating_sub(up)];
                paths_below(base, next, &mut out);
            }
        }
        i += len;
    }
    out
}

/// Whether one of two nodes contains the other (a module and its parent or child).
fn related(a: &[String], b: &[String]) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

/// The imports between modules in `files` (`(path under src/, text)`): node → nodes it names.
fn graph<'a>(
    files: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> BTreeMap<String, BTreeSet<String>> {
    let files: Vec<(&str, &str)> = files
        .into_iter()
        .filter(|(p, _)| *p != "tests.rs" && !p.ends_with("/tests.rs"))
        .collect();
    let modules: BTreeSet<Vec<String>> = files.iter().map(|(p, _)| node(&module_path(p))).collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (path, text) in files {
        let module = module_path(path);
        let from = node(&module);
        for line in text.lines() {
            if line.trim_start().starts_with("#[cfg(test)]") {
                break;
            }
            for named in named_paths(code_of(line), &module) {
                // The module named: the longest known prefix (an item's path names its module).
                let to = (0..=named.len().min(2))
                    .rev()
                    .map(|n| named[..n].to_vec())
                    .find(|prefix| modules.contains(prefix))
                    .unwrap_or_default();
                if !related(&from, &to) {
                    edges
                        .entry(from.join("::"))
                        .or_default()
                        .insert(to.join("::"));
                }
            }
        }
    }
    edges
}

/// The cycles of `edges` (its strongly connected components of more than one node), each with
/// its edges inside the cycle.
fn cycles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    // Two nodes are in one cycle when each reaches the other.
    let reach = |from: &str| {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.to_owned()];
        while let Some(n) = todo.pop() {
            for next in edges.get(&n).into_iter().flatten() {
                if seen.insert(next.clone()) {
                    todo.push(next.clone());
                }
            }
        }
        seen
    };
    let reached: BTreeMap<&String, BTreeSet<String>> =
        edges.keys().map(|n| (n, reach(n))).collect();
    let mut done = BTreeSet::new();
    let mut out = Vec::new();
    for (n, from_n) in &reached {
        if done.contains(*n) || !from_n.contains(*n) {
            continue;
        }
        let members: BTreeSet<&String> = reached
            .iter()
            .filter(|(m, from_m)| from_n.contains(**m) && from_m.contains(*n))
            .map(|(m, _)| *m)
            .collect();
        let inside: Vec<String> = members
            .iter()
            .flat_map(|m| {
                edges[*m]
                    .iter()
                    .filter(|t| members.contains(t))
                    .map(move |t| format!("{m} → {t}"))
            })
            .collect();
        out.push(inside.join(", "));
        done.extend(members.into_iter().cloned());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_module_imports_one_that_imports_it_back() {
        let files = sources("");
        let edges = graph(files.iter().map(|(p, t)| (p.as_str(), t.as_str())));
        assert!(
            edges.contains_key("engine::driver") && edges.contains_key("cli::page"),
            "the graph was read: {edges:?}"
        );
        let found = cycles(&edges);
        assert!(
            found.is_empty(),
            "import cycles between modules (see module_graph.rs):\n{}",
            found.join("\n")
        );
    }

    #[test]
    fn a_cycle_through_crate_super_and_groups_is_found_and_parents_are_not_cycles() {
        let files = [
            ("engine/mod.rs", "pub mod a;\npub mod b;\nuse self::a::X;\n"),
            (
                "engine/a.rs",
                "use crate::{adapter::Y, engine::{b::Z, Engine}};\n",
            ),
            (
                "engine/b/mod.rs",
                "use super::super::engine::c; // super::a\n",
            ),
            (
                "engine/b/deep.rs",
                "use super::super::c::W;\nuse super::Z;\n",
            ),
            ("engine/c.rs", "fn f() { crate::engine::a::g() }\n"),
            (
                "engine/d.rs",
                "#[cfg(test)]\nmod tests { use super::super::a; }\n",
            ),
            ("engine/d/tests.rs", "use crate::engine::a;\n"),
            ("adapter/mod.rs", "use crate::engine::Engine;\n"),
        ];
        let edges = graph(files);
        let names = |n: &str| edges.get(n).map(|s| s.iter().cloned().collect::<Vec<_>>());
        assert_eq!(
            names("engine::a"),
            Some(vec!["adapter".into(), "engine::b".into()])
        );
        assert_eq!(names("engine::b"), Some(vec!["engine::c".into()]));
        assert_eq!(names("engine::c"), Some(vec!["engine::a".into()]));
        assert_eq!(names("engine::d"), None, "the test part is not read");
        assert_eq!(
            names("engine"),
            None,
            "a parent and its children are no import"
        );
        assert_eq!(names("adapter"), Some(vec!["engine".into()]));
        assert_eq!(
            cycles(&edges),
            vec!["engine::a → engine::b, engine::b → engine::c, engine::c → engine::a"]
        );
    }
}
