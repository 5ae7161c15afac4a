//! The daemon as sender (a client pull): upstream's `do_server_sender`,
//! `send_file_list` and `send_files` on one plain thread.
//!
//! Order on the wire after protocol setup: the client's filter list, our
//! file list, then the generator's requests (index, item flags, block
//! sums) answered with token streams, phase ends echoed, our stats, and
//! the final goodbye. With incremental recursion (CF_INC_RECURSE, see
//! [`crate::transfer::send::incremental`]) the file list is the top level only;
//! each directory's list follows in the request loop, kept ahead of the
//! client's progress, and the client releases each list with an NDX_DONE
//! before the one that ends phase 0.

use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::time::Instant;

use bstr::ByteSlice;
use tracing::{debug, info};

use crate::transfer::delta::{self, ChecksumKind, ChecksumParams, Compression, SearchMode, TokenWriter};
use crate::transfer::filter::rules::{FilterError, FilterList};
use crate::transfer::flist::{FlistEncoder, FlistOptions};
use crate::transfer::fs::module_root::ModuleRoot;
use crate::transfer::limits::io_timeout::{IdlePolicy, IdleReader};
use crate::transfer::options::client::TransferOptions;
use crate::transfer::send::incremental::{Item, ListSender, MIN_FILECNT_LOOKAHEAD};
use crate::transfer::send::walk::walker::Walker;
use crate::transfer::send::xattrs::XattrSender;
use oxrsyncd_protocol::message::{self, cat, fname_in, syserr};
use oxrsyncd_protocol::message::{full_fname, rsyserr};
use oxrsyncd_protocol::mux::MsgTag;
use oxrsyncd_protocol::mux::MuxOut;
use oxrsyncd_protocol::mux::{DemuxReader, SuccessCharge};
use oxrsyncd_protocol::ndx::{NdxCodec, NDX_DEL_STATS, NDX_DONE};
use oxrsyncd_protocol::setup::{compat, Negotiated};
use oxrsyncd_protocol::wire::{read_varint, write_longint, write_varint, write_varlong};
use oxrsyncd_protocol::IoError;

use oxrsyncd_protocol::item::{self, basis, write_ndx_and_attrs, ItemAttrs};

/// What the sender needs to run.
pub struct SenderSetup<'a> {
    pub protocol: u32,
    pub negotiated: &'a Negotiated,
    pub options: &'a TransferOptions,
    pub module_name: &'a str,
    pub module_root: PathBuf,
    /// The module's own filter rules.
    pub daemon_filters: &'a FilterList,
    /// Filter rules given to the daemon itself (`-M--exclude=...`), in
    /// the wire's short form: they go before the client's.
    pub server_rules: &'a [String],
    /// `munge symlinks` in effect for the module.
    pub munge_symlinks: bool,
    /// `fake super`: files are listed as their attribute describes them.
    pub fake_super: bool,
    /// The module directory opened while privileged (see `session`).
    pub opened_root: Option<&'a ModuleRoot>,
    /// The module's `numeric ids` setting: never look names up.
    pub module_numeric_ids: bool,
    /// `outgoing chmod` rules.
    pub outgoing_chmod: Option<&'a crate::transfer::options::chmod::ChmodRules>,
    /// `ignore nonreadable`.
    pub ignore_nonreadable: bool,
    /// Read files with O_NOATIME (the module's `open noatime`, else the
    /// client's `--open-noatime`).
    pub open_noatime: bool,
    /// `transfer logging`: the `log format` and the session's names for it.
    pub transfer_log: Option<TransferLog<'a>>,
    /// The module's `dont compress` names every file (`*`): a deflate
    /// stream runs at level 0, as upstream's.
    pub dont_compress_all: bool,
    /// The module's `max verbosity`: caps the client's `-v` count for what
    /// the sender reports itself.
    pub max_verbosity: i32,
    pub paths: &'a [Vec<u8>],
}

/// What a `transfer logging` line needs besides the file.
pub struct TransferLog<'a> {
    pub format: &'a str,
    pub host: &'a str,
    pub addr: &'a str,
    pub user: &'a str,
}

/// How a pull ended (for the daemon log and the exit status).
#[derive(Debug, Default)]
pub struct SenderStats {
    pub total_read: u64,
    pub total_written: u64,
    pub total_size: u64,
    pub files_sent: u64,
    pub literal_bytes: u64,
    pub matched_bytes: u64,
    /// Upstream's match counters, for the `-vv` report.
    pub matched_blocks: u64,
    pub hash_hits: u64,
    pub false_alarms: u64,
    pub io_error: i32,
    /// Transfer errors reported to the client.
    pub xfer_errors: u32,
}

/// Why a pull failed.
#[derive(Debug, thiserror::Error)]
pub enum SenderError {
    #[error("{0}")]
    Filter(#[from] FilterError),
    #[error("connection: {0}")]
    Io(#[from] io::Error),
    #[error("protocol error: {0}")]
    Protocol(String),
    /// Upstream's RERR_FILESELECT: the message is the client's to see as is.
    #[error("{0}")]
    FileSelect(String),
    /// Upstream's `option_error`: an option could not be honoured (a
    /// `--files-from` list that does not open). The client sees the
    /// message after `rsync: `, then RERR_UNSUPPORTED.
    #[error("{0}")]
    OptionError(String),
    #[error("{0}")]
    FilesFrom(#[from] crate::transfer::filter::files_from::FilesFromError),
    #[error("{0}")]
    Delta(#[from] delta::DeltaError),
    /// The module cannot be confined (no openat2): refused, never served unconfined.
    #[error("{0}")]
    Containment(io::Error),
    /// What the client sent would pass the session's memory budget.
    #[error("{0}")]
    OutOfMemory(#[from] crate::transfer::limits::budget::OverBudget),
}

/// Counts bytes read through it (upstream's total_read).
struct Counted<R> {
    inner: R,
    count: u64,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

/// Run the whole pull.
/// `idle` is the session's timeout policy (none: wait forever).
pub fn run<R: Read, W: Write>(setup: &SenderSetup<'_>, reader: R, writer: W, idle: Option<IdlePolicy>) -> Result<SenderStats, SenderError> {
    let protocol = setup.protocol;
    let opts = setup.options;
    let gate = idle.as_ref().map(|p| p.gate.clone()).unwrap_or_default();
    let reader = IdleReader::new(reader, idle);
    // --remove-source-files needs the client's MSG_SUCCESS, so its input is
    // multiplexed at every protocol (upstream's need_messages_from_generator).
    let mut input = DemuxReader::new(Counted { inner: reader, count: 0 }, protocol >= 30 || opts.remove_source_files).keeping_successes(
        (opts.remove_source_files && !opts.dry_run).then_some(crate::transfer::limits::budget::charge_success as SuccessCharge),
    );
    let mut out = MuxOut::new(crate::transfer::limits::bwlimit::Throttled::new(writer, opts.bwlimit));
    let mut stats = SenderStats::default();

    let mut ours = FilterList::default();
    for rule in setup.server_rules {
        ours.add_wire_rule(rule, protocol).map_err(SenderError::Filter)?;
    }
    let mut filters = FilterList::receive_into(ours, &mut input, protocol).map_err(|e| match e {
        FilterError::Io(e) => SenderError::Io(e),
        FilterError::OverBudget(e) => SenderError::OutOfMemory(e),
        other => SenderError::Filter(other),
    })?;
    if opts.cvs_exclude {
        filters.add_cvs_exclude();
    }
    let daemon_filters = setup.daemon_filters;
    let flist_start = Instant::now();

    // Every access of the pull goes through this (see module_root.rs).
    let opened = match setup.opened_root {
        Some(root) => root.try_clone(),
        None => ModuleRoot::open(&setup.module_root),
    }
    .map(|root| root.with_noatime(setup.open_noatime));
    let root = opened.map_err(|e| {
        if e.kind() == io::ErrorKind::Unsupported {
            SenderError::Containment(e)
        } else {
            SenderError::Io(e)
        }
    })?;
    let walker = Walker {
        root: &root,
        module_name: setup.module_name,
        options: opts,
        filters: &filters,
        daemon_filters,
        munge_symlinks: setup.munge_symlinks,
        protocol,
        outgoing_chmod: setup.outgoing_chmod,
        ignore_nonreadable: setup.ignore_nonreadable,
        merge: crate::transfer::filter::merge::MergeStack::new(filters.merges.clone(), daemon_filters.clone()),
        fake_super: setup.fake_super,
    };
    let kind = ChecksumKind::from_negotiated(&setup.negotiated.checksum, protocol)
        .ok_or_else(|| SenderError::Protocol(format!("unsupported checksum {}", setup.negotiated.checksum)))?;
    let params = ChecksumParams {
        kind,
        seed: setup.negotiated.seed,
        proper_seed_order: setup.negotiated.compat_flags & compat::CHKSUM_SEED_FIX != 0,
    };
    let inc_recurse = setup.negotiated.compat_flags & compat::INC_RECURSE != 0;
    let flist_opts = FlistOptions {
        protocol,
        varint_flags: setup.negotiated.compat_flags & compat::VARINT_FLIST_FLAGS != 0,
        id0_names: setup.negotiated.compat_flags & compat::ID0_NAMES != 0,
        preserve_uid: opts.preserve_uid,
        preserve_gid: opts.preserve_gid,
        numeric_ids: opts.numeric_ids,
        preserve_links: opts.preserve_links,
        preserve_devices: opts.preserve_devices,
        preserve_specials: opts.preserve_specials,
        preserve_hard_links: opts.preserve_hard_links,
        checksum_len: opts.always_checksum.then(|| kind.digest_len()),
        safe_flist: setup.options.has_capability('f'),
        local_numeric_ids: setup.module_numeric_ids,
        inc_recurse,
        preserve_atimes: opts.preserve_atimes,
        preserve_acls: opts.preserve_acls,
        ..FlistOptions::default()
    };
    // With incremental recursion the first list holds the top level; the
    // rest follows directory by directory during the transfer.
    let mut ndx_out = NdxCodec::new(protocol);
    let mut lists = ListSender::new(
        &walker,
        FlistEncoder::new(flist_opts),
        opts.ignore_errors,
        opts.always_checksum.then_some(kind),
    );
    if opts.preserve_xattrs > 0 {
        if protocol < 30 {
            return Err(SenderError::Protocol(format!(
                "--xattrs requires protocol 30 or higher (negotiated {protocol})."
            )));
        }
        // Long values are summed with the protocol's own default checksum
        // (upstream's xattr_sum_nni), whatever the transfer negotiated.
        let sum = ChecksumParams {
            kind: ChecksumKind::implied(protocol),
            ..params
        };
        lists = lists.with_xattrs(XattrSender::new(
            sum,
            opts.preserve_xattrs,
            setup.fake_super,
            opts.preserve_links,
            opts.preserve_devices,
            opts.preserve_specials,
        ));
    }
    if opts.preserve_acls {
        if protocol < 30 {
            return Err(SenderError::Protocol(format!(
                "--acls requires protocol 30 or higher (negotiated {protocol})."
            )));
        }
        lists = lists.with_acls(crate::transfer::send::acls::AclSender::new(
            setup.fake_super,
            opts.preserve_devices,
            opts.preserve_specials,
            inc_recurse,
        ));
    }
    // Upstream's want_xattr_optim: from protocol 31 a client that did not
    // say 'x' sends no request for an item whose basis is a local copy.
    let xattr_optim = protocol >= 31 && setup.negotiated.compat_flags & compat::AVOID_XATTR_OPTIM == 0;
    // Not flushed yet: as upstream's buffered output, the first list goes
    // out together with the first lists sent ahead, right before we first
    // wait for the client.
    let files_from_args;
    let paths = match &opts.files_from {
        None => setup.paths,
        Some(source) => {
            files_from_args = files_from_paths(setup, &root, source, &mut input, protocol)?;
            &files_from_args[..]
        }
    };
    lists.send_first(paths, &mut out, &mut ndx_out)?;
    debug!(
        "first file list of {} entries sent in {:?} (incremental: {})",
        lists.lists.first().map_or(0, |l| l.entries.len()),
        flist_start.elapsed(),
        inc_recurse
    );
    if lists.lists.first_is_empty() {
        lists.flush(&mut out)?;
        out.flush()?;
        stats.io_error = lists.io_error;
        stats.total_size = lists.total_size;
        stats.total_read = input_count(&input);
        stats.total_written = out.total_written;
        stats.xfer_errors = out.xfer_errors;
        return Ok(stats);
    }

    let compression = match &setup.negotiated.compression {
        Some(name) => Compression::from_negotiated(Some(name), opts.compress_level)
            .ok_or_else(|| SenderError::Protocol(format!("unsupported compression {name}")))?,
        None => Compression::None,
    };
    let compression = if setup.dont_compress_all {
        compression.at_skip_level()
    } else {
        compression
    };
    let mut tokens = TokenWriter::with_protocol(compression, protocol);
    let mut ndx_in = NdxCodec::new(protocol);
    let max_phase = if protocol >= 29 { 2 } else { 1 };
    let inplace_partial = setup.negotiated.compat_flags & compat::INPLACE_PARTIAL_DIR != 0;
    let verbosity = i32::from(opts.verbose).min(setup.max_verbosity);
    // Indexes sent once (kept only when a redo must send differently).
    let mut sent_once = std::collections::HashSet::new();
    let mut phase = 0;
    let io_error_before = lists.io_error;
    let xfer_sum_len = kind.digest_len();

    loop {
        if lists.inc_recurse() {
            lists.send_extra(MIN_FILECNT_LOOKAHEAD, &mut out, &mut ndx_out)?;
        }
        lists.flush(&mut out)?;
        // Whatever we owe the client goes out before we wait on it (upstream
        // flushes before every blocking read too), or both sides would wait.
        // The rest of a data frame already on its way is no wait: many small
        // files then share one frame and one send(2), as with upstream.
        if !input.frame_data_pending() {
            out.flush()?;
        }
        gate.open();
        let ndx = ndx_in.read(&mut input)?;
        gate.close();
        if !input.successes.is_empty() {
            let confirmed = std::mem::take(&mut input.successes);
            crate::transfer::send::remove_source::remove_confirmed(&root, &lists.lists, confirmed, opts, verbosity, &mut out)?;
        }
        if ndx == NDX_DONE {
            // With incremental recursion an NDX_DONE first releases the
            // oldest list; only the one that releases the last ends phase 0.
            if lists.lists.release_first() {
                ndx_out.write(&mut out, NDX_DONE)?;
                continue;
            }
            phase += 1;
            if phase > max_phase {
                break;
            }
            ndx_out.write(&mut out, NDX_DONE)?;
            continue;
        }
        if ndx == NDX_DEL_STATS && protocol >= 30 {
            ndx_out.write(&mut out, NDX_DEL_STATS)?;
            for _ in 0..5 {
                let v = read_varint(&mut input)?;
                write_varint(&mut out, v)?;
            }
            continue;
        }
        if ndx < 0 {
            return Err(SenderError::Protocol(format!(
                "Invalid file index: {ndx} ({NDX_DONE} - {})",
                lists.lists.last_ndx()
            )));
        }
        let ItemAttrs {
            iflags,
            basis: basis_type,
            xname,
        } = ItemAttrs::read(&mut input, protocol)?;
        let found = match lists.lists.find(ndx) {
            Ok(found) => found,
            // Protocol 29 keep-alive: the list's length, "new", nothing else.
            Err(_) if protocol < 30 && i64::from(ndx) == lists.lists.last_ndx() + 1 && iflags == item::IS_NEW => continue,
            Err(e) => return Err(SenderError::Protocol(e)),
        };
        // -X: the client's generator asks for the long values it lacks
        // right after the item's flags; they go after our echo of them.
        let both = item::XNAME_FOLLOWS | item::LOCAL_CHANGE;
        let xattr_request =
            iflags & item::REPORT_XATTR != 0 && !opts.dry_run && !(xattr_optim && iflags & both == both) && lists.xattrs.is_some();
        let xattr_reply = match (&found, lists.xattrs.as_mut()) {
            (found, Some(xattrs)) if xattr_request => {
                let (set, shown) = match found {
                    Item::File { entry, local } => (
                        entry.xattr_set,
                        Some((local.clone(), String::from_utf8_lossy(&entry.name).into_owned())),
                    ),
                    Item::ParentDir(Some(dir)) => (dir.xattr_set, Some((dir.local.clone(), dir.name.clone()))),
                    Item::ParentDir(None) => (None, None),
                };
                let name = shown.as_ref().map_or("", |s| s.1.as_str());
                xattrs.read_request(set, &mut input, name).map_err(|e| match e {
                    crate::transfer::send::xattrs::XattrError::Io(e) => SenderError::Io(e),
                    other => SenderError::Protocol(other.to_string()),
                })?;
                set.zip(shown)
            }
            _ => None,
        };
        if iflags & item::TRANSFER != 0 && !matches!(&found, Item::File { entry, .. } if entry.is_reg()) {
            return Err(SenderError::Protocol(format!(
                "received request to transfer non-regular file: {ndx} [sender]"
            )));
        }
        if lists.inc_recurse() {
            lists.send_extra(MIN_FILECNT_LOOKAHEAD, &mut out, &mut ndx_out)?;
            lists.flush(&mut out)?;
        }
        if iflags & item::TRANSFER == 0 {
            write_ndx_and_attrs(&mut out, &mut ndx_out, ndx, iflags, basis_type, xname.as_deref(), protocol)?;
            send_xattr_reply(&mut lists, xattr_reply, &root, &mut out)?;
            continue;
        }
        let Item::File { entry, local } = found else {
            unreachable!("checked above: a transfer names a regular file");
        };
        if phase == 2 {
            return Err(SenderError::Protocol("got transfer request in phase 2 [sender]".into()));
        }
        if opts.dry_run {
            write_ndx_and_attrs(&mut out, &mut ndx_out, ndx, iflags, basis_type, xname.as_deref(), protocol)?;
            continue;
        }
        // Upstream's FLAG_FILE_SENT: the redo pass sends normally.
        let first_pass = !(opts.append_mode > 0 || opts.make_backups) || sent_once.insert(ndx);
        let appending = opts.append_mode > 0 && first_pass;
        let head = delta::read_sum_head(&mut input, protocol, xfer_sum_len)?;
        // The client chooses how many sums to send: held only while this
        // file is sent, within the session's budget.
        let _sums_held = crate::transfer::limits::budget::reserve(head.memory_cost(), "block sums")?;
        // An appending generator announces its length but sends no sums.
        let sums = if appending {
            delta::BlockSums {
                head,
                weak: Vec::new(),
                strong: Vec::new(),
            }
        } else {
            delta::read_block_sums(&mut input, head)?
        };
        // How messages name the file (entries' paths are module-relative);
        // made only for a message.
        let shown = || fname_in(message::shown(&entry.name, local.as_os_str().as_bytes()), setup.module_name);
        // A followed link (-L, or --copy-unsafe-links on an unsafe one) is
        // listed as its target, and read as it.
        let follow = opts.copy_links || opts.copy_unsafe_links;
        let (mut file, meta) = match root.open_read_following(&local, follow) {
            Ok(opened) => opened,
            Err(e) => {
                let text = if e.kind() == io::ErrorKind::NotFound {
                    lists.io_error |= IoError::Vanished.bit();
                    cat(&[b"file has vanished: ", &shown(), b"\n"])
                } else {
                    lists.io_error |= IoError::General.bit();
                    syserr("sender", &cat(&[b"send_files failed to open ", &shown()]), &e)
                };
                let tag = if e.kind() == io::ErrorKind::NotFound && protocol >= 28 {
                    MsgTag::Warning
                } else {
                    MsgTag::ErrorXfer
                };
                out.message(tag, &text)?;
                if protocol >= 30 {
                    out.message(MsgTag::NoSend, &ndx.to_le_bytes())?;
                }
                continue;
            }
        };
        let len = meta.len();
        if appending && len < entry.size {
            out.message(MsgTag::Warning, &cat(&[b"skipped diminished file: ", &shown(), b"\n"]))?;
            if protocol >= 30 {
                out.message(MsgTag::NoSend, &ndx.to_le_bytes())?;
            }
            continue;
        }
        write_ndx_and_attrs(&mut out, &mut ndx_out, ndx, iflags, basis_type, xname.as_deref(), protocol)?;
        send_xattr_reply(&mut lists, xattr_reply, &root, &mut out)?;
        delta::write_sum_head(&mut out, &head, protocol)?;
        // The delta window reads in large chunks itself, and an append in
        // CHUNK_SIZE pieces: no second buffer (and copy) in between.
        let reader = &mut file;
        let outcome = if appending {
            // Below protocol 30 every append is verified (upstream's compat rule).
            let verify = opts.append_mode == 2 || protocol < 30;
            let sent = delta::append::send_file_append(reader, len, head.file_len(), verify, &params, &mut tokens, &mut out)?;
            delta::SendOutcome {
                file_sum: sent.file_sum,
                stats: delta::MatchStats {
                    literal_bytes: sent.literal_bytes,
                    ..Default::default()
                },
                read_error: None,
            }
        } else {
            let mode = SearchMode {
                updating_basis: updating_basis(opts, basis_type, inplace_partial, protocol, first_pass),
            };
            delta::send_file_delta_with(reader, len, &sums, &params, mode, &mut tokens, &mut out)?
        };
        out.write_all(&outcome.file_sum)?;
        if let Some(e) = outcome.read_error {
            // Upstream sends zeros and a wrong checksum (the client redoes
            // the file) and reports the read error.
            lists.io_error |= IoError::General.bit();
            out.message(MsgTag::ErrorXfer, &syserr("sender", &cat(&[b"read errors mapping ", &shown()]), &e))?;
        }
        stats.files_sent += 1;
        if let Some(log) = &setup.transfer_log {
            let root = setup.module_root.to_string_lossy();
            let (long_name, short_name) = (local.to_string_lossy(), String::from_utf8_lossy(&entry.name));
            let line = crate::transfer::log_format::render(
                log.format,
                &crate::transfer::log_format::LoggedFile {
                    operation: "send",
                    host: log.host,
                    addr: log.addr,
                    module: setup.module_name,
                    module_path: &root,
                    user: log.user,
                    long_name: &long_name,
                    short_name: &short_name,
                    length: len,
                    bytes: outcome.stats.literal_bytes,
                    mode: entry.mode,
                    uid: entry.uid,
                    gid: entry.gid,
                    mtime: entry.mtime,
                    itemize: "",
                    link_target: None,
                },
            );
            info!("{}", line);
        }
        stats.literal_bytes += outcome.stats.literal_bytes;
        stats.matched_bytes += outcome.stats.matched_bytes;
        stats.matched_blocks += outcome.stats.matched_blocks;
        stats.hash_hits += outcome.stats.hash_hits;
        stats.false_alarms += outcome.stats.false_alarms;
    }
    if !input.successes.is_empty() {
        let confirmed = std::mem::take(&mut input.successes);
        crate::transfer::send::remove_source::remove_confirmed(&root, &lists.lists, confirmed, opts, verbosity, &mut out)?;
    }
    if lists.io_error != io_error_before && protocol >= 30 {
        out.message(MsgTag::IoError, &lists.io_error.to_le_bytes())?;
    }
    stats.io_error = lists.io_error;
    stats.total_size = lists.total_size;
    if verbosity >= 2 {
        // Upstream's match_report (debug DELTASUM, level 1 comes with -vv).
        let text = format!(
            "total: matches={}  hash_hits={}  false_alarms={} data={}\n",
            stats.matched_blocks, stats.hash_hits, stats.false_alarms, stats.literal_bytes
        );
        out.message(MsgTag::Info, text.as_bytes())?;
    }
    ndx_out.write(&mut out, NDX_DONE)?;
    out.flush()?;

    // Stats, as upstream's report() on a server sender.
    stats.total_read = input_count(&input);
    stats.total_written = out.total_written;
    let flist_time = flist_start.elapsed().as_millis() as i64;
    write_varlong30(&mut out, stats.total_read as i64, protocol)?;
    write_varlong30(&mut out, stats.total_written as i64, protocol)?;
    write_varlong30(&mut out, stats.total_size as i64, protocol)?;
    if protocol >= 29 {
        write_varlong30(&mut out, flist_time, protocol)?;
        write_varlong30(&mut out, 0, protocol)?;
    }
    out.flush()?;

    read_final_goodbye(&mut input, &mut out, &mut ndx_in, &mut ndx_out, protocol)?;
    out.flush()?;
    stats.total_read = input_count(&input);
    stats.total_written = out.total_written;
    stats.xfer_errors = out.xfer_errors;
    Ok(stats)
}

/// `--files-from`: read the names and turn them into requested paths
/// below the source directory (the one path argument), which must exist.
fn files_from_paths<R: Read>(
    setup: &SenderSetup<'_>,
    root: &ModuleRoot,
    source: &str,
    input: &mut DemuxReader<R>,
    protocol: u32,
) -> Result<Vec<Vec<u8>>, SenderError> {
    use crate::transfer::filter::files_from;
    let module = setup.module_name;
    let base_arg = setup.paths.first().map(Vec::as_slice).unwrap_or(b"");
    let given = crate::transfer::fs::paths::module_relative(base_arg, module);
    let base_shown = given.to_str_lossy();
    let base_bytes = given.trim_end_with(|c| c == '/');
    let names = if source == "-" {
        files_from::read_from_client(input, protocol)?
    } else {
        // A list inside the module (`--files-from=:path`).
        let file = files_from::open_in_module(root, source, setup.daemon_filters).map_err(SenderError::OptionError)?;
        files_from::read_from_file(file, setup.options.from0)?
    };
    let base_meta = root.stat(std::path::Path::new(std::ffi::OsStr::from_bytes(base_bytes)));
    if !base_bytes.is_empty() && !base_meta.as_ref().is_ok_and(|m| m.is_dir()) {
        let err = base_meta.map(|_| io::Error::from_raw_os_error(libc::ENOTDIR)).unwrap_or_else(|e| e);
        return Err(SenderError::FileSelect(rsyserr(
            &format!("change_dir {} failed", full_fname(&base_shown, module)),
            &err,
        )));
    }
    // The names are relative to the source directory, which is not part
    // of what is sent: with -R that is what a `/./` marker says.
    let marker: &[u8] = if setup.options.relative { b"/./" } else { b"/" };
    let prefix = match base_bytes.is_empty() {
        true => [module.as_bytes(), b"/"].concat(),
        false => [module.as_bytes(), b"/", base_bytes, marker].concat(),
    };
    Ok(names.into_iter().map(|name| [prefix.as_slice(), &name].concat()).collect())
}

/// Upstream's `updating_basis_file`: whether the receiver writes into the
/// basis it is matching against (`--inplace` on the file itself, or a
/// partial-dir file for a client with the `I` capability). `first_pass`:
/// backups are made on the first pass only (the redo pass updates in place).
fn updating_basis(opts: &TransferOptions, basis_type: Option<u8>, inplace_partial: bool, protocol: u32, first_pass: bool) -> bool {
    let basis = basis_type.unwrap_or(basis::FNAME);
    let in_place = if protocol >= 29 {
        basis == basis::FNAME
    } else {
        !(opts.make_backups && first_pass)
    };
    (inplace_partial && basis == basis::PARTIAL_DIR) || (opts.inplace && in_place)
}

fn input_count<R: Read>(input: &DemuxReader<Counted<IdleReader<R>>>) -> u64 {
    input.inner_ref().count
}

/// Sizes and stats: longint below protocol 30, varlong (min 3 bytes) from 30.
fn write_varlong30(w: &mut impl Write, x: i64, protocol: u32) -> io::Result<()> {
    if protocol < 30 {
        write_longint(w, x)
    } else {
        write_varlong(w, x, 3)
    }
}

/// -X: the values the client asked for with an item, after our echo of
/// its flags (upstream's `send_xattr_request` in `write_ndx_and_attrs`).
/// `reply`: the item's attribute set, its path and its name.
fn send_xattr_reply<W: Write>(
    lists: &mut ListSender<'_>,
    reply: Option<(u32, (PathBuf, String))>,
    root: &ModuleRoot,
    out: &mut MuxOut<W>,
) -> io::Result<()> {
    let (Some((set, (local, name))), Some(xattrs)) = (reply, lists.xattrs.as_mut()) else {
        return Ok(());
    };
    let failed = xattrs.send_requested(set, root, &local, out, &name)?;
    for text in failed {
        lists.io_error |= IoError::General.bit();
        out.message(MsgTag::ErrorXfer, text.as_bytes())?;
    }
    Ok(())
}

/// Upstream's `read_final_goodbye` for a sender.
fn read_final_goodbye<R: Read, W: Write>(
    input: &mut R,
    out: &mut W,
    ndx_in: &mut NdxCodec,
    ndx_out: &mut NdxCodec,
    protocol: u32,
) -> Result<(), SenderError> {
    if protocol < 29 {
        let i = oxrsyncd_protocol::wire::read_int(input)?;
        return if i == NDX_DONE {
            Ok(())
        } else {
            Err(SenderError::Protocol(format!("Invalid packet at end of run ({i}) [sender]")))
        };
    }
    let mut i = read_ndx_echoing_del_stats(input, out, ndx_in, ndx_out)?;
    if protocol >= 31 && i == NDX_DONE {
        ndx_out.write(out, NDX_DONE)?;
        out.flush()?;
        i = read_ndx_echoing_del_stats(input, out, ndx_in, ndx_out)?;
    }
    if i != NDX_DONE {
        return Err(SenderError::Protocol(format!("Invalid packet at end of run ({i}) [sender]")));
    }
    Ok(())
}

/// The next index, after echoing any deletion stats the client's generator
/// reports on the way (as upstream's read_ndx_and_attrs does on a server
/// sender: with `--delete-after` and friends they come during the goodbye).
fn read_ndx_echoing_del_stats<R: Read, W: Write>(
    input: &mut R,
    out: &mut W,
    ndx_in: &mut NdxCodec,
    ndx_out: &mut NdxCodec,
) -> Result<i32, SenderError> {
    loop {
        let i = ndx_in.read(input)?;
        if i != NDX_DEL_STATS {
            return Ok(i);
        }
        ndx_out.write(out, NDX_DEL_STATS)?;
        for _ in 0..5 {
            let v = read_varint(input)?;
            write_varint(out, v)?;
        }
        out.flush()?;
    }
}
