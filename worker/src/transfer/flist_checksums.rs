//! `-c` on a pull: the whole-file checksum of every regular file in a file
//! list, computed before the list is sent (upstream's `file_checksum()` in
//! `make_file`). The client waits for the list, so this is pure latency:
//! the files are hashed on several threads at once. The helpers are
//! started by the session thread and so begin with its credentials (Linux
//! copies a thread's fsuid, fsgid and groups to the threads it creates;
//! see `identity.rs`): a helper reads exactly what the session may.
//! Results are applied in list order on the calling thread, so messages
//! and the list are the same as a serial run's.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use tracing::info;

use crate::transfer::delta::checksum::{ChecksumKind, ChecksumParams, FileSum};
use crate::transfer::flist::FileEntry;
use crate::transfer::module_root::ModuleRoot;

/// Most threads one list is hashed on (the session thread included): more
/// rarely helps a disk, and a busy daemon has other sessions to serve.
const MAX_THREADS: usize = 4;
/// Below this many bytes in a list, starting threads costs more than it saves.
const PARALLEL_MIN_BYTES: u64 = 4 << 20;
/// Below this many files, likewise.
const PARALLEL_MIN_FILES: usize = 8;
/// Read size: big enough for few syscalls, small enough to stay in cache.
const READ_BUF: usize = 256 * 1024;

/// Fill `entry.checksum` of every regular file in `entries` (unseeded, as
/// upstream). A file that cannot be read gets zeros and a line in the
/// daemon log only: upstream's `file_checksum()` raises no I/O error
/// either (sending the file will report it, if it still fails then).
pub(crate) fn fill(root: &ModuleRoot, entries: &mut [(FileEntry, PathBuf)], kind: ChecksumKind) {
    // Plain digests: the old seeded MD4 of protocols < 30 is a transfer-sum
    // quirk; upstream's file_checksum() never feeds the seed.
    let kind = if kind == ChecksumKind::Md4Old { ChecksumKind::Md4 } else { kind };
    let params = ChecksumParams {
        kind,
        seed: 0,
        proper_seed_order: true,
    };
    let files: Vec<usize> = (0..entries.len()).filter(|&i| entries[i].0.is_reg()).collect();
    let bytes: u64 = files.iter().map(|&i| entries[i].0.size).sum();
    let threads = if files.len() >= PARALLEL_MIN_FILES && bytes >= PARALLEL_MIN_BYTES {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(MAX_THREADS)
            .min(files.len())
    } else {
        1
    };
    let paths: Vec<(&Path, u64)> = files.iter().map(|&i| (entries[i].1.as_path(), entries[i].0.size)).collect();
    let sums = if threads > 1 {
        hash_parallel(root, &paths, &params, threads)
    } else {
        let mut buf = vec![0u8; READ_BUF];
        paths.iter().map(|&(p, size)| hash_one(root, p, size, &params, &mut buf)).collect()
    };
    for (&i, sum) in files.iter().zip(sums) {
        let (entry, path) = &mut entries[i];
        match sum {
            Ok(sum) => entry.checksum = Some(sum),
            Err(e) => {
                info!("cannot checksum {}: {}", path.display(), e);
                entry.checksum = Some(vec![0; kind.digest_len()]);
            }
        }
    }
}

/// Hash `paths` on `threads` threads (this one included), each pulling the
/// next unclaimed file, so one big file does not hold up the rest.
fn hash_parallel(root: &ModuleRoot, paths: &[(&Path, u64)], params: &ChecksumParams, threads: usize) -> Vec<io::Result<Vec<u8>>> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<io::Result<Vec<u8>>>>> = Mutex::new((0..paths.len()).map(|_| None).collect());
    let work = || {
        let mut buf = vec![0u8; READ_BUF];
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(&(path, size)) = paths.get(i) else { return };
            let sum = hash_one(root, path, size, params, &mut buf);
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
fn hash_one(root: &ModuleRoot, path: &Path, size: u64, params: &ChecksumParams, buf: &mut [u8]) -> io::Result<Vec<u8>> {
    let mut file: File = root.open_read_unchecked(path)?;
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
            fill(&root, &mut parallel, kind);
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
            fill(&root, &mut serial, kind);
            assert_eq!(
                serial[..3].iter().map(|e| &e.0.checksum).collect::<Vec<_>>(),
                parallel[..3].iter().map(|e| &e.0.checksum).collect::<Vec<_>>()
            );
        }
    }
}
