//! Symlink rules on the sending side: which targets count as *unsafe*
//! (leaving the transferred tree: upstream's `unsafe_symlink`), and the
//! `munge symlinks` prefix a daemon strips when it sends a link it once
//! received munged.

/// The prefix `munge symlinks` puts in front of a received link's target.
pub const MUNGE_PREFIX: &[u8] = b"/rsyncd-munged/";

/// Whether `target`, stored in a symlink at `link_path` (relative to the
/// transfer root), points outside the tree: absolute, empty, `..` inside
/// the path, or more leading `..` than the link is deep.
pub fn is_unsafe(target: &[u8], link_path: &[u8]) -> bool {
    if target.is_empty() || target[0] == b'/' {
        return true;
    }
    let target_parts: Vec<&[u8]> = target.split(|&b| b == b'/').filter(|p| !p.is_empty()).collect();
    // ".." is only tolerated as a leading run; elsewhere (or trailing) it is unsafe.
    let leading = target_parts.iter().take_while(|p| **p == b"..").count();
    if target_parts[leading..].iter().any(|p| *p == b"..") {
        return true;
    }
    // How deep the link's directory is below the root.
    let mut depth: i64 = 0;
    let link_dirs: Vec<&[u8]> = link_path.split(|&b| b == b'/').collect();
    for part in &link_dirs[..link_dirs.len().saturating_sub(1)] {
        match *part {
            b"" | b"." => {}
            b".." => depth = 0,
            _ => depth += 1,
        }
    }
    for part in target_parts {
        match part {
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
    false
}

/// A munged target without its prefix (what we send for `munge symlinks`).
pub fn unmunge(target: &[u8]) -> &[u8] {
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
    }

    #[test]
    fn unmunges_only_a_real_prefix() {
        assert_eq!(unmunge(b"/rsyncd-munged/../etc"), b"../etc");
        assert_eq!(unmunge(b"plain"), b"plain");
        assert_eq!(unmunge(b"/rsyncd-munged/"), b"/rsyncd-munged/");
    }
}
