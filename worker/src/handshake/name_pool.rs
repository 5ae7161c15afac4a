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
//!
//! Threads are started as lookups need them (one when a job finds none
//! idle, up to [`THREADS`]) and end after [`IDLE`] without work, so a
//! quiet worker holds none: its thread count stays the runtime's and its
//! sessions' (upstream's testsuite bounds a serving process's threads).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// Lookup threads per process.
pub(crate) const THREADS: usize = 4;
/// Lookups that may wait for a free thread.
pub(crate) const QUEUE: usize = 32;
/// How long a handshake waits for one lookup.
pub(crate) const DEADLINE: Duration = Duration::from_secs(5);
/// How long a lookup thread waits for work before it ends.
pub(crate) const IDLE: Duration = Duration::from_secs(10);

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

/// Up to a few lookup threads fed through a bounded queue.
#[derive(Debug)]
pub(crate) struct NamePool {
    /// The queue's sending end; `try_send` fails when it is full.
    jobs: SyncSender<Job>,
    /// How long [`NamePool::run`] waits for an answer.
    deadline: Duration,
    /// What the threads share: the queue's end and their counts.
    workers: Arc<Workers>,
    /// The most threads at once.
    max_threads: usize,
    /// How long an idle thread waits before it ends.
    idle: Duration,
}

/// The lookup threads' side.
#[derive(Debug)]
struct Workers {
    /// The queue's receiving end, one waiting thread at a time.
    queued: Mutex<Receiver<Job>>,
    /// Threads running.
    running: AtomicUsize,
    /// Threads waiting for a job.
    waiting: AtomicUsize,
}

impl NamePool {
    /// A pool of up to `threads` threads, `queue` waiting jobs and
    /// `deadline`; threads idle for `idle` end.
    pub(crate) fn new(threads: usize, queue: usize, deadline: Duration) -> Self {
        Self::with_idle(threads, queue, deadline, IDLE)
    }

    fn with_idle(threads: usize, queue: usize, deadline: Duration, idle: Duration) -> Self {
        let (jobs, queued) = mpsc::sync_channel::<Job>(queue);
        let workers = Arc::new(Workers {
            queued: Mutex::new(queued),
            running: AtomicUsize::new(0),
            waiting: AtomicUsize::new(0),
        });
        NamePool {
            jobs,
            deadline,
            workers,
            max_threads: threads.max(1),
            idle,
        }
    }

    /// A job was queued: start a thread for it if none is waiting and the
    /// pool may grow.
    fn staff(&self) {
        let w = &self.workers;
        if w.waiting.load(Ordering::SeqCst) > 0 {
            return;
        }
        let grown = w
            .running
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| (n < self.max_threads).then_some(n + 1));
        if grown.is_err() {
            return;
        }
        let (workers, idle) = (self.workers.clone(), self.idle);
        let spawned = std::thread::Builder::new()
            .name("name-lookup".into())
            .stack_size(256 * 1024)
            .spawn(move || work(&workers, idle));
        if let Err(e) = spawned {
            self.workers.running.fetch_sub(1, Ordering::SeqCst);
            tracing::warn!("cannot start a name lookup thread: {}", e);
        }
    }

    /// Threads running now.
    #[cfg(test)]
    fn threads(&self) -> usize {
        self.workers.running.load(Ordering::SeqCst)
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
            Ok(()) => self.staff(),
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => return Err(LookupUnavailable::Busy),
        }
        answered
            .recv_timeout(self.deadline)
            .map_err(|_| LookupUnavailable::Late(self.deadline))
    }
}

/// One lookup thread: take jobs until none comes for `idle` (or the pool
/// is dropped).
fn work(w: &Workers, idle: Duration) {
    loop {
        let job = {
            let Ok(rx) = w.queued.lock() else {
                w.running.fetch_sub(1, Ordering::SeqCst);
                return;
            };
            w.waiting.fetch_add(1, Ordering::SeqCst);
            let job = rx.recv_timeout(idle);
            w.waiting.fetch_sub(1, Ordering::SeqCst);
            match job {
                Ok(job) => Some(job),
                Err(RecvTimeoutError::Timeout) => {
                    // Leaving: no longer counted, then one last look, so a
                    // job queued while we were still counted as waiting is
                    // not left without a thread (its caller saw us waiting
                    // and started none).
                    w.running.fetch_sub(1, Ordering::SeqCst);
                    match rx.try_recv() {
                        Ok(job) => {
                            w.running.fetch_add(1, Ordering::SeqCst);
                            Some(job)
                        }
                        Err(_) => return,
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    w.running.fetch_sub(1, Ordering::SeqCst);
                    return;
                }
            }
        };
        if let Some(job) = job {
            job();
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
    fn threads_start_as_lookups_need_them_and_end_when_idle() {
        let pool = NamePool::with_idle(4, 8, Duration::from_secs(5), Duration::from_millis(100));
        assert_eq!(pool.threads(), 0, "a quiet pool holds no thread");
        assert_eq!(pool.run(|| 1), Ok(1));
        // Once the thread waits again, the next lookup is its.
        while pool.workers.waiting.load(Ordering::SeqCst) == 0 {
            std::thread::yield_now();
        }
        assert_eq!(pool.run(|| 2), Ok(2));
        assert_eq!(pool.threads(), 1, "one after another share one thread");
        let started = Instant::now();
        while pool.threads() > 0 && started.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(pool.threads(), 0, "idle threads end");
        assert_eq!(pool.run(|| 3), Ok(3), "and come back when needed");
    }

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
