//! Paths named by a client or an operator, made module-relative and
//! safe before anything is opened: upstream's `sanitize_path` for a
//! daemon, and where an option's directory lands inside the module.

use std::path::{Path, PathBuf};

use bstr::ByteSlice;

/// Strip the module name and sanitise a client path the way upstream's
/// daemon does: `mod/a/../b` becomes `b`, leading slashes and `..` that
/// would climb above the module vanish. Bytes: a requested path may name
/// a file that is not UTF-8.
pub fn module_relative(arg: &[u8], module: &str) -> Vec<u8> {
    let rest = arg.strip_prefix(module.as_bytes()).unwrap_or(arg);
    sanitize_bytes(rest)
}

/// Remove leading `/`, `.` components and `..` that would leave the root;
/// keep a trailing `/` (it means "the directory's contents").
pub(crate) fn sanitize(path: &str) -> String {
    String::from_utf8(sanitize_bytes(path.as_bytes())).expect("cut only at '/', so still UTF-8")
}

/// [`sanitize`] on bytes.
pub fn sanitize_bytes(path: &[u8]) -> Vec<u8> {
    let trailing_slash = path.ends_with(b"/") || path.ends_with(b"/.") || path == b".";
    let mut parts: Vec<&[u8]> = Vec::new();
    for comp in path.split_str("/") {
        match comp {
            b"" | b"." => {}
            b".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    let mut out = bstr::join("/", parts);
    if trailing_slash && !out.is_empty() {
        out.push(b'/');
    }
    out
}

/// Where a directory named in the client's options or the module's
/// settings (`--temp-dir`, `--backup-dir`, `--partial-dir`, `temp dir`,
/// `--*-dest`) is, module-relative, as upstream's daemon sanitises it: an
/// absolute path starts at the module root, a relative one at the
/// destination `dest`. `..` never climbs above the start, except that
/// with `up_to_root` (the `--*-dest` directories, sanitised at the
/// destination's depth) a relative one may climb to the module root.
pub fn operator_path(dest: &Path, given: &str, up_to_root: bool) -> PathBuf {
    let clean = match given.strip_prefix('/') {
        Some(rest) => sanitize(rest),
        None if up_to_root => sanitize(&dest.join(given).to_string_lossy()),
        None => return dest.join(sanitize(given).trim_end_matches('/')),
    };
    PathBuf::from(clean.trim_end_matches('/'))
}

/// A received symlink's target as upstream's daemon sanitises it when the
/// module is not chrooted and links are not munged (`sanitize_path(bp, bp,
/// "", depth)` in `recv_file_entry`): slashes and `.` components dropped,
/// so an absolute target becomes relative, and `..` kept only for the
/// `depth` directories the link sits below; an empty result is `.`.
pub(crate) fn sanitize_link_target(target: &[u8], depth: usize) -> Vec<u8> {
    let mut depth = depth;
    let mut out: Vec<&[u8]> = Vec::new();
    // Components before `start` are the `..`s the depth allows.
    let mut start = 0;
    for component in target.split_str("/") {
        match component {
            b"" | b"." => {}
            b".." if depth == 0 || out.len() > start => {
                if out.len() > start {
                    out.pop();
                }
            }
            b".." => {
                depth -= 1;
                out.push(component);
                start = out.len();
            }
            _ => out.push(component),
        }
    }
    if out.is_empty() {
        return b".".to_vec();
    }
    let mut sanitized = bstr::join("/", out);
    if target.ends_with(b"/") {
        sanitized.push(b'/');
    }
    sanitized
}

/// How many directories deep `dir` is (upstream's `count_dir_elements`:
/// `.` components do not count).
pub(crate) fn dir_depth(dir: &[u8]) -> usize {
    dir.split_str("/").filter(|c| !c.is_empty() && *c != b".").count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_targets_stay_inside_the_module() {
        assert_eq!(sanitize_link_target(b"/etc/passwd", 0), b"etc/passwd");
        assert_eq!(sanitize_link_target(b"../../outside", 0), b"outside");
        assert_eq!(sanitize_link_target(b"sub/../a", 0), b"a");
        assert_eq!(sanitize_link_target(b"../a", 1), b"../a");
        assert_eq!(sanitize_link_target(b"../../b", 1), b"../b");
        assert_eq!(sanitize_link_target(b"./x/./y/", 0), b"x/y/");
        assert_eq!(sanitize_link_target(b"..", 0), b".");
        assert_eq!(dir_depth(b"a/./b"), 2);
        assert_eq!(dir_depth(b""), 0);
    }

    #[test]
    fn sanitizes_like_the_daemon() {
        assert_eq!(module_relative(b"mod/", "mod"), b"");
        assert_eq!(module_relative(b"mod", "mod"), b"");
        assert_eq!(module_relative(b"mod/a/b", "mod"), b"a/b");
        assert_eq!(module_relative(b"mod/../../etc/passwd", "mod"), b"etc/passwd");
        assert_eq!(module_relative(b"mod//a/./b/", "mod"), b"a/b/");
        assert_eq!(module_relative(b"mod/a/..", "mod"), b"");
        assert_eq!(module_relative(b"mod/d\xff/../caf\xe9/", "mod"), b"caf\xe9/", "bytes are kept");
        assert_eq!(sanitize("/abs/path"), "abs/path");
    }
}
