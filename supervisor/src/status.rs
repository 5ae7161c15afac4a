//! `oxrsyncd --status`: the live connections of a running daemon, read
//! from its scoreboard. The scoreboard is the supervisor's memfd, opened
//! through `/proc/PID/fd` (which the kernel allows only to the daemon's
//! user and root), so no socket or RPC is involved and a busy daemon is
//! not asked anything.

use std::io;
use std::path::PathBuf;
use std::sync::atomic::Ordering;

use oxrsyncd_shared::config::Config;
use oxrsyncd_shared::scoreboard::{Scoreboard, SlotView, MEMFD_NAME};
use serde::Serialize;

use crate::exit_status;

/// Why the status could not be read.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error("no supervisor pid: give --pid, or set \"pid file\" in the config")]
    NoPid,
    #[error("cannot read the pid file {path}: {source}")]
    PidFile { path: PathBuf, source: io::Error },
    #[error("pid file {0} does not hold a process id")]
    BadPidFile(PathBuf),
    #[error("cannot look into process {pid} ({source}): is it running, and are you its user or root?")]
    Proc { pid: i32, source: io::Error },
    #[error("process {0} is not an oxrsyncd supervisor of this version (no scoreboard)")]
    NoScoreboard(i32),
    #[error("cannot map the scoreboard: {0}")]
    Map(io::Error),
}

/// One live connection, as printed.
#[derive(Debug, Serialize)]
struct Row {
    worker_pid: u32,
    generation: u64,
    module: Option<String>,
    client: String,
    user: Option<String>,
    state: &'static str,
    bytes_sent: u64,
    bytes_received: u64,
    files: u64,
    age_seconds: f64,
}

/// The whole answer of `--status --json`.
#[derive(Debug, Serialize)]
struct Status {
    supervisor_pid: i32,
    generation: u64,
    sessions: Vec<Row>,
}

/// Print the status; returns the exit code.
pub fn print(config: &Config, pid: Option<i32>, json: bool) -> i32 {
    match read(config, pid) {
        Ok(status) => {
            if json {
                println!("{}", serde_json::to_string_pretty(&status).expect("plain data serializes"));
            } else {
                print!("{}", table(&status));
            }
            exit_status::OK
        }
        Err(e) => {
            eprintln!("oxrsyncd: {e}");
            exit_status::CONFIG_OR_STARTUP
        }
    }
}

fn supervisor_pid(config: &Config, pid: Option<i32>) -> Result<i32, StatusError> {
    if let Some(pid) = pid {
        return Ok(pid);
    }
    let path = config.global.pid_file.as_deref().ok_or(StatusError::NoPid)?;
    let text = std::fs::read_to_string(path).map_err(|source| StatusError::PidFile {
        path: path.to_path_buf(),
        source,
    })?;
    text.trim().parse().map_err(|_| StatusError::BadPidFile(path.to_path_buf()))
}

/// The scoreboard memfd among the process's descriptors.
fn open_scoreboard(pid: i32) -> Result<Scoreboard, StatusError> {
    let dir = PathBuf::from(format!("/proc/{pid}/fd"));
    let entries = std::fs::read_dir(&dir).map_err(|source| StatusError::Proc { pid, source })?;
    let wanted = format!("/memfd:{MEMFD_NAME}");
    for entry in entries.flatten() {
        let Ok(target) = std::fs::read_link(entry.path()) else { continue };
        if !target.to_string_lossy().starts_with(&wanted) {
            continue;
        }
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(entry.path())
            .map_err(|source| StatusError::Proc { pid, source })?;
        return Scoreboard::from_fd(file.into()).map_err(StatusError::Map);
    }
    Err(StatusError::NoScoreboard(pid))
}

fn read(config: &Config, pid: Option<i32>) -> Result<Status, StatusError> {
    let pid = supervisor_pid(config, pid)?;
    let board = open_scoreboard(pid)?;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let mut slots = board.live_slots();
    slots.sort_by_key(|s| s.started_ms);
    let sessions = slots.iter().map(|s| row(&board, s, now_ms)).collect();
    Ok(Status {
        supervisor_pid: pid,
        generation: board.header().generation.load(Ordering::Acquire),
        sessions,
    })
}

fn row(board: &Scoreboard, s: &SlotView, now_ms: u64) -> Row {
    let client = if s.client.port() == 0 {
        s.client.ip().to_string()
    } else {
        s.client.to_string()
    };
    Row {
        worker_pid: s.pid,
        generation: s.generation,
        module: s.module.and_then(|m| board.module_label(m)),
        client,
        user: s.user.clone(),
        state: s.phase.label(),
        bytes_sent: s.bytes_sent,
        bytes_received: s.bytes_received,
        files: s.files,
        age_seconds: now_ms.saturating_sub(s.started_ms) as f64 / 1000.0,
    }
}

fn table(status: &Status) -> String {
    let mut out = format!(
        "oxrsyncd supervisor {}: generation {}, {} connections\n",
        status.supervisor_pid,
        status.generation,
        status.sessions.len()
    );
    out.push_str(&format!(
        "{:<8} {:>4} {:<16} {:<40} {:<12} {:<10} {:>14} {:>14} {:>8} {:>9}\n",
        "WORKER", "GEN", "MODULE", "CLIENT", "USER", "STATE", "SENT", "RECEIVED", "FILES", "AGE"
    ));
    for r in &status.sessions {
        out.push_str(&format!(
            "{:<8} {:>4} {:<16} {:<40} {:<12} {:<10} {:>14} {:>14} {:>8} {:>8.1}s\n",
            r.worker_pid,
            r.generation,
            r.module.as_deref().unwrap_or("-"),
            r.client,
            r.user.as_deref().unwrap_or("-"),
            r.state,
            r.bytes_sent,
            r.bytes_received,
            r.files,
            r.age_seconds
        ));
    }
    out
}
