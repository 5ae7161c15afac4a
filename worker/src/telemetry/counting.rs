//! The connection's reader and writer, counting the bytes that cross the
//! socket into the connection's record (live: `--status` shows bytes so
//! far, and `/metrics` rates stay smooth during long transfers).

use std::io::{self, IoSlice, Read, Write};
use std::sync::Arc;

use super::ConnectionRecord;

/// Counts what is read through it.
pub(crate) struct CountingReader<R> {
    inner: R,
    record: Option<Arc<ConnectionRecord>>,
}

impl<R> CountingReader<R> {
    pub(crate) fn new(inner: R, record: Option<Arc<ConnectionRecord>>) -> Self {
        CountingReader { inner, record }
    }
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(r) = &self.record {
            r.received(n as u64);
        }
        Ok(n)
    }
}

/// Counts what is written through it.
pub(crate) struct CountingWriter<W> {
    inner: W,
    record: Option<Arc<ConnectionRecord>>,
}

impl<W> CountingWriter<W> {
    pub(crate) fn new(inner: W, record: Option<Arc<ConnectionRecord>>) -> Self {
        CountingWriter { inner, record }
    }
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        if let Some(r) = &self.record {
            r.sent(n as u64);
        }
        Ok(n)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let n = self.inner.write_vectored(bufs)?;
        if let Some(r) = &self.record {
            r.sent(n as u64);
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
