//! `hold N`: open N sessions, complete the greeting and stay idle in module
//! selection; measure time to greeting, failures, and the daemon's
//! footprint while all are held, plus how fast one fresh client is served
//! meanwhile.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::failure::{Failure, Failures};
use crate::greeting::{connect_and_greet, list_modules, Greeted};
use crate::probe::{sample, TreeUsage};
use crate::sources::Sources;
use crate::stats::{Latencies, Summary};

/// How to run a hold.
#[derive(Debug, Clone)]
pub struct HoldConfig {
    pub target: SocketAddr,
    pub sessions: usize,
    /// Source addresses to spread over (127.0.0.1 ..).
    pub sources: u8,
    /// New connections per second; `None`: all at once.
    pub rate: Option<f64>,
    /// Longest a connection may take to be greeted.
    pub connect_limit: Duration,
    /// How long to keep everything open once all are in.
    pub hold_for: Duration,
    /// The daemon's top process, to measure its tree.
    pub daemon_pid: Option<i32>,
}

/// What a hold saw.
#[derive(Debug, Clone, Serialize)]
pub struct HoldReport {
    pub requested: usize,
    pub held: usize,
    pub time_to_greeting: Summary,
    pub failures: Failures,
    /// The daemon tree while everything was held.
    pub daemon: Option<TreeUsage>,
    /// A full module listing by one more client while all were held.
    pub fresh_listing_ms: Option<f64>,
    pub fresh_failure: Option<Failure>,
    pub elapsed_s: f64,
}

/// Run the scenario (inside a tokio runtime).
pub async fn run(cfg: HoldConfig) -> HoldReport {
    let started = Instant::now();
    let mut sources = Sources::new(cfg.sources);
    let mut tasks = Vec::with_capacity(cfg.sessions);
    let gap = cfg.rate.filter(|r| *r > 0.0).map(|r| Duration::from_secs_f64(1.0 / r));
    let mut next_at = Instant::now();
    for _ in 0..cfg.sessions {
        if let Some(gap) = gap {
            next_at += gap;
            tokio::time::sleep_until(next_at.into()).await;
        }
        let source = sources.next_for(cfg.target);
        let (target, limit) = (cfg.target, cfg.connect_limit);
        tasks.push(tokio::spawn(async move { connect_and_greet(target, source, limit).await }));
    }
    let mut held: Vec<Greeted> = Vec::with_capacity(cfg.sessions);
    let mut greeting = Latencies::default();
    let mut failures = Failures::default();
    for task in tasks {
        match task.await {
            Ok(Ok(g)) => {
                greeting.push(g.time_to_greeting);
                held.push(g);
            }
            Ok(Err(e)) => failures.add(Failure::of(&e)),
            Err(_) => failures.add(Failure::Other),
        }
    }
    let daemon = cfg.daemon_pid.map(sample);
    let fresh_started = Instant::now();
    let fresh = list_modules(cfg.target, sources.next_for(cfg.target), cfg.connect_limit).await;
    let (fresh_listing_ms, fresh_failure) = match fresh {
        Ok(_) => (Some(fresh_started.elapsed().as_secs_f64() * 1000.0), None),
        Err(e) => (None, Some(Failure::of(&e))),
    };
    tokio::time::sleep(cfg.hold_for).await;
    let report = HoldReport {
        requested: cfg.sessions,
        held: held.len(),
        time_to_greeting: greeting.summary(),
        failures,
        daemon,
        fresh_listing_ms,
        fresh_failure,
        elapsed_s: started.elapsed().as_secs_f64(),
    };
    drop(held);
    report
}
