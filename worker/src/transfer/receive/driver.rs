//! The push, step by step (upstream's `do_server_recv` / `do_recv`):
//!
//! 1. [`receive_list`]: the client's filter rules (when we will delete or
//!    prune), its file list (with a module `--files-from` list forwarded
//!    to it at the same time), owners mapped, sorted, checked, pruned;
//! 2. [`prepare`]: the destination resolved inside the module, hard-link
//!    groups, backups, `--*-dest` and staging directories checked against
//!    the module's rules, and the state both threads share;
//! 3. [`run_threads`]: the generator on its own thread, the receiver on
//!    this one, so neither direction of the connection can stall the other.

use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};

use oxrsyncd_protocol::mux::{Counted, DemuxReader, MsgTag, MuxOut};
use oxrsyncd_protocol::setup::compat;

use crate::transfer::delta::{ChecksumKind, ChecksumParams, Compression};
use crate::transfer::filter::rules::{FilterError, FilterList};
use crate::transfer::flist::{FileEntry, FlistDecoder, FlistOptions, HlinkRole};
use crate::transfer::fs::module_root::ModuleRoot;
use crate::transfer::limits::budget::{self, Reservation};
use crate::transfer::limits::io_timeout::{IdlePolicy, IdleReader};
use crate::transfer::options::client::{MissingArgs, TransferOptions};
use crate::transfer::receive::hard_links::hard_link_followers;
use crate::transfer::receive::list_reader::{list_error, ListReader, OwnerMaps};
use crate::transfer::receive::lists::{FileLists, RecvList};
use crate::transfer::receive::meta::xattr_wire::XattrWire;
use crate::transfer::receive::meta::MetaTail;
use crate::transfer::receive::prune::prune_empty_dirs;
use crate::transfer::receive::setup::{ReceiveError, ReceiveSetup, ReceiveStats, ToGenerator};
use crate::transfer::receive::shared::Shared;
use crate::transfer::receive::{alt_dest, backup, dest, generator, receiver, relative, staging};

/// Run the push on this thread (the receiver) and a generator thread.
/// `stop_reading` wakes this thread from a read of the client's stream;
/// the generator calls it when it fails, since the client then never
/// sends what the receiver waits for.
pub(crate) fn run<R: Read, W: Write + Send>(
    setup: &ReceiveSetup<'_>,
    reader: R,
    mut writer: W,
    idle: Option<IdlePolicy>,
    stop_reading: Option<&(dyn Fn() + Send + Sync)>,
) -> Result<ReceiveStats, ReceiveError> {
    // The client's word that a file will not come (MSG_NO_SEND) is kept
    // for the receiver, each charged like a kept MSG_SUCCESS.
    let mut input =
        DemuxReader::new(Counted::new(IdleReader::new(reader, idle)), setup.protocol >= 30).keeping_no_sends(Some(budget::charge_success));
    let list = receive_list(setup, &mut input, &mut writer)?;
    let (shared, mut reader) = prepare(setup, list, writer)?;
    let mut stats = run_threads(&shared, &mut input, &mut reader, stop_reading)?;
    stats.total_read = input.inner_ref().count;
    stats.total_written = shared.out.lock().unwrap_or_else(|e| e.into_inner()).total_written;
    stats.total_size = shared.lists.total_size();
    Ok(stats)
}

/// The client's first list, received and ready for the generator.
pub(crate) struct ReceivedList {
    /// The first list (the whole list without incremental recursion),
    /// sorted, duplicates cleared.
    pub first: RecvList,
    /// What reads the lists that follow with incremental recursion.
    pub reader: ListReader,
    /// Whether the lists come incrementally (CF_INC_RECURSE).
    pub inc_recurse: bool,
    /// `-H`: each entry's hard-link role, by its position as sent.
    pub roles: Vec<HlinkRole>,
    /// The sender's I/O errors at the list's end.
    pub io_error: i32,
    /// The client's rules for the receiving side (and the daemon's `-M`
    /// rules before them): what they protect is never deleted.
    pub client_filters: FilterList,
    /// `--usermap`/`--groupmap` notices for the client.
    pub map_notices: Vec<String>,
    /// The negotiated transfer checksum.
    pub kind: ChecksumKind,
}

/// Step 1: the client's filter rules and file list. `writer` carries a
/// module `--files-from` list to the client while its file list comes in.
pub(crate) fn receive_list<R: Read, W: Write + Send>(
    setup: &ReceiveSetup<'_>,
    input: &mut DemuxReader<R>,
    writer: &mut W,
) -> Result<ReceivedList, ReceiveError> {
    let (protocol, opts) = (setup.protocol, setup.options);
    let inc_recurse = setup.has_compat(compat::INC_RECURSE);
    let client_filters = read_client_filters(setup, input)?;
    // Upstream's daemon log line (FLOG) as the list starts.
    tracing::info!("receiving file list");
    let kind = ChecksumKind::from_negotiated(&setup.negotiated.checksum, protocol)
        .ok_or_else(|| ReceiveError::Protocol(format!("unsupported checksum {}", setup.negotiated.checksum)))?;
    let mut decoder = FlistDecoder::new(flist_options(setup, kind, inc_recurse));
    if let Some(tail) = meta_tail(setup)? {
        decoder.set_tail(Box::new(tail));
    }
    if inc_recurse {
        // Incremental lists number their entries from 1 (hard links name
        // their group's first entry by that number).
        decoder.start_list(1);
    }
    let (mut owners, map_notices) = OwnerMaps::parse(setup)?;
    let mut held = budget::reserve(0, "the file list")?;
    let mut entries = decode_entries(setup, &mut decoder, input, writer, &mut held, &mut owners)?;
    if protocol < 30 {
        relative::mark_content_dirs_before_30(&mut entries, opts.recursive, opts.relative);
    }
    let trailer = decoder.finish(input).map_err(list_error)?;
    let mut reader = ListReader::new(decoder, setup, owners, inc_recurse);
    let roles = reader.hlink_roles().to_vec();
    let mut first = reader.first(entries, trailer.io_error, held)?;
    if !inc_recurse {
        relative::check_parents_listed(&first.files)?;
        if opts.prune_empty_dirs {
            prune_empty_dirs(&mut first.files, &client_filters);
        }
    }
    Ok(ReceivedList {
        first,
        reader,
        inc_recurse,
        roles,
        io_error: trailer.io_error,
        client_filters,
        map_notices,
        kind,
    })
}

/// `-A` / `-X`: what reads each entry's ACLs and attribute set into the
/// session's store (both need protocol 30, as upstream says).
fn meta_tail(setup: &ReceiveSetup<'_>) -> Result<Option<MetaTail>, ReceiveError> {
    let (protocol, opts) = (setup.protocol, setup.options);
    if !opts.preserve_acls && opts.preserve_xattrs == 0 {
        return Ok(None);
    }
    for (on, name) in [(opts.preserve_acls, "--acls"), (opts.preserve_xattrs > 0, "--xattrs")] {
        if on && protocol < 30 {
            return Err(ReceiveError::Violation(format!(
                "{name} requires protocol 30 or higher (negotiated {protocol}).\n"
            )));
        }
    }
    let xattrs = (opts.preserve_xattrs > 0).then(|| XattrWire {
        level: opts.preserve_xattrs,
        fake_super: setup.fake_super,
        privileged: setup.may_chown && !setup.fake_super,
        sum_len: ChecksumKind::implied(protocol).digest_len(),
    });
    Ok(Some(MetaTail {
        store: Arc::clone(&setup.meta),
        acls: opts.preserve_acls,
        xattrs,
    }))
}

/// Upstream's `receiver_wants_list`: the client sends its filter rules
/// only when we will delete or prune.
fn receiver_wants_filters(o: &TransferOptions, protocol: u32) -> bool {
    o.prune_empty_dirs || (o.delete_mode && (!o.delete_excluded || protocol >= 29))
}

/// The client's rules, read for the receiving side after the daemon's own
/// `-M` rules: what they protect is never deleted.
fn read_client_filters<R: Read>(setup: &ReceiveSetup<'_>, input: &mut DemuxReader<R>) -> Result<FilterList, ReceiveError> {
    let (protocol, opts) = (setup.protocol, setup.options);
    let mut ours = FilterList {
        receiver_side: true,
        delete_excluded: opts.delete_excluded,
        ..FilterList::default()
    };
    for rule in setup.server_rules {
        ours.add_wire_rule(rule, protocol).map_err(ReceiveError::Filter)?;
    }
    if !receiver_wants_filters(opts, protocol) {
        return Ok(ours);
    }
    FilterList::receive_into(ours, input, protocol).map_err(|e| match e {
        FilterError::Io(e) => ReceiveError::Io(e),
        FilterError::OverBudget(e) => ReceiveError::OutOfMemory(e),
        other => ReceiveError::Filter(other),
    })
}

/// How the client's list is decoded: in parts with incremental recursion,
/// absolute names only with `-R`, entries for missing arguments with
/// `--delete-missing-args`.
fn flist_options(setup: &ReceiveSetup<'_>, kind: ChecksumKind, inc_recurse: bool) -> FlistOptions {
    let opts = setup.options;
    FlistOptions {
        inc_recurse,
        allow_absolute: opts.relative,
        missing_entries: opts.missing_args == MissingArgs::Delete,
        preserve_acls: opts.preserve_acls,
        ..setup.module.flist_options(kind)
    }
}

/// Every entry of the client's list, each charged to the session's
/// budget. A list in the module goes to the client while its file list,
/// built from it, comes back: both at once, or big lists deadlock.
fn decode_entries<R: Read, W: Write + Send>(
    setup: &ReceiveSetup<'_>,
    decoder: &mut FlistDecoder,
    input: &mut DemuxReader<R>,
    writer: &mut W,
    held: &mut Reservation,
    owners: &mut OwnerMaps,
) -> Result<Vec<FileEntry>, ReceiveError> {
    let (protocol, from0) = (setup.protocol, setup.options.from0);
    let mut entries = Vec::new();
    std::thread::scope(|scope| -> Result<(), ReceiveError> {
        let forwarder = setup.files_from.map(|file| {
            let out = &mut *writer;
            scope.spawn(move || crate::transfer::filter::files_from::forward_to_client(file, from0, protocol, out))
        });
        let listed = (|| {
            while let Some(e) = decoder.next(input).map_err(list_error)? {
                // Kept twice: as received and sorted.
                held.grow(2 * e.memory_cost(), "the file list")?;
                entries.push(e);
                owners.screen(decoder.trailer());
            }
            Ok(())
        })();
        if let Some(forwarder) = forwarder {
            let sent = forwarder
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("files-from forwarding panicked")));
            // A broken list is the error to report; else a failed forward.
            if listed.is_ok() {
                sent?;
            }
        }
        listed
    })?;
    Ok(entries)
}

/// Step 2: the destination and the places a push writes, checked, and
/// the state both threads share; the client hears the notices.
pub(crate) fn prepare<'a, W: Write>(
    setup: &'a ReceiveSetup<'a>,
    list: ReceivedList,
    writer: W,
) -> Result<(Shared<'a, W>, ListReader), ReceiveError> {
    let opts = setup.options;
    let root = match setup.opened_root {
        Some(root) => root.try_clone()?,
        None => ModuleRoot::open(&setup.module_root)?.with_insecure_links(setup.insecure_links),
    }
    .for_dry_run(opts.dry_run)
    .with_noatime(setup.open_noatime);
    let files = &list.first.files;
    let dest = dest::resolve(&root, setup, files)?;
    let hard_links = if opts.preserve_hard_links && !list.inc_recurse {
        let is_file_here = |i: usize| root.lstat(&dest.path_of(&files[i].entry.name)).is_ok_and(|m| m.is_file());
        hard_link_followers(files, &list.roles, is_file_here)
    } else {
        Vec::new()
    };
    let backups = backup::Backups::new(opts, &dest.dir);
    let alt_dests = alt_dest::AltDests::new(opts, &dest.dir);
    let staging = staging::Staging::new(opts, &dest.dir, &setup.module_root, setup.temp_dir);
    check_client_dirs(setup, backups.as_ref(), alt_dests.as_ref(), &staging)?;
    match staging.check_temp_dir(&root) {
        Ok(()) => {}
        Err((message, true)) => return Err(ReceiveError::Usage(message)),
        Err((message, false)) => return Err(ReceiveError::FileIo(message)),
    }
    let compression = match &setup.negotiated.compression {
        Some(name) => Compression::from_negotiated(Some(name), opts.compress_level)
            .ok_or_else(|| ReceiveError::Protocol(format!("unsupported compression {name}")))?,
        None => Compression::None,
    };
    let lists = FileLists::new(list.inc_recurse);
    lists.add(Arc::new(list.first));
    let shared = Shared {
        out: Mutex::new(MuxOut::new(writer)),
        setup,
        root,
        lists,
        dest,
        params: ChecksumParams {
            kind: list.kind,
            seed: setup.negotiated.seed,
            proper_seed_order: setup.has_compat(compat::CHKSUM_SEED_FIX),
        },
        compression,
        client_filters: list.client_filters,
        sender_io_error: list.io_error,
        hard_links,
        backups,
        staging,
        alt_dests,
    };
    announce(&shared, &list.map_notices)?;
    Ok((shared, list.reader))
}

/// Upstream's check: no directory the client names for its own use may
/// be one the module's filters exclude (however `..` reached it).
fn check_client_dirs(
    setup: &ReceiveSetup<'_>,
    backups: Option<&backup::Backups>,
    alt_dests: Option<&alt_dest::AltDests>,
    staging: &staging::Staging,
) -> Result<(), ReceiveError> {
    let excluded = |dir: &Path| setup.daemon_filters.excludes(dir.as_os_str().as_bytes(), true);
    let (at_parse, after) = staging.client_dirs(setup.options);
    if backups.and_then(|b| b.client_dir()).into_iter().chain(at_parse).any(excluded) {
        return Err(ReceiveError::OptionsRejected { at_parse: true });
    }
    let alt = alt_dests.map(|a| a.dirs()).unwrap_or_default();
    if after.into_iter().chain(alt.iter().map(PathBuf::as_path)).any(excluded) {
        return Err(ReceiveError::OptionsRejected { at_parse: false });
    }
    Ok(())
}

/// What the client hears before the transfer: the maps' notices, a
/// created destination, `--*-dest` warnings.
fn announce<W: Write>(shared: &Shared<'_, W>, map_notices: &[String]) -> Result<(), ReceiveError> {
    let setup = shared.setup;
    for notice in map_notices {
        shared.message(MsgTag::Error, notice)?;
    }
    if let Some(msg) = shared.dest.created_message() {
        shared.info(msg)?;
    }
    if let Some(alt) = &shared.alt_dests {
        // Upstream's FWARNING, which goes out as MSG_INFO below protocol 30.
        let tag = if setup.protocol >= 30 { MsgTag::Warning } else { MsgTag::Info };
        for text in alt.warnings(setup.options, &shared.root, &setup.module_root) {
            shared.message(tag, &text)?;
        }
    }
    Ok(())
}

/// Step 3: the generator on its own thread (with the session's budget),
/// the receiver on this one; the generator's failure is the cause when
/// both stop.
pub(crate) fn run_threads<R: Read, W: Write + Send>(
    shared: &Shared<'_, W>,
    input: &mut DemuxReader<R>,
    reader: &mut ListReader,
    stop_reading: Option<&(dyn Fn() + Send + Sync)>,
) -> Result<ReceiveStats, ReceiveError> {
    let (to_gen, from_recv) = mpsc::channel();
    // Taken now: a client may release it before the generator starts.
    let first = shared.lists.first().ok_or_else(|| ReceiveError::Protocol("no file list".into()))?;
    let stats = std::thread::scope(|scope| -> Result<ReceiveStats, ReceiveError> {
        let session_budget = budget::current();
        let session_log = oxrsyncd_shared::logging::this_threads_route();
        let session_context = oxrsyncd_shared::logging::this_threads_context();
        let generator = std::thread::Builder::new().name("generator".into()).spawn_scoped(scope, move || {
            budget::install(session_budget);
            oxrsyncd_shared::logging::route_this_thread(session_log);
            oxrsyncd_shared::logging::set_this_threads_context(session_context);
            let generated = generator::run(shared, first, from_recv);
            if generated.is_err() {
                if let Some(stop) = stop_reading {
                    stop();
                }
            }
            generated
        })?;
        let received = receiver::run(shared, input, reader, &to_gen);
        if received.is_err() {
            let _ = to_gen.send(ToGenerator::Abort);
        }
        let generated = generator
            .join()
            .map_err(|_| ReceiveError::Protocol("the generator thread panicked".into()))?;
        let gen_io_error = generated?;
        let mut stats = received?;
        stats.io_error |= gen_io_error | shared.sender_io_error;
        Ok(stats)
    })?;
    Ok(stats)
}
