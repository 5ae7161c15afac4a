//! `churn R T`: R module listings per second for T seconds, each on a new
//! connection, optionally with a SIGHUP to the daemon or a kill -9 of one
//! of its workers every few seconds; failures by class and latency, and
//! how fast a killed worker came back.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::seq::SliceRandom;
use serde::Serialize;

use crate::failure::{Failure, Failures};
use crate::greeting::list_modules;
use crate::probe::tree;
use crate::sources::Sources;
use crate::stats::{Latencies, Summary};

/// A disruption repeated during the churn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Disruption {
    /// SIGHUP to the daemon (a reload) every so often.
    Reload(Duration),
    /// SIGKILL to one random worker (a child of the daemon) every so often.
    KillWorker(Duration),
}

/// How to run a churn.
#[derive(Debug, Clone)]
pub struct ChurnConfig {
    pub target: SocketAddr,
    pub rate: f64,
    pub duration: Duration,
    pub sources: u8,
    pub limit: Duration,
    pub daemon_pid: Option<i32>,
    pub disruption: Option<Disruption>,
}

/// What a churn saw.
#[derive(Debug, Clone, Serialize)]
pub struct ChurnReport {
    pub attempted: u64,
    pub completed: u64,
    pub latency: Summary,
    pub failures: Failures,
    pub reloads: u32,
    pub kills: u32,
    /// For each kill, the time until the daemon had as many workers again.
    pub respawn_ms: Vec<f64>,
    pub elapsed_s: f64,
}

/// Run the scenario (inside a tokio runtime).
pub async fn run(cfg: ChurnConfig) -> ChurnReport {
    let started = Instant::now();
    let mut sources = Sources::new(cfg.sources);
    let gap = Duration::from_secs_f64(1.0 / cfg.rate.max(0.001));
    let total = (cfg.rate * cfg.duration.as_secs_f64()).round() as u64;
    let disruptor = match (cfg.disruption, cfg.daemon_pid) {
        (Some(d), Some(pid)) => Some(tokio::spawn(disrupt(d, pid, cfg.duration))),
        _ => None,
    };
    let mut tasks = Vec::with_capacity(total as usize);
    let mut next_at = Instant::now();
    for _ in 0..total {
        next_at += gap;
        tokio::time::sleep_until(next_at.into()).await;
        let (target, source, limit) = (cfg.target, sources.next_for(cfg.target), cfg.limit);
        tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            list_modules(target, source, limit).await.map(|_| t.elapsed())
        }));
    }
    let mut latency = Latencies::default();
    let mut failures = Failures::default();
    for task in tasks {
        match task.await {
            Ok(Ok(d)) => latency.push(d),
            Ok(Err(e)) => failures.add(Failure::of(&e)),
            Err(_) => failures.add(Failure::Other),
        }
    }
    let (reloads, kills, respawn_ms) = match disruptor {
        Some(handle) => handle.await.unwrap_or_default(),
        None => (0, 0, Vec::new()),
    };
    ChurnReport {
        attempted: total,
        completed: latency.len() as u64,
        latency: latency.summary(),
        failures,
        reloads,
        kills,
        respawn_ms,
        elapsed_s: started.elapsed().as_secs_f64(),
    }
}

/// The daemon's direct children (oxrsyncd's workers).
fn workers(pid: i32) -> Vec<i32> {
    tree(pid)
        .into_iter()
        .filter(|&p| {
            std::fs::read_to_string(format!("/proc/{p}/stat"))
                .ok()
                .and_then(|s| crate::probe::parent_of(&s))
                == Some(pid)
        })
        .collect()
}

async fn disrupt(d: Disruption, pid: i32, duration: Duration) -> (u32, u32, Vec<f64>) {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    let end = Instant::now() + duration;
    let (mut reloads, mut kills, mut respawn_ms) = (0, 0, Vec::new());
    let every = match d {
        Disruption::Reload(e) | Disruption::KillWorker(e) => e,
    };
    loop {
        tokio::time::sleep(every).await;
        if Instant::now() >= end {
            break;
        }
        match d {
            Disruption::Reload(_) => {
                if kill(Pid::from_raw(pid), Signal::SIGHUP).is_ok() {
                    reloads += 1;
                }
            }
            Disruption::KillWorker(_) => {
                let before = workers(pid);
                let Some(&victim) = before.choose(&mut rand::thread_rng()) else {
                    continue;
                };
                let killed_at = Instant::now();
                if kill(Pid::from_raw(victim), Signal::SIGKILL).is_err() {
                    continue;
                }
                kills += 1;
                // Back to full strength with a new pid in place of the victim (bounded).
                while killed_at.elapsed() < Duration::from_secs(5) {
                    let now = workers(pid);
                    if now.len() >= before.len() && !now.contains(&victim) {
                        respawn_ms.push(killed_at.elapsed().as_secs_f64() * 1000.0);
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }
        }
    }
    (reloads, kills, respawn_ms)
}
