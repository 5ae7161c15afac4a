//! The runtime the async scenarios run on, built in one place: a small
//! multi-thread tokio runtime. Connections are cheap tasks; two threads
//! keep up with 10,000 idle sockets, and the scenario, not the runtime,
//! should be what a measurement sees.

use std::future::Future;
use std::io;

/// Run `work` to completion on a fresh runtime.
pub fn block_on<F: Future>(work: F) -> io::Result<F::Output> {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    Ok(rt.block_on(work))
}
