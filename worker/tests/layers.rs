//! The worker's layers, checked from its sources: what the compiler's
//! visibility rules cannot say (`pub(crate)` lets any module of the crate
//! import any other) is said here.
//!
//! - the transfer engine knows nothing of who drives it: no file under
//!   `transfer/` imports `session`, `handshake`, `listener` or the
//!   process code;
//! - the two roles stand apart: nothing under `transfer/receive/` imports
//!   `transfer/send/`, and nothing under `transfer/send/` imports
//!   `transfer/receive/`;
//! - the handshake does not import the session it hands over to;
//! - no two files import each other;
//! - the protocol crate depends on no other crate of the workspace.
//!
//! A reference is a path starting with `crate::`, `super::` or `self::`
//! (in code, `use` groups included); it names the longest module file it
//! reaches.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every module file of the worker: module path (`transfer::send::sender`)
/// to its file.
fn module_files() -> BTreeMap<String, PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = BTreeMap::new();
    let mut dirs = vec![root.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(&root).unwrap().with_extension("");
                let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
                if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
                    parts.pop();
                }
                out.insert(parts.join("::"), path);
            }
        }
    }
    out
}

/// The code of a file without comments, string literals and the unit
/// tests at its end.
fn code_of(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let text = match text.find("#[cfg(test)]\nmod tests {") {
        Some(at) => &text[..at],
        None => &text[..],
    };
    let mut code = String::with_capacity(text.len());
    for line in text.lines() {
        let line = line.split("//").next().unwrap_or("");
        let mut in_string = false;
        for c in line.chars() {
            if c == '"' {
                in_string = !in_string;
            } else if !in_string {
                code.push(c);
            }
        }
        code.push('\n');
    }
    code
}

/// The paths a file's code names, made absolute (`a::b::c`).
fn referenced_paths(module: &str, code: &str) -> Vec<String> {
    let here: Vec<&str> = if module.is_empty() {
        Vec::new()
    } else {
        module.split("::").collect()
    };
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let bytes: Vec<char> = code.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if i > 0 && (is_ident(bytes[i - 1]) || bytes[i - 1] == ':') {
            i += 1;
            continue;
        }
        let rest: String = bytes[i..bytes.len().min(i + 200)].iter().collect();
        let (base, after) = if let Some(r) = rest.strip_prefix("crate::") {
            (Vec::new(), r.to_string())
        } else if let Some(r) = rest.strip_prefix("self::") {
            (here.clone(), r.to_string())
        } else if rest.starts_with("super::") {
            let mut r = rest.as_str();
            let mut up = 0;
            while let Some(next) = r.strip_prefix("super::") {
                up += 1;
                r = next;
            }
            (here[..here.len().saturating_sub(up)].to_vec(), r.to_string())
        } else {
            i += 1;
            continue;
        };
        let path: String = after.chars().take_while(|&c| is_ident(c) || c == ':').collect();
        let path = path.trim_end_matches(':');
        let mut full: Vec<String> = base.iter().map(|s| s.to_string()).collect();
        full.extend(path.split("::").filter(|s| !s.is_empty()).map(str::to_string));
        let group = after[path.len()..]
            .strip_prefix("::{")
            .or_else(|| after[path.len()..].strip_prefix("{"));
        match group {
            Some(g) => {
                for item in g.split('}').next().unwrap_or("").split(',') {
                    let name: String = item.trim().chars().take_while(|&c| is_ident(c) || c == ':').collect();
                    if !name.is_empty() && name != "self" {
                        out.push(format!("{}::{}", full.join("::"), name));
                    }
                }
                out.push(full.join("::"));
            }
            None => out.push(full.join("::")),
        }
        i += 1;
    }
    out
}

/// Module to the modules its file references (itself and its ancestors
/// left out).
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let files = module_files();
    let resolve = |path: &str| -> Option<String> {
        let parts: Vec<&str> = path.split("::").collect();
        (1..=parts.len())
            .rev()
            .map(|n| parts[..n].join("::"))
            .find(|m| files.contains_key(m))
    };
    let mut graph = BTreeMap::new();
    for (module, path) in &files {
        let mut targets = BTreeSet::new();
        for referenced in referenced_paths(module, &code_of(path)) {
            if let Some(target) = resolve(&referenced) {
                if &target != module && !target.is_empty() {
                    targets.insert(target);
                }
            }
        }
        graph.insert(module.clone(), targets);
    }
    graph
}

/// Every import from a module under `from` to a module under `to`.
fn crossings(graph: &BTreeMap<String, BTreeSet<String>>, from: &str, to: &[&str]) -> Vec<String> {
    let under = |m: &str, prefix: &str| m == prefix || m.starts_with(&format!("{prefix}::"));
    graph
        .iter()
        .filter(|(m, _)| under(m, from))
        .flat_map(|(m, ts)| {
            ts.iter()
                .filter(|t| to.iter().any(|p| under(t, p)))
                .map(move |t| format!("{m} -> {t}"))
        })
        .collect()
}

#[test]
fn the_transfer_engine_does_not_know_its_driver() {
    let graph = imports();
    assert_eq!(
        crossings(
            &graph,
            "transfer",
            &["session", "handshake", "listener", "process", "stdio", "hooks"]
        ),
        Vec::<String>::new()
    );
}

#[test]
fn the_send_and_receive_roles_stand_apart() {
    let graph = imports();
    assert_eq!(crossings(&graph, "transfer::receive", &["transfer::send"]), Vec::<String>::new());
    assert_eq!(crossings(&graph, "transfer::send", &["transfer::receive"]), Vec::<String>::new());
}

#[test]
fn the_handshake_does_not_import_the_session() {
    assert_eq!(crossings(&imports(), "handshake", &["session"]), Vec::<String>::new());
}

#[test]
fn no_two_files_import_each_other() {
    let graph = imports();
    let mut mutual = Vec::new();
    for (a, targets) in &graph {
        for b in targets {
            if a < b && graph.get(b).is_some_and(|back| back.contains(a)) {
                mutual.push(format!("{a} <-> {b}"));
            }
        }
    }
    assert_eq!(mutual, Vec::<String>::new());
}

#[test]
fn the_checker_sees_imports() {
    // The rules above pass vacuously if the parser finds nothing: it must
    // see what the session imports of the transfer engine.
    let graph = imports();
    assert!(
        graph["session::pull"].contains("transfer::send::sender"),
        "{:?}",
        graph["session::pull"]
    );
    assert!(graph["transfer::receive::driver"].contains("transfer::receive::setup"));
    assert!(graph.len() > 100, "every module file found");
}

#[test]
fn the_protocol_crate_depends_on_no_other_crate_of_the_workspace() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../protocol/Cargo.toml");
    let text = std::fs::read_to_string(manifest).unwrap();
    let deps = text.split("[dependencies]").nth(1).unwrap_or("");
    assert!(!deps.contains("oxrsyncd-"), "protocol/Cargo.toml: {deps}");
}
