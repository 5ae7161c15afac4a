//! Where a pushed file's rebuilt bytes are written: [`FileWriter`] fills a
//! new (temporary) file front to back, leaving holes for runs of zeros
//! with `-S`; [`InPlace`] rewrites the target itself (`--inplace`,
//! `--append`), skipping blocks that are already where they belong.

use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;

use crate::transfer::delta::apply::RebuildSink;

/// Bytes gathered before a write(2).
const WRITE_BUF: usize = 256 * 1024;
/// With `-S`, zeros are looked for in pieces of this size (upstream's
/// SPARSE_WRITE_SIZE): an all-zero piece becomes a hole.
const SPARSE_PIECE: usize = 1024;

/// A new file written front to back through one buffer.
pub(crate) struct FileWriter<'f> {
    file: &'f File,
    buf: Vec<u8>,
    /// `-S`: seek over all-zero pieces instead of writing them.
    sparse: bool,
    /// Zero bytes skipped and not yet accounted for by a seek.
    hole: u64,
}

impl<'f> FileWriter<'f> {
    pub(crate) fn new(file: &'f File, sparse: bool) -> FileWriter<'f> {
        FileWriter {
            file,
            buf: Vec::with_capacity(WRITE_BUF),
            sparse,
            hole: 0,
        }
    }

    fn write_buf(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            let mut f = self.file;
            f.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    fn take(&mut self, data: &[u8]) -> io::Result<()> {
        if self.hole > 0 {
            self.write_buf()?;
            let mut f = self.file;
            f.seek(SeekFrom::Current(self.hole as i64))?;
            self.hole = 0;
        }
        self.buf.extend_from_slice(data);
        if self.buf.len() >= WRITE_BUF {
            self.write_buf()?;
        }
        Ok(())
    }

    /// Write what is buffered and give the file its full length (a
    /// trailing hole is made by extending it).
    pub(crate) fn finish(mut self) -> io::Result<()> {
        self.write_buf()?;
        if self.hole > 0 {
            let mut f = self.file;
            let end = f.stream_position()? + self.hole;
            self.file.set_len(end)?;
        }
        Ok(())
    }
}

impl Write for FileWriter<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if !self.sparse {
            self.take(data)?;
            return Ok(data.len());
        }
        for piece in data.chunks(SPARSE_PIECE) {
            if piece.iter().all(|&b| b == 0) {
                self.hole += piece.len() as u64;
            } else {
                self.take(piece)?;
            }
        }
        Ok(data.len())
    }

    /// Writes out the buffer (a pending hole stays pending until `finish`).
    fn flush(&mut self) -> io::Result<()> {
        self.write_buf()
    }
}

/// The target rewritten in place: data goes where the rebuilt file has it
/// (pwrite); a block that the sender matched at its own offset is already
/// there and is not written again (upstream's `skip_matched`).
pub(crate) struct InPlace<'f> {
    file: &'f File,
    /// Where the next rebuilt byte goes.
    pub offset: u64,
}

impl<'f> InPlace<'f> {
    /// Rebuilding from `offset` on (0, or what `--append` keeps).
    pub(crate) fn new(file: &'f File, offset: u64) -> InPlace<'f> {
        InPlace { file, offset }
    }

    /// Cut what the old file had beyond the new one's end.
    pub(crate) fn finish(self) -> io::Result<()> {
        self.file.set_len(self.offset)
    }
}

impl RebuildSink for InPlace<'_> {
    fn literal(&mut self, data: &[u8]) -> io::Result<()> {
        self.file.write_all_at(data, self.offset)?;
        self.offset += data.len() as u64;
        Ok(())
    }

    fn matched(&mut self, basis_offset: u64, data: &[u8]) -> io::Result<()> {
        if basis_offset != self.offset {
            self.file.write_all_at(data, self.offset)?;
        }
        self.offset += data.len() as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn sparse_writes_the_same_bytes_with_holes() {
        let dir = tempfile::tempdir().unwrap();
        let mut data = vec![7u8; 3000];
        data.extend(std::iter::repeat_n(0u8, 1 << 20));
        data.extend([1, 2, 3]);
        data.extend(std::iter::repeat_n(0u8, 200_000));
        for sparse in [false, true] {
            let path = dir.path().join(format!("f{sparse}"));
            let file = File::create(&path).unwrap();
            let mut w = FileWriter::new(&file, sparse);
            for piece in data.chunks(32 * 1024) {
                w.write_all(piece).unwrap();
            }
            w.finish().unwrap();
            assert_eq!(std::fs::read(&path).unwrap(), data, "sparse={sparse}");
            let blocks = std::fs::metadata(&path).unwrap().blocks() * 512;
            if sparse {
                assert!(blocks < 512 * 1024, "holes expected, {blocks} bytes allocated");
            }
        }
    }

    #[test]
    fn in_place_skips_blocks_at_their_own_offset_and_truncates() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"AAAABBBBCCCCDDDD").unwrap();
        let file = File::options().read(true).write(true).open(&path).unwrap();
        let mut w = InPlace::new(&file, 0);
        w.matched(0, b"AAAA").unwrap();
        w.literal(b"xx").unwrap();
        w.matched(8, b"CCCC").unwrap();
        w.finish().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"AAAAxxCCCC");
    }
}
