//! One admitted client's session, on a plain thread with blocking I/O.
//!
//! The handshake (async or not) ends with a [`SessionRequest`]; from here on
//! nothing is async. This module owns protocol setup, the multiplexed
//! output, refusals (`read only`, `write only`) and the orderly end of a
//! session. A pull runs the sender engine (`crate::transfer::send::sender`); the
//! push engine is not built yet, so a push gets the full protocol setup and
//! then a clear error naming what is missing.

use std::io::{self, BufRead, Read, Write};
use std::time::{Duration, Instant};

use tracing::info;

use crate::hooks;

use crate::handshake::SessionRequest;
use crate::transfer::limits::io_timeout::{self, IdlePolicy, KeepaliveGate};
use crate::transfer::options::client::TransferOptions;
use crate::transfer::send::sender::{self, SenderError, SenderSetup, TransferLog};
use oxrsyncd_protocol::mux::DemuxReader;
use oxrsyncd_protocol::mux::{MsgTag, MuxWriter};
use oxrsyncd_protocol::setup::{self as protocol_setup, setup_protocol_with, SetupError, SetupOptions};
use oxrsyncd_protocol::{ExitCode, IoError};

/// How long we keep reading after an error exit so the client gets our
/// messages instead of a reset.
const DRAIN_AFTER_ERROR: Duration = Duration::from_secs(10);

/// The connection a session owns.
pub trait SessionStream: Send {
    /// Set (or clear) the receive timeout of the underlying socket.
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;
    /// Set (or clear) the send timeout: a client that stops reading must
    /// not hold a session forever.
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;
    /// A second, unbuffered handle for keep-alive frames.
    fn keepalive_writer(&self) -> Option<Box<dyn Write + Send>>;
    /// Half-close our sending side once everything is written.
    fn shutdown_write(&self);
    /// A handle that ends our reading (half-closes the receiving side), so
    /// a thread blocked reading the client wakes up: how a push's
    /// generator, failing, stops the receiver waiting for data it will
    /// never ask for.
    fn read_stopper(&self) -> Option<Box<dyn Fn() + Send + Sync>>;
}

impl SessionStream for std::net::TcpStream {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        std::net::TcpStream::set_read_timeout(self, timeout)
    }
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        std::net::TcpStream::set_write_timeout(self, timeout)
    }
    fn keepalive_writer(&self) -> Option<Box<dyn Write + Send>> {
        self.try_clone().ok().map(|s| Box::new(s) as Box<dyn Write + Send>)
    }
    fn shutdown_write(&self) {
        let _ = self.shutdown(std::net::Shutdown::Write);
    }
    fn read_stopper(&self) -> Option<Box<dyn Fn() + Send + Sync>> {
        let socket = self.try_clone().ok()?;
        Some(Box::new(move || {
            let _ = socket.shutdown(std::net::Shutdown::Read);
        }))
    }
}

/// Run a session to its end. `reader` may hold bytes already read past the
/// argument block; `writer` is the same connection. Returns the exit code
/// the client was given (0 on success).
pub fn run<R: BufRead, W: Write + Send>(request: SessionRequest, reader: &mut R, writer: &mut W, stream: &dyn SessionStream) -> i32 {
    let settings = &request.module().settings;
    let module_path = settings
        .path
        .as_deref()
        .map(|p| request.expand(&p.to_string_lossy()))
        .unwrap_or_default();
    let (pre, post) = (settings.pre_xfer_exec.clone(), settings.post_xfer_exec.clone());
    let env = if pre.is_some() || post.is_some() {
        let addr = request.peer_addr.to_string();
        hooks::environment(&request.vars(&addr), &module_path, &request.options, request.paths_text())
    } else {
        Vec::new()
    };
    // What the client makes this session hold is charged to one budget,
    // for this thread and the threads it starts (see transfer/budget.rs).
    let mib = usize::try_from(settings.max_session_memory).unwrap_or(usize::MAX >> 20);
    let previous = crate::transfer::limits::budget::install(Some(crate::transfer::limits::budget::Budget::new(mib << 20)));
    // pre-xfer exec runs before anything else, as the daemon's user with
    // the module's capability set.
    let keep = crate::least_privilege::mask(&crate::least_privilege::kept(request.identity.as_ref(), false));
    let refused_by_pre = pre.as_deref().and_then(|cmd| hooks::pre_xfer(cmd, &env, keep).err());
    let code = run_session(request, reader, writer, stream, refused_by_pre);
    if let Some(cmd) = post.as_deref() {
        hooks::post_xfer(cmd, &env, code, keep);
    }
    crate::transfer::limits::budget::install(previous);
    code
}

/// The session proper; `refused` is a pre-xfer command's refusal.
fn run_session<R: BufRead, W: Write + Send>(
    request: SessionRequest,
    reader: &mut R,
    writer: &mut W,
    stream: &dyn SessionStream,
    refused: Option<String>,
) -> i32 {
    let transfer_options = TransferOptions::parse(&request.options);
    let options = transfer_options.setup_options();
    log_request(&request, &options);
    let module = request.module();
    // Until the transfer starts its own idle policy, the whole timeout
    // applies to every read and write.
    let timeout = io_timeout::effective_timeout(client_timeout(&request.options), module.settings.timeout);
    if timeout.is_some() {
        let _ = stream.set_read_timeout(timeout);
        let _ = stream.set_write_timeout(timeout);
    }

    // A client's --checksum-seed=N (non-zero) is used as given, as upstream does.
    let client_seed = request
        .options
        .iter()
        .find_map(|o| o.strip_prefix("--checksum-seed="))
        .and_then(|v| v.parse::<i32>().ok());
    let seed = client_seed.filter(|&s| s != 0).unwrap_or_else(checksum_seed);
    let inc_recurse = transfer_options.allow_inc_recurse(&request.options);
    let negotiated = match setup_protocol_with(reader, writer, request.protocol, &options, inc_recurse, seed) {
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
    // From protocol 31 a daemon tells the client its timeout, so the
    // client keeps the connection alive and gives up as early as we do.
    if let (Some(t), true) = (timeout, request.protocol >= 31) {
        let secs = i32::try_from(t.as_secs()).unwrap_or(i32::MAX);
        let mut mux = MuxWriter::new(&mut *writer);
        if let Err(e) = mux.send(MsgTag::IoTimeout, &secs.to_le_bytes()).and_then(|()| mux.flush()) {
            info!("connection with {} ({}) ended: {}", request.peer_host, request.peer_addr, e);
            return ExitCode::SocketIo as i32;
        }
    }

    if let Some(message) = refused {
        return refuse(&request, reader, writer, stream, &options, &message, ExitCode::Unsupported);
    }
    if let Some(arg) = &request.not_utf8 {
        let message = format!(
            "rsync: [daemon] the argument \"{arg}\" is not valid UTF-8: this daemon sends and receives such names but cannot yet take one as an option value\n"
        );
        return refuse(&request, reader, writer, stream, &options, &message, ExitCode::Unsupported);
    }
    // A value upstream's option parser refuses (`--max-size=12x`), in its words.
    if let Some(invalid) = TransferOptions::parse(&request.options).invalid {
        return refuse(
            &request,
            reader,
            writer,
            stream,
            &options,
            &format!("rsync: {invalid}\n"),
            ExitCode::Syntax,
        );
    }
    if let Some((message, code)) = module_refusal(&request, &options) {
        return refuse(&request, reader, writer, stream, &options, &message, code);
    }
    if options.we_send {
        return pull(&request, &negotiated, reader, writer, stream, &options);
    }
    push(&request, &negotiated, reader, writer, stream, &options)
}

/// Serve a push: the daemon receives into a writable module.
fn push<R: BufRead, W: Write + Send>(
    request: &SessionRequest,
    negotiated: &protocol_setup::Negotiated,
    reader: &mut R,
    writer: &mut W,
    stream: &dyn SessionStream,
    options: &SetupOptions,
) -> i32 {
    use crate::transfer::receive::{self, ReceiveError, ReceiveSetup};
    let transfer_options = TransferOptions::parse(&request.options);
    let mut missing: Vec<String> = transfer_options.unsupported.clone();
    if transfer_options.preserve_atimes && request.protocol < 28 {
        // Protocol 27's one-byte flags cannot say "same access time" (stock hangs).
        missing.push("--atimes (-U) below protocol 28".into());
    }
    missing.extend(transfer_options.receiver_options.iter().cloned());
    if transfer_options.preserve_acls {
        missing.push("--acls (-A)".into());
    }
    if transfer_options.preserve_xattrs > 0 {
        missing.push("--xattrs (-X)".into());
    }
    if !missing.is_empty() {
        let message = format!("ERROR: oxrsyncd does not support {} on a push yet\n", missing.join(", "));
        return refuse(request, reader, writer, stream, options, &message, ExitCode::Unsupported);
    }
    let prepared = match prepare_module(request, true) {
        Ok(p) => p,
        Err((message, code)) => return refuse(request, reader, writer, stream, options, &message, code),
    };
    let module = request.module();
    let m = &module.settings;
    let (daemon_filters, incoming_chmod, root_text) = (prepared.daemon_filters, prepared.chmod, prepared.root_text);
    // `--files-from=:path`: the list is ours to read and forward, opened
    // (inside the module) when the options are read, as upstream does.
    let files_from = match transfer_options.files_from.as_deref() {
        None => None,
        Some("-") => {
            let message = "ERROR: --files-from=- on a push would read the daemon's own input\n";
            return refuse(request, reader, writer, stream, options, message, ExitCode::Unsupported);
        }
        Some(source) => {
            let opened = match prepared.opened_root.as_ref() {
                Some(root) => crate::transfer::filter::files_from::open_in_module(root, source, &daemon_filters),
                None => crate::transfer::fs::module_root::ModuleRoot::open(std::path::Path::new(&root_text))
                    .map_err(|e| format!("failed to open files-from file {source}: {e}\n"))
                    .and_then(|root| crate::transfer::filter::files_from::open_in_module(&root, source, &daemon_filters)),
            };
            match opened {
                Ok(file) => Some(file),
                Err(message) => return refuse(request, reader, writer, stream, options, &message, ExitCode::Unsupported),
            }
        }
    };
    let server_rules = match server_filter_rules(
        &transfer_options,
        prepared.opened_root.as_ref(),
        &root_text,
        &daemon_filters,
        "Receiver",
    ) {
        Ok(rules) => rules,
        Err((message, code)) => return refuse(request, reader, writer, stream, options, &message, code),
    };
    let may_chown = match &request.identity {
        Some(id) => id.uid == 0,
        None => nix::unistd::geteuid().is_root(),
    };
    let setup = ReceiveSetup {
        protocol: request.protocol,
        server_rules: &server_rules,
        negotiated,
        options: &transfer_options,
        module_name: &module.name,
        module_root: std::path::PathBuf::from(&root_text),
        daemon_filters: &daemon_filters,
        incoming_chmod: incoming_chmod.as_ref(),
        munge_symlinks: m
            .munge_symlinks
            .unwrap_or(!m.use_chroot.unwrap_or(!root_text.contains("/./")) || root_text.contains("/./")),
        identity: request.identity.as_ref(),
        may_chown,
        fake_super: m.fake_super,
        opened_root: prepared.opened_root.as_ref(),
        open_noatime: m.open_noatime.unwrap_or(transfer_options.open_noatime),
        module_numeric_ids: daemon_numeric_ids(m, &root_text),
        temp_dir: m.temp_dir.as_deref(),
        paths: &request.paths,
        files_from: files_from.as_ref(),
        max_verbosity: m.max_verbosity,
    };
    let idle = transfer_timeout(&transfer_options, m.timeout, stream);
    let stop_reading = stream.read_stopper();
    let outcome = receive::run(&setup, &mut *reader, &mut *writer, idle, stop_reading.as_deref());
    // Nothing in the module stays open while the session closes.
    drop(setup);
    drop(prepared.opened_root);
    match outcome {
        Ok(stats) => {
            info!(
                "received {} files, {} bytes literal, {} bytes matched",
                stats.files_received, stats.literal_bytes, stats.matched_bytes
            );
            stream.shutdown_write();
            drain_until_eof(reader, stream);
            if stats.io_error != 0 {
                ExitCode::PartialTransfer as i32
            } else {
                0
            }
        }
        Err(ReceiveError::Io(e)) => {
            info!("connection with {} ({}) ended: {}", request.peer_host, request.peer_addr, e);
            ExitCode::SocketIo as i32
        }
        Err(ReceiveError::FileIo(message)) => refuse_mid_push(request, reader, writer, stream, options, &message, ExitCode::FileIo),
        Err(ReceiveError::Usage(message)) => refuse_mid_push(request, reader, writer, stream, options, &message, ExitCode::Syntax),
        Err(e @ ReceiveError::UnsafeName(_)) => {
            refuse_mid_push(request, reader, writer, stream, options, &format!("{e}\n"), ExitCode::Unsupported)
        }
        Err(e @ ReceiveError::OptionsRejected { at_parse }) => {
            let code = if at_parse { ExitCode::Unsupported } else { ExitCode::Syntax };
            refuse_mid_push(request, reader, writer, stream, options, &format!("{e}\n"), code)
        }
        Err(e @ ReceiveError::InvalidPath(_)) => {
            refuse_mid_push(request, reader, writer, stream, options, &format!("{e}\n"), ExitCode::Protocol)
        }
        Err(ReceiveError::OutOfMemory(e)) => refuse_mid_push(
            request,
            reader,
            writer,
            stream,
            options,
            &format!("{e} [receiver]\n"),
            ExitCode::Malloc,
        ),
        Err(ReceiveError::Violation(message)) => refuse_mid_push(request, reader, writer, stream, options, &message, ExitCode::Protocol),
        Err(ReceiveError::Destination(message)) => {
            refuse_mid_push(request, reader, writer, stream, options, &message, ExitCode::FileSelect)
        }
        Err(e) => {
            let message = format!("rsync: [receiver] {e}\n");
            refuse_mid_push(request, reader, writer, stream, options, &message, ExitCode::Protocol)
        }
    }
}

/// Why the module turns this transfer away, in upstream's order and words:
/// a refused option, then `write only` for a pull, `read only` for a push.
fn module_refusal(request: &SessionRequest, options: &SetupOptions) -> Option<(String, ExitCode)> {
    let settings = &request.module().settings;
    // Even without `refuse options`, some options are refused by default.
    let refuse_list = settings.refuse_options.as_deref().unwrap_or("");
    let used = crate::transfer::options::refuse::used_options(&request.options);
    if let Some(text) = crate::transfer::options::refuse::first_refused(refuse_list, &used, options.we_send) {
        return Some((format!("rsync: {text}\n"), ExitCode::Unsupported));
    }
    if options.we_send && settings.write_only {
        return Some(("ERROR: module is write only\n".into(), ExitCode::Syntax));
    }
    if options.we_send && request.read_only {
        // A pull that would delete its sources needs a writable module.
        for (option, word) in [("--remove-source-files", "source"), ("--remove-sent-files", "sent")] {
            if request.options.iter().any(|o| o == option) {
                let text = format!("ERROR: --remove-{word}-files cannot be used with a read-only module\n");
                return Some((text, ExitCode::Syntax));
            }
        }
    }
    if !options.we_send && request.read_only {
        return Some(("ERROR: module is read only\n".into(), ExitCode::Syntax));
    }
    None
}

/// Serve a pull: the daemon sends.
fn pull<R: BufRead, W: Write>(
    request: &SessionRequest,
    negotiated: &protocol_setup::Negotiated,
    reader: &mut R,
    writer: &mut W,
    stream: &dyn SessionStream,
    options: &SetupOptions,
) -> i32 {
    let mut transfer_options = TransferOptions::parse(&request.options);
    // The daemon's --bwlimit caps the client's (upstream's daemon_bwlimit).
    let daemon_limit = u64::from(request.config.global.bwlimit);
    if daemon_limit > 0 {
        transfer_options.bwlimit = Some(transfer_options.bwlimit.map_or(daemon_limit, |c| c.min(daemon_limit)));
    }
    if transfer_options.preserve_atimes && request.protocol < 28 {
        // Protocol 27's one-byte flags cannot say "same access time" (stock hangs).
        transfer_options.unsupported.push("--atimes (-U) below protocol 28".into());
    }
    if !transfer_options.unsupported.is_empty() {
        let message = format!("ERROR: oxrsyncd does not support {} yet\n", transfer_options.unsupported.join(", "));
        return refuse(request, reader, writer, stream, options, &message, ExitCode::Unsupported);
    }
    let prepared = match prepare_module(request, false) {
        Ok(p) => p,
        Err((message, code)) => return refuse(request, reader, writer, stream, options, &message, code),
    };
    let module = request.module();
    let m = &module.settings;
    let server_rules = match server_filter_rules(
        &transfer_options,
        prepared.opened_root.as_ref(),
        &prepared.root_text,
        &prepared.daemon_filters,
        "sender",
    ) {
        Ok(rules) => rules,
        Err((message, code)) => return refuse(request, reader, writer, stream, options, &message, code),
    };
    let (daemon_filters, outgoing_chmod, root_text) = (prepared.daemon_filters, prepared.chmod, prepared.root_text);
    let user = request.user.clone().unwrap_or_default();
    let addr = request.peer_addr.to_string();
    let root = root_text.clone();
    let setup = SenderSetup {
        protocol: request.protocol,
        negotiated,
        options: &transfer_options,
        module_name: &module.name,
        module_root: std::path::PathBuf::from(root),
        daemon_filters: &daemon_filters,
        server_rules: &server_rules,
        // Upstream's default: munge unless the module is chrooted to its path.
        munge_symlinks: m
            .munge_symlinks
            .unwrap_or(!m.use_chroot.unwrap_or(!root_text.contains("/./")) || root_text.contains("/./")),
        module_numeric_ids: daemon_numeric_ids(&module.settings, &root_text),
        fake_super: m.fake_super,
        opened_root: prepared.opened_root.as_ref(),
        outgoing_chmod: outgoing_chmod.as_ref(),
        ignore_nonreadable: m.ignore_nonreadable,
        open_noatime: m.open_noatime.unwrap_or(transfer_options.open_noatime),
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
        max_verbosity: m.max_verbosity,
        paths: &request.paths,
    };
    let idle = transfer_timeout(&transfer_options, m.timeout, stream);
    let outcome = sender::run(&setup, &mut *reader, &mut *writer, idle);
    // Nothing in the module stays open while the session closes.
    drop(setup);
    drop(prepared.opened_root);
    match outcome {
        Ok(stats) => {
            info!(
                "sent {} bytes  received {} bytes  total size {}",
                stats.total_written, stats.total_read, stats.total_size
            );
            stream.shutdown_write();
            drain_until_eof(reader, stream);
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
            refuse(request, reader, writer, stream, options, &message, ExitCode::Malloc)
        }
        Err(SenderError::Io(e)) if io_timeout::timed_out(&e).is_some() || e.kind() == io::ErrorKind::WouldBlock => {
            // Upstream's server logs this (its client only sees the end).
            let secs = io_timeout::timed_out(&e).unwrap_or_else(|| u64::from(m.timeout));
            info!("[sender] io timeout after {} seconds -- exiting", secs);
            let code = ExitCode::Timeout;
            info!(
                "rsync error: {} (code {}) at oxrsyncd [sender={}]",
                code.description(),
                code as i32,
                env!("CARGO_PKG_VERSION")
            );
            if request.protocol >= 31 {
                let mut mux = MuxWriter::new(&mut *writer);
                let _ = mux.send(MsgTag::ErrorExit, &(code as i32).to_le_bytes()).and_then(|()| mux.flush());
            }
            stream.shutdown_write();
            code as i32
        }
        Err(SenderError::Io(e)) => {
            info!("connection with {} ({}) ended: {}", request.peer_host, request.peer_addr, e);
            ExitCode::SocketIo as i32
        }
        Err(SenderError::OutOfMemory(e))
        | Err(SenderError::FilesFrom(crate::transfer::filter::files_from::FilesFromError::OverBudget(e))) => refuse(
            request,
            reader,
            writer,
            stream,
            options,
            &format!("{e} [sender]\n"),
            ExitCode::Malloc,
        ),
        Err(SenderError::FileSelect(message)) => refuse(request, reader, writer, stream, options, &message, ExitCode::FileSelect),
        Err(SenderError::OptionError(message)) => refuse(
            request,
            reader,
            writer,
            stream,
            options,
            &format!("rsync: {message}"),
            ExitCode::Unsupported,
        ),
        Err(e) => {
            let message = format!("rsync: [sender] {e}\n");
            refuse(request, reader, writer, stream, options, &message, ExitCode::Protocol)
        }
    }
}

/// What both directions take from the module before a transfer, checked
/// once: the session's identity, the module's filter rules and its chmod
/// rules for this direction, and its path. `Err` is the refusal.
struct ModuleSetup {
    daemon_filters: crate::transfer::filter::rules::FilterList,
    chmod: Option<crate::transfer::options::chmod::ChmodRules>,
    root_text: String,
    /// The module directory, opened before the session took the module's
    /// identity (as upstream changes into it while still root), so a
    /// module below a directory its uid may not enter is still served.
    /// None if it could not be opened: the transfer reports why.
    opened_root: Option<crate::transfer::fs::module_root::ModuleRoot>,
}

fn prepare_module(request: &SessionRequest, incoming: bool) -> Result<ModuleSetup, (String, ExitCode)> {
    let root_text = request
        .module()
        .settings
        .path
        .as_deref()
        .map(|p| request.expand(&p.to_string_lossy()))
        .unwrap_or_default();
    let opened_root = crate::transfer::fs::module_root::ModuleRoot::open(std::path::Path::new(&root_text)).ok();
    if let Some(identity) = &request.identity {
        if let Err(e) = crate::identity::assume_on_this_thread(identity) {
            let message = format!("ERROR: cannot take the module's identity (uid {}): {e}\n", identity.uid);
            return Err((message, ExitCode::Syntax));
        }
    }
    // Only the capabilities the module needs, from here on (this thread,
    // what it starts and what it execs); see least_privilege.rs.
    let reads_xattrs = !incoming && crate::transfer::options::client::TransferOptions::parse(&request.options).preserve_xattrs > 0;
    let keep = crate::least_privilege::kept(request.identity.as_ref(), reads_xattrs);
    if let Err(e) = crate::least_privilege::confine_this_thread(&keep) {
        info!("module {}: {}", request.module().name, e);
        return Err(("ERROR: cannot drop the session's privileges\n".to_string(), ExitCode::Syntax));
    }
    let module = request.module();
    let m = &module.settings;
    let daemon_filters = crate::transfer::filter::rules::FilterList::from_module(
        m.filter.as_deref(),
        m.include_from.as_deref(),
        m.include.as_deref(),
        m.exclude_from.as_deref(),
        m.exclude.as_deref(),
    )
    .map_err(|e| {
        info!("module {} filter rules: {}", module.name, e);
        ("ERROR: the module's filter rules are invalid\n".to_string(), ExitCode::Syntax)
    })?;
    let (param, spec) = if incoming {
        ("incoming chmod", m.incoming_chmod.as_deref())
    } else {
        ("outgoing chmod", m.outgoing_chmod.as_deref())
    };
    let chmod = spec
        .map(|spec| crate::transfer::options::chmod::ChmodRules::parse(spec, crate::transfer::options::chmod::current_umask()))
        .transpose()
        .map_err(|e| {
            info!("Invalid \"{}\" directive: {}", param, e);
            (format!("ERROR: the module's {param} is invalid\n"), ExitCode::Syntax)
        })?;
    Ok(ModuleSetup {
        daemon_filters,
        chmod,
        root_text,
        opened_root,
    })
}

/// Send `message` and an error exit the way upstream's `exit_cleanup`
/// does, half-close, then read until the client hangs up: an orderly close,
/// so the client sees our words rather than a connection reset.
/// The filter options given to the daemon itself, as rules, with the
/// files they name read inside the module; else upstream's refusal
/// (`failed to open exclude file ...`, exit 11) and its exit code.
fn server_filter_rules(
    transfer_options: &TransferOptions,
    opened_root: Option<&crate::transfer::fs::module_root::ModuleRoot>,
    root_text: &str,
    daemon_filters: &crate::transfer::filter::rules::FilterList,
    role: &str,
) -> Result<Vec<String>, (String, ExitCode)> {
    use crate::transfer::filter::server::{expand, Refusal};
    use crate::transfer::fs::module_root::ModuleRoot;
    if transfer_options.server_filters.is_empty() {
        return Ok(Vec::new());
    }
    let opened;
    let root = match opened_root {
        Some(root) => root,
        None => {
            opened = ModuleRoot::open(std::path::Path::new(root_text)).map_err(|e| (format!("ERROR: {e}\n"), ExitCode::FileIo))?;
            &opened
        }
    };
    expand(&transfer_options.server_filters, root, daemon_filters, role)
        .map_err(|Refusal { message, file_error }| (message, if file_error { ExitCode::FileIo } else { ExitCode::Unsupported }))
}

fn refuse<R: BufRead, W: Write>(
    request: &SessionRequest,
    reader: &mut R,
    writer: &mut W,
    stream: &dyn SessionStream,
    options: &SetupOptions,
    message: &str,
    code: ExitCode,
) -> i32 {
    let result = (|| -> io::Result<()> {
        if !options.we_send && options.files_from {
            writer.write_all(&[0])?;
        }
        send_error_exit(request, writer, options, message, code)
    })();
    stream.shutdown_write();
    if result.is_ok() {
        drain_until_eof(reader, stream);
    }
    code as i32
}

/// The client's `--timeout=N`, if it gave one.
fn client_timeout(options: &[String]) -> Option<u32> {
    options
        .iter()
        .find_map(|o| o.strip_prefix("--timeout="))
        .and_then(|v| v.parse().ok())
}

/// The transfer's idle policy: the socket wakes reads every keep-alive
/// interval and the reader decides between a keep-alive and giving up.
fn transfer_timeout(options: &TransferOptions, module_timeout: u32, stream: &dyn SessionStream) -> Option<IdlePolicy> {
    let timeout = io_timeout::effective_timeout(options.timeout, module_timeout)?;
    stream.set_read_timeout(Some(io_timeout::keepalive_interval(timeout))).ok()?;
    Some(IdlePolicy {
        timeout,
        keepalive: stream.keepalive_writer(),
        gate: KeepaliveGate::default(),
    })
}

/// [`refuse`] in the middle of a push: the client is still writing its
/// files, and a FIN now would reach it before it has read our words. Keep
/// reading until it has them and hangs up (from protocol 31 its reaction
/// to MSG_ERROR_EXIT), then close as usual.
fn refuse_mid_push<R: BufRead, W: Write>(
    request: &SessionRequest,
    reader: &mut R,
    writer: &mut W,
    stream: &dyn SessionStream,
    options: &SetupOptions,
    message: &str,
    code: ExitCode,
) -> i32 {
    let sent = send_error_exit(request, writer, options, message, code);
    if sent.is_ok() {
        if request.protocol >= 31 {
            // The client answers MSG_ERROR_EXIT with its own and then
            // waits for us to close, as upstream's server does on it: the
            // demultiplexer stops at that answer (ClientAborted).
            drain_for(&mut DemuxReader::new(&mut *reader, true), stream, DRAIN_AFTER_ERROR);
            stream.shutdown_write();
            return code as i32;
        }
        drain_for(reader, stream, Duration::from_secs(2));
    }
    stream.shutdown_write();
    drain_until_eof(reader, stream);
    code as i32
}

/// Log `message` and send it with upstream's closing frames, one frame
/// per line as upstream's rwrite (clients escape a newline inside one).
fn send_error_exit<W: Write>(
    request: &SessionRequest,
    writer: &mut W,
    options: &SetupOptions,
    message: &str,
    code: ExitCode,
) -> io::Result<()> {
    info!("{}", message.trim_end());
    let mut mux = MuxWriter::new(&mut *writer);
    for line in message.split_inclusive('\n') {
        mux.send(MsgTag::Error, line.as_bytes())?;
    }
    for (tag, payload) in refuse_tail(request, options, code) {
        mux.send(tag, &payload)?;
    }
    mux.flush()
}

/// Upstream's closing frames after an error: the summary line and, from
/// protocol 31, MSG_ERROR_EXIT.
fn refuse_tail(request: &SessionRequest, options: &SetupOptions, code: ExitCode) -> Vec<(MsgTag, Vec<u8>)> {
    let role = if options.we_send { "sender" } else { "Receiver" };
    let summary = format!(
        "rsync error: {} (code {}) at oxrsyncd [{}={}]\n",
        code.description(),
        code as i32,
        role,
        env!("CARGO_PKG_VERSION")
    );
    info!("{}", summary.trim_end());
    let mut frames = vec![(MsgTag::Error, summary.into_bytes())];
    if request.protocol >= 31 {
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

/// Whether the daemon sends ids without names, as upstream decides it:
/// a chrooted module (the default, `use chroot` unset) cannot look names
/// up, so it defaults to numeric ids unless `numeric ids = no` or a name
/// converter is set; an unchrooted one only with `numeric ids = yes`.
fn daemon_numeric_ids(settings: &oxrsyncd_shared::config::ModuleSettings, path: &str) -> bool {
    let use_chroot = settings.use_chroot.unwrap_or(!path.contains("/./"));
    if use_chroot {
        settings.numeric_ids != Some(false) && settings.name_converter.as_deref().unwrap_or("").is_empty()
    } else {
        settings.numeric_ids == Some(true)
    }
}

/// Upstream's `rsync on|to REQUEST from [USER@]HOST (ADDR)` line.
fn log_request(request: &SessionRequest, options: &SetupOptions) {
    let mut text = request.paths_text().join(" ");
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
