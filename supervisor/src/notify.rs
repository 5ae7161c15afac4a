//! systemd readiness notifications (`Type=notify` / `notify-reload`):
//! READY=1, RELOADING=1 with MONOTONIC_USEC, STOPPING=1 and STATUS= lines.
//! Silent no-ops when not started by systemd (no NOTIFY_SOCKET).

use sd_notify::NotifyState;
use tracing::debug;

/// Send states; failures are logged at debug level only.
fn send(states: &[NotifyState<'_>]) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
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

/// Just a status line.
pub fn status(status: &str) {
    send(&[NotifyState::Status(status)]);
}

fn monotonic_usec() -> u64 {
    let ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).expect("CLOCK_MONOTONIC always works");
    ts.tv_sec() as u64 * 1_000_000 + ts.tv_nsec() as u64 / 1_000
}
