//! The sender's first step: what it needs from the session
//! ([`SenderSetup`]), and what it builds before the first file list goes
//! out: the client's filter rules, the module opened as a root, the
//! walker, the checksum parameters and the list sender with its ACL and
//! xattr parts, and the paths to list.

use std::borrow::Cow;
use std::io::{self, Read};
use std::ops::Deref;
use std::os::unix::ffi::OsStrExt;

use bstr::ByteSlice;
use oxrsyncd_protocol::message::{full_fname, rsyserr};
use oxrsyncd_protocol::mux::{Counted, DemuxReader, SuccessCharge};
use oxrsyncd_protocol::setup::compat;

use crate::transfer::context::ModuleContext;
use crate::transfer::delta::{self, ChecksumKind, ChecksumParams};
use crate::transfer::filter::rules::{FilterError, FilterList};
use crate::transfer::flist::{FlistEncoder, FlistOptions};
use crate::transfer::fs::module_root::ModuleRoot;
use crate::transfer::limits::io_timeout::{IdlePolicy, IdleReader};
use crate::transfer::send::acls::AclSender;
use crate::transfer::send::incremental::ListSender;
use crate::transfer::send::walk::walker::Walker;
use crate::transfer::send::xattrs::XattrSender;

/// What the sender needs to run: the session's [`ModuleContext`] and the
/// settings only a sender has.
pub(crate) struct SenderSetup<'a> {
    /// The module and the session's agreements.
    pub module: &'a ModuleContext<'a>,
    /// `outgoing chmod` rules.
    pub outgoing_chmod: Option<&'a crate::transfer::options::chmod::ChmodRules>,
    /// `ignore nonreadable`.
    pub ignore_nonreadable: bool,
    /// `transfer logging`: the `log format` and the session's names for it.
    pub transfer_log: Option<crate::transfer::log_format::TransferLog<'a>>,
    /// The module's `dont compress` names every file (`*`): a deflate
    /// stream runs at level 0, as upstream's.
    pub dont_compress_all: bool,
}

/// A sender's setup reads as its module context too (`setup.options`,
/// `setup.protocol`): the context is what the setup extends.
impl<'a> Deref for SenderSetup<'a> {
    type Target = ModuleContext<'a>;
    fn deref(&self) -> &ModuleContext<'a> {
        self.module
    }
}

/// How a pull ended (for the daemon log and the exit status).
#[derive(Debug, Default)]
pub(crate) struct SenderStats {
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
pub(crate) enum SenderError {
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

/// The client's stream as the sender reads it: idle-timed, counted, and
/// demultiplexed. `--remove-source-files` needs the client's MSG_SUCCESS,
/// so its input is multiplexed at every protocol (upstream's
/// need_messages_from_generator).
pub(crate) fn open_input<R: Read>(setup: &SenderSetup<'_>, reader: R, idle: Option<IdlePolicy>) -> DemuxReader<Counted<IdleReader<R>>> {
    let opts = setup.options;
    let reader = IdleReader::new(reader, idle);
    DemuxReader::new(Counted::new(reader), setup.protocol >= 30 || opts.remove_source_files).keeping_successes(
        (opts.remove_source_files && !opts.dry_run).then_some(crate::transfer::limits::budget::charge_success as SuccessCharge),
    )
}

/// The client's filter rules, after the daemon's own `-M` rules (and
/// `-C`'s CVS list).
pub(crate) fn read_filters<R: Read>(setup: &SenderSetup<'_>, input: &mut DemuxReader<R>) -> Result<FilterList, SenderError> {
    let mut ours = FilterList::default();
    for rule in setup.server_rules {
        ours.add_wire_rule(rule, setup.protocol).map_err(SenderError::Filter)?;
    }
    let mut filters = FilterList::receive_into(ours, input, setup.protocol).map_err(|e| match e {
        FilterError::Io(e) => SenderError::Io(e),
        FilterError::OverBudget(e) => SenderError::OutOfMemory(e),
        other => SenderError::Filter(other),
    })?;
    if setup.options.cvs_exclude {
        filters.add_cvs_exclude();
    }
    Ok(filters)
}

/// The module as the root every access of the pull goes through (see
/// `fs/module_root.rs`); a kernel that cannot confine it refuses the pull.
pub(crate) fn open_root(setup: &SenderSetup<'_>) -> Result<ModuleRoot, SenderError> {
    let opened = match setup.opened_root {
        Some(root) => root.try_clone(),
        None => ModuleRoot::open(&setup.module_root).map(|root| root.with_insecure_links(setup.insecure_links)),
    }
    .map(|root| root.with_noatime(setup.open_noatime));
    opened.map_err(|e| {
        if e.kind() == io::ErrorKind::Unsupported {
            SenderError::Containment(e)
        } else {
            SenderError::Io(e)
        }
    })
}

/// The walker for this pull's lists.
pub(crate) fn walker<'w>(setup: &'w SenderSetup<'_>, root: &'w ModuleRoot, filters: &'w FilterList) -> Walker<'w> {
    Walker {
        root,
        module_name: setup.module_name,
        options: setup.options,
        filters,
        daemon_filters: setup.daemon_filters,
        munge_symlinks: setup.munge_symlinks,
        protocol: setup.protocol,
        outgoing_chmod: setup.outgoing_chmod,
        ignore_nonreadable: setup.ignore_nonreadable,
        merge: crate::transfer::filter::merge::MergeStack::new(filters.merges.clone(), setup.daemon_filters.clone()),
        fake_super: setup.fake_super,
        unconfined_links: setup.sanitize_paths
            && !setup.insecure_links
            && !setup.module_root.as_os_str().as_bytes().windows(3).any(|w| w == b"/./"),
    }
}

/// The negotiated transfer checksum with its seed.
pub(crate) fn checksum_params(setup: &SenderSetup<'_>) -> Result<ChecksumParams, SenderError> {
    let negotiated = setup.negotiated;
    let kind = ChecksumKind::from_negotiated(&negotiated.checksum, setup.protocol)
        .ok_or_else(|| SenderError::Protocol(format!("unsupported checksum {}", negotiated.checksum)))?;
    Ok(ChecksumParams {
        kind,
        seed: negotiated.seed,
        proper_seed_order: setup.has_compat(compat::CHKSUM_SEED_FIX),
    })
}

/// How this pull's file lists are encoded: incremental recursion as
/// agreed, the module's `numeric ids`, `-A`.
fn flist_options(setup: &SenderSetup<'_>, kind: ChecksumKind) -> FlistOptions {
    FlistOptions {
        local_numeric_ids: setup.module_numeric_ids,
        inc_recurse: setup.has_compat(compat::INC_RECURSE),
        preserve_acls: setup.options.preserve_acls,
        ..setup.module.flist_options(kind)
    }
}

/// The list sender, with `-X` and `-A` parts when asked for (both need
/// protocol 30).
pub(crate) fn list_sender<'w>(
    setup: &SenderSetup<'_>,
    walker: &'w Walker<'w>,
    params: ChecksumParams,
) -> Result<ListSender<'w>, SenderError> {
    let (opts, protocol) = (setup.options, setup.protocol);
    let kind = params.kind;
    let encoder = match setup.name_converter {
        Some(c) => FlistEncoder::with_namer(
            flist_options(setup, kind),
            Box::new(crate::name_converter::ConverterNamer(std::sync::Arc::clone(c))),
        ),
        None => FlistEncoder::new(flist_options(setup, kind)),
    };
    let mut lists = ListSender::new(walker, encoder, opts.ignore_errors, opts.always_checksum.then_some(kind));
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
        lists = lists.with_acls(AclSender::new(
            setup.fake_super,
            opts.preserve_devices,
            opts.preserve_specials,
            setup.has_compat(compat::INC_RECURSE),
        ));
    }
    Ok(lists)
}

/// The paths to list: the request's arguments, or the names of a
/// `--files-from` list.
pub(crate) fn requested_paths<'s, R: Read>(
    setup: &'s SenderSetup<'_>,
    root: &ModuleRoot,
    input: &mut DemuxReader<R>,
) -> Result<Cow<'s, [Vec<u8>]>, SenderError> {
    match &setup.options.files_from {
        None => Ok(Cow::Borrowed(setup.paths)),
        Some(source) => Ok(Cow::Owned(files_from_paths(setup, root, source, input, setup.protocol)?)),
    }
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

/// The module's `dont compress` or not, the negotiated compressor.
pub(crate) fn compression(setup: &SenderSetup<'_>) -> Result<delta::Compression, SenderError> {
    let compression = match &setup.negotiated.compression {
        Some(name) => delta::Compression::from_negotiated(Some(name), setup.options.compress_level)
            .ok_or_else(|| SenderError::Protocol(format!("unsupported compression {name}")))?,
        None => delta::Compression::None,
    };
    Ok(if setup.dont_compress_all {
        compression.at_skip_level()
    } else {
        compression
    })
}
