//! The supervisor's part in a binary upgrade (SIGUSR2), nginx's model:
//!
//! Old side: rename the pid file to `.oldbin`, start the binary now at our
//! path with the listening socket inherited (`crate::handover`), and watch
//! its status pipe. `ready` -> name it to systemd (MAINPID=), fall silent,
//! drain exactly as on SIGTERM, exit (removing `.oldbin`). End of file,
//! `failed`, an early exit or no `ready` within [`UPGRADE_DEADLINE`] ->
//! log why, put the pid file back, stop what was started, keep serving; a
//! later SIGUSR2 may try again. One upgrade at a time: refused while one
//! is under way, before this supervisor has itself taken over, or while the
//! previous one (named in `.oldbin`) still drains.
//!
//! New side: when every worker of the first generation is ready, write
//! `ready PID` to the inherited pipe, then speak for the service to systemd.
//!
//! The new supervisor is a child of the old one: `reap` hands its exit here
//! before it looks for a worker, so it is never taken for one.

use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tracing::{error, info, warn};

use super::{Supervisor, KILL_GRACE};
use crate::handover::{self, ExecPlan, Reporter, Status, StatusReader};
use crate::inherited::{METRICS_LISTENER, RSYNC_LISTENER};
use crate::notify;
use crate::pidfile::PidFile;

/// How long a new supervisor has to report ready (its workers have 15 s
/// of their own once it runs).
pub const UPGRADE_DEADLINE: Duration = Duration::from_secs(20);

/// A new supervisor started by SIGUSR2 that has not reported yet.
struct InFlight {
    pid: Pid,
    /// Read end of its status pipe; `None` once it reached end of file.
    status: Option<OwnedFd>,
    reader: StatusReader,
    /// When to give up on it.
    deadline: Instant,
    /// What it said in a `failed` line, for the log when it exits.
    reason: Option<String>,
}

/// Everything about binary upgrades one supervisor holds.
pub struct Upgrades {
    /// How to start the binary at our path with our command line.
    plan: ExecPlan,
    /// Ours, if configured: moved to `.oldbin` and back by the hand-over.
    pid_file: Option<PidFile>,
    /// The upgrade under way, if any (one at a time).
    in_flight: Option<InFlight>,
    /// New supervisors of failed upgrades, told to stop: when to kill each
    /// (`None` once killed: only its reap is awaited).
    abandoned: HashMap<Pid, Option<Instant>>,
    /// The new supervisor we handed over to (we drain, it serves).
    successor: Option<Pid>,
    /// Set when *we* were started by an upgrade: the pipe to report ready on.
    reporter: Option<Reporter>,
    /// The `/metrics` listening socket, handed over with the rsync one so
    /// the new supervisor serves the same address without a gap.
    metrics_listener: Option<OwnedFd>,
    /// The metrics thread's stop and pause flags. The old supervisor sets
    /// stop at the hand-over, the new one clears pause when it reports
    /// ready: one supervisor answers scrapes at a time, so counters never
    /// jump between two scoreboards.
    metrics_flags: Option<(Arc<AtomicBool>, Arc<AtomicBool>)>,
}

impl Upgrades {
    /// Hand `listener` (the `/metrics` socket) over too.
    pub fn with_metrics(mut self, listener: Option<OwnedFd>, flags: Option<(Arc<AtomicBool>, Arc<AtomicBool>)>) -> Upgrades {
        self.metrics_listener = listener;
        self.metrics_flags = flags;
        self
    }

    pub fn new(plan: ExecPlan, pid_file: Option<PidFile>, reporter: Option<Reporter>) -> Upgrades {
        Upgrades {
            plan,
            pid_file,
            in_flight: None,
            abandoned: HashMap::new(),
            successor: None,
            reporter,
            metrics_listener: None,
            metrics_flags: None,
        }
    }

    /// The status pipe to poll, if one is open.
    pub fn status_fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        self.in_flight.as_ref().and_then(|f| f.status.as_ref()).map(|fd| fd.as_fd())
    }

    /// Timers: the in-flight deadline and the kill times of abandoned ones.
    pub fn timers(&self) -> impl Iterator<Item = Instant> + '_ {
        self.in_flight
            .iter()
            .map(|f| f.deadline)
            .chain(self.abandoned.values().flatten().copied())
    }

    /// Whether failed new supervisors are still stopping (we wait for them before exiting).
    pub fn waiting_for_abandoned(&self) -> bool {
        !self.abandoned.is_empty()
    }

    /// Signal every abandoned new supervisor.
    pub fn signal_abandoned(&self, signal: Signal) {
        for pid in self.abandoned.keys() {
            let _ = kill(*pid, signal);
        }
    }
}

impl Supervisor {
    /// SIGUSR2: start the binary at our path as the next supervisor.
    pub(super) fn begin_upgrade(&mut self) {
        if self.stop_deadline.is_some() {
            warn!("binary upgrade (SIGUSR2) ignored: this supervisor is stopping");
            return;
        }
        if let Some(f) = &self.upgrades.in_flight {
            warn!("binary upgrade (SIGUSR2) ignored: one is under way (new supervisor pid {})", f.pid);
            return;
        }
        if self.upgrades.reporter.is_some() {
            warn!("binary upgrade (SIGUSR2) ignored: this supervisor has not taken over from the old one yet");
            return;
        }
        let predecessor = self.upgrades.pid_file.as_ref().and_then(PidFile::oldbin_pid);
        if let Some(pid) = predecessor.filter(|p| *p != std::process::id() as i32 && kill(Pid::from_raw(*p), None).is_ok()) {
            warn!(
                "binary upgrade (SIGUSR2) ignored: the previous supervisor (pid {}, in .oldbin) is still draining",
                pid
            );
            return;
        }
        let path = self.upgrades.plan.exe.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
        info!("binary upgrade: starting {} as the new supervisor", path);
        if let Some(pid_file) = &mut self.upgrades.pid_file {
            if let Err(e) = pid_file.rename_to_oldbin() {
                error!("binary upgrade failed, still serving: {}", e);
                return;
            }
        }
        let mut sockets = vec![(RSYNC_LISTENER, self.listener.as_fd())];
        if let Some(metrics) = &self.upgrades.metrics_listener {
            sockets.push((METRICS_LISTENER, metrics.as_fd()));
        }
        match handover::start_new(&self.upgrades.plan, &sockets) {
            Ok(started) => {
                info!(
                    "binary upgrade: new supervisor is pid {}; waiting for it to report ready",
                    started.pid
                );
                notify::status(&format!("binary upgrade: new supervisor pid {} starting", started.pid));
                self.upgrades.in_flight = Some(InFlight {
                    pid: started.pid,
                    status: Some(started.status),
                    reader: StatusReader::default(),
                    deadline: Instant::now() + UPGRADE_DEADLINE,
                    reason: None,
                });
            }
            Err(e) => self.upgrade_failed(&e.to_string()),
        }
    }

    /// The status pipe is readable.
    pub(super) fn read_upgrade_status(&mut self) {
        let Some(f) = &mut self.upgrades.in_flight else { return };
        let Some(fd) = &f.status else { return };
        match f.reader.poll(fd.as_fd()) {
            Status::Pending => {}
            Status::Ready(pid) => {
                if pid != f.pid {
                    warn!("binary upgrade: ready came from pid {}, expected {}", pid, f.pid);
                }
                self.upgrade_succeeded();
            }
            Status::Failed(reason) => {
                f.reason = Some(reason);
                f.status = None;
                // It exits next; the reap logs why. If it lingers, stop it soon.
                f.deadline = f.deadline.min(Instant::now() + KILL_GRACE);
            }
            Status::Closed => {
                f.status = None;
                f.deadline = f.deadline.min(Instant::now() + KILL_GRACE);
            }
        }
    }

    fn upgrade_succeeded(&mut self) {
        let Some(f) = self.upgrades.in_flight.take() else { return };
        info!(
            "binary upgrade: new supervisor (pid {}) serving; this one (pid {}) drains and exits",
            f.pid,
            std::process::id()
        );
        notify::main_pid(f.pid.as_raw() as u32, &format!("binary upgrade: supervisor pid {} serving", f.pid));
        // The new one is systemd's main process now: our drain says nothing.
        notify::mute();
        self.upgrades.successor = Some(f.pid);
        if let Some((stop, _)) = &self.upgrades.metrics_flags {
            stop.store(true, std::sync::atomic::Ordering::Release);
        }
        self.begin_stop("binary upgrade handed over");
    }

    /// Log why, put the pid file back, keep serving.
    fn upgrade_failed(&mut self, why: &str) {
        error!("binary upgrade failed, still serving as pid {}: {}", std::process::id(), why);
        if let Some(pid_file) = &mut self.upgrades.pid_file {
            match pid_file.restore_from_oldbin() {
                Ok(()) => info!("binary upgrade: pid file {} restored", pid_file.path().display()),
                Err(e) => error!("{}", e),
            }
        }
        notify::status(&format!("binary upgrade failed; serving generation {}", self.current.number));
    }

    /// Give up on the upgrade under way: tell its supervisor to stop (it
    /// drains what its workers took), kill it if it has not by the deadline.
    pub(super) fn abandon_upgrade(&mut self, why: &str) {
        let Some(f) = self.upgrades.in_flight.take() else { return };
        let _ = kill(f.pid, Signal::SIGTERM);
        let drain = self.current.config.global.drain_timeout;
        self.upgrades.abandoned.insert(f.pid, Some(Instant::now() + drain + KILL_GRACE));
        let said = f.reason.map(|r| format!(" (it said: {r})")).unwrap_or_default();
        self.upgrade_failed(&format!("new supervisor pid {}: {why}{said}; told it to stop", f.pid));
    }

    /// A child exited: if it is an upgrade's supervisor, handle it here and
    /// return true (it is never one of our workers).
    pub(super) fn upgrade_child_exited(&mut self, pid: Pid, how: &str) -> bool {
        if self.upgrades.in_flight.as_ref().is_some_and(|f| f.pid == pid) {
            let f = self.upgrades.in_flight.take().expect("in flight");
            let said = f.reason.map(|r| format!(": {r}")).unwrap_or_default();
            self.upgrade_failed(&format!("the new supervisor (pid {pid}) {how} before it was ready{said}"));
            return true;
        }
        if self.upgrades.abandoned.remove(&pid).is_some() {
            info!("abandoned new supervisor (pid {}) {}", pid, how);
            return true;
        }
        if self.upgrades.successor == Some(pid) {
            warn!("the new supervisor (pid {}) {} while this one drains", pid, how);
            self.upgrades.successor = None;
            return true;
        }
        false
    }

    /// Timers: no ready by the deadline; abandoned ones past theirs.
    pub(super) fn upgrade_timers(&mut self, now: Instant) {
        if self.upgrades.in_flight.as_ref().is_some_and(|f| now >= f.deadline) {
            let why = if self.upgrades.in_flight.as_ref().is_some_and(|f| f.status.is_none()) {
                "it closed its status pipe without reporting ready".to_string()
            } else {
                format!("it did not report ready within {} s", UPGRADE_DEADLINE.as_secs())
            };
            self.abandon_upgrade(&why);
        }
        for (pid, kill_at) in &mut self.upgrades.abandoned {
            if kill_at.is_some_and(|t| now >= t) {
                warn!("abandoned new supervisor (pid {}) is still running; killing it", pid);
                let _ = kill(*pid, Signal::SIGKILL);
                // Forgotten when reaped; never killed twice.
                *kill_at = None;
            }
        }
    }

    /// New side: our first generation is ready. Tell the old supervisor,
    /// then speak for the service to systemd.
    pub(super) fn report_upgrade_ready(&mut self) {
        let Some(reporter) = self.upgrades.reporter.take() else { return };
        if let Some((_, pause)) = &self.upgrades.metrics_flags {
            pause.store(false, std::sync::atomic::Ordering::Release);
        }
        match reporter.ready() {
            Ok(()) => info!(
                "binary upgrade: told the old supervisor this one (pid {}) is ready",
                std::process::id()
            ),
            Err(e) => warn!("binary upgrade: cannot tell the old supervisor we are ready: {}", e),
        }
        notify::unmute();
        notify::main_pid(std::process::id(), "binary upgrade: taking over");
    }
}
