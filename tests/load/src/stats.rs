//! Latency samples and their summary (nearest-rank percentiles).

use std::time::Duration;

use serde::Serialize;

/// Collected latencies.
#[derive(Debug, Default, Clone)]
pub struct Latencies {
    samples: Vec<Duration>,
}

/// p50 / p99 / max in milliseconds, and how many samples.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    pub count: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Latencies {
    pub fn push(&mut self, d: Duration) {
        self.samples.push(d);
    }

    pub fn extend(&mut self, other: Latencies) {
        self.samples.extend(other.samples);
    }

    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// The `q`-quantile (0..=1) by nearest rank; zero without samples.
    pub fn quantile(&self, q: f64) -> Duration {
        if self.samples.is_empty() {
            return Duration::ZERO;
        }
        let mut sorted = self.samples.clone();
        sorted.sort();
        let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
        sorted[rank - 1]
    }

    pub fn summary(&self) -> Summary {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        Summary {
            count: self.samples.len(),
            p50_ms: ms(self.quantile(0.50)),
            p99_ms: ms(self.quantile(0.99)),
            max_ms: ms(self.quantile(1.0)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut l = Latencies::default();
        assert_eq!(l.summary().p99_ms, 0.0);
        for ms in 1..=100 {
            l.push(Duration::from_millis(ms));
        }
        assert_eq!(l.quantile(0.5), Duration::from_millis(50));
        assert_eq!(l.quantile(0.99), Duration::from_millis(99));
        assert_eq!(l.quantile(1.0), Duration::from_millis(100));
        let s = l.summary();
        assert_eq!((s.count, s.max_ms), (100, 100.0));
        let mut one = Latencies::default();
        one.push(Duration::from_millis(7));
        assert_eq!(one.quantile(0.99), Duration::from_millis(7));
    }
}
