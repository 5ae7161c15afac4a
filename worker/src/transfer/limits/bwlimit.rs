//! `--bwlimit`: the client's cap on how fast we send, in KiB per second
//! (upstream's `sleep_for_bwlimit`): bytes written are counted against
//! the allowance that time accrues, and the writer sleeps once it is more
//! than a tenth of a second ahead.

use std::io::{self, Write};
use std::time::{Duration, Instant};

/// Sleeps shorter than this are not worth taking (upstream's ONE_SEC/10).
const MIN_SLEEP: Duration = Duration::from_millis(100);

/// A writer that keeps its average rate at or under a limit.
pub(crate) struct Throttled<W> {
    inner: W,
    /// Bytes per second allowed (None: unlimited).
    limit: Option<u64>,
    /// Bytes written beyond what the elapsed time allows.
    ahead: u64,
    /// When `ahead` was last brought up to date.
    since: Option<Instant>,
}

impl<W: Write> Throttled<W> {
    /// Limit `inner` to `kib_per_sec` KiB/s (0 or None: no limit).
    pub(crate) fn new(inner: W, kib_per_sec: Option<u64>) -> Self {
        Throttled {
            inner,
            limit: kib_per_sec.filter(|&k| k > 0).map(|k| k * 1024),
            ahead: 0,
            since: None,
        }
    }

    fn account(&mut self, written: usize) {
        let Some(rate) = self.limit else { return };
        let now = Instant::now();
        if let Some(since) = self.since {
            let earned = (now.duration_since(since).as_secs_f64() * rate as f64) as u64;
            self.ahead = self.ahead.saturating_sub(earned);
        }
        self.ahead += written as u64;
        let wait = Duration::from_secs_f64(self.ahead as f64 / rate as f64);
        if wait < MIN_SLEEP {
            self.since = Some(now);
            return;
        }
        std::thread::sleep(wait);
        // What the sleep overshot (or fell short) carries over.
        let slept = Instant::now().duration_since(now);
        self.ahead = ((wait.as_secs_f64() - slept.as_secs_f64()).max(0.0) * rate as f64) as u64;
        self.since = Some(Instant::now());
    }
}

impl<W: Write> Write for Throttled<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.account(n);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unlimited_never_waits_and_limits_accumulate() {
        let mut t = Throttled::new(Vec::new(), None);
        t.write_all(&[0u8; 1 << 20]).unwrap();
        assert_eq!(t.ahead, 0);
        // 1 MiB/s: 50 KiB is under the sleep threshold and is carried.
        let mut t = Throttled::new(Vec::new(), Some(1024));
        t.write_all(&[0u8; 50 * 1024]).unwrap();
        assert!(t.ahead > 40 * 1024 && t.ahead <= 50 * 1024, "{}", t.ahead);
        assert_eq!(t.inner.len(), 50 * 1024);
    }
}
