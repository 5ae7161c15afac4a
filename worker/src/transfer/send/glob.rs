//! Server-side wildcard expansion of requested paths (upstream's
//! `glob_expand`): `mod/*.iso` names every match inside the module, in
//! sorted order; a pattern that matches nothing is kept as written so the
//! client gets the usual "No such file" error for it. `*` and `?` do not
//! match a leading dot, as with glob(3). Directories are read through the
//! [`ModuleRoot`], so expansion never looks outside the module.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use bstr::ByteSlice;

use crate::transfer::fs::module_root::ModuleRoot;
use crate::wildmatch::wildmatch_bytes;

/// Most matches one argument may expand to.
const MAX_MATCHES: usize = 100_000;

/// Expand `rel` (sanitised, module-relative, may end in `/`) under `root`.
/// Names are bytes: a match that is not UTF-8 comes back exactly as the
/// directory holds it, and patterns match byte for byte (`?` is one byte).
pub(crate) fn expand(root: &ModuleRoot, rel: &[u8]) -> Vec<Vec<u8>> {
    if !rel.contains(&b'*') && !rel.contains(&b'?') && !rel.contains(&b'[') {
        return vec![rel.to_vec()];
    }
    let trailing: &[u8] = if rel.ends_with(b"/") { b"/" } else { b"" };
    let mut found: Vec<Vec<u8>> = vec![Vec::new()];
    for part in rel.trim_end_with(|c| c == '/').split_str("/") {
        let is_pattern = part.contains(&b'*') || part.contains(&b'?') || part.contains(&b'[');
        let mut next = Vec::new();
        for prefix in &found {
            if !is_pattern {
                next.push(join(prefix, part));
                continue;
            }
            let Ok(entries) = root.read_dir(as_path(prefix)) else { continue };
            for entry in entries.flatten() {
                let name = entry.as_bytes();
                if name.starts_with(b".") && !part.starts_with(b".") {
                    continue;
                }
                if wildmatch_bytes(part, name) {
                    next.push(join(prefix, name));
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
            root.lstat(as_path(p)).is_ok()
        } else {
            root.stat(as_path(p)).is_ok_and(|m| m.is_dir())
        }
    });
    if found.is_empty() {
        return vec![rel.to_vec()];
    }
    found.sort();
    found.into_iter().map(|p| [p.as_slice(), trailing].concat()).collect()
}

fn as_path(bytes: &[u8]) -> &Path {
    Path::new(OsStr::from_bytes(bytes))
}

fn join(prefix: &[u8], name: &[u8]) -> Vec<u8> {
    if prefix.is_empty() {
        name.to_vec()
    } else {
        [prefix, b"/", name].concat()
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
        let expand = |rel: &str| -> Vec<String> {
            expand(&root, rel.as_bytes())
                .into_iter()
                .map(|p| String::from_utf8(p).unwrap())
                .collect()
        };
        assert_eq!(expand("*.iso"), ["a.iso", "b.iso"]);
        assert_eq!(expand("sub*/*.iso"), ["sub/x.iso", "sub2/y.iso"]);
        assert_eq!(expand("sub?/"), ["sub2/"]);
        assert_eq!(expand("*.nothing"), ["*.nothing"], "no match keeps the pattern");
        assert_eq!(expand("plain/name"), ["plain/name"]);
    }

    #[test]
    fn names_that_are_not_utf8_expand_to_their_exact_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let latin = OsStr::from_bytes(b"caf\xe9");
        std::fs::create_dir(dir.path().join(latin)).unwrap();
        std::fs::write(dir.path().join(latin).join(OsStr::from_bytes(b"\xff.iso")), b"").unwrap();
        std::fs::write(dir.path().join("cafe"), b"").unwrap();
        let root = ModuleRoot::open(dir.path()).unwrap();
        assert_eq!(expand(&root, b"caf*"), [b"cafe".to_vec(), b"caf\xe9".to_vec()], "sorted as bytes");
        assert_eq!(expand(&root, b"caf?/"), [b"caf\xe9/".to_vec()]);
        assert_eq!(expand(&root, b"*/*.iso"), [b"caf\xe9/\xff.iso".to_vec()]);
    }
}
