//! The worker process from start to exit: adopt the descriptors the
//! supervisor passed (see `oxrsyncd_shared::control`), load the config it
//! validated, run one accept front end until told to drain, let sessions
//! finish within the drain timeout, exit.

use std::fs::File;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use oxrsyncd_shared::config::Config;
use oxrsyncd_shared::control::{self, ToSupervisor, WorkerIdentity};
use oxrsyncd_shared::logging;
use oxrsyncd_shared::scoreboard::Scoreboard;
use oxrsyncd_shared::session_table::SessionTable;

use crate::telemetry::Telemetry;
use tracing::{error, info};

use crate::control::ControlChannel;
use crate::listener::capacity::ActiveSessions;
use crate::listener::drain::DrainSignal;
use crate::listener::{blocking_accept, WorkerContext};

/// Why a worker could not start; it exits with status 1 (the supervisor
/// counts that against its crash budget).
#[derive(Debug, thiserror::Error)]
pub(crate) enum WorkerStartError {
    #[error("cannot read the config handed over by the supervisor: {0}")]
    ConfigRead(std::io::Error),
    #[error("the config handed over by the supervisor is malformed: {0}")]
    ConfigDecode(serde_json::Error),
    #[error("cannot map the session table: {0}")]
    SessionTable(std::io::Error),
    #[error("cannot set up the drain signal: {0}")]
    Drain(std::io::Error),
    #[error("cannot start the control reader: {0}")]
    Control(std::io::Error),
    #[error("bad socket options: {0}")]
    SocketOptions(#[from] oxrsyncd_shared::socket_options::SocketOptionError),
    #[error("logging: {0}")]
    Logging(#[from] logging::LoggingError),
    #[cfg(feature = "async")]
    #[error("cannot build the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error("cannot map the scoreboard: {0}")]
    Scoreboard(std::io::Error),
    #[error("accept loop failed: {0}")]
    Accept(std::io::Error),
}

/// The descriptors a worker inherits.
struct Inherited {
    listener: std::net::TcpListener,
    control: OwnedFd,
    config: File,
    table: OwnedFd,
    scoreboard: OwnedFd,
}

impl Inherited {
    /// Take ownership of fds 3..=7.
    ///
    /// # Safety
    /// Only call once, in a process started by the supervisor with those
    /// descriptors open (the `--internal-worker` contract).
    unsafe fn adopt() -> Inherited {
        // SAFETY: per the contract above, these fds are open, ours, and not owned elsewhere.
        unsafe {
            Inherited {
                listener: std::net::TcpListener::from_raw_fd(control::LISTENER_FD),
                control: OwnedFd::from_raw_fd(control::CONTROL_FD),
                config: File::from_raw_fd(control::CONFIG_FD),
                table: OwnedFd::from_raw_fd(control::SESSION_TABLE_FD),
                scoreboard: OwnedFd::from_raw_fd(control::SCOREBOARD_FD),
            }
        }
    }
}

/// Entry point of `oxrsyncd --internal-worker GEN:SLOT:ROW`. Returns the exit status.
pub fn worker_main(identity: WorkerIdentity) -> i32 {
    // SAFETY: we are the re-executed worker; the supervisor set up fds 3..=7.
    let inherited = unsafe { Inherited::adopt() };
    match run(identity, inherited) {
        Ok(()) => 0,
        Err(e) => {
            error!("worker {} failed: {}", identity, e);
            eprintln!("oxrsyncd worker {identity}: {e}");
            1
        }
    }
}

/// Read the whole memfd with positioned reads: its file offset is shared
/// with every sibling worker of the generation.
fn read_config(file: File) -> Result<Config, WorkerStartError> {
    let len = file.metadata().map_err(WorkerStartError::ConfigRead)?.len() as usize;
    let mut bytes = vec![0u8; len];
    file.read_exact_at(&mut bytes, 0).map_err(WorkerStartError::ConfigRead)?;
    serde_json::from_slice(&bytes).map_err(WorkerStartError::ConfigDecode)
}

fn run(identity: WorkerIdentity, inherited: Inherited) -> Result<(), WorkerStartError> {
    let config = Arc::new(read_config(inherited.config)?);
    logging::init(
        &logging::choose_target(config.module_defaults.log_file.as_deref()),
        logging::LogStyle::from_name(&config.module_defaults.log_style),
    )?;
    let table = Arc::new(SessionTable::from_fd(inherited.table).map_err(WorkerStartError::SessionTable)?);
    let board = Arc::new(Scoreboard::from_fd(inherited.scoreboard).map_err(WorkerStartError::Scoreboard)?);
    let telemetry = Arc::new(Telemetry::new(board, identity.table_index, identity.generation, &config));
    let drain = DrainSignal::new().map_err(WorkerStartError::Drain)?;
    let control = ControlChannel::new(inherited.control);
    control.spawn_reader(drain.clone()).map_err(WorkerStartError::Control)?;
    crate::transfer::send::checksum_cache::install(config.global.checksum_cache_entries as usize);
    let socket_options = match &config.global.socket_options {
        Some(list) => oxrsyncd_shared::socket_options::parse(list)?,
        None => Vec::new(),
    };
    let ctx = Arc::new(WorkerContext {
        config: config.clone(),
        table,
        table_row: identity.table_index,
        telemetry,
        active: ActiveSessions::default(),
        drain: drain.clone(),
        socket_options,
    });
    let on_ready = || control.send(&ToSupervisor::Ready);

    run_front_end(inherited.listener, ctx.clone(), on_ready)?;

    control.send(&ToSupervisor::Draining {
        sessions: ctx.active.count() as u64,
    });
    let finished = wait_for_sessions(&ctx.active, drain.timeout());
    if finished {
        info!("worker {} drained", identity);
    } else {
        info!("worker {} drain timeout: ending {} sessions", identity, ctx.active.count());
    }
    Ok(())
}

#[cfg(feature = "async")]
fn run_front_end(listener: std::net::TcpListener, ctx: Arc<WorkerContext>, on_ready: impl FnOnce()) -> Result<(), WorkerStartError> {
    if !ctx.config.global.use_async_listener {
        return blocking_accept::accept_loop(listener, ctx, on_ready).map_err(WorkerStartError::Accept);
    }
    let threads = ctx.config.global.worker_threads.unwrap_or_else(crate::runtime::default_threads);
    let runtime = crate::runtime::build(threads).map_err(WorkerStartError::Runtime)?;
    let result = runtime.block_on(crate::listener::async_accept::accept_loop(listener, ctx.clone(), on_ready));
    // Handshakes still running on the runtime finish (bounded by the
    // handshake timeout); session threads are independent of it.
    let handshake_grace = ctx.config.global.handshake_timeout.min(ctx.drain.timeout());
    wait_for_sessions(&ctx.active, handshake_grace.max(Duration::from_millis(1)));
    runtime.shutdown_timeout(Duration::from_millis(100));
    result.map_err(WorkerStartError::Accept)
}

#[cfg(not(feature = "async"))]
fn run_front_end(listener: std::net::TcpListener, ctx: Arc<WorkerContext>, on_ready: impl FnOnce()) -> Result<(), WorkerStartError> {
    blocking_accept::accept_loop(listener, ctx, on_ready).map_err(WorkerStartError::Accept)
}

/// Wait until no connection is in flight or `timeout` passes.
fn wait_for_sessions(active: &ActiveSessions, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    active.wait_below(1, deadline.saturating_duration_since(Instant::now()))
}
