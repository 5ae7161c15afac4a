//! The sender's request loop: each index the client's generator sends is
//! served in turn (a phase end, deletion stats echoed, an item echoed
//! back, or a file's delta against the client's block sums), with
//! incremental recursion's next lists kept ahead and confirmed sources
//! removed on the way.

use std::collections::HashSet;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use oxrsyncd_protocol::item::{self, basis, write_ndx_and_attrs, ItemAttrs};
use oxrsyncd_protocol::message::{self, cat, fname_in, syserr};
use oxrsyncd_protocol::mux::{DemuxReader, MsgTag, MuxOut};
use oxrsyncd_protocol::ndx::{NdxCodec, NDX_DEL_STATS, NDX_DONE};
use oxrsyncd_protocol::setup::compat;
use oxrsyncd_protocol::wire::{read_varint, write_varint};
use oxrsyncd_protocol::IoError;

use crate::transfer::delta::{self, ChecksumParams, SearchMode, TokenWriter};
use crate::transfer::flist::FileEntry;
use crate::transfer::fs::module_root::ModuleRoot;
use crate::transfer::limits::io_timeout::KeepaliveGate;
use crate::transfer::log_format::Transferred;
use crate::transfer::options::client::TransferOptions;
use crate::transfer::send::incremental::{Item, ListSender, MIN_FILECNT_LOOKAHEAD};
use crate::transfer::send::sender::setup::{SenderError, SenderSetup, SenderStats};

/// What serving one index did to the loop.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Served {
    /// Go on reading requests.
    More,
    /// The last phase ended: the transfer is over.
    LastPhaseDone,
}

/// The sender between its first list and its goodbye: the lists still
/// being sent, the codecs, the phase, and what it counted.
pub(crate) struct Sender<'a> {
    /// The session's setup.
    pub(crate) setup: &'a SenderSetup<'a>,
    /// The module's root: every file is read through it.
    pub(crate) root: &'a ModuleRoot,
    /// The file lists, sent and to come.
    pub(crate) lists: ListSender<'a>,
    /// Checksum and seed for the block sums and whole-file sums.
    params: ChecksumParams,
    /// The token stream (one per session: compressed streams run on).
    tokens: TokenWriter,
    /// Index decoding state of the client's requests.
    pub(crate) ndx_in: NdxCodec,
    /// Index encoding state of our output.
    pub(crate) ndx_out: NdxCodec,
    /// 0: first pass, 1: redo, 2: the end.
    phase: u32,
    /// The last phase there is (1 below protocol 29).
    max_phase: u32,
    /// Indexes sent once (kept only when a redo must send differently:
    /// upstream's FLAG_FILE_SENT).
    sent_once: HashSet<i32>,
    /// The list's I/O-error bits when the first list went out: any later
    /// change is reported (MSG_IO_ERROR) at the end.
    pub(crate) io_error_before: i32,
    /// Upstream's want_xattr_optim: from protocol 31 a client that did not
    /// say 'x' sends no request for an item whose basis is a local copy.
    xattr_optim: bool,
    /// CF_INPLACE_PARTIAL_DIR: a partial-dir basis is updated in place.
    inplace_partial: bool,
    /// The client's `-v`, as the module lets it count.
    pub(crate) verbosity: i32,
    /// When the file list started (its time goes into the stats).
    pub(crate) flist_start: Instant,
    /// What the sender did.
    pub(crate) stats: SenderStats,
}

impl<'a> Sender<'a> {
    /// The sender once the first list is out.
    pub(crate) fn new(
        setup: &'a SenderSetup<'a>,
        root: &'a ModuleRoot,
        lists: ListSender<'a>,
        params: ChecksumParams,
        tokens: TokenWriter,
        ndx_out: NdxCodec,
        flist_start: Instant,
    ) -> Self {
        let protocol = setup.protocol;
        let io_error_before = lists.io_error;
        Sender {
            setup,
            root,
            lists,
            params,
            tokens,
            ndx_in: NdxCodec::new(protocol),
            ndx_out,
            phase: 0,
            max_phase: if protocol >= 29 { 2 } else { 1 },
            sent_once: HashSet::new(),
            io_error_before,
            xattr_optim: protocol >= 31 && !setup.has_compat(compat::AVOID_XATTR_OPTIM),
            inplace_partial: setup.has_compat(compat::INPLACE_PARTIAL_DIR),
            verbosity: setup.verbosity(),
            flist_start,
            stats: SenderStats::default(),
        }
    }

    /// Serve requests until the last phase ends. `gate` lets keep-alives
    /// out only while we wait on the client.
    pub(crate) fn serve<R: Read, W: Write>(
        &mut self,
        input: &mut DemuxReader<R>,
        out: &mut MuxOut<W>,
        gate: &KeepaliveGate,
    ) -> Result<(), SenderError> {
        loop {
            if self.lists.inc_recurse() {
                self.lists.send_extra(MIN_FILECNT_LOOKAHEAD, out, &mut self.ndx_out)?;
            }
            self.lists.flush(out)?;
            // Whatever we owe the client goes out before we wait on it
            // (upstream flushes before every blocking read too), or both
            // sides would wait. The rest of a data frame already on its way
            // is no wait: many small files then share one frame and one
            // send(2), as with upstream.
            if !input.frame_data_pending() {
                out.flush()?;
            }
            gate.open();
            let ndx = self.ndx_in.read(input)?;
            gate.close();
            self.remove_confirmed(input, out)?;
            if self.serve_one(ndx, input, out)? == Served::LastPhaseDone {
                return Ok(());
            }
        }
    }

    /// `--remove-source-files`: act on the client's MSG_SUCCESS so far.
    pub(crate) fn remove_confirmed<R: Read, W: Write>(
        &mut self,
        input: &mut DemuxReader<R>,
        out: &mut MuxOut<W>,
    ) -> Result<(), SenderError> {
        if !input.successes.is_empty() {
            let confirmed = std::mem::take(&mut input.successes);
            crate::transfer::send::remove_source::remove_confirmed(
                self.root,
                &self.lists.lists,
                confirmed,
                self.setup.options,
                self.verbosity,
                out,
            )?;
        }
        Ok(())
    }

    /// Serve one index the client sent (upstream's `send_files` loop
    /// body): a phase end, deletion stats, or an item.
    pub(crate) fn serve_one<R: Read, W: Write>(
        &mut self,
        ndx: i32,
        input: &mut DemuxReader<R>,
        out: &mut MuxOut<W>,
    ) -> Result<Served, SenderError> {
        let protocol = self.setup.protocol;
        if ndx == NDX_DONE {
            // With incremental recursion an NDX_DONE first releases the
            // oldest list; only the one that releases the last ends phase 0.
            if self.lists.lists.release_first() {
                self.ndx_out.write(out, NDX_DONE)?;
                return Ok(Served::More);
            }
            self.phase += 1;
            if self.phase > self.max_phase {
                return Ok(Served::LastPhaseDone);
            }
            self.ndx_out.write(out, NDX_DONE)?;
            return Ok(Served::More);
        }
        if ndx == NDX_DEL_STATS && protocol >= 30 {
            self.ndx_out.write(out, NDX_DEL_STATS)?;
            for _ in 0..5 {
                let v = read_varint(input)?;
                write_varint(out, v)?;
            }
            return Ok(Served::More);
        }
        if ndx < 0 {
            return Err(SenderError::Protocol(format!(
                "Invalid file index: {ndx} ({NDX_DONE} - {})",
                self.lists.lists.last_ndx()
            )));
        }
        let attrs = ItemAttrs::read(input, protocol)?;
        self.serve_item(ndx, attrs, input, out)
    }

    /// One item the client's generator sent: echoed back, or its data sent.
    fn serve_item<R: Read, W: Write>(
        &mut self,
        ndx: i32,
        attrs: ItemAttrs,
        input: &mut DemuxReader<R>,
        out: &mut MuxOut<W>,
    ) -> Result<Served, SenderError> {
        let (protocol, opts) = (self.setup.protocol, self.setup.options);
        let iflags = attrs.iflags;
        let found = match self.lists.lists.find(ndx) {
            Ok(found) => found,
            // Protocol 29 keep-alive: the list's length, "new", nothing else.
            Err(_) if protocol < 30 && i64::from(ndx) == self.lists.lists.last_ndx() + 1 && iflags == item::IS_NEW => {
                return Ok(Served::More)
            }
            Err(e) => return Err(SenderError::Protocol(e)),
        };
        let xattr_reply = self.read_xattr_request(&found, iflags, input)?;
        if iflags & item::TRANSFER != 0 && !matches!(&found, Item::File { entry, .. } if entry.is_reg()) {
            return Err(SenderError::Protocol(format!(
                "received request to transfer non-regular file: {ndx} [sender]"
            )));
        }
        if self.lists.inc_recurse() {
            self.lists.send_extra(MIN_FILECNT_LOOKAHEAD, out, &mut self.ndx_out)?;
            self.lists.flush(out)?;
        }
        if iflags & item::TRANSFER == 0 {
            self.echo(ndx, &attrs, out)?;
            self.send_xattr_reply(xattr_reply, out)?;
            return Ok(Served::More);
        }
        let Item::File { entry, local } = found else {
            unreachable!("checked above: a transfer names a regular file");
        };
        if self.phase == 2 {
            return Err(SenderError::Protocol("got transfer request in phase 2 [sender]".into()));
        }
        if opts.dry_run {
            self.echo(ndx, &attrs, out)?;
            return Ok(Served::More);
        }
        self.send_file(ndx, &attrs, &entry, &local, xattr_reply, input, out)?;
        Ok(Served::More)
    }

    /// Our echo of an item: its index and attributes as the client sent them.
    fn echo<W: Write>(&mut self, ndx: i32, attrs: &ItemAttrs, out: &mut MuxOut<W>) -> io::Result<()> {
        write_ndx_and_attrs(
            out,
            &mut self.ndx_out,
            ndx,
            attrs.iflags,
            attrs.basis,
            attrs.xname.as_deref(),
            self.setup.protocol,
        )
    }

    /// -X: the client's generator asks for the long values it lacks right
    /// after the item's flags; they go after our echo of them. Returns
    /// the item's attribute set with its path and name, when asked.
    fn read_xattr_request<R: Read>(
        &mut self,
        found: &Item,
        iflags: u16,
        input: &mut DemuxReader<R>,
    ) -> Result<Option<(u32, (PathBuf, String))>, SenderError> {
        let both = item::XNAME_FOLLOWS | item::LOCAL_CHANGE;
        let asked = iflags & item::REPORT_XATTR != 0 && !self.setup.options.dry_run && !(self.xattr_optim && iflags & both == both);
        let Some(xattrs) = self.lists.xattrs.as_mut().filter(|_| asked) else {
            return Ok(None);
        };
        let (set, shown) = match found {
            Item::File { entry, local } => (
                entry.xattr_set,
                Some((local.clone(), String::from_utf8_lossy(&entry.name).into_owned())),
            ),
            Item::ParentDir(Some(dir)) => (dir.xattr_set, Some((dir.local.clone(), dir.name.clone()))),
            Item::ParentDir(None) => (None, None),
        };
        let name = shown.as_ref().map_or("", |s| s.1.as_str());
        xattrs.read_request(set, input, name).map_err(|e| match e {
            crate::transfer::send::xattrs::XattrError::Io(e) => SenderError::Io(e),
            other => SenderError::Protocol(other.to_string()),
        })?;
        Ok(set.zip(shown))
    }

    /// A file's data: the client's block sums in, our delta (or an append)
    /// and the whole-file sum out.
    #[allow(clippy::too_many_arguments)]
    fn send_file<R: Read, W: Write>(
        &mut self,
        ndx: i32,
        attrs: &ItemAttrs,
        entry: &FileEntry,
        local: &Path,
        xattr_reply: Option<(u32, (PathBuf, String))>,
        input: &mut DemuxReader<R>,
        out: &mut MuxOut<W>,
    ) -> Result<(), SenderError> {
        let (setup, protocol, opts) = (self.setup, self.setup.protocol, self.setup.options);
        // Upstream's FLAG_FILE_SENT: the redo pass sends normally.
        // Upstream's remember_initial_stats: `%b`/`%c` count from here.
        let (read_before, written_before) = (input.data_read, out.data_written);
        let first_pass = !(opts.append_mode > 0 || opts.make_backups) || self.sent_once.insert(ndx);
        let appending = opts.append_mode > 0 && first_pass;
        let head = delta::read_sum_head(input, protocol, self.params.kind.digest_len())?;
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
            delta::read_block_sums(input, head)?
        };
        // How messages name the file (entries' paths are module-relative);
        // made only for a message.
        let shown = || fname_in(message::shown(&entry.name, local.as_os_str().as_bytes()), setup.module_name);
        // A followed link (-L, or --copy-unsafe-links on an unsafe one) is
        // listed as its target, and read as it.
        let follow = opts.copy_links || opts.copy_unsafe_links;
        let (mut file, meta) = match self.root.open_read_following(local, follow) {
            Ok(opened) => opened,
            Err(e) => {
                let text = if e.kind() == io::ErrorKind::NotFound {
                    self.lists.io_error |= IoError::Vanished.bit();
                    cat(&[b"file has vanished: ", &shown(), b"\n"])
                } else {
                    self.lists.io_error |= IoError::General.bit();
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
                return Ok(());
            }
        };
        let len = meta.len();
        if appending && len < entry.size {
            out.message(MsgTag::Warning, &cat(&[b"skipped diminished file: ", &shown(), b"\n"]))?;
            if protocol >= 30 {
                out.message(MsgTag::NoSend, &ndx.to_le_bytes())?;
            }
            return Ok(());
        }
        self.echo(ndx, attrs, out)?;
        self.send_xattr_reply(xattr_reply, out)?;
        delta::write_sum_head(out, &sums.head, protocol)?;
        // The delta window reads in large chunks itself, and an append in
        // CHUNK_SIZE pieces: no second buffer (and copy) in between.
        let reader = &mut file;
        let outcome = if appending {
            // Below protocol 30 every append is verified (upstream's compat rule).
            let verify = opts.append_mode == 2 || protocol < 30;
            let sent = delta::append::send_file_append(reader, len, sums.head.file_len(), verify, &self.params, &mut self.tokens, out)?;
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
                updating_basis: updating_basis(opts, attrs.basis, self.inplace_partial, protocol, first_pass),
            };
            delta::send_file_delta_with(reader, len, &sums, &self.params, mode, &mut self.tokens, out)?
        };
        out.write_all(&outcome.file_sum)?;
        if let Some(e) = outcome.read_error {
            // Upstream sends zeros and a wrong checksum (the client redoes
            // the file) and reports the read error.
            self.lists.io_error |= IoError::General.bit();
            out.message(MsgTag::ErrorXfer, &syserr("sender", &cat(&[b"read errors mapping ", &shown()]), &e))?;
        }
        if let Some(log) = &setup.transfer_log {
            let transferred = Transferred {
                operation: "send",
                entry,
                path: local,
                length: len,
                bytes: out.data_written - written_before,
                checksum_bytes: input.data_read - read_before,
                file_sum: &outcome.file_sum,
                iflags: attrs.iflags,
            };
            log.file(setup.module, &transferred);
        }
        let stats = &mut self.stats;
        stats.files_sent += 1;
        crate::telemetry::meter::file_done();
        stats.literal_bytes += outcome.stats.literal_bytes;
        stats.matched_bytes += outcome.stats.matched_bytes;
        stats.matched_blocks += outcome.stats.matched_blocks;
        stats.hash_hits += outcome.stats.hash_hits;
        stats.false_alarms += outcome.stats.false_alarms;
        Ok(())
    }

    /// -X: the values the client asked for with an item, after our echo of
    /// its flags (upstream's `send_xattr_request` in `write_ndx_and_attrs`).
    /// `reply`: the item's attribute set, its path and its name.
    fn send_xattr_reply<W: Write>(&mut self, reply: Option<(u32, (PathBuf, String))>, out: &mut MuxOut<W>) -> io::Result<()> {
        let (Some((set, (local, name))), Some(xattrs)) = (reply, self.lists.xattrs.as_mut()) else {
            return Ok(());
        };
        let failed = xattrs.send_requested(set, self.root, &local, out, &name)?;
        for text in failed {
            self.lists.io_error |= IoError::General.bit();
            out.message(MsgTag::ErrorXfer, text.as_bytes())?;
        }
        Ok(())
    }
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
