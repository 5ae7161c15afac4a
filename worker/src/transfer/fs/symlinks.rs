//! Symlink rules on the sending side: which targets count as *unsafe*
//! (leaving the transferred tree: upstream's `unsafe_symlink`), and the
//! `munge symlinks` prefix a daemon strips when it sends a link it once
//! received munged.

/// The prefix `munge symlinks` puts in front of a received link's target.
pub(crate) const MUNGE_PREFIX: &[u8] = b"/rsyncd-munged/";

/// Whether `target`, stored in a symlink at `link_path` (relative to the
/// transfer root), points outside the tree, by upstream's rules: absolute
/// or empty; a `..` anywhere after the leading run of `../`; a target
/// ending in `/..`; or more `..` than the link is deep at any point.
pub(crate) fn is_unsafe(target: &[u8], link_path: &[u8]) -> bool {
    if target.is_empty() || target[0] == b'/' {
        return true;
    }
    let mut rest = target;
    while let Some(after) = rest.strip_prefix(b"../") {
        rest = trim_leading_slashes(after);
    }
    if rest.windows(4).any(|w| w == b"/../") || (target.len() > 3 && target.ends_with(b"/..")) {
        return true;
    }
    // Segments followed by a slash walk directories; the last names the file.
    let dirs_of = |path: &[u8]| -> (Vec<Vec<u8>>, Vec<u8>) {
        let mut parts: Vec<Vec<u8>> = path.split(|&b| b == b'/').map(<[u8]>::to_vec).collect();
        let last = parts.pop().unwrap_or_default();
        parts.retain(|p| !p.is_empty());
        (parts, last)
    };
    let (link_dirs, link_last) = dirs_of(link_path);
    let mut depth: i64 = 0;
    for part in &link_dirs {
        match part.as_slice() {
            b"." => {}
            b".." => depth = 0,
            _ => depth += 1,
        }
    }
    if link_last == b".." {
        depth = 0;
    }
    let (target_dirs, target_last) = dirs_of(target);
    for part in &target_dirs {
        match part.as_slice() {
            b"." => {}
            b".." => {
                depth -= 1;
                if depth < 0 {
                    return true;
                }
            }
            _ => depth += 1,
        }
    }
    if target_last == b".." {
        depth -= 1;
    }
    depth < 0
}

/// `bytes` without its leading slashes (`..//..///../x` is a leading run).
fn trim_leading_slashes(bytes: &[u8]) -> &[u8] {
    let n = bytes.iter().take_while(|&&b| b == b'/').count();
    &bytes[n..]
}

/// A munged target without its prefix (what we send for `munge symlinks`).
pub(crate) fn unmunge(target: &[u8]) -> &[u8] {
    match target.strip_prefix(MUNGE_PREFIX) {
        Some(rest) if !rest.is_empty() => rest,
        _ => target,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_targets() {
        assert!(is_unsafe(b"/etc/passwd", b"link"));
        assert!(is_unsafe(b"", b"link"));
        assert!(is_unsafe(b"../x", b"link"), "one level up from the root");
        assert!(!is_unsafe(b"../x", b"dir/link"), "up from a subdirectory stays inside");
        assert!(is_unsafe(b"../../x", b"dir/link"));
        assert!(is_unsafe(b"a/../../x", b"dir/link"), "inner .. is always unsafe");
        assert!(is_unsafe(b"a/..", b"dir/link"));
        assert!(!is_unsafe(b"./a/b", b"link"));
        assert!(!is_unsafe(b"small.txt", b"link"));
        assert!(!is_unsafe(b"..//x", b"d/link"));
        // Upstream's quirks: a target ending in "/.." is always unsafe,
        // even when it would stay inside.
        assert!(is_unsafe(b"../..", b"a/b/c/link"));
        assert!(!is_unsafe(b"..", b"a/link"));
        assert!(is_unsafe(b"..", b"link"));
        assert!(!is_unsafe(b"../../x", b"a/b/link"));
    }

    #[test]
    fn unmunges_only_a_real_prefix() {
        assert_eq!(unmunge(b"/rsyncd-munged/../etc"), b"../etc");
        assert_eq!(unmunge(b"plain"), b"plain");
        assert_eq!(unmunge(b"/rsyncd-munged/"), b"/rsyncd-munged/");
    }
}
