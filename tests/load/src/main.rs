//! `oxrsyncd-load`: drive thousands of daemon sessions from one process.
//!
//! ```text
//! oxrsyncd-load --addr 127.0.0.1:873 hold 10000 --rate 1000 --daemon-pid PID
//! oxrsyncd-load --addr 127.0.0.1:873 pull 1000 --module bench --path 1mib.bin --verify-file /srv/bench/1mib.bin
//! oxrsyncd-load --addr 127.0.0.1:873 churn 500 10 --reload-every 0.5 --daemon-pid PID
//! ```
//!
//! Prints one JSON report on standard output; exits 0 when the run had no
//! failures, 1 when it had some, 2 on bad usage.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use oxrsyncd_load::{churn, hold, limits, pull, runtime, spawn_cost};

#[derive(Parser, Debug)]
#[command(name = "oxrsyncd-load", about = "Load generator for rsync daemons (loopback only)")]
struct Cli {
    /// The daemon to load (a loopback address).
    #[arg(long, default_value = "127.0.0.1:873")]
    addr: SocketAddr,
    /// Spread connections over this many 127.0.0.x source addresses.
    #[arg(long, default_value_t = 8)]
    sources: u8,
    /// The daemon's top process (supervisor, or stock's listener) for memory and threads.
    #[arg(long)]
    daemon_pid: Option<i32>,
    /// Longest a connection may take to be served, in seconds.
    #[arg(long, default_value_t = 30.0)]
    limit: f64,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand, Debug)]
enum Scenario {
    /// Open N sessions, complete the greeting, stay idle.
    Hold {
        sessions: usize,
        /// Connections per second (default: all at once).
        #[arg(long)]
        rate: Option<f64>,
        /// Seconds to keep them all open once in.
        #[arg(long, default_value_t = 1.0)]
        hold_for: f64,
    },
    /// N concurrent whole-file pulls of one file, verified byte for byte.
    Pull {
        sessions: usize,
        #[arg(long)]
        module: String,
        /// The file's path inside the module.
        #[arg(long)]
        path: String,
        /// A local copy of the file, to check what arrives.
        #[arg(long)]
        verify_file: std::path::PathBuf,
    },
    /// R module listings per second for T seconds.
    Churn {
        rate: f64,
        seconds: f64,
        /// Send SIGHUP to --daemon-pid every S seconds.
        #[arg(long, conflicts_with = "kill_every")]
        reload_every: Option<f64>,
        /// kill -9 a random worker of --daemon-pid every S seconds.
        #[arg(long)]
        kill_every: Option<f64>,
    },
    /// Spawn N session-sized threads one after another; spawn-to-run latency.
    SpawnCost { threads: usize },
}

/// Bounds so a typo cannot start a runaway run.
const MAX_SESSIONS: usize = 20_000;
const MAX_SECONDS: f64 = 600.0;

fn main() {
    let cli = Cli::parse();
    if !cli.addr.ip().is_loopback() {
        eprintln!("oxrsyncd-load: refusing a non-loopback target {}", cli.addr);
        std::process::exit(2);
    }
    limits::raise_fd_limit(1 << 20);
    let limit = Duration::from_secs_f64(cli.limit.clamp(0.1, MAX_SECONDS));
    let (json, failed) = match cli.scenario {
        Scenario::Hold { sessions, rate, hold_for } => {
            let cfg = hold::HoldConfig {
                target: cli.addr,
                sessions: sessions.min(MAX_SESSIONS),
                sources: cli.sources,
                rate,
                connect_limit: limit,
                hold_for: Duration::from_secs_f64(hold_for.clamp(0.0, MAX_SECONDS)),
                daemon_pid: cli.daemon_pid,
            };
            let report = run_async(hold::run(cfg));
            (serde_json::to_string(&report), report.failures.total() > 0)
        }
        Scenario::Pull {
            sessions,
            module,
            path,
            verify_file,
        } => {
            let expected = match std::fs::read(&verify_file) {
                Ok(data) => Arc::new(data),
                Err(e) => {
                    eprintln!("oxrsyncd-load: cannot read {}: {e}", verify_file.display());
                    std::process::exit(2);
                }
            };
            let report = pull::run(pull::PullConfig {
                target: cli.addr,
                sessions: sessions.min(MAX_SESSIONS),
                sources: cli.sources,
                module,
                path,
                expected,
                limit,
                daemon_pid: cli.daemon_pid,
            });
            (serde_json::to_string(&report), report.failures.total() > 0)
        }
        Scenario::Churn {
            rate,
            seconds,
            reload_every,
            kill_every,
        } => {
            let every = |s: f64| Duration::from_secs_f64(s.clamp(0.05, MAX_SECONDS));
            let disruption = match (reload_every, kill_every) {
                (Some(s), _) => Some(churn::Disruption::Reload(every(s))),
                (_, Some(s)) => Some(churn::Disruption::KillWorker(every(s))),
                _ => None,
            };
            let cfg = churn::ChurnConfig {
                target: cli.addr,
                rate: rate.clamp(0.1, 100_000.0),
                duration: Duration::from_secs_f64(seconds.clamp(0.1, MAX_SECONDS)),
                sources: cli.sources,
                limit,
                daemon_pid: cli.daemon_pid,
                disruption,
            };
            let report = run_async(churn::run(cfg));
            (serde_json::to_string(&report), report.failures.total() > 0)
        }
        Scenario::SpawnCost { threads } => {
            let report = spawn_cost::run(threads.min(MAX_SESSIONS));
            (serde_json::to_string(&report), false)
        }
    };
    match json {
        Ok(text) => println!("{text}"),
        Err(e) => {
            eprintln!("oxrsyncd-load: cannot render the report: {e}");
            std::process::exit(2);
        }
    }
    std::process::exit(i32::from(failed));
}

/// Run an async scenario, or exit 2 if no runtime can be built.
fn run_async<F: std::future::Future>(work: F) -> F::Output {
    runtime::block_on(work).unwrap_or_else(|e| {
        eprintln!("oxrsyncd-load: cannot start the runtime: {e}");
        std::process::exit(2);
    })
}
