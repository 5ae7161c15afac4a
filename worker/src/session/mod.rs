//! One admitted client's session, on a plain thread with blocking I/O.
//!
//! The handshake (async or not) ends with a [`SessionRequest`]; from here on
//! nothing is async. This module owns protocol setup, the multiplexed
//! output, refusals (`read only`, `write only`) and the orderly end of a
//! session. The transfer engines (pull: the daemon sends; push: it
//! receives) plug in here; until they land, an admitted transfer gets the
//! full protocol setup and then a clear error naming what is missing.

pub mod exit_code;
pub mod multiplex;
pub mod protocol_setup;
pub mod server_options;
pub mod wire;

use std::io::{self, BufRead, Read, Write};
use std::time::{Duration, Instant};

use tracing::info;

use self::exit_code::ExitCode;
use self::multiplex::{MsgTag, MuxWriter};
use self::protocol_setup::{setup_protocol, SetupError};
use self::server_options::ServerOptions;
use crate::handshake::SessionRequest;

/// How long we keep reading after an error exit so the client gets our
/// messages instead of a reset.
const DRAIN_AFTER_ERROR: Duration = Duration::from_secs(10);

/// The connection a session owns.
pub trait SessionStream: Send {
    /// Set (or clear) the receive timeout of the underlying socket.
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;
    /// Half-close our sending side once everything is written.
    fn shutdown_write(&self);
}

impl SessionStream for std::net::TcpStream {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        std::net::TcpStream::set_read_timeout(self, timeout)
    }
    fn shutdown_write(&self) {
        let _ = self.shutdown(std::net::Shutdown::Write);
    }
}

/// Run a session to its end. `reader` may hold bytes already read past the
/// argument block; `writer` is the same connection. Returns the exit code
/// the client was given (0 on success).
pub fn run<R: BufRead, W: Write>(request: SessionRequest, reader: &mut R, writer: &mut W, stream: &dyn SessionStream) -> i32 {
    let options = ServerOptions::parse(&request.options);
    log_request(&request, &options);
    let module = request.module();
    let timeout = module.settings.timeout;
    if timeout > 0 {
        let _ = stream.set_read_timeout(Some(Duration::from_secs(u64::from(timeout))));
    }

    let seed = checksum_seed();
    let negotiated = match setup_protocol(reader, writer, request.protocol, &options, seed) {
        Ok(n) => n,
        Err(SetupError::Io(e)) => {
            info!("protocol setup with {} ({}) failed: {}", request.peer_host, request.peer_addr, e);
            return ExitCode::SocketIo as i32;
        }
        Err(e @ SetupError::NoCommonChoice { .. }) => {
            return refuse(&request, reader, writer, stream, &options, &format!("{e}\n"), ExitCode::Unsupported);
        }
    };
    tracing::debug!(?negotiated, "protocol set up");

    let (message, code) = if options.we_send && module.settings.write_only {
        ("ERROR: module is write only\n".to_string(), ExitCode::Syntax)
    } else if !options.we_send && request.read_only {
        ("ERROR: module is read only\n".to_string(), ExitCode::Syntax)
    } else {
        let what = if options.we_send {
            "sending files to the client (pull)"
        } else {
            "receiving files from the client (push)"
        };
        (
            format!(
                "ERROR: oxrsyncd {} cannot yet run transfers: {what} is not implemented in this build\n",
                env!("CARGO_PKG_VERSION")
            ),
            ExitCode::Unsupported,
        )
    };
    refuse(&request, reader, writer, stream, &options, &message, code)
}

/// Send `message` and an error exit the way upstream's `exit_cleanup`
/// does, half-close, then read until the client hangs up: an orderly close,
/// so the client sees our words rather than a connection reset.
fn refuse<R: BufRead, W: Write>(
    request: &SessionRequest,
    reader: &mut R,
    writer: &mut W,
    stream: &dyn SessionStream,
    options: &ServerOptions,
    message: &str,
    code: ExitCode,
) -> i32 {
    let role = if options.we_send { "sender" } else { "Receiver" };
    let summary = format!(
        "rsync error: {} (code {}) at oxrsyncd [{}={}]\n",
        code.description(),
        code as i32,
        role,
        env!("CARGO_PKG_VERSION")
    );
    info!("{}", message.trim_end());
    info!("{}", summary.trim_end());
    let result = (|| -> io::Result<()> {
        if !options.we_send && options.files_from {
            writer.write_all(&[0])?;
        }
        let mut mux = MuxWriter::new(&mut *writer);
        mux.send(MsgTag::Error, message.as_bytes())?;
        mux.send(MsgTag::Error, summary.as_bytes())?;
        if request.protocol >= 31 {
            mux.send(MsgTag::ErrorExit, &(code as i32).to_le_bytes())?;
        }
        mux.flush()
    })();
    stream.shutdown_write();
    if result.is_ok() {
        drain_until_eof(reader, stream);
    }
    code as i32
}

/// Read and discard until EOF or [`DRAIN_AFTER_ERROR`].
fn drain_until_eof<R: Read>(reader: &mut R, stream: &dyn SessionStream) {
    let deadline = Instant::now() + DRAIN_AFTER_ERROR;
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

/// Upstream's `rsync on|to REQUEST from [USER@]HOST (ADDR)` line.
fn log_request(request: &SessionRequest, options: &ServerOptions) {
    let mut text = request.paths.join(" ");
    text.truncate(1024);
    let direction = if options.we_send { "on" } else { "to" };
    match &request.user {
        Some(user) => info!(
            "rsync {} {} from {}@{} ({})",
            direction, text, user, request.peer_host, request.peer_addr
        ),
        None => info!("rsync {} {} from {} ({})", direction, text, request.peer_host, request.peer_addr),
    }
}

/// A fresh checksum seed, like upstream's time ^ (pid << 6), but from the RNG.
fn checksum_seed() -> i32 {
    loop {
        let s: i32 = rand::random();
        if s != 0 {
            return s;
        }
    }
}
