//! The open-file limit: every session holds a few descriptors, so a worker
//! that may hold `max sessions per worker` connections needs a limit to
//! match. The supervisor raises its soft limit to the hard limit before
//! forking (workers inherit it) and warns when even that falls short.

use tracing::warn;

/// Descriptors one session may hold (the socket and its two halves, a file
/// being sent, a directory being listed, the module lock).
const FDS_PER_SESSION: u64 = 6;

/// Raise RLIMIT_NOFILE's soft limit to the hard limit; warn if the
/// configured capacity needs more. Returns the soft limit in force.
pub fn raise_for(workers: usize, sessions_per_worker: u32) -> u64 {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return 0;
    };
    let now = if hard > soft && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        hard
    } else {
        soft
    };
    let per_worker_need = u64::from(sessions_per_worker).saturating_mul(FDS_PER_SESSION);
    if now < per_worker_need {
        warn!(
            "open-file limit {} is below what 'max sessions per worker = {}' needs (about {}); \
             raise LimitNOFILE (systemd) or ulimit -n, or lower the setting ({} workers)",
            now, sessions_per_worker, per_worker_need, workers
        );
    }
    now
}

#[cfg(test)]
mod tests {
    #[test]
    fn never_lowers_the_limit() {
        use nix::sys::resource::{getrlimit, Resource};
        let (before, _) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        assert!(super::raise_for(1, 1) >= before);
    }
}
