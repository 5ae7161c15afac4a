//! The supervisor's event loop: one thread, one `poll`, no async runtime.
//!
//! It owns the listener, the generations of workers, and the reactions to
//! signals and worker messages:
//! - SIGCHLD: reap every exited child; respawn a current-generation slot
//!   with backoff, or end the service when the crash budget is spent.
//! - SIGHUP: reopen the log, re-read the config. Invalid: log why, keep
//!   serving. Valid: start the next generation, wait until all its workers
//!   report ready, then tell the previous generation to drain.
//! - SIGTERM/SIGINT: tell every worker to drain, exit 0 when all are gone
//!   or at the drain deadline (killing what is left); a second SIGTERM
//!   stops at once.
//! - SIGUSR2: binary upgrade, see [`upgrade`]; once the new supervisor is
//!   ready this one drains as on SIGTERM.

mod backoff;
mod generation;
mod rows;
mod spawn;
mod upgrade;

use std::collections::HashMap;
use std::net::TcpListener;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::sys::socket::{recv, send, MsgFlags};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use oxrsyncd_shared::config::Config;
use oxrsyncd_shared::control::{decode, encode, ToSupervisor, ToWorker, WorkerIdentity, MAX_MESSAGE};
use oxrsyncd_shared::logging::LogHandle;
use oxrsyncd_shared::scoreboard::{RestartCause, Scoreboard};
use oxrsyncd_shared::session_table::SessionTable;
use std::sync::atomic::Ordering;
use tracing::{error, info, warn};

use self::backoff::AfterDeath;
use self::generation::Generation;
use self::rows::RowAllocator;
use self::spawn::{spawn_worker, WorkerFds};
pub use self::upgrade::Upgrades;
use crate::exit_status;
use crate::notify;
use crate::signals::Signals;

/// How long a new generation has to report ready before a reload is abandoned.
const READY_DEADLINE: Duration = Duration::from_secs(15);
/// Extra time past a drain deadline before a worker is killed.
const KILL_GRACE: Duration = Duration::from_secs(2);

/// Re-reads the config on SIGHUP (file + overrides), validating it.
pub type ConfigLoader = Box<dyn Fn() -> Result<Config, String>>;

/// A live worker process.
struct WorkerProc {
    identity: WorkerIdentity,
    /// Our end of its control socket.
    control: OwnedFd,
    started: Instant,
    /// It reported that its accept loop runs.
    ready: bool,
    /// When it was told to drain, the moment it must be gone by.
    drain_deadline: Option<Instant>,
}

/// A reload waiting for its workers to report ready.
struct PendingReload {
    generation: Generation,
    deadline: Instant,
}

/// The supervisor.
pub struct Supervisor {
    /// Held for the process's life so queued connections survive every worker exit.
    listener: TcpListener,
    /// Daemon-wide session counters shared with the workers.
    table: SessionTable,
    /// What every worker publishes (metrics, status, per-host counts);
    /// shared with the metrics thread.
    board: Arc<Scoreboard>,
    rows: RowAllocator,
    workers: HashMap<Pid, WorkerProc>,
    current: Generation,
    pending: Option<PendingReload>,
    /// A SIGHUP arrived while a reload was in flight: reload again after it.
    reload_again: bool,
    /// Set once SIGTERM/SIGINT began the shutdown: the moment to stop waiting.
    stop_deadline: Option<Instant>,
    /// READY=1 was sent for the first generation.
    announced_ready: bool,
    signals: Signals,
    load_config: ConfigLoader,
    log: LogHandle,
    /// Set when the service must end with this status.
    exit_with: Option<i32>,
    /// Binary upgrades: ours to start (SIGUSR2), or the one we are.
    upgrades: Upgrades,
}

impl Supervisor {
    /// Prepare the first generation for `config` (no worker started yet).
    pub fn new(
        listener: TcpListener,
        config: Config,
        load_config: ConfigLoader,
        log: LogHandle,
        board: Arc<Scoreboard>,
        upgrades: Upgrades,
    ) -> std::io::Result<Supervisor> {
        let workers = Generation::worker_count(&config);
        board.header().generation.store(1, Ordering::Release);
        Ok(Supervisor {
            listener,
            table: SessionTable::create()?,
            board,
            rows: RowAllocator::default(),
            workers: HashMap::new(),
            current: Generation::new(1, Arc::new(config), workers)?,
            pending: None,
            reload_again: false,
            stop_deadline: None,
            announced_ready: false,
            signals: Signals::register()?,
            load_config,
            log,
            exit_with: None,
            upgrades,
        })
    }

    /// Run until stopped; returns the process exit status.
    pub fn run(mut self) -> i32 {
        for slot in 0..self.current.slots.len() {
            if let Err(status) = self.start_slot(slot) {
                return status;
            }
        }
        loop {
            if let Some(status) = self.exit_with {
                return status;
            }
            if self.stop_deadline.is_some() && self.workers.is_empty() && !self.upgrades.waiting_for_abandoned() {
                info!("all workers gone; exiting");
                return exit_status::OK;
            }
            self.wait_for_events();
            self.handle_signals();
            self.reap();
            self.handle_timers();
        }
    }

    fn wait_for_events(&mut self) {
        let timeout = self.next_timer().map(|t| t.saturating_duration_since(Instant::now()));
        let mut fds = vec![PollFd::new(self.signals.wake_fd(), PollFlags::POLLIN)];
        let pids: Vec<Pid> = self.workers.keys().copied().collect();
        for pid in &pids {
            fds.push(PollFd::new(self.workers[pid].control.as_fd(), PollFlags::POLLIN));
        }
        // Last: an upgrade's status pipe (readable on its line and at end of file).
        let upgrade_at = self.upgrades.status_fd().map(|fd| {
            fds.push(PollFd::new(fd, PollFlags::POLLIN));
            fds.len() - 1
        });
        let poll_timeout = match timeout {
            Some(d) => PollTimeout::try_from(d.as_millis().min(60_000) as i32 + 1).unwrap_or(PollTimeout::MAX),
            None => PollTimeout::from(60_000u16),
        };
        let ready: Vec<(Pid, bool)> = match poll(&mut fds, poll_timeout) {
            Ok(n) if n > 0 => pids
                .iter()
                .enumerate()
                .map(|(i, pid)| (*pid, fds[i + 1].revents().is_some_and(|r| !r.is_empty())))
                .filter(|(_, r)| *r)
                .collect(),
            _ => Vec::new(),
        };
        let upgrade_ready = upgrade_at.is_some_and(|i| fds[i].revents().is_some_and(|r| !r.is_empty()));
        drop(fds);
        self.signals.drain_wakeups();
        for (pid, _) in ready {
            self.read_control(pid);
        }
        if upgrade_ready {
            self.read_upgrade_status();
        }
    }

    fn read_control(&mut self, pid: Pid) {
        let mut buf = [0u8; MAX_MESSAGE];
        loop {
            let Some(worker) = self.workers.get_mut(&pid) else { return };
            let n = match recv(worker.control.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT) {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            match decode::<ToSupervisor>(&buf[..n]) {
                Ok(ToSupervisor::Ready) => {
                    worker.ready = true;
                    self.on_worker_ready();
                }
                Ok(ToSupervisor::Draining { sessions }) => {
                    info!(
                        "worker {} (pid {}) stopped accepting; {} connections finishing",
                        worker.identity, pid, sessions
                    );
                }
                Err(e) => warn!("worker pid {}: {}", pid, e),
            }
        }
    }

    fn generation_ready(&self, number: u64, slots: usize) -> bool {
        let ready = self
            .workers
            .values()
            .filter(|w| w.identity.generation == number && w.ready && w.drain_deadline.is_none())
            .count();
        ready >= slots
    }

    fn on_worker_ready(&mut self) {
        if !self.announced_ready && self.generation_ready(self.current.number, self.current.slots.len()) {
            self.announced_ready = true;
            // Started by a binary upgrade: the old supervisor may drain now.
            self.report_upgrade_ready();
            let addr = self.listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
            info!(
                "oxrsyncd {} ready: generation {} with {} workers on {}",
                env!("CARGO_PKG_VERSION"),
                self.current.number,
                self.current.slots.len(),
                addr
            );
            notify::ready(&format!("serving generation {}", self.current.number));
        }
        if let Some(p) = &self.pending {
            if self.generation_ready(p.generation.number, p.generation.slots.len()) {
                self.commit_reload();
            }
        }
    }

    fn handle_signals(&mut self) {
        if Signals::take(&self.signals.terminate) {
            if self.stop_deadline.is_some() {
                warn!("second stop signal: stopping now");
                self.kill_all(Signal::SIGKILL);
                self.upgrades.signal_abandoned(Signal::SIGKILL);
                self.exit_with = Some(exit_status::OK);
                return;
            }
            self.begin_stop("stop requested");
        }
        if Signals::take(&self.signals.hangup) && self.stop_deadline.is_none() {
            if let Err(e) = self.log.reopen() {
                warn!("{}", e);
            }
            if self.pending.is_some() {
                self.reload_again = true;
            } else {
                self.begin_reload();
            }
        }
        if Signals::take(&self.signals.upgrade) {
            self.begin_upgrade();
        }
        Signals::take(&self.signals.child);
    }

    /// Stop accepting, drain every worker, exit when they are gone. `why`
    /// starts the log line (a stop signal, or a binary upgrade handed over).
    fn begin_stop(&mut self, why: &str) {
        let drain = self.current.config.global.drain_timeout;
        info!("{}: draining {} workers (up to {}s)", why, self.workers.len(), drain.as_secs());
        notify::stopping("draining");
        if let Some(p) = self.pending.take() {
            self.abandon(p, "stopping");
        }
        self.abandon_upgrade("this supervisor is stopping");
        self.stop_deadline = Some(Instant::now() + drain + KILL_GRACE);
        let pids: Vec<Pid> = self.workers.keys().copied().collect();
        for pid in pids {
            self.tell_drain(pid, drain);
        }
        for slot in &mut self.current.slots {
            slot.respawn_at = None;
        }
    }

    fn begin_reload(&mut self) {
        let config = match (self.load_config)() {
            Ok(c) => c,
            Err(e) => {
                error!("reload failed, still serving generation {}: {}", self.current.number, e);
                notify::status(&format!("reload failed; serving generation {}", self.current.number));
                self.board.header().reloads_failed.fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
        let old = &self.current.config.global;
        if config.global.port != old.port || config.global.address != old.address {
            warn!("the listen address or port changed; that takes a restart (the listener is kept)");
        }
        let number = self.current.number + 1;
        let workers = Generation::worker_count(&config);
        let generation = match Generation::new(number, Arc::new(config), workers) {
            Ok(g) => g,
            Err(e) => {
                error!("reload failed, still serving generation {}: {}", self.current.number, e);
                return;
            }
        };
        info!("reloading: starting generation {} with {} workers", number, workers);
        notify::reloading(&format!("starting generation {number}"));
        let mut pending = PendingReload {
            generation,
            deadline: Instant::now() + READY_DEADLINE,
        };
        for slot in 0..pending.generation.slots.len() {
            if let Err(e) = self.spawn_into(&mut pending.generation, slot) {
                error!("reload failed: cannot start worker: {}", e);
                self.abandon(pending, "a worker could not be started");
                return;
            }
        }
        self.pending = Some(pending);
    }

    fn commit_reload(&mut self) {
        let Some(p) = self.pending.take() else { return };
        let old = std::mem::replace(&mut self.current, p.generation);
        let drain = old.config.global.drain_timeout;
        let old_pids: Vec<Pid> = self
            .workers
            .iter()
            .filter(|(_, w)| w.identity.generation < self.current.number)
            .map(|(p, _)| *p)
            .collect();
        for pid in old_pids {
            self.tell_drain(pid, drain);
        }
        info!("generation {} serving; generation {} draining", self.current.number, old.number);
        let header = self.board.header();
        header.generation.store(self.current.number, Ordering::Release);
        header.reloads_ok.fetch_add(1, Ordering::Relaxed);
        notify::ready(&format!("serving generation {}", self.current.number));
        if std::mem::take(&mut self.reload_again) {
            self.begin_reload();
        }
    }

    /// Give up on a pending generation: kill its workers, keep the current one.
    fn abandon(&mut self, pending: PendingReload, why: &str) {
        self.board.header().reloads_failed.fetch_add(1, Ordering::Relaxed);
        warn!(
            "abandoning generation {}: {}; still serving generation {}",
            pending.generation.number, why, self.current.number
        );
        for slot in &pending.generation.slots {
            if let Some(pid) = slot.pid {
                let _ = kill(pid, Signal::SIGKILL);
            }
        }
        notify::ready(&format!("reload abandoned; serving generation {}", self.current.number));
    }

    fn tell_drain(&mut self, pid: Pid, timeout: Duration) {
        let Some(w) = self.workers.get_mut(&pid) else { return };
        if w.drain_deadline.is_some() {
            return;
        }
        w.drain_deadline = Some(Instant::now() + timeout + KILL_GRACE);
        let msg = encode(&ToWorker::Drain {
            drain_timeout_ms: timeout.as_millis() as u64,
        });
        if let Err(e) = send(w.control.as_raw_fd(), &msg, MsgFlags::MSG_NOSIGNAL | MsgFlags::MSG_DONTWAIT) {
            warn!("cannot tell worker {} to drain ({}); terminating it", w.identity, e);
            let _ = kill(pid, Signal::SIGTERM);
        }
    }

    fn reap(&mut self) {
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => {
                    let cause = if code == 0 {
                        RestartCause::CleanExit
                    } else {
                        RestartCause::ErrorExit
                    };
                    self.on_exit(pid, format!("exited with status {code}"), cause)
                }
                Ok(WaitStatus::Signaled(pid, sig, _)) => self.on_exit(pid, format!("killed by {sig:?}"), RestartCause::Signal),
                Ok(WaitStatus::StillAlive) | Err(nix::errno::Errno::ECHILD) => return,
                Ok(_) => continue,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => {
                    warn!("waitpid: {}", e);
                    return;
                }
            }
        }
    }

    fn on_exit(&mut self, pid: Pid, how: String, cause: RestartCause) {
        let clean = cause == RestartCause::CleanExit;
        // A binary upgrade's new supervisor is our child too, never a worker.
        if self.upgrade_child_exited(pid, &how) {
            return;
        }
        let Some(worker) = self.workers.remove(&pid) else { return };
        self.table.reset(worker.identity.table_index);
        self.board.retire_row(worker.identity.table_index);
        self.rows.give_back(worker.identity.table_index);
        let id = worker.identity;
        if worker.drain_deadline.is_some() {
            info!("worker {} (pid {}) finished draining ({})", id, pid, how);
            return;
        }
        if let Some(p) = &mut self.pending {
            if p.generation.number == id.generation {
                p.generation.slots[id.slot].pid = None;
                let p = self.pending.take().expect("pending");
                self.abandon(p, &format!("worker {id} {how} before it was ready"));
                return;
            }
        }
        if id.generation != self.current.number || self.stop_deadline.is_some() {
            return;
        }
        if clean && worker.ready {
            info!("worker {} (pid {}) exited", id, pid);
        } else {
            warn!("worker {} (pid {}) {}", id, pid, how);
        }
        self.board.header().worker_restarts[cause as usize].fetch_add(1, Ordering::Relaxed);
        let slot = &mut self.current.slots[id.slot];
        slot.pid = None;
        match slot.backoff.on_death(Instant::now(), worker.ready, worker.started.elapsed()) {
            AfterDeath::RespawnAt(at) => slot.respawn_at = Some(at),
            AfterDeath::GiveUp => {
                error!("workers keep dying at start (slot {}); giving up", id.slot);
                notify::stopping("workers keep dying at start");
                self.kill_all(Signal::SIGKILL);
                self.exit_with = Some(exit_status::CRASH_BUDGET);
            }
        }
    }

    fn handle_timers(&mut self) {
        let now = Instant::now();
        if self.exit_with.is_some() {
            return;
        }
        if let Some(deadline) = self.stop_deadline {
            if now >= deadline {
                warn!("drain deadline passed; killing {} workers", self.workers.len());
                self.kill_all(Signal::SIGKILL);
                self.upgrades.signal_abandoned(Signal::SIGKILL);
                self.exit_with = Some(exit_status::OK);
            }
            return;
        }
        if self.pending.as_ref().is_some_and(|p| now >= p.deadline) {
            let p = self.pending.take().expect("pending");
            self.abandon(p, "its workers did not report ready in time");
        }
        self.upgrade_timers(now);
        for (pid, w) in &self.workers {
            if w.drain_deadline.is_some_and(|d| now >= d) {
                warn!("worker {} (pid {}) overran its drain deadline; killing it", w.identity, pid);
                let _ = kill(*pid, Signal::SIGKILL);
            }
        }
        let due: Vec<usize> = (0..self.current.slots.len())
            .filter(|&i| self.current.slots[i].respawn_at.is_some_and(|t| now >= t) && self.current.slots[i].pid.is_none())
            .collect();
        for slot in due {
            self.current.slots[slot].respawn_at = None;
            if let Err(status) = self.start_slot(slot) {
                self.exit_with = Some(status);
                return;
            }
        }
    }

    fn next_timer(&self) -> Option<Instant> {
        let mut timers: Vec<Instant> = self.current.slots.iter().filter_map(|s| s.respawn_at).collect();
        timers.extend(self.pending.as_ref().map(|p| p.deadline));
        timers.extend(self.stop_deadline);
        timers.extend(self.workers.values().filter_map(|w| w.drain_deadline));
        timers.extend(self.upgrades.timers());
        timers.into_iter().min()
    }

    /// Start (or restart) a worker in a current-generation slot.
    fn start_slot(&mut self, slot: usize) -> Result<(), i32> {
        let started = self
            .current
            .config_fd
            .try_clone()
            .and_then(|fd| self.spawn_slot(self.current.number, slot, &fd));
        match started {
            Ok(pid) => {
                self.current.slots[slot].pid = Some(pid);
                Ok(())
            }
            Err(e) => {
                error!("cannot start worker for slot {}: {}", slot, e);
                Err(exit_status::CONFIG_OR_STARTUP)
            }
        }
    }

    fn spawn_into(&mut self, generation: &mut Generation, slot: usize) -> std::io::Result<()> {
        let fd = generation.config_fd.try_clone()?;
        let pid = self.spawn_slot(generation.number, slot, &fd)?;
        generation.slots[slot].pid = Some(pid);
        Ok(())
    }

    fn spawn_slot(&mut self, generation: u64, slot: usize, config_fd: &OwnedFd) -> std::io::Result<Pid> {
        let row = self.rows.take().ok_or_else(|| std::io::Error::other("too many worker processes"))?;
        self.table.reset(row);
        self.board.open_row(row);
        let identity = WorkerIdentity {
            generation,
            slot,
            table_index: row,
        };
        let fds = WorkerFds {
            listener: self.listener.as_fd(),
            config: config_fd.as_fd(),
            session_table: self.table.fd(),
            scoreboard: self.board.fd(),
        };
        match spawn_worker(identity, &fds) {
            Ok(spawned) => {
                self.workers.insert(
                    spawned.pid,
                    WorkerProc {
                        identity,
                        control: spawned.control,
                        started: Instant::now(),
                        ready: false,
                        drain_deadline: None,
                    },
                );
                Ok(spawned.pid)
            }
            Err(e) => {
                self.board.retire_row(row);
                self.rows.give_back(row);
                Err(e)
            }
        }
    }

    fn kill_all(&mut self, signal: Signal) {
        for pid in self.workers.keys() {
            let _ = kill(*pid, signal);
        }
    }
}
