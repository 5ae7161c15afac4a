//! `spawn-cost N`: what one more session thread costs (a design trigger:
//! the blocking listener spawns a thread per session). Each of N threads,
//! with a session's stack size, records the time from the spawn call until
//! it runs; spawned one after another, so the figure is the spawn itself.

use std::sync::mpsc;
use std::time::Instant;

use serde::Serialize;

use crate::stats::{Latencies, Summary};

/// The session thread's stack (worker/src/listener/session_thread.rs).
pub const SESSION_STACK: usize = 512 * 1024;

/// Spawn-to-running latency.
#[derive(Debug, Clone, Serialize)]
pub struct SpawnReport {
    pub threads: usize,
    pub spawn_to_run: Summary,
}

/// Spawn `n` threads, one after another.
pub fn run(n: usize) -> SpawnReport {
    let mut lat = Latencies::default();
    for _ in 0..n {
        let (tx, rx) = mpsc::channel();
        let t0 = Instant::now();
        let spawned = std::thread::Builder::new().stack_size(SESSION_STACK).spawn(move || {
            let _ = tx.send(t0.elapsed());
        });
        if let (Ok(handle), Ok(d)) = (spawned, rx.recv()) {
            lat.push(d);
            let _ = handle.join();
        }
    }
    SpawnReport {
        threads: n,
        spawn_to_run: lat.summary(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn measures_every_thread() {
        let r = super::run(20);
        assert_eq!(r.spawn_to_run.count, 20);
        assert!(r.spawn_to_run.max_ms >= r.spawn_to_run.p50_ms);
    }
}
