//! A worker's memory of whole-file checksums for `-c` pulls.
//!
//! A mirror is pulled with `-c` by many clients, and upstream's daemon
//! reads and hashes every file of the tree for each of them. This cache
//! keeps the digests one worker process computed and hands them to its
//! later sessions while the file is provably unchanged:
//!
//! - **Same file, same content.** The key is what the walker's stat
//!   already says of the file: device, inode, size, mtime and ctime, each
//!   to the nanosecond. Any write, truncate, `utimes`, rename over the
//!   name, chmod or chown moves the ctime, and no call sets it back (only
//!   the system clock could).
//! - **Only settled files.** A digest is kept only when the file's ctime
//!   was at least [`SETTLE`] older than the moment its read began. A write
//!   racing the read then gets a ctime later than the one remembered, so
//!   a digest of a half-written file is never handed out again (the
//!   "racily clean" rule git uses for its index).
//! - **Only to who could read it.** The key holds a tag of the reading
//!   thread's file credentials (fsuid, fsgid, supplementary groups). A
//!   session that walked to the file has searched its directories; with
//!   the same credentials and an unchanged ctime (permissions and owner
//!   included), it could open the file too.
//! - **Bounded, and a whole tree's worth.** Two generations of at most
//!   `checksum cache entries` digests each (an oxrsyncd global parameter,
//!   0: off): when the newer one is full the older one is dropped, so what
//!   is still used survives and memory stays flat. A `-c` list walks the
//!   whole tree in the same order every time, the pattern that defeats a
//!   cache smaller than the walk: each generation holds a whole tree of up
//!   to that many files, so such a tree's repeated walks always hit (with
//!   half-size generations a walk of more than half the size hit nothing).
//! - **Compact, for mirrors of millions of files.** A table entry is the
//!   key's 128-bit fingerprint (a hash keyed by this process's random
//!   seed: a collision, which would hand one file's digest to another, is
//!   a 1 in 2^128 event per pair, and nobody can aim at one) and the
//!   digest: 40 bytes, 46 to 92 with the table's load and growth (86
//!   measured at a million entries, just past a doubling).
//!
//! The cache lives for one worker process: a reload starts new workers
//! with empty caches, and inetd or remote-shell sessions (one process
//! each) have none.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::transfer::delta::checksum::ChecksumKind;
use crate::transfer::flist::FileEntry;

/// How long before a read began a file's last change must lie for its
/// digest to be kept: well above the kernel's coarse timestamp tick.
pub(crate) const SETTLE: Duration = Duration::from_secs(2);

/// Longest digest kept (SHA-1's 20 bytes; the others are 8 or 16).
const MAX_DIGEST: usize = 20;

/// The worker's one cache, if [`install`] was called with a nonzero size.
static SHARED: OnceLock<ChecksumCache> = OnceLock::new();

/// Give this process a cache of at most `entries` digests (0: none).
/// Called once by the worker at start; later calls change nothing.
pub(crate) fn install(entries: usize) {
    if entries > 0 {
        let _ = SHARED.set(ChecksumCache::new(entries));
    }
}

/// The process's cache, if it has one.
pub(crate) fn shared() -> Option<&'static ChecksumCache> {
    SHARED.get()
}

/// What identifies one file's content for one reader and one digest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct CacheKey {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: i64,
    ctime: i64,
    mtime_nsec: u32,
    ctime_nsec: u32,
    kind: ChecksumKind,
    /// [`reader_tag`] of the credentials that read the file.
    reader: u64,
}

impl CacheKey {
    /// The key of a listed regular file, read by `reader` for `kind`;
    /// `None` for an entry without the ctime it was listed with (nothing
    /// could tell that it is unchanged).
    pub(crate) fn of(entry: &FileEntry, kind: ChecksumKind, reader: u64) -> Option<CacheKey> {
        if entry.ctime == 0 && entry.ctime_nsec == 0 {
            return None;
        }
        Some(CacheKey {
            dev: entry.dev,
            ino: entry.ino,
            size: entry.size,
            mtime: entry.mtime,
            ctime: entry.ctime,
            mtime_nsec: entry.mtime_nsec,
            ctime_nsec: entry.ctime_nsec,
            kind,
            reader,
        })
    }

    /// Whether the file had stopped changing [`SETTLE`] before `read_began`.
    fn settled_before(&self, read_began: SystemTime) -> bool {
        let Ok(now) = read_began.duration_since(UNIX_EPOCH) else {
            return false;
        };
        let Some(limit) = now.checked_sub(SETTLE) else { return false };
        let changed = (i128::from(self.ctime) * 1_000_000_000) + i128::from(self.ctime_nsec);
        changed < limit.as_nanos() as i128
    }
}

/// One remembered digest.
#[derive(Clone, Copy)]
struct Digest {
    len: u8,
    bytes: [u8; MAX_DIGEST],
}

/// A key as the tables hold it: its keyed 128-bit fingerprint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Fingerprint([u64; 2]);

impl CacheKey {
    fn fingerprint(&self) -> Fingerprint {
        static SEED: OnceLock<u64> = OnceLock::new();
        let seed = *SEED.get_or_init(|| std::collections::hash_map::RandomState::new().hash_one(0u8));
        let mut bytes = [0u8; 61];
        let fields: [&[u8]; 9] = [
            &self.dev.to_le_bytes(),
            &self.ino.to_le_bytes(),
            &self.size.to_le_bytes(),
            &self.mtime.to_le_bytes(),
            &self.ctime.to_le_bytes(),
            &self.mtime_nsec.to_le_bytes(),
            &self.ctime_nsec.to_le_bytes(),
            &[self.kind as u8],
            &self.reader.to_le_bytes(),
        ];
        let mut at = 0;
        for f in fields {
            bytes[at..at + f.len()].copy_from_slice(f);
            at += f.len();
        }
        let h = xxhash_rust::xxh3::xxh3_128_with_seed(&bytes[..at], seed);
        Fingerprint([h as u64, (h >> 64) as u64])
    }
}

/// Digests by key, in two generations (see the module docs).
pub(crate) struct ChecksumCache {
    /// Most entries one generation holds (the configured size).
    per_generation: usize,
    generations: Mutex<Generations>,
}

#[derive(Default)]
struct Generations {
    /// Where new and recently used digests go.
    current: HashMap<Fingerprint, Digest>,
    /// The generation before: dropped when `current` fills.
    previous: HashMap<Fingerprint, Digest>,
}

impl ChecksumCache {
    /// A cache whose generations hold `entries` digests each.
    pub(crate) fn new(entries: usize) -> ChecksumCache {
        ChecksumCache {
            per_generation: entries.max(1),
            generations: Mutex::new(Generations::default()),
        }
    }

    /// The digest remembered for `key`, if any.
    pub(crate) fn lookup(&self, key: &CacheKey) -> Option<Vec<u8>> {
        let key = key.fingerprint();
        let mut g = self.generations.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(d) = g.current.get(&key) {
            return Some(d.bytes[..usize::from(d.len)].to_vec());
        }
        let d = g.previous.remove(&key)?;
        // Still in use: it moves to the newer generation.
        self.insert(&mut g, key, d);
        Some(d.bytes[..usize::from(d.len)].to_vec())
    }

    /// Remember `digest` for `key` if the file had settled before its
    /// read began; returns whether it was kept.
    pub(crate) fn remember(&self, key: CacheKey, digest: &[u8], read_began: SystemTime) -> bool {
        if digest.len() > MAX_DIGEST || !key.settled_before(read_began) {
            return false;
        }
        let mut bytes = [0u8; MAX_DIGEST];
        bytes[..digest.len()].copy_from_slice(digest);
        let d = Digest {
            len: digest.len() as u8,
            bytes,
        };
        let key = key.fingerprint();
        let mut g = self.generations.lock().unwrap_or_else(|p| p.into_inner());
        self.insert(&mut g, key, d);
        true
    }

    /// How many digests are held (both generations).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        let g = self.generations.lock().unwrap_or_else(|p| p.into_inner());
        g.current.len() + g.previous.len()
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn insert(&self, g: &mut Generations, key: Fingerprint, d: Digest) {
        if g.current.len() >= self.per_generation && !g.current.contains_key(&key) {
            g.previous = std::mem::take(&mut g.current);
        }
        g.current.insert(key, d);
    }
}

/// A tag of the calling thread's file credentials: fsuid, fsgid and
/// supplementary groups (all per thread on Linux; see `identity.rs`).
/// Keyed with this process's random hash keys, so a tag cannot be chosen.
pub(crate) fn reader_tag() -> u64 {
    static KEYS: OnceLock<std::collections::hash_map::RandomState> = OnceLock::new();
    let mut h = KEYS.get_or_init(Default::default).build_hasher();
    crate::identity::thread_fsuid().hash(&mut h);
    crate::identity::thread_fsgid().hash(&mut h);
    crate::identity::thread_groups().hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(ino: u64, ctime: i64) -> FileEntry {
        FileEntry {
            dev: 1,
            ino,
            size: 10,
            mtime: 100,
            ctime,
            mode: 0o100644,
            ..FileEntry::default()
        }
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    /// A settled file's digest comes back for the same key only: another
    /// ctime, reader or digest kind misses.
    #[test]
    fn hits_only_the_same_file_reader_and_kind() {
        let cache = ChecksumCache::new(10);
        let key = CacheKey::of(&entry(1, 1000), ChecksumKind::Xxh128, 7).unwrap();
        assert!(cache.remember(key, &[1, 2, 3], at(1003)));
        assert_eq!(cache.lookup(&key), Some(vec![1, 2, 3]));
        assert_eq!(cache.lookup(&CacheKey::of(&entry(1, 1001), ChecksumKind::Xxh128, 7).unwrap()), None);
        assert_eq!(cache.lookup(&CacheKey::of(&entry(1, 1000), ChecksumKind::Xxh128, 8).unwrap()), None);
        assert_eq!(cache.lookup(&CacheKey::of(&entry(1, 1000), ChecksumKind::Md5, 7).unwrap()), None);
        let mut changed = entry(1, 1000);
        changed.mtime_nsec = 1;
        assert_eq!(cache.lookup(&CacheKey::of(&changed, ChecksumKind::Xxh128, 7).unwrap()), None);
    }

    /// A file changed within SETTLE of the read is not remembered.
    #[test]
    fn a_file_still_changing_is_not_kept() {
        let cache = ChecksumCache::new(10);
        let key = CacheKey::of(&entry(1, 1000), ChecksumKind::Md5, 0).unwrap();
        assert!(!cache.remember(key, &[9; 16], at(1001)));
        assert!(!cache.remember(key, &[9; 16], at(1002)));
        assert!(cache.is_empty());
        assert!(cache.remember(key, &[9; 16], at(1002) + Duration::from_nanos(1)));
    }

    /// The size bound holds, and a digest in use survives a generation
    /// change.
    #[test]
    fn bounded_with_recently_used_kept() {
        let cache = ChecksumCache::new(2);
        let key = |i| CacheKey::of(&entry(i, 1000), ChecksumKind::Md5, 0).unwrap();
        for i in 0..100 {
            cache.remember(key(i), &[i as u8], at(2000));
            assert!(cache.len() <= 4, "{}", cache.len());
            // Entry 0 is used all along.
            assert_eq!(cache.lookup(&key(0)), Some(vec![0]), "after {i}");
        }
        assert_eq!(cache.lookup(&key(50)), None);
        assert_eq!(cache.lookup(&key(99)), Some(vec![99]));
    }

    /// A walk of as many files as the size, repeated, hits every time
    /// (it hit nothing when generations were half the size).
    #[test]
    fn a_whole_tree_walked_again_hits() {
        let n = 1000;
        let cache = ChecksumCache::new(n);
        let key = |i| CacheKey::of(&entry(i, 1000), ChecksumKind::Md5, 0).unwrap();
        for i in 0..n as u64 {
            assert!(cache.remember(key(i), &[1], at(2000)));
        }
        for walk in 0..3 {
            let hits = (0..n as u64).filter(|&i| cache.lookup(&key(i)).is_some()).count();
            assert_eq!(hits, n, "walk {walk}");
        }
    }

    /// A table entry is the fingerprint and the digest, 40 bytes: what
    /// docs/configuration.md's memory figures are built on (with the
    /// table's 7/8 load and power-of-two growth, 46 to 92 bytes an entry).
    #[test]
    fn a_table_entry_is_forty_bytes() {
        assert_eq!(std::mem::size_of::<(Fingerprint, Digest)>(), 40);
    }

    /// The tag follows the thread's credentials.
    #[test]
    fn reader_tag_is_stable_on_a_thread() {
        assert_eq!(reader_tag(), reader_tag());
    }
}
