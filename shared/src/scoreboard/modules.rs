//! Module names in the scoreboard: every worker registers the modules of
//! its config once, and the first to see a name gives it a number every
//! process then uses for it. Numbers are never reused while the daemon
//! runs, so a reload that renames modules cannot mix their counters; past
//! [`MODULES`] distinct names, the rest share the `other` bucket (the
//! metrics' cardinality stays bounded whatever the config).

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use super::{text, Scoreboard};

/// Distinct module names the scoreboard tells apart.
pub const MODULES: usize = 64;
/// Module buckets: the named ones and `other`.
pub const MODULE_BUCKETS: usize = MODULES + 1;
/// Longest name stored; a longer one counts as `other`.
const NAME_BYTES: usize = 120;

const EMPTY: u32 = 0;
const WRITING: u32 = 1;
const READY: u32 = 2;

/// A module's bucket in the scoreboard (`MODULES` = other).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModuleIndex(pub u16);

impl ModuleIndex {
    pub const OTHER: ModuleIndex = ModuleIndex(MODULES as u16);

    pub fn bucket(self) -> usize {
        usize::from(self.0).min(MODULES)
    }
}

/// One stored name.
#[repr(C)]
pub struct ModuleName {
    state: AtomicU32,
    len: AtomicU32,
    bytes: [AtomicU64; NAME_BYTES / 8],
}

impl ModuleName {
    fn read(&self) -> Option<Vec<u8>> {
        if self.state.load(Ordering::Acquire) != READY {
            return None;
        }
        Some(text::load(&self.bytes, self.len.load(Ordering::Acquire) as usize))
    }

    fn write(&self, name: &[u8]) {
        let stored = text::store(&self.bytes, name);
        self.len.store(stored as u32, Ordering::Release);
    }
}

impl Scoreboard {
    /// The bucket of module `name`, registering it if it is new.
    pub fn module_index(&self, name: &str) -> ModuleIndex {
        let bytes = name.as_bytes();
        if bytes.len() > NAME_BYTES {
            return ModuleIndex::OTHER;
        }
        for i in 0..MODULES {
            let slot = self.module_name(i);
            loop {
                match slot.state.load(Ordering::Acquire) {
                    READY => {
                        if slot.read().as_deref() == Some(bytes) {
                            return ModuleIndex(i as u16);
                        }
                        break;
                    }
                    WRITING => std::thread::yield_now(),
                    _ => {
                        if slot
                            .state
                            .compare_exchange(EMPTY, WRITING, Ordering::AcqRel, Ordering::Acquire)
                            .is_ok()
                        {
                            slot.write(bytes);
                            slot.state.store(READY, Ordering::Release);
                            return ModuleIndex(i as u16);
                        }
                    }
                }
            }
        }
        ModuleIndex::OTHER
    }

    /// The name of a bucket, for labels (`other` past the table).
    pub fn module_label(&self, index: ModuleIndex) -> Option<String> {
        if index.bucket() >= MODULES {
            return Some("(other)".into());
        }
        self.module_name(index.bucket())
            .read()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    }
}
