//! `-c` on a pull: the whole-file checksum of every regular file in a file
//! list, computed before the list is sent (upstream's `file_checksum()` in
//! `make_file`). The client waits for the list, so this is pure latency:
//! the files are hashed on several threads at once. The helpers are
//! started by the session thread and so begin with its credentials (Linux
//! copies a thread's fsuid, fsgid and groups to the threads it creates;
//! see `identity.rs`): a helper reads exactly what the session may.
//! Results are applied in list order on the calling thread, so messages
//! and the list are the same as a serial run's. A file the worker hashed
//! for an earlier session and that has not changed since is not read
//! again (`checksum_cache.rs`).

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::SystemTime;

use tracing::{debug, info};

use crate::transfer::delta::checksum::{ChecksumKind, ChecksumParams, FileSum};
use crate::transfer::flist::FileEntry;
use crate::transfer::fs::module_root::ModuleRoot;
use crate::transfer::send::checksum_cache::{self, CacheKey, ChecksumCache};

/// Most threads one list is hashed on (the session thread included): more
/// rarely helps a disk, and a busy daemon has other sessions to serve.
const MAX_THREADS: usize = 4;
/// Below this many bytes in a list, starting threads costs more than it saves.
const PARALLEL_MIN_BYTES: u64 = 4 << 20;
/// Below this many files, likewise.
const PARALLEL_MIN_FILES: usize = 8;
/// Read size: big enough for few syscalls, small enough to stay in cache.
const READ_BUF: usize = 256 * 1024;

/// How a session's lists get their `-c` digests: settled once, when the
/// session starts listing (on its own thread, with its credentials).
pub(crate) struct ListHasher {
    /// Unseeded whole-file digests of the negotiated kind.
    params: ChecksumParams,
    /// The list follows symlinks (`-L`, `--copy-unsafe-links`), so a
    /// regular file in it may be a link's target, read through the link.
    follow: bool,
    /// The worker's cache and the tag of this session's credentials.
    cache: Option<(&'static ChecksumCache, u64)>,
}

impl ListHasher {
    /// For a session that negotiated `kind`, with the worker's cache.
    pub(crate) fn new(kind: ChecksumKind, follow: bool) -> ListHasher {
        Self::with_cache(kind, follow, checksum_cache::shared())
    }

    fn with_cache(kind: ChecksumKind, follow: bool, cache: Option<&'static ChecksumCache>) -> ListHasher {
        // Plain digests: the old seeded MD4 of protocols < 30 is a
        // transfer-sum quirk; upstream's file_checksum() never feeds the seed.
        let kind = if kind == ChecksumKind::Md4Old { ChecksumKind::Md4 } else { kind };
        ListHasher {
            params: ChecksumParams {
                kind,
                seed: 0,
                proper_seed_order: true,
            },
            follow,
            cache: cache.map(|c| (c, checksum_cache::reader_tag())),
        }
    }

    /// Fill `entry.checksum` of every regular file in `entries` (unseeded,
    /// as upstream). A file that cannot be read gets zeros and a line in
    /// the daemon log only: upstream's `file_checksum()` raises no I/O
    /// error either (sending the file will report it, if it still fails
    /// then). Digests the worker's [`checksum_cache`] holds for the
    /// unchanged file are taken from it; the rest are read, and kept there
    /// when settled.
    pub(crate) fn fill(&self, root: &ModuleRoot, entries: &mut [(FileEntry, PathBuf)]) {
        let kind = self.params.kind;
        // (index, key) of each file to read.
        let mut to_read = Vec::new();
        let mut listed = 0;
        for (i, (entry, _)) in entries.iter_mut().enumerate() {
            if !entry.is_reg() {
                continue;
            }
            listed += 1;
            let key = self.cache.and_then(|(_, reader)| CacheKey::of(entry, kind, reader));
            match self.cache.zip(key).and_then(|((cache, _), key)| cache.lookup(&key)) {
                Some(sum) => entry.checksum = Some(sum),
                None => to_read.push((i, key)),
            }
        }
        if self.cache.is_some() {
            debug!("-c: {} of {} file digests from the checksum cache", listed - to_read.len(), listed);
        }
        let bytes: u64 = to_read.iter().map(|&(i, _)| entries[i].0.size).sum();
        let threads = if to_read.len() >= PARALLEL_MIN_FILES && bytes >= PARALLEL_MIN_BYTES {
            std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .min(MAX_THREADS)
                .min(to_read.len())
        } else {
            1
        };
        let paths: Vec<(&Path, u64)> = to_read.iter().map(|&(i, _)| (entries[i].1.as_path(), entries[i].0.size)).collect();
        // Taken before the first open: a file changed after this is not one
        // the cache may keep (checksum_cache::SETTLE).
        let read_began = SystemTime::now();
        let sums = if threads > 1 {
            hash_parallel(root, &paths, &self.params, self.follow, threads)
        } else {
            let mut buf = vec![0u8; READ_BUF];
            paths
                .iter()
                .map(|&(p, size)| hash_one(root, p, size, &self.params, self.follow, &mut buf))
                .collect()
        };
        for (&(i, key), sum) in to_read.iter().zip(sums) {
            let (entry, path) = &mut entries[i];
            match sum {
                Ok(sum) => {
                    if let (Some((cache, _)), Some(key)) = (self.cache, key) {
                        cache.remember(key, &sum, read_began);
                    }
                    entry.checksum = Some(sum);
                }
                Err(e) => {
                    info!("cannot checksum {}: {}", path.display(), e);
                    entry.checksum = Some(vec![0; kind.digest_len()]);
                }
            }
        }
    }
}

/// Hash `paths` on `threads` threads (this one included), each pulling the
/// next unclaimed file, so one big file does not hold up the rest.
fn hash_parallel(
    root: &ModuleRoot,
    paths: &[(&Path, u64)],
    params: &ChecksumParams,
    follow: bool,
    threads: usize,
) -> Vec<io::Result<Vec<u8>>> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<io::Result<Vec<u8>>>>> = Mutex::new((0..paths.len()).map(|_| None).collect());
    let work = || {
        let mut buf = vec![0u8; READ_BUF];
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(&(path, size)) = paths.get(i) else { return };
            let sum = hash_one(root, path, size, params, follow, &mut buf);
            results.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(sum);
        }
    };
    std::thread::scope(|scope| {
        for _ in 1..threads {
            scope.spawn(work);
        }
        work();
    });
    results
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(io::Error::other("not hashed"))))
        .collect()
}

/// The whole-file digest of the first `size` bytes of one file (the size
/// the list gives it, as upstream's `file_checksum` sums `st_size` bytes),
/// read through the module root. Reading stops at `size`, so no read is
/// spent on finding the end, and the open needs no stat: whatever was
/// swapped in under the name, at most `size` bytes are read, never
/// blocking (the open is non-blocking).
fn hash_one(root: &ModuleRoot, path: &Path, size: u64, params: &ChecksumParams, follow: bool, buf: &mut [u8]) -> io::Result<Vec<u8>> {
    let mut file: File = root.open_read_unchecked(path, follow)?;
    let mut sum = FileSum::new(params);
    let mut left = size;
    while left > 0 {
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        match file.read(&mut buf[..want]) {
            Ok(0) => break,
            Ok(n) => {
                sum.update(&buf[..n]);
                left -= n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(sum.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, size: u64, mode: u32) -> (FileEntry, PathBuf) {
        let e = FileEntry {
            name: name.as_bytes().to_vec(),
            mode,
            size,
            ..FileEntry::default()
        };
        (e, PathBuf::from(name))
    }

    /// The parallel and the serial paths agree with a direct digest, keep
    /// list order, skip non-files and give unreadable files zeros.
    #[test]
    fn parallel_equals_serial_and_reports_failures() {
        let dir = tempfile::tempdir().unwrap();
        let mut list = Vec::new();
        for i in 0..40u32 {
            let data: Vec<u8> = (0..(i as usize * 7919 % 300_000)).map(|b| (b as u32 ^ i) as u8).collect();
            std::fs::write(dir.path().join(format!("f{i}")), &data).unwrap();
            list.push(entry(&format!("f{i}"), data.len() as u64, libc::S_IFREG | 0o644));
        }
        std::fs::create_dir(dir.path().join("d")).unwrap();
        list.push(entry("d", 0, libc::S_IFDIR | 0o755));
        list.push(entry("gone", 10, libc::S_IFREG | 0o644));
        let root = ModuleRoot::open(dir.path()).unwrap();
        for kind in [ChecksumKind::Md5, ChecksumKind::Xxh128] {
            let mut parallel = list.clone();
            ListHasher::with_cache(kind, false, None).fill(&root, &mut parallel);
            let params = ChecksumParams {
                kind,
                seed: 0,
                proper_seed_order: true,
            };
            for (e, p) in &parallel[..40] {
                let mut s = FileSum::new(&params);
                s.update(&std::fs::read(dir.path().join(p)).unwrap());
                assert_eq!(e.checksum.as_deref(), Some(&s.finish()[..]), "{p:?}");
            }
            assert_eq!(parallel[40].0.checksum, None, "a directory gets no sum");
            assert_eq!(parallel[41].0.checksum, Some(vec![0; kind.digest_len()]));
            // The serial path (one small file at a time) agrees.
            let mut serial: Vec<_> = list[..3].to_vec();
            ListHasher::with_cache(kind, false, None).fill(&root, &mut serial);
            assert_eq!(
                serial[..3].iter().map(|e| &e.0.checksum).collect::<Vec<_>>(),
                parallel[..3].iter().map(|e| &e.0.checksum).collect::<Vec<_>>()
            );
        }
    }

    /// A cached digest is used for the file as listed (its stat unchanged)
    /// and a changed ctime reads the file again; a file that changed just
    /// now is hashed but not kept.
    #[test]
    fn unchanged_files_come_from_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), b"first").unwrap();
        let root = ModuleRoot::open(dir.path()).unwrap();
        let cache: &'static ChecksumCache = Box::leak(Box::new(ChecksumCache::new(100)));
        let kind = ChecksumKind::Md5;
        let hasher = ListHasher::with_cache(kind, false, Some(cache));
        let digest = |data: &[u8]| {
            let mut s = FileSum::new(&ChecksumParams {
                kind,
                seed: 0,
                proper_seed_order: true,
            });
            s.update(data);
            s.finish()
        };
        let mut settled = entry("f", 5, libc::S_IFREG | 0o644);
        settled.0.ctime = 1_000_000;
        let mut list = vec![settled.clone()];
        hasher.fill(&root, &mut list);
        assert_eq!(list[0].0.checksum, Some(digest(b"first")));
        assert_eq!(cache.len(), 1);
        // Same stat, other bytes: the cache answers (so it was used).
        std::fs::write(dir.path().join("f"), b"other").unwrap();
        let mut again = vec![settled.clone()];
        hasher.fill(&root, &mut again);
        assert_eq!(again[0].0.checksum, Some(digest(b"first")));
        // A new ctime is another key: the file is read.
        let mut changed = settled.clone();
        changed.0.ctime = 1_000_001;
        let mut list = vec![changed];
        hasher.fill(&root, &mut list);
        assert_eq!(list[0].0.checksum, Some(digest(b"other")));
        // Without a listed ctime: hashed, not kept.
        let before = cache.len();
        let mut list = vec![entry("f", 5, libc::S_IFREG | 0o644)];
        hasher.fill(&root, &mut list);
        assert_eq!(list[0].0.checksum, Some(digest(b"other")));
        assert_eq!(cache.len(), before);
        // Changed a moment ago: hashed, not kept.
        let mut fresh = settled;
        fresh.0.ctime = SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
        let before = cache.len();
        let mut list = vec![fresh];
        hasher.fill(&root, &mut list);
        assert_eq!(list[0].0.checksum, Some(digest(b"other")));
        assert_eq!(cache.len(), before);
    }
}
