//! A push: the daemon receives into a writable module. What a push cannot
//! do is refused by name; then the module is prepared, the module's
//! `--files-from` list opened, the receiver run, and its outcome turned
//! into the session's exit code and the client's last words.

use std::io::{BufRead, Write};

use oxrsyncd_protocol::setup::Negotiated;
use oxrsyncd_protocol::ExitCode;
use tracing::info;

use crate::session::connection::Connection;
use crate::session::module::{prepare_module, server_filter_rules, transfer_timeout, PreparedModule};
use crate::transfer::fs::module_root::ModuleRoot;
use crate::transfer::log_format::TransferLog;
use crate::transfer::options::client::TransferOptions;
use crate::transfer::receive::setup::{ReceiveError, ReceiveSetup, ReceiveStats};

/// Serve a push with the client's options (parsed once by the preamble).
pub(crate) fn serve<R: BufRead, W: Write + Send>(
    conn: &mut Connection<'_, R, W>,
    negotiated: &Negotiated,
    options: TransferOptions,
) -> i32 {
    let request = conn.request;
    let missing = not_supported(&options, request.protocol);
    if !missing.is_empty() {
        let message = format!("ERROR: oxrsyncd does not support {} on a push yet\n", missing.join(", "));
        return conn.refuse(&message, ExitCode::Unsupported);
    }
    let prepared = match prepare_module(request, &options) {
        Ok(p) => p,
        Err((message, code)) => return conn.refuse(&message, code),
    };
    // `--files-from=:path`: the list is ours to read and forward, opened
    // (inside the module) when the options are read, as upstream does.
    let files_from = match options.files_from.as_deref() {
        None => None,
        Some("-") => {
            let message = "ERROR: --files-from=- on a push would read the daemon's own input\n";
            return conn.refuse(message, ExitCode::Unsupported);
        }
        Some(source) => match open_files_from(&prepared, source) {
            Ok(file) => Some(file),
            Err(message) => return conn.refuse(&message, ExitCode::Unsupported),
        },
    };
    let server_rules = match server_filter_rules(&options, &prepared, "Receiver") {
        Ok(rules) => rules,
        Err((message, code)) => return conn.refuse(&message, code),
    };
    let may_chown = match &request.identity {
        Some(id) => id.uid == 0,
        None => nix::unistd::geteuid().is_root(),
    };
    let m = &request.module().settings;
    let user = request.user.clone().unwrap_or_default();
    let addr = request.peer_addr.to_string();
    let context = prepared.context(request, negotiated, &options, &server_rules);
    let setup = ReceiveSetup {
        module: &context,
        incoming_chmod: prepared.chmod.as_ref(),
        identity: request.identity.as_ref(),
        may_chown,
        temp_dir: m.temp_dir.as_deref(),
        files_from: files_from.as_ref(),
        transfer_log: m.transfer_logging.then(|| TransferLog {
            format: &m.log_format,
            host: &request.peer_host,
            addr: &addr,
            user: &user,
        }),
        meta: Default::default(),
    };
    let idle = transfer_timeout(&options, m.timeout, conn.stream);
    let stop_reading = conn.stream.read_stopper();
    let outcome = crate::transfer::receive::driver::run(&setup, &mut *conn.reader, &mut *conn.writer, idle, stop_reading.as_deref());
    // Nothing in the module stays open while the session closes.
    drop(setup);
    drop(context);
    drop(prepared);
    finish(conn, outcome)
}

/// What this build cannot do on a push, by name.
fn not_supported(options: &TransferOptions, protocol: u32) -> Vec<String> {
    let mut missing: Vec<String> = options.unsupported.clone();
    if options.preserve_atimes && protocol < 28 {
        // Protocol 27's one-byte flags cannot say "same access time" (stock hangs).
        missing.push("--atimes (-U) below protocol 28".into());
    }
    missing.extend(options.receiver_options.iter().cloned());
    missing
}

/// The module's `--files-from=:path` list, opened inside the module.
fn open_files_from(prepared: &PreparedModule, source: &str) -> Result<std::fs::File, String> {
    use crate::transfer::filter::files_from::open_in_module;
    match prepared.opened_root.as_ref() {
        Some(root) => open_in_module(root, source, &prepared.daemon_filters),
        None => ModuleRoot::open(std::path::Path::new(&prepared.root_text))
            .map_err(|e| format!("failed to open files-from file {source}: {e}\n"))
            .and_then(|root| open_in_module(&root, source, &prepared.daemon_filters)),
    }
}

/// The push's outcome as the session's exit code, with the client told
/// why when it failed.
fn finish<R: BufRead, W: Write>(conn: &mut Connection<'_, R, W>, outcome: Result<ReceiveStats, ReceiveError>) -> i32 {
    let request = conn.request;
    let (message, code) = match outcome {
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
            return if stats.io_error != 0 { ExitCode::PartialTransfer as i32 } else { 0 };
        }
        Err(ReceiveError::Io(e)) if crate::transfer::limits::budget::in_io_error(&e).is_some() => {
            let over = crate::transfer::limits::budget::in_io_error(&e).expect("checked");
            (format!("{over} [generator]\n"), ExitCode::Malloc)
        }
        Err(ReceiveError::Io(e)) => {
            info!("connection with {} ({}) ended: {}", request.peer_host, request.peer_addr, e);
            return ExitCode::SocketIo as i32;
        }
        Err(ReceiveError::FileIo(message)) => (message, ExitCode::FileIo),
        Err(ReceiveError::Usage(message)) => (message, ExitCode::Syntax),
        Err(e @ (ReceiveError::UnsafeName(_) | ReceiveError::OutsideListDir(_))) => (format!("{e}\n"), ExitCode::Unsupported),
        Err(e @ ReceiveError::OptionsRejected { at_parse }) => {
            let code = if at_parse { ExitCode::Unsupported } else { ExitCode::Syntax };
            (format!("{e}\n"), code)
        }
        Err(e @ ReceiveError::InvalidPath(_)) => (format!("{e}\n"), ExitCode::Protocol),
        Err(ReceiveError::OutOfMemory(e)) => (format!("{e} [receiver]\n"), ExitCode::Malloc),
        Err(ReceiveError::Violation(message)) => (message, ExitCode::Protocol),
        Err(ReceiveError::Destination(message)) => (message, ExitCode::FileSelect),
        Err(e) => (format!("rsync: [receiver] {e}\n"), ExitCode::Protocol),
    };
    conn.refuse_mid_push(&message, code)
}
