//! Construction of the worker's tokio runtime, in one place.
//!
//! Multi-thread, because one worker serves many handshakes at once and a
//! slow client must not hold up the others; `worker threads` threads
//! (default min(CPUs, 8)) because the async side only does the cheap text
//! handshake: transfers run on their own plain threads and never touch
//! the runtime. Only the I/O and time drivers are enabled.

use std::io;

/// Build the runtime with `threads` worker threads.
pub(crate) fn build(threads: usize) -> io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .thread_name("oxrsyncd-async")
        .enable_io()
        .enable_time()
        .build()
}

/// The default number of runtime threads.
pub(crate) fn default_threads() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).min(8)
}
