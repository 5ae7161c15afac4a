//! The push's receiver (upstream's `recv_files` / `receive_data`), on the
//! session thread: for each file the client sends, rebuild it from the
//! literal data and the blocks of our copy into a temporary file beside
//! the target, check the whole-file checksum, set its attributes and
//! rename it into place. A file that fails the check is asked for again
//! (once); the target is never left half-written, and a temporary file is
//! removed whatever happens.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::Sender;
use std::sync::Arc;

use crate::transfer::delta::apply::{apply_tokens, verify_file_sum, ApplyStats};
use crate::transfer::delta::{apply_delta, read_sum_head, DeltaError, FileSum, SumHead, TokenReader};
use crate::transfer::flist::{FileEntry, SortedEntry};
use crate::transfer::fs::module_dir::ModuleDir;
use crate::transfer::log_format::Transferred;
use crate::transfer::receive::attrs;
use crate::transfer::receive::list_reader::ListReader;
use crate::transfer::receive::meta;
use crate::transfer::receive::output::{FileWriter, InPlace};
use crate::transfer::receive::setup::{ReceiveError, ReceiveStats, ToGenerator};
use crate::transfer::receive::shared::Shared;
use crate::transfer::receive::staging::Staging;
use oxrsyncd_protocol::item::{self, basis, ItemAttrs};
use oxrsyncd_protocol::message::{cat, fname_in, syserr};
use oxrsyncd_protocol::mux::DemuxReader;
use oxrsyncd_protocol::mux::MsgTag;
use oxrsyncd_protocol::ndx::{NdxCodec, NDX_DONE, NDX_FLIST_EOF, NDX_FLIST_OFFSET};
use oxrsyncd_protocol::IoError;

/// A temporary file that is removed unless it was renamed into place.
struct TempFile<'d> {
    dir: &'d ModuleDir,
    name: Option<OsString>,
}

impl Drop for TempFile<'_> {
    fn drop(&mut self) {
        if let Some(name) = self.name.take() {
            let _ = self.dir.unlink(&name);
        }
    }
}

/// Run the receiver until the client's last phase end (and, from protocol
/// 31, its answer to our goodbye). With incremental recursion it also
/// reads the lists that follow the first (handing each to the generator)
/// and frees each list as the client confirms its release.
pub(crate) fn run<R: Read, W: Write>(
    shared: &Shared<'_, W>,
    input: &mut DemuxReader<R>,
    lists: &mut ListReader,
    to_gen: &Sender<ToGenerator>,
) -> Result<ReceiveStats, ReceiveError> {
    let protocol = shared.setup.protocol;
    let inc_recurse = shared.lists.inc_recurse;
    let max_phase = if protocol >= 29 { 2 } else { 1 };
    let mut ndx_in = NdxCodec::new(protocol);
    let mut phase = 0;
    let mut stats = ReceiveStats::default();
    // --delay-updates: (index, target, partial-dir file) waiting for phase 2.
    let mut delayed: Vec<Delayed> = Vec::new();
    // Files asked for a second time: a second failure is final.
    let mut redone: HashSet<i32> = HashSet::new();
    // One token decoder for the whole session: compressed streams run on
    // across files, as the client's encoder does.
    let mut tokens = TokenReader::with_protocol(shared.compression, protocol).map_err(|e| ReceiveError::Protocol(e.to_string()))?;
    let tell = |m: ToGenerator| to_gen.send(m).map_err(|_| ReceiveError::Protocol("the generator stopped".into()));
    loop {
        let ndx = ndx_in.read(input)?;
        settle_no_sends(shared, input, &tell)?;
        if ndx == NDX_DONE {
            // With incremental recursion each list's release comes back
            // first; the one that frees the last list ends the phase.
            if inc_recurse && !shared.lists.is_empty() && shared.lists.release_first() > 0 {
                continue;
            }
            phase += 1;
            if phase == 2 {
                // --delay-updates: everything takes its name now.
                finish_delayed(shared, &mut delayed, &mut stats)?;
            }
            if phase > max_phase {
                tell(ToGenerator::ReceiverDone)?;
                break;
            }
            tell(ToGenerator::PhaseDone)?;
            continue;
        }
        if ndx < 0 {
            if inc_recurse && ndx == NDX_FLIST_EOF {
                tell(ToGenerator::ListsEnd)?;
                continue;
            }
            if inc_recurse && ndx <= NDX_FLIST_OFFSET {
                let list = lists.sublist(ndx, input, &shared.lists)?;
                shared.lists.add(Arc::clone(&list));
                tell(ToGenerator::NewList(list))?;
                continue;
            }
            return Err(invalid_index(shared, ndx));
        }
        let Some(list) = shared.lists.find(ndx) else {
            return Err(invalid_index(shared, ndx));
        };
        let ItemAttrs {
            iflags,
            basis: basis_type,
            xname,
        } = ItemAttrs::read(input, protocol)?;
        // -X: the long values the client sends with its echo, and the set
        // written when no data follows.
        stats.io_error |= meta::on_receive::after_item(shared, input, list.entry_or_parent(ndx as usize), iflags)?;
        let Some(f) = list.get(ndx as usize) else {
            // A list's parent directory (its gap index), which the client
            // echoes when it was itemized: it never carries data.
            if iflags & item::TRANSFER != 0 && !shared.setup.options.dry_run {
                return Err(ReceiveError::Protocol(format!("received data for non-regular file {ndx}")));
            }
            continue;
        };
        admissible(shared, f, ndx as usize)?;
        if iflags & item::TRANSFER == 0 || shared.setup.options.dry_run {
            // The client echoing an itemized entry back (for its log), or
            // a dry run's transfer, which carries no data: nothing to do.
            continue;
        }
        let e = &f.entry;
        if !e.is_reg() {
            return Err(ReceiveError::Protocol(format!("received data for non-regular file {ndx}")));
        }
        if protocol >= 29 && phase == 2 {
            return Err(ReceiveError::Violation("got transfer request in phase 2 [receiver]\n".into()));
        }
        if !list.take_requested(ndx as usize) {
            return Err(ReceiveError::Violation(format!(
                "ERROR: rejecting data for file index {ndx}, which was not requested [receiver]\n"
            )));
        }
        // Upstream's remember_initial_stats: `%b` counts from here.
        let read_before = input.data_read;
        let incoming = Incoming::read(shared, input, ndx as usize, e)?;
        let in_place = shared.setup.options.inplace || shared.setup.options.append_mode > 0;
        let outcome = if in_place {
            receive_in_place(shared, input, &mut tokens, incoming, redone.contains(&ndx))?
        } else {
            let basis = basis_path(shared, &incoming.rel, basis_type, xname.as_deref());
            receive_file(shared, input, &mut tokens, incoming, basis, &mut delayed)?
        };
        match outcome {
            Received::Done(applied) | Received::Delayed(applied) => {
                if let Some(log) = &shared.setup.transfer_log {
                    let transferred = Transferred {
                        operation: "recv",
                        entry: e,
                        // `%f` is the file's path in the module.
                        path: &shared.dest.path_of(&e.name),
                        length: e.size,
                        bytes: input.data_read - read_before,
                        checksum_bytes: 0,
                        file_sum: applied.file_sum.as_slice(),
                        iflags,
                    };
                    log.file(shared.setup.module, &transferred);
                }
                stats.files_received += 1;
                crate::telemetry::meter::file_done();
                stats.literal_bytes += applied.literal_bytes;
                stats.matched_bytes += applied.matched_bytes;
                if matches!(outcome, Received::Done(..)) {
                    shared.confirm(ndx as usize, true)?;
                }
            }
            Received::Failed if phase == 0 && redone.insert(ndx) => {
                tell(ToGenerator::Redo(ndx))?;
                continue;
            }
            Received::Failed => {
                stats.io_error |= IoError::General.bit();
                let text = cat(&[b"ERROR: ", &e.name, b" failed verification -- update discarded.\n"]);
                shared.message(MsgTag::ErrorXfer, text)?;
            }
            Received::Refused => stats.io_error |= IoError::General.bit(),
        }
        if inc_recurse {
            tell(ToGenerator::Finished(ndx))?;
        }
    }
    // Below protocol 29 there is no phase 2: delayed files go in now.
    finish_delayed(shared, &mut delayed, &mut stats)?;
    if protocol >= 31 {
        // Our goodbye went out early; the client answers it.
        if ndx_in.read(input)? != NDX_DONE {
            return Err(ReceiveError::Protocol("Invalid packet at end of run [receiver]".into()));
        }
        tell(ToGenerator::GoodbyeAnswered)?;
    }
    Ok(stats)
}

/// Upstream's words for an index that names nothing alive.
fn invalid_index<W: Write>(shared: &Shared<'_, W>, ndx: i32) -> ReceiveError {
    ReceiveError::Protocol(format!("Invalid file index: {ndx} ({NDX_DONE} - {})", shared.lists.last_ndx()))
}

/// Files the client's sender could not open after all (MSG_NO_SEND): a
/// requested one is done with, so its list can be released.
fn settle_no_sends<R: Read, W: Write>(
    shared: &Shared<'_, W>,
    input: &mut DemuxReader<R>,
    tell: &impl Fn(ToGenerator) -> Result<(), ReceiveError>,
) -> Result<(), ReceiveError> {
    for ndx in std::mem::take(&mut input.no_sends) {
        let asked = ndx >= 0 && shared.lists.find(ndx).is_some_and(|l| l.take_requested(ndx as usize));
        if asked && shared.lists.inc_recurse {
            tell(ToGenerator::Finished(ndx))?;
        }
    }
    Ok(())
}

/// Whatever the client says of entry `ndx`, it must be one the session
/// kept and the module's filters allow (upstream's checks in `recv_files`,
/// with its words): a duplicate cleared from the list or a daemon-excluded
/// name ends the session.
fn admissible<W: Write>(shared: &Shared<'_, W>, f: &SortedEntry, ndx: usize) -> Result<(), ReceiveError> {
    if !f.active {
        return Err(ReceiveError::Violation(format!(
            "rsync: refusing transfer of cleared file index {ndx}\n"
        )));
    }
    let rel = shared.dest.path_of(&f.entry.name);
    let name = rel.as_os_str().as_bytes();
    if !name.is_empty() && name != b"." && shared.setup.daemon_filters.excludes(name, f.entry.is_dir()) {
        return Err(ReceiveError::Violation(
            String::from_utf8_lossy(&cat(&[
                b"ERROR: rejecting file transfer request for daemon excluded file: ",
                &f.entry.name,
                b"\n",
            ]))
            .into_owned(),
        ));
    }
    Ok(())
}

/// A file waiting in the partial dir for phase 2 (`--delay-updates`):
/// its index, its target and where it waits.
type Delayed = (usize, PathBuf, PathBuf);

/// How one file went.
enum Received {
    /// In place: what it was made of, and its sum.
    Done(ApplyStats),
    /// Received, waiting in the partial dir (`--delay-updates`).
    Delayed(ApplyStats),
    /// The checksum did not match (the data was consumed).
    Failed,
    /// We could not write it (reported; the data was consumed).
    Refused,
}

/// What both ways of receiving a file start from.
struct Incoming<'s> {
    /// The entry's index in the sorted list.
    ndx: usize,
    entry: &'s FileEntry,
    /// The sum head the client echoes before the file's tokens.
    head: SumHead,
    /// Module-relative target.
    rel: PathBuf,
    /// The target as messages name it.
    shown: Vec<u8>,
}

/// What is at a file's target before the new content replaces it, as far
/// as the receiver needs to know: whether there is anything (a backup is
/// due) and the mode of a regular file (kept without `-p`).
struct Existing {
    is_file: bool,
    mode: u32,
}

impl Existing {
    /// Whether this session looks at the target at all: only without `-p`
    /// (the old mode is kept) or with backups; a push with `-a` does not.
    fn wanted<W: Write>(s: &Shared<'_, W>) -> bool {
        !s.setup.options.preserve_perms || s.backups.is_some()
    }

    fn from_stat(st: &nix::sys::stat::FileStat) -> Existing {
        Existing {
            is_file: st.st_mode & libc::S_IFMT == libc::S_IFREG,
            mode: st.st_mode,
        }
    }

    fn from_metadata(m: &std::fs::Metadata) -> Existing {
        Existing {
            is_file: m.is_file(),
            mode: m.mode(),
        }
    }

    /// The old mode, for `dest_mode`, when it is a regular file's.
    fn file_mode(this: &Option<Existing>) -> Option<u32> {
        this.as_ref().filter(|m| m.is_file).map(|m| m.mode)
    }
}

impl<'s> Incoming<'s> {
    fn read<R: Read, W: Write>(
        s: &Shared<'_, W>,
        input: &mut DemuxReader<R>,
        ndx: usize,
        entry: &'s FileEntry,
    ) -> Result<Self, ReceiveError> {
        let head = read_sum_head(input, s.setup.protocol, s.params.kind.digest_len()).map_err(|e| ReceiveError::Protocol(e.to_string()))?;
        let rel = s.dest.path_of(&entry.name);
        Ok(Incoming {
            ndx,
            entry,
            head,
            shown: fname_in(rel.as_os_str().as_bytes(), s.setup.module_name),
            rel,
        })
    }
}

/// The basis the generator chose for `rel`, by the type byte (and name)
/// the client echoes: a kept partial file, a file in `--*-dest` directory
/// j (FNAMECMP_BASIS_DIR_LOW + j), a `--fuzzy` file in the file's
/// directory or `--*-dest` directory i - 1 (FNAMECMP_FUZZY + i, one plain
/// name, never a path), else the target itself.
fn basis_path<W: Write>(s: &Shared<'_, W>, rel: &Path, basis_type: Option<u8>, xname: Option<&[u8]>) -> PathBuf {
    let plain_name = xname.filter(|x| !x.is_empty() && !x.contains(&b'/') && *x != b"..");
    let found = match (basis_type, &s.alt_dests) {
        (Some(basis::PARTIAL_DIR), _) => s.staging.partial_path(rel),
        (Some(j), Some(alt)) if j < 0x80 => alt.path(usize::from(j), rel),
        (Some(t), alt) if t >= basis::FUZZY => plain_name.and_then(|x| {
            let dir = match (usize::from(t - basis::FUZZY), alt) {
                (0, _) => Some(rel.to_path_buf()),
                (i, Some(alt)) => alt.path(i - 1, rel),
                _ => None,
            };
            dir.map(|d| d.with_file_name(std::ffi::OsStr::from_bytes(x)))
        }),
        _ => None,
    };
    found.unwrap_or_else(|| rel.to_path_buf())
}

/// Read one file's data and put it in place: rebuilt into a temporary
/// file (beside the target, or in the temp dir) from the basis the
/// generator chose (`basis_rel`: the target, a kept partial file, ...),
/// then renamed over the target, or into the partial dir with
/// `--delay-updates`.
fn receive_file<R: Read, W: Write>(
    shared: &Shared<'_, W>,
    input: &mut DemuxReader<R>,
    tokens: &mut TokenReader,
    incoming: Incoming<'_>,
    basis_rel: PathBuf,
    delayed: &mut Vec<Delayed>,
) -> Result<Received, ReceiveError> {
    let s = shared;
    let Incoming {
        ndx,
        entry: e,
        head,
        rel,
        shown,
    } = incoming;
    let partial = s.staging.partial_path(&rel);
    let basis = if head.count > 0 { s.root.open_read(&basis_rel).ok() } else { None };
    // Where the data goes: a temporary file beside the target (or in the
    // temp dir); on any failure we still drain the stream.
    let temp = s.root.parent_of(&rel).and_then(|(dir, name)| {
        let separate = s.staging.separate_temp_dir(&s.root).transpose()?;
        let (file, tmp) = separate.as_ref().unwrap_or(&dir).create_temp(&name)?;
        Ok((dir, name, separate, file, tmp))
    });
    let (dir, final_name, separate_temp_dir, file, temp_name) = match temp {
        Ok(t) => t,
        Err(err) => {
            let text = syserr("receiver", &cat(&[b"mkstemp \"", &e.name, b"\" failed"]), &err);
            s.message(MsgTag::ErrorXfer, &text)?;
            drain(tokens, input, &head, s)?;
            return Ok(Received::Refused);
        }
    };
    let temp_dir = separate_temp_dir.as_ref().unwrap_or(&dir);
    let existing = if Existing::wanted(s) {
        dir.lstat(&final_name).ok().map(|st| Existing::from_stat(&st))
    } else {
        None
    };
    let mut guard = TempFile {
        dir: temp_dir,
        name: Some(temp_name.clone()),
    };
    let mut out = FileWriter::new(&file, s.setup.options.sparse);
    let mut basis = basis.map(|f| io::BufReader::with_capacity(256 * 1024, f));
    let applied = apply_delta(tokens, input, basis.as_mut(), &head, &s.params, &mut out);
    let flushed = out.finish();
    let stats = match applied {
        Ok(stats) => stats,
        Err(DeltaError::ChecksumMismatch { .. }) => return Ok(Received::Failed),
        Err(DeltaError::Io { source, context }) if context.starts_with("writing") => {
            // A local write failed (disk full...): upstream ends the
            // transfer with RERR_FILEIO; the temporary file goes with it.
            let text = syserr("receiver", &cat(&[b"write failed on ", &shown]), &source);
            return Err(ReceiveError::FileIo(String::from_utf8_lossy(&text).into_owned()));
        }
        Err(DeltaError::Io { source, .. }) => {
            // The connection broke mid-file: with --partial what arrived is
            // kept (see keep_partial), else the guard removes it.
            if s.setup.options.partial && file.metadata().map(|m| m.len() > 0).unwrap_or(false) {
                let kept = keep_partial(s, e, temp_dir, &temp_name, &dir, &final_name, partial.as_deref());
                if kept.is_ok() {
                    guard.name = None;
                }
            }
            return Err(ReceiveError::Io(source));
        }
        Err(other) => return Err(ReceiveError::Protocol(other.to_string())),
    };
    // No fsync, as upstream without --fsync: the rename is atomic, and a
    // crash leaves the old file or the new one, never a mix.
    if let Err(err) = flushed {
        let text = syserr("receiver", &cat(&[b"write failed on \"", &e.name, b"\""]), &err);
        s.message(MsgTag::ErrorXfer, &text)?;
        return Ok(Received::Refused);
    }
    let mode = attrs::dest_mode(s.setup, e, Existing::file_mode(&existing));
    // -X first, as upstream's set_file_attrs: long values we have match
    // in the basis.
    // (A failure is reported; the file goes in all the same, as upstream's.)
    meta::on_receive::write_set_open(s, e, &file, &basis_rel, &rel)?;
    if let Err(err) = attrs::apply_open(s.setup, &file, temp_dir, &temp_name, e, Some(mode)) {
        let text = err.text("receiver", &shown);
        s.message(MsgTag::ErrorXfer, &text)?;
        return Ok(Received::Refused);
    }
    if s.setup.options.delay_updates {
        if let Some(p) = &partial {
            // Waits in the partial dir until phase 2.
            let moved = Staging::make_partial_dir(&s.root, p).and_then(|(pdir, pname)| move_file(temp_dir, &temp_name, &pdir, &pname));
            return match moved {
                Ok(()) => {
                    guard.name = None;
                    delayed.push((ndx, rel, p.clone()));
                    Ok(Received::Delayed(stats))
                }
                Err(_) => {
                    let text = cat(&[b"Unable to create partial-dir for ", &e.name, b" -- discarding completed file.\n"]);
                    s.message(MsgTag::ErrorXfer, text)?;
                    Ok(Received::Refused)
                }
            };
        }
    }
    if let (Some(backups), Some(_)) = (&s.backups, &existing) {
        // Kept (hard-linked) before the new file takes its name; without
        // a backup the old file is not replaced (upstream: RERR_FILEIO).
        if let Err(err) = backups.keep(&s.root, &rel, false) {
            let text = syserr("receiver", &cat(&[b"keep_backup failed: ", &shown]), &err);
            return Err(ReceiveError::FileIo(String::from_utf8_lossy(&text).into_owned()));
        }
    }
    match move_file(temp_dir, &temp_name, &dir, &final_name) {
        Ok(()) => {
            guard.name = None;
            if partial.as_ref() == Some(&basis_rel) {
                // The partial file served as the basis: it is used up.
                s.staging.discard_partial(&s.root, &basis_rel);
            }
            Ok(Received::Done(stats))
        }
        Err(err) => {
            let text = syserr("receiver", &cat(&[b"rename \"", &e.name, b"\" failed"]), &err);
            s.message(MsgTag::ErrorXfer, &text)?;
            Ok(Received::Refused)
        }
    }
}

/// An interrupted file with `--partial`: into the partial dir when there
/// is one (mode set, time left), else over the target dated 1970 so no
/// later quick check or `--update` takes it for finished (upstream's
/// cleanup).
fn keep_partial<W: Write>(
    s: &Shared<'_, W>,
    e: &crate::transfer::flist::FileEntry,
    temp_dir: &ModuleDir,
    temp_name: &std::ffi::OsStr,
    dir: &ModuleDir,
    final_name: &std::ffi::OsStr,
    partial: Option<&Path>,
) -> io::Result<()> {
    let keep = attrs::dest_mode(s.setup, e, None);
    temp_dir.chmod(temp_name, keep)?;
    match partial {
        Some(p) => {
            let (pdir, pname) = Staging::make_partial_dir(&s.root, p)?;
            move_file(temp_dir, temp_name, &pdir, &pname)
        }
        None => {
            temp_dir.set_times(temp_name, (0, 0), (0, 0))?;
            move_file(temp_dir, temp_name, dir, final_name)
        }
    }
}

/// Rename `from` in `from_dir` to `to` in `to_dir`; across file systems
/// (an operator's `temp dir` elsewhere) by copying into `to_dir` first.
fn move_file(from_dir: &ModuleDir, from: &std::ffi::OsStr, to_dir: &ModuleDir, to: &std::ffi::OsStr) -> io::Result<()> {
    match from_dir.rename_to(from, to_dir, to) {
        Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
            let mut src = from_dir.open_for_update(from)?;
            let meta = src.metadata()?;
            let (dst, tmp) = to_dir.create_temp(to)?;
            let copied = io::copy(&mut src, &mut &dst).and_then(|_| {
                to_dir.chmod(&tmp, meta.mode() & 0o7777)?;
                to_dir.set_times(&tmp, (meta.atime(), meta.atime_nsec()), (meta.mtime(), meta.mtime_nsec()))?;
                to_dir.rename(&tmp, to)
            });
            if copied.is_err() {
                let _ = to_dir.unlink(&tmp);
                return copied;
            }
            from_dir.unlink(from)
        }
        other => other,
    }
}

/// `--delay-updates`: move every waiting file from its partial dir over
/// its target (backing the old one up with `-b`), then drop the emptied
/// partial dirs. A failure is reported and the rest go on.
fn finish_delayed<W: Write>(s: &Shared<'_, W>, delayed: &mut Vec<Delayed>, stats: &mut ReceiveStats) -> Result<(), ReceiveError> {
    for (ndx, rel, partial) in delayed.drain(..) {
        if let Some(backups) = &s.backups {
            if backups.keep(&s.root, &rel, false).is_err() {
                continue;
            }
        }
        let moved = s
            .root
            .parent_of(&partial)
            .and_then(|(pdir, pname)| s.root.parent_of(&rel).and_then(|(dir, name)| pdir.rename_to(&pname, &dir, &name)));
        match moved {
            Ok(()) => {
                s.staging.remove_partial_dir(&s.root, &partial);
                s.confirm(ndx, true)?;
            }
            Err(err) => {
                stats.io_error |= IoError::General.bit();
                let shown = fname_in(rel.as_os_str().as_bytes(), s.setup.module_name);
                let from = partial.as_os_str().as_bytes();
                let text = syserr("receiver", &cat(&[b"rename failed for ", &shown, b" (from ", from, b")"]), &err);
                s.message(MsgTag::ErrorXfer, &text)?;
            }
        }
    }
    Ok(())
}

/// Read one file's data straight into the target (`--inplace`, and
/// `--append` on the first pass (a `redo` is the second, in full): the data we have up to the length our
/// sum head announced stays, the rest is appended; `--append-verify`
/// checks the whole file). The old content is the basis, so a block the
/// sender matched at its own offset is not rewritten. A checksum failure
/// leaves the file as rebuilt (as upstream) and asks for it again.
fn receive_in_place<R: Read, W: Write>(
    shared: &Shared<'_, W>,
    input: &mut DemuxReader<R>,
    tokens: &mut TokenReader,
    incoming: Incoming<'_>,
    redo: bool,
) -> Result<Received, ReceiveError> {
    let s = shared;
    let Incoming {
        entry: e,
        head,
        rel,
        shown,
        ..
    } = incoming;
    let existing = if Existing::wanted(s) {
        s.root.lstat(&rel).ok().map(|m| Existing::from_metadata(&m))
    } else {
        None
    };
    if let (Some(backups), Some(_)) = (&s.backups, &existing) {
        // The file changes under its own name: the backup is a copy.
        if let Err(err) = backups.copy(&s.root, &rel) {
            let text = syserr("receiver", &cat(&[b"keep_backup failed: ", &shown]), &err);
            return Err(ReceiveError::FileIo(String::from_utf8_lossy(&text).into_owned()));
        }
    }
    let opened = s.root.parent_of(&rel).and_then(|(dir, name)| {
        let (file, _) = dir.open_in_place(&name)?;
        Ok((dir, name, file))
    });
    let (dir, name, file) = match opened {
        Ok(t) => t,
        Err(err) => {
            let text = syserr("receiver", &cat(&[b"open ", &shown, b" failed"]), &err);
            s.message(MsgTag::ErrorXfer, &text)?;
            drain(tokens, input, &head, s)?;
            return Ok(Received::Refused);
        }
    };
    let mut fsum = FileSum::new(&s.params);
    // --append keeps what the sum head covers; the redo pass is a plain
    // in-place update (upstream negates append_mode for it).
    let appending = s.setup.options.append_mode > 0 && !redo;
    let kept = if appending { head.covered_len() } else { 0 };
    if appending && s.setup.options.append_mode == 2 {
        let mut kept_part = (&file).take(kept);
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = kept_part.read(&mut buf).map_err(ReceiveError::Io)?;
            if n == 0 {
                break;
            }
            fsum.update(&buf[..n]);
        }
    }
    let mut sink = InPlace::new(&file, kept);
    let mut basis: &File = &file;
    let applied = apply_tokens(tokens, input, (head.count > 0).then_some(&mut basis), &head, &mut fsum, &mut sink);
    let mut stats = match applied {
        Ok(stats) => stats,
        Err(DeltaError::Io { source, context }) if context.starts_with("writing") => {
            let text = syserr("receiver", &cat(&[b"write failed on ", &shown]), &source);
            return Err(ReceiveError::FileIo(String::from_utf8_lossy(&text).into_owned()));
        }
        Err(DeltaError::Io { source, .. }) => return Err(ReceiveError::Io(source)),
        Err(other) => return Err(ReceiveError::Protocol(other.to_string())),
    };
    let verified = match verify_file_sum(input, fsum, &s.params) {
        Ok(sum) => {
            stats.file_sum = sum;
            true
        }
        Err(DeltaError::ChecksumMismatch { .. }) => false,
        Err(DeltaError::Io { source, .. }) => return Err(ReceiveError::Io(source)),
        Err(other) => return Err(ReceiveError::Protocol(other.to_string())),
    };
    if let Err(err) = sink.finish() {
        let text = syserr("receiver", &cat(&[b"ftruncate failed on ", &shown]), &err);
        s.message(MsgTag::ErrorXfer, &text)?;
    }
    meta::on_receive::write_set_open(s, e, &file, &rel, &rel)?;
    drop(file);
    let mode = attrs::dest_mode(s.setup, e, Existing::file_mode(&existing));
    if let Err(err) = attrs::apply(s.setup, &dir, &name, e, Some(mode)) {
        let text = err.text("receiver", &shown);
        s.message(MsgTag::ErrorXfer, &text)?;
    }
    if !verified {
        return Ok(Received::Failed);
    }
    Ok(Received::Done(stats))
}

/// A basis that reads as zeros: what draining a file we cannot write
/// copies its matched blocks from (only the stream's framing matters).
struct Zeros;

impl Read for Zeros {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        buf.fill(0);
        Ok(buf.len())
    }
}

impl io::Seek for Zeros {
    fn seek(&mut self, _: io::SeekFrom) -> io::Result<u64> {
        Ok(0)
    }
}

/// Read and discard one file's tokens and checksum.
fn drain<R: Read, W: Write>(
    tokens: &mut TokenReader,
    input: &mut DemuxReader<R>,
    head: &crate::transfer::delta::SumHead,
    s: &Shared<'_, W>,
) -> Result<(), ReceiveError> {
    let mut sink = io::sink();
    match apply_delta(tokens, input, Some(&mut Zeros), head, &s.params, &mut sink) {
        Ok(_) | Err(DeltaError::ChecksumMismatch { .. }) => Ok(()),
        Err(DeltaError::Io { source, .. }) => Err(ReceiveError::Io(source)),
        Err(other) => Err(ReceiveError::Protocol(other.to_string())),
    }
}
