//! systemd readiness notifications (`Type=notify` / `notify-reload`):
//! READY=1, RELOADING=1 with MONOTONIC_USEC, STOPPING=1 and STATUS= lines.
//! Silent no-ops when not started by systemd (no NOTIFY_SOCKET).
//!
//! On a binary upgrade two supervisors share NOTIFY_SOCKET but only one is
//! systemd's main process: the new one stays [`mute`] until it has taken
//! over (then sends MAINPID= itself), and the old one goes mute once it has
//! named the new one with MAINPID=, so its drain never says STOPPING=1.

use std::sync::atomic::{AtomicBool, Ordering};

use sd_notify::NotifyState;
use tracing::debug;

/// Set while this process must not speak for the service (see the module doc).
/// Process-wide because every state change in the supervisor notifies.
static MUTED: AtomicBool = AtomicBool::new(false);

/// Stop sending (a new supervisor before its hand-over; an old one after it).
pub fn mute() {
    MUTED.store(true, Ordering::Release);
}

/// Speak for the service again (a new supervisor that took over).
pub fn unmute() {
    MUTED.store(false, Ordering::Release);
}

/// Send states; failures are logged at debug level only.
fn send(states: &[NotifyState<'_>]) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() || MUTED.load(Ordering::Acquire) {
        return;
    }
    if let Err(e) = sd_notify::notify(false, states) {
        debug!("sd_notify failed: {}", e);
    }
}

/// The service is up (or a reload finished).
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// A reload began; systemd wants the monotonic time with it.
pub fn reloading(status: &str) {
    let usec = monotonic_usec();
    let stamp = format!("MONOTONIC_USEC={usec}");
    send(&[NotifyState::Reloading, NotifyState::Custom(&stamp), NotifyState::Status(status)]);
}

/// Shutdown began.
pub fn stopping(status: &str) {
    send(&[NotifyState::Stopping, NotifyState::Status(status)]);
}

/// The service's main process is now `pid` (a binary upgrade handed over).
pub fn main_pid(pid: u32, status: &str) {
    send(&[NotifyState::MainPid(pid), NotifyState::Status(status)]);
}

/// Just a status line.
pub fn status(status: &str) {
    send(&[NotifyState::Status(status)]);
}

fn monotonic_usec() -> u64 {
    let ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).expect("CLOCK_MONOTONIC always works");
    ts.tv_sec() as u64 * 1_000_000 + ts.tv_nsec() as u64 / 1_000
}
