//! Server-side wildcard expansion of requested paths (upstream's
//! `glob_expand`): `mod/*.iso` names every match inside the module, in
//! sorted order; a pattern that matches nothing is kept as written so the
//! client gets the usual "No such file" error for it. `*` and `?` do not
//! match a leading dot, as with glob(3). Directories are read through the
//! [`ModuleRoot`], so expansion never looks outside the module.

use std::path::Path;

use crate::transfer::module_root::ModuleRoot;
use crate::wildmatch::wildmatch;

/// Most matches one argument may expand to.
const MAX_MATCHES: usize = 100_000;

/// Expand `rel` (sanitised, module-relative, may end in `/`) under `root`.
pub fn expand(root: &ModuleRoot, rel: &str) -> Vec<String> {
    if !rel.contains(['*', '?', '[']) {
        return vec![rel.to_string()];
    }
    let trailing = if rel.ends_with('/') { "/" } else { "" };
    let parts: Vec<&str> = rel.trim_end_matches('/').split('/').collect();
    let mut found: Vec<String> = vec![String::new()];
    for part in parts {
        let mut next = Vec::new();
        for prefix in &found {
            if !part.contains(['*', '?', '[']) {
                next.push(join(prefix, part));
                continue;
            }
            let Ok(entries) = root.read_dir(Path::new(prefix)) else { continue };
            for entry in entries.flatten() {
                let name = entry.to_string_lossy().into_owned();
                if name.starts_with('.') && !part.starts_with('.') {
                    continue;
                }
                if wildmatch(part, &name) {
                    next.push(join(prefix, &name));
                }
            }
            if next.len() > MAX_MATCHES {
                break;
            }
        }
        found = next;
    }
    // A trailing slash, as with glob(3), matches directories only.
    found.retain(|p| {
        if trailing.is_empty() {
            root.lstat(Path::new(p)).is_ok()
        } else {
            root.stat(Path::new(p)).is_ok_and(|m| m.is_dir())
        }
    });
    if found.is_empty() {
        return vec![rel.to_string()];
    }
    found.sort();
    found.into_iter().map(|p| format!("{p}{trailing}")).collect()
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}/{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_within_the_root_sorted() {
        let dir = tempfile::tempdir().unwrap();
        for p in ["b.iso", "a.iso", ".hidden.iso", "c.txt", "sub/x.iso", "sub2/y.iso"] {
            let path = dir.path().join(p);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, b"").unwrap();
        }
        let root = ModuleRoot::open(dir.path()).unwrap();
        assert_eq!(expand(&root, "*.iso"), ["a.iso", "b.iso"]);
        assert_eq!(expand(&root, "sub*/*.iso"), ["sub/x.iso", "sub2/y.iso"]);
        assert_eq!(expand(&root, "sub?/"), ["sub2/"]);
        assert_eq!(expand(&root, "*.nothing"), ["*.nothing"], "no match keeps the pattern");
        assert_eq!(expand(&root, "plain/name"), ["plain/name"]);
    }
}
