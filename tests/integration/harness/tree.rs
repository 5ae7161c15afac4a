//! Comparing destination trees: everything about a tree a user would notice.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Everything about a tree a user would notice: type, content, mode, mtime, owner, link target.
pub fn snapshot(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
        entries.sort();
        for path in entries {
            let rel = shown_name(path.strip_prefix(root).unwrap());
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let ft = meta.file_type();
            let what = if ft.is_symlink() {
                format!("link -> {}", std::fs::read_link(&path).unwrap().display())
            } else if ft.is_dir() {
                format!(
                    "dir {:o} {}:{} mtime {}",
                    meta.mode() & 0o7777,
                    meta.uid(),
                    meta.gid(),
                    meta.mtime()
                )
            } else if ft.is_file() {
                let data = std::fs::read(&path).unwrap();
                format!(
                    "file {:o} {}:{} mtime {}.{:09} nlink {} len {} sum {:x}",
                    meta.mode() & 0o7777,
                    meta.uid(),
                    meta.gid(),
                    meta.mtime(),
                    meta.mtime_nsec(),
                    meta.nlink(),
                    data.len(),
                    data.iter()
                        .fold(0xcbf29ce484222325u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x100000001b3))
                )
            } else {
                format!("special {:o}", meta.mode())
            };
            // Extended attributes (a `fake super` module's record of what
            // the file really is among them), the link's own for a link.
            let mut what = what;
            let mut names: Vec<_> = xattr::list(&path).map(|l| l.collect()).unwrap_or_default();
            names.sort();
            for name in names {
                let value = xattr::get(&path, &name).ok().flatten().unwrap_or_default();
                what += &format!(" {}={}", name.to_string_lossy(), String::from_utf8_lossy(&value));
            }
            out.insert(rel, what);
            if ft.is_dir() {
                walk(root, &path, out);
            }
        }
    }
    walk(root, root, &mut out);
    out
}

/// A path as text, bytes that are not UTF-8 as `\xNN` (so two names that
/// differ only there stay apart).
fn shown_name(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut out = String::new();
    for chunk in path.as_os_str().as_bytes().utf8_chunks() {
        out.push_str(chunk.valid());
        for byte in chunk.invalid() {
            out.push_str(&format!("\\x{byte:02x}"));
        }
    }
    out
}

/// `cp -a FROM/. TO`: contents, modes (ACLs with them), owners, times.
pub fn copy_tree(from: &Path, to: &Path) {
    let copied = std::process::Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", from.display()))
        .arg(to)
        .status()
        .unwrap();
    assert!(copied.success(), "cp -a {} {}", from.display(), to.display());
}
