//! A pull: the daemon sends. The options the daemon adjusts (its own
//! `--bwlimit`), the module prepared, the sender run, and its outcome
//! turned into the session's exit code and the client's last words.

use std::io::{self, BufRead, Write};

use oxrsyncd_protocol::mux::{MsgTag, MuxWriter};
use oxrsyncd_protocol::setup::Negotiated;
use oxrsyncd_protocol::{ExitCode, IoError};
use tracing::info;

use crate::session::connection::Connection;
use crate::session::module::{prepare_module, server_filter_rules, transfer_timeout};
use crate::transfer::limits::io_timeout;
use crate::transfer::log_format::TransferLog;
use crate::transfer::options::client::TransferOptions;
use crate::transfer::send::sender::{self, SenderError, SenderSetup, SenderStats};

/// Serve a pull with the client's options (parsed once by the preamble).
pub(crate) fn serve<R: BufRead, W: Write>(conn: &mut Connection<'_, R, W>, negotiated: &Negotiated, mut options: TransferOptions) -> i32 {
    let request = conn.request;
    // The daemon's --bwlimit caps the client's (upstream's daemon_bwlimit).
    let daemon_limit = u64::from(request.config.global.bwlimit);
    if daemon_limit > 0 {
        options.bwlimit = Some(options.bwlimit.map_or(daemon_limit, |c| c.min(daemon_limit)));
    }
    if options.preserve_atimes && request.protocol < 28 {
        // Protocol 27's one-byte flags cannot say "same access time" (stock hangs).
        options.unsupported.push("--atimes (-U) below protocol 28".into());
    }
    if !options.unsupported.is_empty() {
        let message = format!("ERROR: oxrsyncd does not support {} yet\n", options.unsupported.join(", "));
        return conn.refuse(&message, ExitCode::Unsupported);
    }
    let prepared = match prepare_module(request, &options) {
        Ok(p) => p,
        Err((message, code)) => return conn.refuse(&message, code),
    };
    let server_rules = match server_filter_rules(&options, &prepared, "sender") {
        Ok(rules) => rules,
        Err((message, code)) => return conn.refuse(&message, code),
    };
    let m = &request.module().settings;
    let user = request.user.clone().unwrap_or_default();
    let addr = request.peer_addr.to_string();
    let context = prepared.context(request, negotiated, &options, &server_rules);
    let setup = SenderSetup {
        module: &context,
        outgoing_chmod: prepared.chmod.as_ref(),
        ignore_nonreadable: m.ignore_nonreadable,
        transfer_log: m.transfer_logging.then(|| TransferLog {
            format: &m.log_format,
            host: &request.peer_host,
            addr: &addr,
            user: &user,
        }),
        dont_compress_all: m
            .dont_compress
            .as_deref()
            .is_some_and(crate::transfer::delta::dont_compress_matches_all),
    };
    let idle = transfer_timeout(&options, m.timeout, conn.stream);
    let outcome = sender::run(&setup, &mut *conn.reader, &mut *conn.writer, idle);
    // Nothing in the module stays open while the session closes.
    drop(setup);
    drop(context);
    drop(prepared);
    finish(conn, outcome)
}

/// The pull's outcome as the session's exit code, with the client told
/// why when it failed.
fn finish<R: BufRead, W: Write>(conn: &mut Connection<'_, R, W>, outcome: Result<SenderStats, SenderError>) -> i32 {
    let request = conn.request;
    match outcome {
        Ok(stats) => {
            info!(
                event = "session_end",
                sent = stats.total_written,
                received = stats.total_read,
                total_size = stats.total_size,
                "sent {} bytes  received {} bytes  total size {}",
                stats.total_written,
                stats.total_read,
                stats.total_size
            );
            conn.close();
            // Upstream's exit status: 23 after any transfer error, 24 when
            // files only vanished.
            if stats.xfer_errors > 0 {
                ExitCode::PartialTransfer as i32
            } else {
                IoError::exit_code(stats.io_error).map_or(0, |code| code as i32)
            }
        }
        Err(SenderError::Io(e)) if crate::transfer::limits::budget::in_io_error(&e).is_some() => {
            let message = format!("{} [sender]\n", crate::transfer::limits::budget::in_io_error(&e).expect("checked"));
            conn.refuse(&message, ExitCode::Malloc)
        }
        Err(SenderError::Io(e)) if io_timeout::timed_out(&e).is_some() || e.kind() == io::ErrorKind::WouldBlock => {
            // Upstream's server logs this (its client only sees the end).
            let secs = io_timeout::timed_out(&e).unwrap_or_else(|| u64::from(request.module().settings.timeout));
            info!("[sender] io timeout after {} seconds -- exiting", secs);
            let code = ExitCode::Timeout;
            info!(
                "rsync error: {} (code {}) at oxrsyncd [sender={}]",
                code.description(),
                code as i32,
                env!("CARGO_PKG_VERSION")
            );
            if request.protocol >= 31 {
                let mut mux = MuxWriter::new(&mut *conn.writer);
                let _ = mux.send(MsgTag::ErrorExit, &(code as i32).to_le_bytes()).and_then(|()| mux.flush());
            }
            conn.stream.shutdown_write();
            code as i32
        }
        Err(SenderError::Io(e)) => {
            info!("connection with {} ({}) ended: {}", request.peer_host, request.peer_addr, e);
            ExitCode::SocketIo as i32
        }
        Err(SenderError::OutOfMemory(e))
        | Err(SenderError::FilesFrom(crate::transfer::filter::files_from::FilesFromError::OverBudget(e))) => {
            conn.refuse(&format!("{e} [sender]\n"), ExitCode::Malloc)
        }
        Err(SenderError::FileSelect(message)) => conn.refuse(&message, ExitCode::FileSelect),
        Err(SenderError::OptionError(message)) => conn.refuse(&format!("rsync: {message}"), ExitCode::Unsupported),
        Err(e) => conn.refuse(&format!("rsync: [sender] {e}\n"), ExitCode::Protocol),
    }
}
