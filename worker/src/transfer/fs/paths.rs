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

#[cfg(test)]
mod tests {
    use super::*;

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
