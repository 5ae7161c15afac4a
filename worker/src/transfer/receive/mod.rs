//! A push: the daemon as generator and receiver for a writable module
//! (upstream's `do_server_recv` / `do_recv`).
//!
//! The client's file list is received and sorted, the destination resolved
//! inside the module, then two threads run at once, as upstream's two
//! processes do, so neither direction of the connection can stall the
//! other:
//!
//! - the generator ([`generator`]) walks the list: creates directories and
//!   symlinks, decides which files need data and asks the client for them
//!   (with block sums of the file it already has, so only differences
//!   travel), and ends each phase;
//! - the receiver ([`receiver`], on the session thread) reads the client's
//!   data, rebuilds each file into a temporary file beside its target,
//!   verifies the whole-file checksum, and renames it into place; a file
//!   that fails verification is asked for again in the redo phase.
//!
//! Every change goes through [`ModuleRoot`]/[`ModuleDir`]: created as the
//! module's uid/gid, never outside the module, never through a symlink.
//!
//! [`ModuleRoot`]: crate::transfer::fs::module_root::ModuleRoot
//! [`ModuleDir`]: crate::transfer::fs::module_dir::ModuleDir

pub mod alt_dest;
pub mod attrs;
pub mod backup;
pub mod delete;
pub mod dest;
pub mod fuzzy;
pub mod generator;
pub mod output;
pub mod owners;
pub mod receiver;
pub mod relative;
pub mod requested;
pub mod staging;

use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Mutex};

use crate::identity::ModuleIdentity;
use crate::transfer::delta::{ChecksumKind, ChecksumParams, Compression};
use crate::transfer::filter::rules::{FilterError, FilterList};
use crate::transfer::flist::sort::{sort_and_mark_duplicates, SortedEntry};
use crate::transfer::flist::{FlistDecoder, FlistOptions};
use crate::transfer::fs::module_root::ModuleRoot;
use crate::transfer::limits::io_timeout::{IdlePolicy, IdleReader};
use crate::transfer::options::chmod::ChmodRules;
use crate::transfer::options::client::TransferOptions;
use oxrsyncd_protocol::mux::DemuxReader;
use oxrsyncd_protocol::mux::MsgTag;
use oxrsyncd_protocol::mux::MuxOut;
use oxrsyncd_protocol::setup::{compat, Negotiated};

/// Everything a push needs from the session.
pub struct ReceiveSetup<'a> {
    pub protocol: u32,
    /// Filter rules given to the daemon itself (`-M--exclude=...`), in
    /// the wire's short form: they protect what they exclude from
    /// deletion, before the client's rules.
    pub server_rules: &'a [String],
    /// The module's `max verbosity`: caps the client's `-v` for the lines
    /// the daemon itself writes (below protocol 29).
    pub max_verbosity: i32,
    pub negotiated: &'a Negotiated,
    pub options: &'a TransferOptions,
    pub module_name: &'a str,
    pub module_root: PathBuf,
    /// The module's own filter rules: what they exclude is never created,
    /// changed or deleted.
    pub daemon_filters: &'a FilterList,
    /// `incoming chmod` rules.
    pub incoming_chmod: Option<&'a ChmodRules>,
    /// `munge symlinks`: received link targets get upstream's prefix.
    pub munge_symlinks: bool,
    /// The module's identity, which the generator thread takes too.
    pub identity: Option<&'a ModuleIdentity>,
    /// Whether owners may be set (the session runs as root).
    pub may_chown: bool,
    /// `fake super = yes`: owners, special bits, devices and symlinks are
    /// kept in the `user.rsync.%stat` attribute (see `fake_super.rs`).
    pub fake_super: bool,
    /// The module directory opened while privileged (see `session`).
    pub opened_root: Option<&'a ModuleRoot>,
    /// Read basis files with O_NOATIME (the module's `open noatime`, else
    /// the client's `--open-noatime`).
    pub open_noatime: bool,
    /// The module's `numeric ids`: the client's owner names are not looked up.
    pub module_numeric_ids: bool,
    /// The module's `temp dir` (the operator's path), if set.
    pub temp_dir: Option<&'a std::path::Path>,
    /// The destination argument(s): `module/path`.
    pub paths: &'a [Vec<u8>],
    /// `--files-from=:path` on a push: the module's list file, opened when
    /// the options were read, forwarded to the client while it sends its
    /// file list (see `files_from::forward_to_client`).
    pub files_from: Option<&'a std::fs::File>,
}

/// What a push did.
#[derive(Debug, Default, Clone)]
pub struct ReceiveStats {
    pub files_received: u64,
    pub literal_bytes: u64,
    pub matched_bytes: u64,
    /// Upstream io_error bits (some files failed: exit 23).
    pub io_error: i32,
    pub total_read: u64,
}

/// Why a push failed.
#[derive(Debug, thiserror::Error)]
pub enum ReceiveError {
    #[error("connection: {0}")]
    Io(#[from] io::Error),
    #[error("{0}")]
    Filter(FilterError),
    #[error("{0}")]
    Protocol(String),
    /// A problem with the destination the client should see as is (exit 3).
    #[error("{0}")]
    Destination(String),
    /// The client's list names something outside the destination (exit 4).
    #[error("ABORTING due to unsafe pathname from sender: {0}")]
    UnsafeName(String),
    /// A directory the client named is one the module's filters exclude.
    /// Upstream refuses `--backup-dir` and `--temp-dir` while parsing the
    /// options (its daemon's words, exit 4), `--partial-dir` and the
    /// `--*-dest` directories once the destination is known (exit 1).
    #[error("{}Your options have been rejected by the server.", if *.at_parse { "rsync: " } else { "" })]
    OptionsRejected { at_parse: bool },
    /// An entry of the client's list lies in a directory the list does not
    /// have (upstream's generator check; exit 2).
    #[error("ABORTING due to invalid path from sender: {0}")]
    InvalidPath(String),
    /// Writing a file failed (disk full...): upstream's RERR_FILEIO (exit 11).
    #[error("{0}")]
    FileIo(String),
    /// The options cannot work here (a missing temp dir): RERR_SYNTAX (exit 1).
    #[error("{0}")]
    Usage(String),
    /// The client sent something this session never asked for or the
    /// module forbids (data for an index the generator did not request, a
    /// daemon-excluded or cleared entry): the text as is, RERR_PROTOCOL
    /// (exit 2), as upstream's receiver ends such a session.
    #[error("{0}")]
    Violation(String),
    /// The client's list would pass the session's memory budget
    /// (upstream's out-of-memory end, RERR_MALLOC, exit 22).
    #[error("{0}")]
    OutOfMemory(#[from] crate::transfer::limits::budget::OverBudget),
}

/// Messages from the receiver to the generator (upstream's pipe).
#[derive(Debug)]
pub enum ToGenerator {
    /// A file failed verification in phase 0: ask for it again.
    Redo(i32),
    /// The client ended a phase (the receiver read its NDX_DONE).
    PhaseDone,
    /// The receiver read everything the client sends before the goodbye.
    ReceiverDone,
    /// Protocol >= 31: the client answered our early goodbye.
    GoodbyeAnswered,
    /// The receiver stopped on an error: the generator stops too.
    Abort,
}

/// The state both threads share.
pub struct Shared<'a, W: Write> {
    /// Our multiplexed output; whole requests and messages are written
    /// under the lock.
    pub out: Mutex<MuxOut<W>>,
    pub setup: &'a ReceiveSetup<'a>,
    pub root: ModuleRoot,
    /// The sorted file list (indexes are positions).
    pub files: Vec<SortedEntry>,
    /// Where the list lands, module-relative ("" is the module root).
    pub dest: dest::Destination,
    pub params: ChecksumParams,
    pub compression: Compression,
    /// The client's rules for the receiving side (deletion protection).
    pub client_filters: FilterList,
    /// The sender reported an I/O error: deletions are skipped.
    pub sender_io_error: i32,
    /// `-H`: (follower, leader) indexes of the sorted list; followers are
    /// linked to their leader once it is in place.
    pub hard_links: Vec<(usize, usize)>,
    /// `-b`: where replaced and deleted files are kept.
    pub backups: Option<backup::Backups>,
    /// Temp dir and partial dir.
    pub staging: staging::Staging,
    /// `--compare-dest` / `--copy-dest` / `--link-dest`.
    pub alt_dests: Option<alt_dest::AltDests>,
    /// The files the generator asked for: the only data the receiver takes.
    pub requested: requested::Requested,
}

/// `-m` (upstream's receiver-side pass in `recv_file_list`): a directory
/// with no non-directory anywhere below it is dropped from the list, unless
/// it (or a directory below it) is excluded by the client's rules, which
/// keeps it; the transfer's top (`.`) always stays.
fn prune_empty_dirs(files: &mut [SortedEntry], client_filters: &FilterList) {
    use std::collections::HashSet;
    let mut keep: HashSet<Vec<u8>> = HashSet::new();
    let mark_parents = |name: &[u8], keep: &mut HashSet<Vec<u8>>| {
        let mut end = name.len();
        while let Some(slash) = name[..end].iter().rposition(|&b| b == b'/') {
            if !keep.insert(name[..slash].to_vec()) {
                break;
            }
            end = slash;
        }
    };
    for f in files.iter().filter(|f| f.active) {
        let e = &f.entry;
        if !e.is_dir() {
            mark_parents(&e.name, &mut keep);
        } else if client_filters.excludes(&e.name, true) {
            keep.insert(e.name.clone());
            mark_parents(&e.name, &mut keep);
        }
    }
    for f in files.iter_mut() {
        if f.active && f.entry.is_dir() && f.entry.name != b"." && !keep.contains(&f.entry.name) {
            f.active = false;
        }
    }
}

/// Upstream's `receiver_wants_list`: the client sends its filter rules
/// only when we will delete or prune.
fn receiver_wants_filters(o: &TransferOptions, protocol: u32) -> bool {
    o.prune_empty_dirs || (o.delete_mode && (!o.delete_excluded || protocol >= 29))
}

/// Run the push on this thread (the receiver) and a generator thread.
/// `stop_reading` wakes this thread from a read of the client's stream;
/// the generator calls it when it fails, since the client then never
/// sends what the receiver waits for.
pub fn run<R: Read, W: Write + Send>(
    setup: &ReceiveSetup<'_>,
    reader: R,
    writer: W,
    idle: Option<IdlePolicy>,
    stop_reading: Option<&(dyn Fn() + Send + Sync)>,
) -> Result<ReceiveStats, ReceiveError> {
    let protocol = setup.protocol;
    let opts = setup.options;
    let reader = IdleReader::new(reader, idle);
    let mut input = DemuxReader::new(reader, protocol >= 30);
    // The client's rules, read for the receiving side: what they protect
    // is never deleted.
    let mut ours = FilterList {
        receiver_side: true,
        delete_excluded: opts.delete_excluded,
        ..FilterList::default()
    };
    for rule in setup.server_rules {
        ours.add_wire_rule(rule, protocol).map_err(ReceiveError::Filter)?;
    }
    let client_filters = if receiver_wants_filters(opts, protocol) {
        FilterList::receive_into(ours, &mut input, protocol).map_err(|e| match e {
            FilterError::Io(e) => ReceiveError::Io(e),
            FilterError::OverBudget(e) => ReceiveError::OutOfMemory(e),
            other => ReceiveError::Filter(other),
        })?
    } else {
        ours
    };
    let kind = ChecksumKind::from_negotiated(&setup.negotiated.checksum, protocol)
        .ok_or_else(|| ReceiveError::Protocol(format!("unsupported checksum {}", setup.negotiated.checksum)))?;
    let flags = setup.negotiated.compat_flags;
    let mut decoder = FlistDecoder::new(FlistOptions {
        protocol,
        varint_flags: flags & compat::VARINT_FLIST_FLAGS != 0,
        id0_names: flags & compat::ID0_NAMES != 0,
        preserve_uid: opts.preserve_uid,
        preserve_gid: opts.preserve_gid,
        numeric_ids: opts.numeric_ids,
        preserve_links: opts.preserve_links,
        preserve_devices: opts.preserve_devices,
        preserve_specials: opts.preserve_specials,
        preserve_hard_links: opts.preserve_hard_links,
        checksum_len: opts.always_checksum.then(|| kind.digest_len()),
        safe_flist: opts.has_capability('f'),
        inc_recurse: false,
        allow_absolute: opts.relative,
        missing_entries: opts.missing_args == crate::transfer::options::client::MissingArgs::Delete,
        preserve_atimes: opts.preserve_atimes,
        ..FlistOptions::default()
    });
    let mut entries = Vec::new();
    let list_error = |e: crate::transfer::flist::error::FlistError| match e {
        crate::transfer::flist::error::FlistError::UnsafeName { name } => ReceiveError::UnsafeName(name),
        other => ReceiveError::Protocol(other.to_string()),
    };
    let mut writer = writer;
    std::thread::scope(|scope| -> Result<(), ReceiveError> {
        // A list in the module goes to the client while its file list,
        // built from it, comes back: both at once, or big lists deadlock.
        let forwarder = setup.files_from.map(|file| {
            let out = &mut writer;
            scope.spawn(move || crate::transfer::filter::files_from::forward_to_client(file, opts.from0, protocol, out))
        });
        let listed = (|| {
            while let Some(e) = decoder.next(&mut input).map_err(list_error)? {
                // Kept twice: as received and sorted.
                crate::transfer::limits::budget::charge(2 * e.memory_cost(), "the file list")?;
                entries.push(e);
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
    if protocol < 30 {
        relative::mark_content_dirs_before_30(&mut entries, opts.recursive, opts.relative);
    }
    let roles = decoder.hlink_roles().to_vec();
    let trailer = decoder.finish(&mut input).map_err(list_error)?;
    let mut map_notices = Vec::new();
    let mut parse_map = |text: Option<&String>, users: bool| -> Result<Option<owners::NameMap>, ReceiveError> {
        let Some(text) = text else { return Ok(None) };
        let (map, notices) = owners::NameMap::parse(text, users).map_err(|e| ReceiveError::Usage(format!("{e}\n")))?;
        map_notices.extend(notices);
        Ok(Some(map))
    };
    let usermap = parse_map(opts.usermap.as_ref(), true)?;
    let groupmap = parse_map(opts.groupmap.as_ref(), false)?;
    owners::Owners {
        uid_names: &trailer.uid_names,
        gid_names: &trailer.gid_names,
        usermap: usermap.as_ref(),
        groupmap: groupmap.as_ref(),
        by_name: !opts.numeric_ids && !setup.module_numeric_ids,
    }
    .apply(&mut entries);
    let mut files = sort_and_mark_duplicates(entries, protocol);
    relative::check_parents_listed(&files)?;
    if opts.prune_empty_dirs {
        prune_empty_dirs(&mut files, &client_filters);
    }
    let root = match setup.opened_root {
        Some(root) => root.try_clone()?,
        None => ModuleRoot::open(&setup.module_root)?,
    }
    .for_dry_run(opts.dry_run)
    .with_noatime(setup.open_noatime);
    let dest = dest::resolve(&root, setup, &files)?;
    let hard_links = if opts.preserve_hard_links {
        let is_file_here = |i: usize| root.lstat(&dest.path_of(&files[i].entry.name)).is_ok_and(|m| m.is_file());
        hard_link_followers(&files, &roles, is_file_here)
    } else {
        Vec::new()
    };
    let backups = backup::Backups::new(opts, &dest.dir);
    let alt_dests = alt_dest::AltDests::new(opts, &dest.dir);
    let staging = staging::Staging::new(opts, &dest.dir, &setup.module_root, setup.temp_dir);
    // Upstream's check: no directory the client names for its own use may
    // be one the module's filters exclude (however `..` reached it).
    let excluded = |dir: &Path| setup.daemon_filters.excludes(dir.as_os_str().as_bytes(), true);
    let (at_parse, after) = staging.client_dirs(opts);
    if backups
        .as_ref()
        .and_then(|b| b.client_dir())
        .into_iter()
        .chain(at_parse)
        .any(excluded)
    {
        return Err(ReceiveError::OptionsRejected { at_parse: true });
    }
    let alt = alt_dests.as_ref().map(|a| a.dirs()).unwrap_or_default();
    if after.into_iter().chain(alt.iter().map(PathBuf::as_path)).any(excluded) {
        return Err(ReceiveError::OptionsRejected { at_parse: false });
    }
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
    let files_len = files.len();
    let shared = Shared {
        out: Mutex::new(MuxOut::new(writer)),
        setup,
        root,
        files,
        dest,
        params: ChecksumParams {
            kind,
            seed: setup.negotiated.seed,
            proper_seed_order: flags & compat::CHKSUM_SEED_FIX != 0,
        },
        compression,
        client_filters,
        sender_io_error: trailer.io_error,
        hard_links,
        backups,
        staging,
        alt_dests,
        requested: requested::Requested::new(files_len),
    };
    for notice in &map_notices {
        shared.message(MsgTag::Error, notice)?;
    }
    if let Some(msg) = shared.dest.created_message() {
        shared.info(msg)?;
    }
    if let Some(alt) = &shared.alt_dests {
        // Upstream's FWARNING, which goes out as MSG_INFO below protocol 30.
        let tag = if protocol >= 30 { MsgTag::Warning } else { MsgTag::Info };
        for text in alt.warnings(opts, &shared.root, &setup.module_root) {
            shared.message(tag, &text)?;
        }
    }
    let (to_gen, from_recv) = mpsc::channel();
    let mut stats = std::thread::scope(|scope| -> Result<ReceiveStats, ReceiveError> {
        let budget = crate::transfer::limits::budget::current();
        let shared = &shared;
        let generator = std::thread::Builder::new().name("generator".into()).spawn_scoped(scope, move || {
            crate::transfer::limits::budget::install(budget);
            let generated = generator::run(shared, from_recv);
            if generated.is_err() {
                if let Some(stop) = stop_reading {
                    stop();
                }
            }
            generated
        })?;
        let received = receiver::run(&shared, &mut input, &to_gen);
        if received.is_err() {
            let _ = to_gen.send(ToGenerator::Abort);
        }
        let generated = generator
            .join()
            .map_err(|_| ReceiveError::Protocol("the generator thread panicked".into()))?;
        // The generator's failure is the cause when both stopped.
        let gen_io_error = generated?;
        let mut stats = received?;
        stats.io_error |= gen_io_error | trailer.io_error;
        Ok(stats)
    })?;
    stats.total_read = 0;
    Ok(stats)
}

/// `-H`: (follower, leader) pairs by sorted index. Groups are the
/// entries the list links together (from protocol 30 by naming the
/// group's first entry, before by a shared dev/ino). The leader, the one
/// transferred (or found up to date), is what upstream's generator
/// settles on going through a group in list order: the first that is
/// already a file here (`is_file_here`), else the last. The others are
/// linked to it afterwards in upstream's order: those after it in the
/// list, then those before it, nearest first.
fn hard_link_followers(
    files: &[SortedEntry],
    roles: &[crate::transfer::flist::HlinkRole],
    is_file_here: impl Fn(usize) -> bool,
) -> Vec<(usize, usize)> {
    use crate::transfer::flist::HlinkRole;
    use std::collections::HashMap;
    let by_origin: HashMap<usize, usize> = files.iter().enumerate().map(|(i, f)| (f.orig_index, i)).collect();
    /// What makes entries one group.
    #[derive(PartialEq, Eq, Hash)]
    enum Group {
        /// The group's first entry in the list as sent (protocol 30+).
        Named(usize),
        /// A shared device and inode (below protocol 30).
        DevIno(u64, u64),
    }
    let mut groups: HashMap<Group, Vec<usize>> = HashMap::new();
    for (i, f) in files.iter().enumerate() {
        if !f.active || !f.entry.is_reg() {
            continue;
        }
        let group = match roles.get(f.orig_index) {
            Some(HlinkRole::Follower(first)) => match by_origin.get(&(*first as usize)) {
                Some(&first) => Group::Named(first),
                None => continue,
            },
            Some(HlinkRole::Leader) => Group::Named(i),
            Some(HlinkRole::DevIno) => Group::DevIno(f.entry.dev, f.entry.ino),
            _ => continue,
        };
        groups.entry(group).or_default().push(i);
    }
    let mut groups: Vec<(usize, Vec<usize>)> = groups
        .into_values()
        .filter(|members| members.len() > 1)
        .map(|mut members| {
            members.sort_unstable();
            let at = members.iter().position(|&i| is_file_here(i)).unwrap_or(members.len() - 1);
            let leader = members[at];
            let followers: Vec<usize> = members[at + 1..].iter().chain(members[..at].iter().rev()).copied().collect();
            (leader, followers)
        })
        .collect();
    groups.sort_unstable_by_key(|(leader, _)| *leader);
    let mut out = Vec::new();
    for (leader, followers) in groups {
        out.extend(followers.iter().map(|&f| (f, leader)));
    }
    out
}

impl ReceiveSetup<'_> {
    /// The client's `-v` level as the module lets it count.
    pub fn verbosity(&self) -> i32 {
        i32::from(self.options.verbose).min(self.max_verbosity)
    }
}

impl<W: Write> Shared<'_, W> {
    /// What is at module-relative `rel` now, as the module sees it (with
    /// a `fake super` module's attribute folded in); None if nothing.
    pub fn look(&self, rel: &Path) -> Option<crate::transfer::fs::fake_super::Seen> {
        crate::transfer::fs::fake_super::Seen::look(&self.root, rel, self.setup.fake_super).ok()
    }

    /// `--remove-source-files`: tell the client that entry `ndx` is in
    /// place, so its sender may remove its copy (upstream's MSG_SUCCESS).
    /// `sent` says whether the entry's data travelled (or, for a symlink,
    /// it was made): the older `--remove-sent-files` confirms only those.
    /// Nothing in a dry run.
    pub fn confirm(&self, ndx: usize, sent: bool) -> io::Result<()> {
        let o = self.setup.options;
        if !o.remove_source_files || o.dry_run || (o.remove_sent_files_only && !sent) {
            return Ok(());
        }
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        out.message_ahead(oxrsyncd_protocol::mux::MsgTag::Success, &(ndx as i32).to_le_bytes())
    }

    /// Send a message for the user (MSG_INFO), flushed.
    pub fn info(&self, text: impl AsRef<[u8]>) -> io::Result<()> {
        self.message(oxrsyncd_protocol::mux::MsgTag::Info, text)
    }

    /// Send a message of `tag`, flushed.
    pub fn message(&self, tag: oxrsyncd_protocol::mux::MsgTag, text: impl AsRef<[u8]>) -> io::Result<()> {
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        out.message(tag, text.as_ref())?;
        out.flush()
    }
}
