//! Turning a client away, in upstream's words and frames: why a module
//! refuses a transfer, the error lines with their closing summary and
//! MSG_ERROR_EXIT, and an orderly close (half-close, then read until the
//! client hangs up) so the client sees our words rather than a reset.

use std::io::{self, BufRead, Read, Write};
use std::time::{Duration, Instant};

use oxrsyncd_protocol::mux::{DemuxReader, MsgTag, MuxWriter};
use oxrsyncd_protocol::ExitCode;
use tracing::info;

use crate::handshake::SessionRequest;
use crate::session::connection::Connection;
use crate::session::stream::SessionStream;
use crate::transfer::options::client::TransferOptions;

/// How long we keep reading after an error exit so the client gets our
/// messages instead of a reset.
pub(crate) const DRAIN_AFTER_ERROR: Duration = Duration::from_secs(10);

/// Why the module turns this transfer away, in upstream's order and words:
/// a refused option, then `write only` for a pull, `read only` for a push.
pub(crate) fn module_refusal(request: &SessionRequest, options: &TransferOptions) -> Option<(String, ExitCode)> {
    let settings = &request.module().settings;
    // Even without `refuse options`, some options are refused by default.
    let refuse_list = settings.refuse_options.as_deref().unwrap_or("");
    if let Some(text) = crate::transfer::options::refuse::first_refused(refuse_list, &options.used, options.we_send) {
        return Some((format!("rsync: {text}\n"), ExitCode::Unsupported));
    }
    if options.we_send && settings.write_only {
        return Some(("ERROR: module is write only\n".into(), ExitCode::Syntax));
    }
    if options.we_send && request.read_only {
        // A pull that would delete its sources needs a writable module.
        // The last of the two options given names itself, as upstream's
        // remove_source_files (1: source, 2: sent) does.
        if options.remove_source_files {
            let word = if options.remove_sent_files_only { "sent" } else { "source" };
            let text = format!("ERROR: --remove-{word}-files cannot be used with a read-only module\n");
            return Some((text, ExitCode::Syntax));
        }
    }
    if !options.we_send && request.read_only {
        return Some(("ERROR: module is read only\n".into(), ExitCode::Syntax));
    }
    None
}

impl<R: BufRead, W: Write> Connection<'_, R, W> {
    /// Send `message` and an error exit the way upstream's `exit_cleanup`
    /// does, half-close, then read until the client hangs up. Returns the
    /// exit code.
    pub(crate) fn refuse(&mut self, message: &str, code: ExitCode) -> i32 {
        let result = (|| -> io::Result<()> {
            if !self.we_send && self.files_from {
                self.writer.write_all(&[0])?;
            }
            self.send_error_exit(message, code)
        })();
        self.stream.shutdown_write();
        if result.is_ok() {
            drain_until_eof(self.reader, self.stream);
        }
        code as i32
    }

    /// [`Connection::refuse`] in the middle of a push: the client is still
    /// writing its files, and a FIN now would reach it before it has read
    /// our words. Keep reading until it has them and hangs up (from
    /// protocol 31 its reaction to MSG_ERROR_EXIT), then close as usual.
    pub(crate) fn refuse_mid_push(&mut self, message: &str, code: ExitCode) -> i32 {
        let sent = self.send_error_exit(message, code);
        if sent.is_ok() {
            if self.request.protocol >= 31 {
                // The client answers MSG_ERROR_EXIT with its own and then
                // waits for us to close, as upstream's server does on it: the
                // demultiplexer stops at that answer (ClientAborted).
                drain_for(&mut DemuxReader::new(&mut *self.reader, true), self.stream, DRAIN_AFTER_ERROR);
                self.stream.shutdown_write();
                return code as i32;
            }
            drain_for(self.reader, self.stream, Duration::from_secs(2));
        }
        self.stream.shutdown_write();
        drain_until_eof(self.reader, self.stream);
        code as i32
    }

    /// The transfer ended well: half-close and let the client hang up.
    pub(crate) fn close(&mut self) {
        self.stream.shutdown_write();
        drain_until_eof(self.reader, self.stream);
    }

    /// Log `message` and send it with upstream's closing frames, one frame
    /// per line as upstream's rwrite (clients escape a newline inside one).
    fn send_error_exit(&mut self, message: &str, code: ExitCode) -> io::Result<()> {
        info!("{}", message.trim_end());
        let mut mux = MuxWriter::new(&mut *self.writer);
        for line in message.split_inclusive('\n') {
            mux.send(MsgTag::Error, line.as_bytes())?;
        }
        for (tag, payload) in refuse_tail(self.request.protocol, self.we_send, code) {
            mux.send(tag, &payload)?;
        }
        mux.flush()
    }
}

/// Upstream's closing frames after an error: the summary line and, from
/// protocol 31, MSG_ERROR_EXIT.
fn refuse_tail(protocol: u32, we_send: bool, code: ExitCode) -> Vec<(MsgTag, Vec<u8>)> {
    let role = if we_send { "sender" } else { "Receiver" };
    let summary = format!(
        "rsync error: {} (code {}) at oxrsyncd [{}={}]\n",
        code.description(),
        code as i32,
        role,
        env!("CARGO_PKG_VERSION")
    );
    info!("{}", summary.trim_end());
    let mut frames = vec![(MsgTag::Error, summary.into_bytes())];
    if protocol >= 31 {
        frames.push((MsgTag::ErrorExit, (code as i32).to_le_bytes().to_vec()));
    }
    frames
}

/// Read and discard until EOF or [`DRAIN_AFTER_ERROR`].
fn drain_until_eof<R: Read>(reader: &mut R, stream: &dyn SessionStream) {
    drain_for(reader, stream, DRAIN_AFTER_ERROR);
}

/// Read and discard until EOF or for at most `wait`.
fn drain_for<R: Read>(reader: &mut R, stream: &dyn SessionStream, wait: Duration) {
    let deadline = Instant::now() + wait;
    let mut buf = [0u8; 8192];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match reader.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(_) => continue,
        }
    }
}
