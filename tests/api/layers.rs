//! The one-way flow, checked over the source: a module imports only from modules below it.
//! The graph is drawn from `crate::` paths (in `use` lines and inline), per top-level module
//! (`src/<module>.rs` or `src/<module>/`), test modules and comments left out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Top to bottom: the path an event takes, then what every layer may use.
const LAYERS: &[&str] = &[
    "cli",
    "bench",
    "app",
    "web",
    "ingest",
    "outbox",
    "handoff",
    "delivery",
    "simulate",
    "store",
    "providers",
    "normalize",
    "fhir",
    "signature",
    "rate_limit",
    "metrics",
    "telemetry",
    "tls",
    "outbound",
    "config",
    "crypto",
    "domain",
    "error",
];

type Graph = BTreeMap<String, BTreeSet<String>>;

#[test]
fn no_module_imports_from_a_module_above_it_and_there_is_no_cycle() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    collect(&root, &root, &mut files);
    assert!(files.len() > 20, "the source tree was not found");
    let graph = graph(&files);
    if let Some(cycle) = find_cycle(&graph) {
        panic!("import cycle: {}", cycle.join(" -> "));
    }
    let rank = |m: &str| LAYERS.iter().position(|l| *l == m);
    let mut wrong = Vec::new();
    for (from, tos) in &graph {
        let Some(f) = rank(from) else {
            wrong.push(format!("`{from}` is not placed in LAYERS"));
            continue;
        };
        for to in tos {
            match rank(to) {
                Some(t) if t > f => {}
                Some(_) => wrong.push(format!("`{from}` imports `{to}`, which is above it")),
                None => wrong.push(format!("`{to}` is not placed in LAYERS")),
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Finer than the layers: no two source files import each other through any chain, inside a
/// layer too (a module's `mod` declarations and its wiring of its children are not imports).
#[test]
fn no_source_file_is_part_of_an_import_cycle() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    collect_paths(&root, &root, &mut files);
    let graph = file_graph(&files);
    assert!(graph.len() > 30, "the graph was drawn: {}", graph.len());
    if let Some(cycle) = find_cycle(&graph) {
        panic!("import cycle between files: {}", cycle.join(" -> "));
    }
}

#[test]
fn the_file_check_resolves_nested_paths_and_finds_a_cycle() {
    let files = vec![
        (
            "web/mod.rs".to_owned(),
            "pub mod a;\npub mod b;\npub use a::State;".to_owned(),
        ),
        (
            "web/a.rs".to_owned(),
            "use crate::web::b::{self, Thing};\n".to_owned(),
        ),
        (
            "web/b.rs".to_owned(),
            "fn f() { super::a::g(); }".to_owned(),
        ),
        (
            "store/mod.rs".to_owned(),
            "use crate::{web::a::X, domain};".to_owned(),
        ),
        ("domain.rs".to_owned(), String::new()),
    ];
    let g = file_graph(&files);
    assert_eq!(
        g["store/mod.rs"],
        BTreeSet::from(["web/a.rs".to_owned(), "domain.rs".to_owned()])
    );
    let cycle = find_cycle(&g).expect("web/a.rs -> web/b.rs -> web/a.rs");
    assert!(cycle.contains(&"web/a.rs".to_owned()) && cycle.contains(&"web/b.rs".to_owned()));
}

/// Edges from each file to the files its `crate::` and `super::` paths name (the deepest module
/// of each path that is a file).
fn file_graph(files: &[(String, String)]) -> Graph {
    let module_of = |rel: &str| -> Vec<String> {
        let mut parts: Vec<String> = rel
            .trim_end_matches(".rs")
            .split('/')
            .map(str::to_owned)
            .collect();
        if parts.last().is_some_and(|p| p == "mod") {
            parts.pop();
        }
        if parts == ["lib"] || parts == ["main"] {
            parts.clear();
        }
        parts
    };
    let by_module: BTreeMap<Vec<String>, String> = files
        .iter()
        .map(|(rel, _)| (module_of(rel), rel.clone()))
        .collect();
    let mut g = Graph::new();
    for (rel, text) in files {
        let me = module_of(rel);
        let parent: Vec<String> = me[..me.len().saturating_sub(1)].to_vec();
        let code = strip_tests(&strip_comments(text));
        for (anchor, base) in [("crate::", Vec::new()), ("super::", parent)] {
            for path in paths_after(&code, anchor) {
                let full: Vec<String> = base.iter().cloned().chain(path).collect();
                let target = (1..=full.len())
                    .rev()
                    .find_map(|k| by_module.get(&full[..k]));
                if let Some(t) = target.filter(|t| *t != rel) {
                    g.entry(rel.clone()).or_default().insert(t.clone());
                }
            }
        }
    }
    g
}

/// Every path that follows `anchor`, with `a::{b, c::d}` groups expanded.
fn paths_after(code: &str, anchor: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find(anchor) {
        let before = rest[..i].chars().last();
        rest = &rest[i + anchor.len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        expand(rest, Vec::new(), &mut out);
    }
    out
}

fn expand(text: &str, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
    let mut path = prefix;
    let mut rest = text;
    loop {
        let ident: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if ident.is_empty() {
            break;
        }
        rest = &rest[ident.len()..];
        if ident != "self" {
            path.push(ident);
        }
        match rest.strip_prefix("::") {
            Some(r) => rest = r,
            None => break,
        }
    }
    if let Some(group) = rest.strip_prefix('{') {
        let mut depth = 1usize;
        let mut start = 0;
        for (j, ch) in group.char_indices() {
            match ch {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        expand(group[start..j].trim(), path.clone(), out);
                        return;
                    }
                }
                ',' if depth == 1 => {
                    expand(group[start..j].trim(), path.clone(), out);
                    start = j + 1;
                }
                _ => {}
            }
        }
        return;
    }
    if !path.is_empty() {
        out.push(path);
    }
}

#[test]
fn the_layer_check_finds_a_cycle_and_an_upward_import() {
    let files = vec![
        (
            "a".to_owned(),
            "use crate::b::X;\nfn f() { crate::c::g(); }".to_owned(),
        ),
        ("b".to_owned(), "use crate::{c, d::Y};".to_owned()),
        (
            "c".to_owned(),
            "// crate::a in a comment\nuse crate::a::Z;".to_owned(),
        ),
        (
            "d".to_owned(),
            "#[cfg(test)]\nmod tests {\n use crate::a::Q;\n}\n".to_owned(),
        ),
    ];
    let g = graph(&files);
    assert_eq!(g["b"], BTreeSet::from(["c".to_owned(), "d".to_owned()]));
    assert!(!g.contains_key("d"), "a test module's imports do not count");
    let cycle = find_cycle(&g).expect("a -> b -> c -> a");
    assert_eq!(cycle.first(), cycle.last());
    assert!(cycle.contains(&"c".to_owned()) && cycle.contains(&"a".to_owned()));
}

/// Tables whose rows belong to one tenant.
const TENANT_OWNED: &[&str] = &[
    "event",
    "delivery",
    "delivery_attempt",
    "endpoint",
    "endpoint_secret",
    "provider_action",
    "provider_connection",
    "provider_key",
    "subject_head",
];

/// Tenancy by construction: a tenant filter is written only in `store/` (its scoped
/// constructors), and no handler starts a query on a tenant-owned table itself.
#[test]
fn tenant_filters_are_written_only_in_store_and_handlers_query_through_a_tenant_scope() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    collect_paths(&root, &root, &mut files);
    let mut wrong = Vec::new();
    for (path, text) in &files {
        let code = strip_tests(&strip_comments(text));
        let compact: String = code.split_whitespace().collect();
        if path.starts_with("store/") {
            continue;
        }
        for pattern in ["TenantId.eq(", "TenantId.is_in(", "TenantId.ne("] {
            if compact.contains(pattern) {
                wrong.push(format!(
                    "{path}: a tenant filter (`{pattern}`) outside store/"
                ));
            }
        }
        if path.starts_with("web/") {
            for table in TENANT_OWNED {
                for call in ["::Entity::find()", "::Entity::find_by_id("] {
                    let needle = format!("{table}{call}");
                    if compact.contains(&needle) {
                        wrong.push(format!(
                            "{path}: `{needle}` in a handler; start from store::for_tenant"
                        ));
                    }
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert!(
        files.iter().any(|(p, _)| p == "store/scope.rs"),
        "the scope is where it is said to be"
    );
}

fn collect_paths(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_paths(root, &path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            out.push((rel, std::fs::read_to_string(&path).unwrap()));
        }
    }
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(root, &path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let rel = path.strip_prefix(root).unwrap();
            let top = rel
                .components()
                .next()
                .unwrap()
                .as_os_str()
                .to_string_lossy();
            let module = top.trim_end_matches(".rs").to_owned();
            if module != "main" && module != "lib" {
                out.push((module, std::fs::read_to_string(&path).unwrap()));
            }
        }
    }
}

fn graph(files: &[(String, String)]) -> Graph {
    let mut g = Graph::new();
    for (module, text) in files {
        let code = strip_tests(&strip_comments(text));
        for target in references(&code) {
            if &target != module {
                g.entry(module.clone()).or_default().insert(target);
            }
        }
    }
    g
}

fn strip_comments(text: &str) -> String {
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Drops every item that follows `#[cfg(test)]` (a `mod … { … }` block, or one item).
fn strip_tests(code: &str) -> String {
    let mut out = String::new();
    let mut rest = code;
    while let Some(i) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..i]);
        let after = &rest[i..];
        let Some(open) = after.find('{') else {
            return out;
        };
        let mut depth = 0usize;
        let mut end = after.len();
        for (j, ch) in after[open..].char_indices() {
            match ch {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = open + j + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// The top-level modules a text names after `crate::`, including inside `use crate::{…}` groups.
fn references(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 1usize;
            let mut item = String::new();
            let mut items = Vec::new();
            for ch in group.chars() {
                match ch {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    _ => {}
                }
                if depth == 0 {
                    break;
                }
                if ch == ',' && depth == 1 {
                    items.push(std::mem::take(&mut item));
                } else {
                    item.push(ch);
                }
            }
            items.push(item);
            for it in items {
                let name: String = it
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() && name != "self" {
                    found.insert(name);
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                found.insert(name);
            }
        }
    }
    found
}

fn find_cycle(g: &Graph) -> Option<Vec<String>> {
    fn visit(
        g: &Graph,
        node: &str,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == node) {
            let mut cycle = path[i..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in g.get(node).into_iter().flatten() {
            if let Some(c) = visit(g, next, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    g.keys()
        .find_map(|n| visit(g, n, &mut Vec::new(), &mut done))
}
