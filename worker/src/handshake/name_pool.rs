//! Name lookups on their own small, bounded pool.
//!
//! Reverse DNS of a peer (and forward lookups of host names written in
//! `hosts allow`/`hosts deny`) can take as long as the resolver's retries,
//! and a client chooses its source address, hence whose DNS we wait on.
//! Lookups therefore never run on a shared pool (tokio's blocking pool,
//! which also reads secrets and lock files for every handshake): they run
//! here, on [`THREADS`] threads behind a queue of [`QUEUE`] jobs, and a
//! caller waits at most [`DEADLINE`] for its answer. When the queue is full
//! or the answer is late the caller gets [`LookupUnavailable`] at once, and
//! the peer's name is "UNKNOWN" (an unresolved name, as upstream shows it,
//! which `hosts deny` treats as failing closed). A late lookup keeps its
//! pool thread until the resolver gives up; the bounded queue is what keeps
//! such lookups from piling up.

use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// Lookup threads per process.
pub(crate) const THREADS: usize = 4;
/// Lookups that may wait for a free thread.
pub(crate) const QUEUE: usize = 32;
/// How long a handshake waits for one lookup.
pub(crate) const DEADLINE: Duration = Duration::from_secs(5);

type Job = Box<dyn FnOnce() + Send>;

/// Why a lookup gave no answer.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum LookupUnavailable {
    /// Every thread is busy and the queue is full.
    #[error("name lookup pool is full")]
    Busy,
    /// The answer did not come within the deadline.
    #[error("name lookup took longer than {0:?}")]
    Late(Duration),
}

/// A fixed set of lookup threads fed through a bounded queue.
#[derive(Debug)]
pub(crate) struct NamePool {
    /// The queue's sending end; `try_send` fails when it is full.
    jobs: SyncSender<Job>,
    /// How long [`NamePool::run`] waits for an answer.
    deadline: Duration,
}

impl NamePool {
    /// A pool of `threads` threads, `queue` waiting jobs and `deadline`.
    pub(crate) fn new(threads: usize, queue: usize, deadline: Duration) -> Self {
        let (jobs, queued) = mpsc::sync_channel::<Job>(queue);
        let queued = Arc::new(Mutex::new(queued));
        for _ in 0..threads.max(1) {
            let queued = queued.clone();
            let spawned = std::thread::Builder::new()
                .name("name-lookup".into())
                .stack_size(256 * 1024)
                .spawn(move || work(&queued));
            if let Err(e) = spawned {
                tracing::warn!("cannot start a name lookup thread: {}", e);
            }
        }
        NamePool { jobs, deadline }
    }

    /// Run `lookup` on the pool; its answer, unless the pool is full or
    /// the answer is later than the deadline.
    pub(crate) fn run<T: Send + 'static>(&self, lookup: impl FnOnce() -> T + Send + 'static) -> Result<T, LookupUnavailable> {
        let (answer, answered) = mpsc::sync_channel(1);
        let job: Job = Box::new(move || {
            // The caller may have stopped waiting: then nobody reads it.
            let _ = answer.send(lookup());
        });
        match self.jobs.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => return Err(LookupUnavailable::Busy),
        }
        answered
            .recv_timeout(self.deadline)
            .map_err(|_| LookupUnavailable::Late(self.deadline))
    }
}

/// One lookup thread: take jobs until the pool is dropped.
fn work(queued: &Mutex<Receiver<Job>>) {
    loop {
        let job = match queued.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        match job {
            Ok(job) => job(),
            Err(_) => return,
        }
    }
}

/// The process's pool, started on first use.
pub(crate) fn global() -> &'static NamePool {
    static POOL: OnceLock<NamePool> = OnceLock::new();
    POOL.get_or_init(|| NamePool::new(THREADS, QUEUE, DEADLINE))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn answers_in_time_come_back() {
        let pool = NamePool::new(2, 2, Duration::from_secs(5));
        assert_eq!(pool.run(|| 42), Ok(42));
    }

    #[test]
    fn a_slow_lookup_is_late_and_a_full_pool_is_busy_at_once() {
        let pool = Arc::new(NamePool::new(2, 1, Duration::from_millis(200)));
        let slow = || {
            std::thread::sleep(Duration::from_millis(1500));
            "slow.example".to_string()
        };
        let started = Instant::now();
        // Two threads and one queue slot: three slow lookups fill the pool.
        let waiting: Vec<_> = (0..3)
            .map(|_| {
                let pool = pool.clone();
                let w = std::thread::spawn(move || pool.run(slow));
                // Let a lookup thread take the job before the next comes.
                std::thread::sleep(Duration::from_millis(30));
                w
            })
            .collect();
        let refused = Instant::now();
        assert_eq!(pool.run(slow), Err(LookupUnavailable::Busy));
        assert!(refused.elapsed() < Duration::from_millis(50), "a full pool answers at once");
        for w in waiting {
            assert_eq!(w.join().unwrap(), Err(LookupUnavailable::Late(Duration::from_millis(200))));
        }
        assert!(
            started.elapsed() < Duration::from_millis(1000),
            "callers wait the deadline, not the lookup"
        );
    }
}
