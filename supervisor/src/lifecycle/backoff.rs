//! Respawn pacing per worker slot, and the crash budget.
//!
//! A worker that dies after it reported ready is restarted at once (the
//! first time) and then with exponential backoff while it keeps dying
//! quickly; a worker that stayed up for [`HEALTHY_AFTER`] had served, so
//! its death (an OOM kill, an operator's kill -9) is not a crash loop and
//! its replacement starts at once. A worker
//! that dies *before* reporting ready counts against the crash budget:
//! [`START_FAILURE_BUDGET`] such deaths in a row on one slot end the
//! service, because a worker that cannot start will not start on retry.

use std::time::{Duration, Instant};

/// First respawn delay after a repeated crash.
pub const BASE_DELAY: Duration = Duration::from_millis(50);
/// Longest respawn delay.
pub const MAX_DELAY: Duration = Duration::from_secs(10);
/// Uptime after which a slot's failure count is forgotten: a crash loop
/// dies within moments of starting; a worker that lived this long did not.
pub const HEALTHY_AFTER: Duration = Duration::from_secs(1);
/// Consecutive deaths-before-ready that end the service.
pub const START_FAILURE_BUDGET: u32 = 5;

/// One slot's history.
#[derive(Debug, Clone, Default)]
pub struct SlotBackoff {
    /// Consecutive crashes not followed by a healthy run.
    crashes: u32,
    /// Consecutive deaths before the worker reported ready.
    start_failures: u32,
}

/// What to do after a worker of this slot died.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterDeath {
    RespawnAt(Instant),
    /// The crash budget is spent.
    GiveUp,
}

impl SlotBackoff {
    /// Record a death; `was_ready` says whether it had reported ready, `uptime` how long it ran.
    pub fn on_death(&mut self, now: Instant, was_ready: bool, uptime: Duration) -> AfterDeath {
        if uptime >= HEALTHY_AFTER {
            self.crashes = 0;
        }
        if was_ready {
            self.start_failures = 0;
        } else {
            self.start_failures += 1;
            if self.start_failures >= START_FAILURE_BUDGET {
                return AfterDeath::GiveUp;
            }
        }
        let delay = self.delay();
        self.crashes = self.crashes.saturating_add(1);
        AfterDeath::RespawnAt(now + delay)
    }

    fn delay(&self) -> Duration {
        if self.crashes == 0 {
            return Duration::ZERO;
        }
        let factor = 1u32 << (self.crashes - 1).min(16);
        (BASE_DELAY * factor).min(MAX_DELAY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_crash_respawns_at_once_then_backs_off() {
        let now = Instant::now();
        let mut b = SlotBackoff::default();
        let up = Duration::from_millis(100);
        assert_eq!(b.on_death(now, true, up), AfterDeath::RespawnAt(now));
        assert_eq!(b.on_death(now, true, up), AfterDeath::RespawnAt(now + BASE_DELAY));
        assert_eq!(b.on_death(now, true, up), AfterDeath::RespawnAt(now + BASE_DELAY * 2));
        for _ in 0..20 {
            b.on_death(now, true, up);
        }
        assert_eq!(b.on_death(now, true, up), AfterDeath::RespawnAt(now + MAX_DELAY));
        assert_eq!(
            b.on_death(now, true, HEALTHY_AFTER),
            AfterDeath::RespawnAt(now),
            "a healthy run resets the slot"
        );
    }

    #[test]
    fn start_failures_spend_the_budget() {
        let now = Instant::now();
        let mut b = SlotBackoff::default();
        for _ in 1..START_FAILURE_BUDGET {
            assert!(matches!(b.on_death(now, false, Duration::ZERO), AfterDeath::RespawnAt(_)));
        }
        assert_eq!(b.on_death(now, false, Duration::ZERO), AfterDeath::GiveUp);
        let mut c = SlotBackoff::default();
        c.on_death(now, false, Duration::ZERO);
        c.on_death(now, true, Duration::from_secs(1));
        for _ in 1..START_FAILURE_BUDGET {
            assert!(
                matches!(c.on_death(now, false, Duration::ZERO), AfterDeath::RespawnAt(_)),
                "a ready worker resets the start count"
            );
        }
    }
}
