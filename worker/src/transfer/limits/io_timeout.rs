//! The session's I/O timeout and keep-alives (upstream's `--timeout`,
//! the module's `timeout`, `check_timeout()` and `maybe_send_keepalive()`).
//!
//! The effective timeout is the client's `--timeout` lowered by the
//! module's, as upstream's daemon sets it. While the sender waits for the
//! client with all its output on the wire, it sends an empty `MSG_DATA`
//! frame every half timeout (the keep-alive every rsync understands), so a
//! client busy checking a big tree is not mistaken for a dead one. A
//! session with no successful I/O for the whole timeout ends with
//! upstream's `io timeout after N seconds -- exiting` and exit code 30:
//! a client that stops reading blocks our writes (the socket's send
//! timeout), one that stalls mid-message stops our reads.
//!
//! The socket's receive timeout is set to the keep-alive interval, so a
//! read wakes up to decide; the retry happens below every buffer, so no
//! partially read message is ever lost.

use std::cell::Cell;
use std::io::{self, Read, Write};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// The timeout a session runs with: the client's `--timeout`, lowered by
/// the module's `timeout` (0: none), as upstream's `rsync_module()`.
pub(crate) fn effective_timeout(client_secs: Option<u32>, module_secs: u32) -> Option<Duration> {
    let client = client_secs.filter(|&s| s > 0);
    let secs = match (client, module_secs) {
        (None, 0) => return None,
        (None, m) => m,
        (Some(c), 0) => c,
        (Some(c), m) => c.min(m),
    };
    Some(Duration::from_secs(u64::from(secs)))
}

/// Upstream's `allowed_lull`: half the timeout, rounded up, at least 1 s.
pub(crate) fn keepalive_interval(timeout: Duration) -> Duration {
    Duration::from_secs(timeout.as_secs().div_ceil(2).max(1))
}

/// The error a timed-out read or write carries.
#[derive(Debug, thiserror::Error)]
#[error("io timeout after {0} seconds -- exiting")]
pub(crate) struct IoTimedOut(pub u64);

/// Whether an I/O error is the session timing out (our own verdict, or the
/// socket's send timeout expiring under a blocked write).
pub(crate) fn timed_out(e: &io::Error) -> Option<u64> {
    if let Some(t) = e.get_ref().and_then(|inner| inner.downcast_ref::<IoTimedOut>()) {
        return Some(t.0);
    }
    None
}

/// Shared between the sender's main loop and [`IdleReader`]: set while the
/// sender waits for the client with every byte of its output written, the
/// only moment a keep-alive frame can go straight onto the socket.
#[derive(Clone, Default)]
pub(crate) struct KeepaliveGate(Rc<Cell<Option<Instant>>>);

impl KeepaliveGate {
    /// Our output is all on the wire (flushed just now); keep-alives may go.
    pub(crate) fn open(&self) {
        self.0.set(Some(Instant::now()));
    }

    /// We are about to write again.
    pub(crate) fn close(&self) {
        self.0.set(None);
    }

    fn opened_at(&self) -> Option<Instant> {
        self.0.get()
    }

    fn touch(&self) {
        if self.0.get().is_some() {
            self.0.set(Some(Instant::now()));
        }
    }
}

/// The timeout policy of one session's input.
pub(crate) struct IdlePolicy {
    /// No I/O for this long ends the session.
    pub timeout: Duration,
    /// A second handle on the socket for keep-alive frames, if the
    /// transport has one.
    pub keepalive: Option<Box<dyn Write + Send>>,
    /// When keep-alives may be written.
    pub gate: KeepaliveGate,
}

/// A reader that waits out the socket's short receive timeouts, sending
/// keep-alives through the gate, until the session's timeout passes.
pub(crate) struct IdleReader<R> {
    inner: R,
    policy: Option<IdlePolicy>,
    /// Last time bytes arrived.
    last_in: Instant,
}

impl<R: Read> IdleReader<R> {
    /// Wrap `inner`; without a policy reads pass straight through.
    pub(crate) fn new(inner: R, policy: Option<IdlePolicy>) -> Self {
        IdleReader {
            inner,
            policy,
            last_in: Instant::now(),
        }
    }

    /// Handle one expiry of the socket's receive timeout: give up, or send
    /// a keep-alive if one is due and allowed, and go on waiting.
    fn on_lull(&mut self) -> io::Result<()> {
        let Some(policy) = &mut self.policy else {
            return Err(io::Error::from(io::ErrorKind::TimedOut));
        };
        let now = Instant::now();
        let last_out = policy.gate.opened_at();
        let last_io = last_out.map_or(self.last_in, |out| out.max(self.last_in));
        let idle = now.saturating_duration_since(last_io);
        if idle >= policy.timeout {
            return Err(io::Error::new(io::ErrorKind::TimedOut, IoTimedOut(idle.as_secs())));
        }
        if let (Some(out), Some(writer)) = (last_out, policy.keepalive.as_mut()) {
            if now.saturating_duration_since(out) >= keepalive_interval(policy.timeout) {
                // An empty MSG_DATA frame: tag 7 in the top byte, length 0.
                writer.write_all(&(7u32 << 24).to_le_bytes())?;
                writer.flush()?;
                policy.gate.touch();
            }
        }
        Ok(())
    }
}

impl<R: Read> Read for IdleReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.inner.read(buf) {
                Ok(n) => {
                    self.last_in = Instant::now();
                    return Ok(n);
                }
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => self.on_lull()?,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn module_timeout_lowers_the_clients() {
        assert_eq!(effective_timeout(None, 0), None);
        assert_eq!(effective_timeout(Some(0), 0), None);
        assert_eq!(effective_timeout(Some(30), 0), Some(Duration::from_secs(30)));
        assert_eq!(effective_timeout(None, 60), Some(Duration::from_secs(60)));
        assert_eq!(effective_timeout(Some(30), 60), Some(Duration::from_secs(30)));
        assert_eq!(effective_timeout(Some(90), 60), Some(Duration::from_secs(60)));
        assert_eq!(keepalive_interval(Duration::from_secs(5)), Duration::from_secs(3));
        assert_eq!(keepalive_interval(Duration::from_secs(1)), Duration::from_secs(1));
    }

    /// Reads that time out `lulls` times before each chunk of data.
    struct Sleepy {
        lulls_left: usize,
        data: Vec<u8>,
    }

    impl Read for Sleepy {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.lulls_left > 0 {
                self.lulls_left -= 1;
                std::thread::sleep(Duration::from_millis(20));
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = buf.len().min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data.drain(..n);
            Ok(n)
        }
    }

    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lulls_within_the_timeout_are_waited_out() {
        let inner = Sleepy {
            lulls_left: 3,
            data: b"abc".to_vec(),
        };
        let policy = IdlePolicy {
            timeout: Duration::from_secs(10),
            keepalive: None,
            gate: KeepaliveGate::default(),
        };
        let mut r = IdleReader::new(inner, Some(policy));
        let mut buf = [0u8; 3];
        r.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"abc");
    }

    #[test]
    fn no_io_for_the_timeout_ends_the_session() {
        let inner = Sleepy {
            lulls_left: usize::MAX,
            data: Vec::new(),
        };
        let policy = IdlePolicy {
            timeout: Duration::from_millis(100),
            keepalive: None,
            gate: KeepaliveGate::default(),
        };
        let mut r = IdleReader::new(inner, Some(policy));
        let err = r.read(&mut [0u8; 1]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(timed_out(&err), Some(0));
        // Without a policy a socket timeout is an error at once.
        let mut bare = IdleReader::new(
            Sleepy {
                lulls_left: 1,
                data: Vec::new(),
            },
            None,
        );
        assert_eq!(bare.read(&mut [0u8; 1]).unwrap_err().kind(), io::ErrorKind::TimedOut);
    }

    #[test]
    fn keepalives_only_through_an_open_gate() {
        let sink = Sink::default();
        let gate = KeepaliveGate::default();
        // A 2 s timeout: keep-alives every second; make the gate look 1.5 s old.
        let policy = IdlePolicy {
            timeout: Duration::from_secs(2),
            keepalive: Some(Box::new(sink.clone())),
            gate: gate.clone(),
        };
        let mut r = IdleReader::new(
            Sleepy {
                lulls_left: 1,
                data: b"x".to_vec(),
            },
            Some(policy),
        );
        assert_eq!(r.read(&mut [0u8; 1]).unwrap(), 1);
        assert!(sink.0.lock().unwrap().is_empty(), "closed gate: no keep-alive");
        gate.0.set(Some(Instant::now() - Duration::from_millis(1500)));
        r.inner.lulls_left = 1;
        r.inner.data = b"y".to_vec();
        assert_eq!(r.read(&mut [0u8; 1]).unwrap(), 1);
        assert_eq!(*sink.0.lock().unwrap(), vec![0, 0, 0, 7]);
    }
}
