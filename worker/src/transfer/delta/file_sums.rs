//! The generator's block sums of a basis file, on several threads when
//! the file is big: each thread reads (`pread`) and sums its own run of
//! blocks, and the runs are joined in order. The client waits for the
//! whole list before it starts matching, so on a large delta push the
//! time to sum the basis is time the transfer stands still; the work per
//! block is independent, so it divides.

use std::fs::File;
use std::os::unix::fs::FileExt;

use crate::transfer::delta::checksum::{block_sum, weak_sum, ChecksumParams};
use crate::transfer::delta::error::DeltaError;
use crate::transfer::delta::sums::{compute_block_sums, sum_sizes_sqroot, BlockSums, SumHead, SumSizing};

/// Below this a basis is summed on the calling thread.
const PARALLEL_MIN_BYTES: u64 = 16 << 20;
/// Threads at most, whatever the machine has.
const MAX_THREADS: usize = 4;
/// Bytes read per `pread` (whole blocks): fewer system calls than one
/// per block of a few KiB.
const READ_CHUNK: usize = 1 << 20;

/// [`compute_block_sums`] of `file`, whose first `len` bytes are the basis.
pub(crate) fn block_sums_of_file(
    file: &File,
    len: u64,
    p: &ChecksumParams,
    protocol: u32,
    sizing: SumSizing,
) -> Result<BlockSums, DeltaError> {
    let threads = if len >= PARALLEL_MIN_BYTES {
        std::thread::available_parallelism().map_or(1, |n| n.get()).min(MAX_THREADS)
    } else {
        1
    };
    if threads < 2 {
        let mut reader = std::io::BufReader::with_capacity(256 * 1024, file);
        return compute_block_sums(&mut reader, len, p, protocol, sizing);
    }
    let head = sum_sizes_sqroot(len, protocol, p.kind.digest_len(), sizing)
        .ok_or_else(|| DeltaError::BadSumHead(format!("basis of {len} bytes has too many blocks")))?;
    let count = head.count as usize;
    let per_thread = count.div_ceil(threads);
    let runs: Vec<Result<Run, DeltaError>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..count)
            .step_by(per_thread.max(1))
            .map(|first| {
                let last = (first + per_thread).min(count);
                let head = &head;
                scope.spawn(move || sum_run(file, head, p, first, last))
            })
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|_| Err(DeltaError::BadSumHead("a summing thread panicked".into())))
            })
            .collect()
    });
    let l = head.s2length as usize;
    let mut weak = Vec::with_capacity(count);
    let mut strong = Vec::with_capacity(count * l);
    for run in runs {
        let (w, s) = run?;
        weak.extend(w);
        strong.extend(s);
    }
    Ok(BlockSums { head, weak, strong })
}

/// One thread's share: the weak sums and the truncated strong sums of a
/// run of blocks.
type Run = (Vec<u32>, Vec<u8>);

/// Sum blocks `first..last`.
fn sum_run(file: &File, head: &SumHead, p: &ChecksumParams, first: usize, last: usize) -> Result<Run, DeltaError> {
    let l = head.s2length as usize;
    let blength = head.blength as usize;
    let per_read = (READ_CHUNK / blength).max(1);
    let mut weak = Vec::with_capacity(last - first);
    let mut strong = Vec::with_capacity((last - first) * l);
    let mut buf = vec![0u8; per_read * blength];
    let mut i = first;
    while i < last {
        let blocks = per_read.min(last - i);
        let bytes: usize = (i..i + blocks).map(|b| head.block_len(b as i32)).sum();
        file.read_exact_at(&mut buf[..bytes], i as u64 * blength as u64)
            .map_err(DeltaError::io("reading basis for block sums"))?;
        for chunk in buf[..bytes].chunks(blength) {
            weak.push(weak_sum(chunk));
            strong.extend_from_slice(&block_sum(p, chunk)[..l]);
        }
        i += blocks;
    }
    Ok((weak, strong))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transfer::delta::checksum::ChecksumKind;

    #[test]
    fn threads_sum_exactly_what_one_reader_sums() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("basis");
        // Not a multiple of the block length: the last block is short.
        let data: Vec<u8> = (0..(PARALLEL_MIN_BYTES as usize + 12_345))
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 7) as u8)
            .collect();
        std::fs::write(&path, &data).unwrap();
        let file = File::open(&path).unwrap();
        for kind in [ChecksumKind::Xxh128, ChecksumKind::Md5, ChecksumKind::Md4] {
            let p = ChecksumParams {
                kind,
                seed: 7,
                proper_seed_order: true,
            };
            let sizing = SumSizing::default();
            let parallel = block_sums_of_file(&file, data.len() as u64, &p, 31, sizing).unwrap();
            let serial = compute_block_sums(&mut &data[..], data.len() as u64, &p, 31, sizing).unwrap();
            assert_eq!(parallel.head, serial.head);
            assert_eq!(parallel.weak, serial.weak, "{kind:?}");
            assert_eq!(parallel.strong, serial.strong, "{kind:?}");
        }
        // A basis shorter than announced is an error, as for one reader.
        assert!(block_sums_of_file(&file, data.len() as u64 + 5_000_000, &p_md5(), 31, SumSizing::default()).is_err());
    }

    fn p_md5() -> ChecksumParams {
        ChecksumParams {
            kind: ChecksumKind::Md5,
            seed: 0,
            proper_seed_order: true,
        }
    }
}
