//! The library's top-level modules form layers: no module reaches, through `crate::`
//! paths, a module that reaches it back, and no module uses the aggregate error (it sits
//! above every job, where the binaries and the Python package meet the library).
//!
//! `cargo modules` draws the same graph but is a tool to install and read; this test reads
//! `src/` itself so that the test command fails on the commit that closes a circle.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Each top-level module (`src/x.rs` and everything under `src/x/`) and the top-level
/// modules its non-test code names through `crate::`.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for entry in fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        if matches!(name.as_str(), "lib" | "main" | "bin" | "cli") {
            continue; // the crate root and the binaries, above every layer
        }
        if path.is_dir() {
            collect(&path, files.entry(name).or_default());
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.entry(name).or_default().push(path);
        }
    }
    let modules: BTreeSet<String> = files.keys().cloned().collect();
    files
        .iter()
        .map(|(module, paths)| {
            let mut uses = BTreeSet::new();
            for p in paths {
                let text = fs::read_to_string(p).unwrap();
                for used in crate_paths(&code_of(&text)) {
                    if used != *module && modules.contains(&used) {
                        uses.insert(used);
                    }
                }
            }
            (module.clone(), uses)
        })
        .collect()
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs")
            && path.file_name().is_some_and(|n| n != "tests.rs")
        {
            out.push(path);
        }
    }
}

/// The text without comments (doc links are not dependencies) and without the trailing
/// `#[cfg(test)] mod tests { ... }` (a test may use anything).
fn code_of(text: &str) -> String {
    let end = text.find("#[cfg(test)]\nmod tests {").unwrap_or(text.len());
    text[..end]
        .lines()
        .map(|l| l.split("//").next().unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The first segment of every `crate::a::...` and of each item of `crate::{a, b::c}`.
fn crate_paths(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 1;
            let mut item = String::new();
            let mut items = Vec::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 1 => items.push(std::mem::take(&mut item)),
                    _ if depth == 1 => item.push(c),
                    _ => {}
                }
                if depth == 0 {
                    break;
                }
            }
            items.push(item);
            out.extend(items.iter().filter_map(|i| ident(i.trim_start())));
        } else {
            out.extend(ident(rest));
        }
    }
    out
}

fn ident(s: &str) -> Option<String> {
    let end = s
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    (end > 0).then(|| s[..end].to_string())
}

/// A path `a -> b -> ... -> a` through `graph`, if there is one.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == node) {
            let mut cycle = path[i..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in &graph[node] {
            if let Some(c) = visit(next, graph, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|n| visit(n, graph, &mut Vec::new(), &mut done))
}

#[test]
fn no_cycle_between_top_level_modules() {
    let g = graph();
    assert!(g.len() > 20, "found only {:?}", g.keys());
    assert_eq!(find_cycle(&g), None, "an import cycle");
}

#[test]
fn no_module_uses_the_aggregate_error() {
    let users: Vec<String> = graph()
        .into_iter()
        .filter(|(_, uses)| uses.contains("error"))
        .map(|(m, _)| m)
        .collect();
    assert!(users.is_empty(), "{users:?} use crate::error");
}

#[test]
fn the_check_sees_paths_groups_and_cycles() {
    let code = code_of(
        "use crate::{a, b::{c, d}, e::f};\n// crate::commented\nfn x() { crate::g::h(); }\n\
         #[cfg(test)]\nmod tests {\n use crate::t;\n}",
    );
    assert_eq!(crate_paths(&code), ["a", "b", "e", "g"]);
    let edges = |pairs: &[(&str, &str)]| {
        let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (a, b) in pairs {
            g.entry(a.to_string()).or_default().insert(b.to_string());
            g.entry(b.to_string()).or_default();
        }
        g
    };
    assert_eq!(
        find_cycle(&edges(&[("a", "b"), ("b", "c"), ("c", "a"), ("d", "a")])),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
    assert_eq!(
        find_cycle(&edges(&[("a", "b"), ("a", "c"), ("b", "c")])),
        None
    );
}
