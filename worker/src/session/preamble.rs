//! What every session does before it pulls or pushes: the client's options
//! parsed once, the request logged, timeouts set, the protocol set up
//! (compat flags, checksum and compression choices, the seed), the
//! client's timeout told, and every reason to refuse checked in
//! upstream's order.

use std::io::{BufRead, Write};

use oxrsyncd_protocol::mux::{MsgTag, MuxWriter};
use oxrsyncd_protocol::setup::{setup_protocol_with, SetupError};
use oxrsyncd_protocol::ExitCode;
use oxrsyncd_shared::scoreboard::Direction;
use tracing::info;

use crate::handshake::SessionRequest;
use crate::session::connection::Connection;
use crate::session::refusals::module_refusal;
use crate::session::stream::SessionStream;
use crate::session::{pull, push};
use crate::transfer::limits::io_timeout;
use crate::transfer::options::client::TransferOptions;

/// The session proper; `refused` is a pre-xfer command's refusal.
pub(crate) fn run_session<R: BufRead, W: Write + Send>(
    request: &SessionRequest,
    reader: &mut R,
    writer: &mut W,
    stream: &dyn SessionStream,
    refused: Option<String>,
) -> i32 {
    // The one parse of the client's options: the setup, the refusals and
    // the transfer all read this.
    let options = TransferOptions::parse(&request.options);
    let setup_options = options.setup_options();
    log_request(request, options.we_send);
    let mut conn = Connection {
        request,
        reader,
        writer,
        stream,
        we_send: options.we_send,
        files_from: setup_options.files_from,
    };
    // Until the transfer starts its own idle policy, the whole timeout
    // applies to every read and write.
    let timeout = io_timeout::effective_timeout(options.timeout, request.module().settings.timeout);
    if timeout.is_some() {
        let _ = stream.set_read_timeout(timeout);
        let _ = stream.set_write_timeout(timeout);
    }

    // A client's --checksum-seed=N (non-zero) is used as given, as upstream does.
    let seed = options.checksum_seed.filter(|&s| s != 0).unwrap_or_else(checksum_seed);
    let inc_recurse = options.allow_inc_recurse();
    let negotiated = match setup_protocol_with(conn.reader, conn.writer, request.protocol, &setup_options, inc_recurse, seed) {
        Ok(n) => n,
        Err(SetupError::Io(e)) => {
            info!("protocol setup with {} ({}) failed: {}", request.peer_host, request.peer_addr, e);
            return ExitCode::SocketIo as i32;
        }
        Err(e @ SetupError::NoCommonChoice { .. }) => return conn.refuse(&format!("{e}\n"), ExitCode::Unsupported),
    };
    tracing::debug!(?negotiated, "protocol set up");
    // From protocol 31 a daemon tells the client its timeout, so the
    // client keeps the connection alive and gives up as early as we do.
    if let (Some(t), true) = (timeout, request.protocol >= 31) {
        let secs = i32::try_from(t.as_secs()).unwrap_or(i32::MAX);
        let mut mux = MuxWriter::new(&mut *conn.writer);
        if let Err(e) = mux.send(MsgTag::IoTimeout, &secs.to_le_bytes()).and_then(|()| mux.flush()) {
            info!("connection with {} ({}) ended: {}", request.peer_host, request.peer_addr, e);
            return ExitCode::SocketIo as i32;
        }
    }

    if let Some(message) = refused {
        return conn.refuse(&message, ExitCode::Unsupported);
    }
    if let Some(arg) = &request.not_utf8 {
        let message = format!(
            "rsync: [daemon] the argument \"{arg}\" is not valid UTF-8: this daemon sends and receives such names but cannot yet take one as an option value\n"
        );
        return conn.refuse(&message, ExitCode::Unsupported);
    }
    // A value upstream's option parser refuses (`--max-size=12x`), in its words.
    if let Some(invalid) = &options.invalid {
        return conn.refuse(&format!("rsync: {invalid}\n"), ExitCode::Syntax);
    }
    if let Some((message, code)) = module_refusal(request, &options) {
        return conn.refuse(&message, code);
    }
    let direction = if options.we_send { Direction::Pull } else { Direction::Push };
    crate::telemetry::meter::session_started(direction);
    if options.we_send {
        pull::serve(&mut conn, &negotiated, options)
    } else {
        push::serve(&mut conn, &negotiated, options)
    }
}

/// Upstream's `rsync on|to REQUEST from [USER@]HOST (ADDR)` line.
fn log_request(request: &SessionRequest, we_send: bool) {
    let mut text = request.paths_text().join(" ");
    text.truncate(1024);
    let direction = if we_send { "on" } else { "to" };
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
