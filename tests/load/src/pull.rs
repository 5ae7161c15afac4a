//! `pull N`: N concurrent sessions, each pulling one file through the real
//! protocol (protocol 31, whole file) and checking every byte; completion
//! time, failures by class, and the daemon's peak memory meanwhile.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::failure::{Failure, Failures};
use crate::probe::{peak, sample, TreeUsage};
use crate::pull_client::pull_one;
use crate::sources::Sources;
use crate::stats::{Latencies, Summary};

/// Stack for each pulling thread: the client keeps its buffers on the heap.
const CLIENT_STACK: usize = 256 * 1024;

/// How to run a pull.
#[derive(Debug, Clone)]
pub struct PullConfig {
    pub target: SocketAddr,
    pub sessions: usize,
    pub sources: u8,
    pub module: String,
    /// The file's path inside the module.
    pub path: String,
    /// What every pull must deliver, byte for byte.
    pub expected: Arc<Vec<u8>>,
    /// Longest any single read or write may wait.
    pub limit: Duration,
    pub daemon_pid: Option<i32>,
}

/// What a pull run saw.
#[derive(Debug, Clone, Serialize)]
pub struct PullReport {
    pub requested: usize,
    pub completed: usize,
    pub completion: Summary,
    pub failures: Failures,
    /// The daemon tree's peak while the pulls ran.
    pub daemon_peak: Option<TreeUsage>,
    pub elapsed_s: f64,
}

/// Run the scenario: every session starts at once.
pub fn run(cfg: PullConfig) -> PullReport {
    let started = Instant::now();
    let done = Arc::new(AtomicBool::new(false));
    let sampler = cfg.daemon_pid.map(|pid| {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut top = TreeUsage::default();
            while !done.load(Ordering::Relaxed) {
                top = peak(top, sample(pid));
                std::thread::sleep(Duration::from_millis(100));
            }
            top
        })
    });
    let results = Arc::new(Mutex::new((Latencies::default(), Failures::default())));
    let mut sources = Sources::new(cfg.sources);
    let mut threads = Vec::with_capacity(cfg.sessions);
    for _ in 0..cfg.sessions {
        let source = sources.next_for(cfg.target);
        let (cfg, shared) = (cfg.clone(), results.clone());
        let spawned = std::thread::Builder::new().stack_size(CLIENT_STACK).spawn(move || {
            let t = Instant::now();
            let outcome = pull_one(cfg.target, source, &cfg.module, &cfg.path, cfg.limit);
            let mut r = shared.lock().unwrap_or_else(|e| e.into_inner());
            match outcome {
                Ok(p) if p.data == *cfg.expected => r.0.push(t.elapsed()),
                Ok(_) => r.1.add(Failure::Protocol),
                Err(e) => r.1.add(Failure::of(&e)),
            }
        });
        match spawned {
            Ok(t) => threads.push(t),
            Err(_) => results.lock().unwrap_or_else(|e| e.into_inner()).1.add(Failure::Other),
        }
    }
    for t in threads {
        let _ = t.join();
    }
    done.store(true, Ordering::Relaxed);
    let daemon_peak = sampler.and_then(|s| s.join().ok());
    let (latencies, failures) = std::mem::take(&mut *results.lock().unwrap_or_else(|e| e.into_inner()));
    PullReport {
        requested: cfg.sessions,
        completed: latencies.len(),
        completion: latencies.summary(),
        failures,
        daemon_peak,
        elapsed_s: started.elapsed().as_secs_f64(),
    }
}
