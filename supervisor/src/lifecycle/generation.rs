//! A generation: one validated config and the workers started for it.
//! Every successful reload creates the next generation; the previous one
//! drains.

use std::io::Write;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::Instant;

use nix::sys::memfd::{memfd_create, MemFdCreateFlag};
use nix::unistd::Pid;
use oxrsyncd_shared::config::Config;

use super::backoff::SlotBackoff;

/// One worker slot of a generation.
#[derive(Debug, Default)]
pub struct Slot {
    /// The live worker in this slot, if any.
    pub pid: Option<Pid>,
    /// When to start a replacement after a crash.
    pub respawn_at: Option<Instant>,
    pub backoff: SlotBackoff,
}

/// A config and its workers.
pub struct Generation {
    pub number: u64,
    pub config: Arc<Config>,
    /// The config as JSON in a memfd every worker of this generation reads.
    pub config_fd: OwnedFd,
    pub slots: Vec<Slot>,
}

impl Generation {
    /// Prepare generation `number` for `config` with `workers` slots (no process started yet).
    pub fn new(number: u64, config: Arc<Config>, workers: usize) -> std::io::Result<Generation> {
        let fd = memfd_create(c"oxrsyncd-config", MemFdCreateFlag::MFD_CLOEXEC)?;
        let json = serde_json::to_vec(&*config).map_err(std::io::Error::other)?;
        let mut file = std::fs::File::from(fd);
        file.write_all(&json)?;
        let slots = (0..workers.max(1)).map(|_| Slot::default()).collect();
        Ok(Generation {
            number,
            config,
            config_fd: file.into(),
            slots,
        })
    }

    /// The number of workers the config asks for.
    pub fn worker_count(config: &Config) -> usize {
        config
            .global
            .workers
            .unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1))
    }
}
