//! Raising our own open-file limit so one process can hold 10,000 sockets.

/// Raise RLIMIT_NOFILE's soft limit to the hard limit (or `want`, if
/// lower). Returns the soft limit now in force.
pub fn raise_fd_limit(want: u64) -> u64 {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return 0;
    };
    let target = want.min(hard);
    if target > soft && setrlimit(Resource::RLIMIT_NOFILE, target, hard).is_ok() {
        return target;
    }
    soft
}

#[cfg(test)]
mod tests {
    #[test]
    fn never_lowers_the_limit() {
        let before = super::raise_fd_limit(0);
        assert!(super::raise_fd_limit(1) >= before.min(1));
        assert!(super::raise_fd_limit(before) >= before);
    }
}
