//! The push's generator (upstream's `generate_files` / `recv_generator`),
//! on its own thread: for each entry of the sorted list, make directories
//! and symlinks, decide whether a file needs data (size and time, or `-c`
//! checksums, `-I`, `--size-only`, `--ignore-existing`, `--existing`,
//! `-u`), and ask the client for it with block sums of the file we already
//! have; then the phase ends, redo requests for files that failed
//! verification, directory times and modes last, and the goodbye.

use std::io::{self, BufReader, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;

use crate::transfer::fs::fake_super::Seen;
use oxrsyncd_protocol::message::{cat, fname_in, syserr};
use std::path::Path;
use std::sync::mpsc::Receiver;

use crate::transfer::delta::sums::SUM_LENGTH;
use crate::transfer::delta::{sum_sizes_sqroot, write_block_sums, write_sum_head, FileSum, SumHead, SumSizing};
use crate::transfer::flist::FileEntry;
use crate::transfer::options::client::{AltDest, DeleteTiming};
use crate::transfer::receive::alt_dest::Match;
use crate::transfer::receive::attrs;
use crate::transfer::receive::delete::Deleter;
use crate::transfer::receive::fuzzy::Candidate;
use crate::transfer::receive::setup::{ReceiveError, ToGenerator};
use crate::transfer::receive::shared::Shared;
use oxrsyncd_protocol::item::{self, basis, write_ndx_and_attrs};
use oxrsyncd_protocol::mux::MsgTag;
use oxrsyncd_protocol::ndx::{NdxCodec, NDX_DEL_STATS, NDX_DONE};
use oxrsyncd_protocol::IoError;

/// How the generator compares an existing file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// Same content by the chosen check: nothing to send.
    UpToDate,
    /// Send it (the flags say why, for `-i`).
    Transfer(u16),
    /// Left alone on purpose (`--ignore-existing`, `--existing`, `-u`).
    Skip,
}

/// The generator's per-session state.
struct Generator<'s, 'a, W: Write> {
    shared: &'s Shared<'a, W>,
    ndx_out: NdxCodec,
    io_error: i32,
    /// Directories to give their final mode and time once everything is
    /// in, and whether we created them.
    dirs: Vec<(usize, bool)>,
    /// `--delete`: what removes extraneous files.
    deleter: Option<Deleter<'s>>,
    /// `--fuzzy`: each directory's files, listed once when first needed
    /// (upstream lists a directory when it reaches it).
    fuzzy_lists: std::collections::HashMap<std::path::PathBuf, Vec<Candidate>>,
    /// A directory that could not be made (upstream's `skip_dir`): what
    /// the list has below it is skipped.
    failed_dir: Option<Vec<u8>>,
    /// `-H`: the entries linked to their group's transferred file at the
    /// end rather than requested.
    hlink_followers: std::collections::HashSet<usize>,
    /// Files asked for again (the redo phase): their followers wait for
    /// the end.
    redone: std::collections::HashSet<usize>,
}

/// Run the generator; returns the io_error bits it collected.
pub fn run<W: Write>(shared: &Shared<'_, W>, from_receiver: Receiver<ToGenerator>) -> Result<i32, ReceiveError> {
    if let Some(id) = shared.setup.identity {
        crate::identity::assume_on_this_thread(id)?;
    }
    let protocol = shared.setup.protocol;
    let o = shared.setup.options;
    let deleter = o.delete_mode.then(|| {
        let listed = shared.files.iter().filter(|f| f.active).map(|f| f.entry.name.clone()).collect();
        let io_error = shared.sender_io_error & IoError::General.bit() != 0 && !o.ignore_errors;
        Deleter::new(listed, &shared.client_filters, io_error, o.max_delete)
    });
    let mut g = Generator {
        shared,
        ndx_out: NdxCodec::new(protocol),
        io_error: 0,
        dirs: Vec::new(),
        deleter,
        fuzzy_lists: Default::default(),
        failed_dir: None,
        hlink_followers: shared.hard_links.iter().map(|&(follower, _)| follower).collect(),
        redone: Default::default(),
    };
    if o.delete_timing == DeleteTiming::Before {
        g.delete_pass()?;
    }
    for i in 0..shared.files.len() {
        if let Ok(ToGenerator::Abort) = from_receiver.try_recv() {
            return Ok(g.io_error);
        }
        g.generate(i)?;
    }
    // Phase 0 ends; redo what failed verification until the client's
    // phase-end comes back.
    g.write_done(1)?;
    loop {
        match from_receiver.recv() {
            Ok(ToGenerator::Redo(ndx)) => {
                g.redone.insert(ndx as usize);
                g.request(ndx as usize, true, None)?
            }
            Ok(ToGenerator::PhaseDone) => {
                // Every file of the first pass is in place (but for those
                // asked for again, and with --delay-updates): link their
                // followers now, itemized while the client still reads
                // items, as upstream's generator does as each one lands.
                if !o.delay_updates {
                    g.link_followers(true)?;
                }
                break;
            }
            Ok(ToGenerator::Abort) | Err(_) => return Ok(g.io_error),
            Ok(other) => return Err(ReceiveError::Protocol(format!("unexpected {other:?} in the redo phase"))),
        }
    }
    // Phase 1 ends; with no delayed updates the next phase end goes out at
    // once, and without late deletions the deletion stats and the one after
    // too (upstream's EARLY_DELAY_DONE_MSG / EARLY_DELETE_DONE_MSG).
    let late_delete = o.delete_mode && o.delete_timing == DeleteTiming::After;
    g.write_done(if protocol >= 29 { 2 } else { 1 })?;
    if protocol >= 31 && !late_delete {
        g.write_delete_done()?;
    }
    let mut waits = if protocol >= 29 { 2 } else { 1 };
    g.wait_for(&from_receiver, waits)?;
    if late_delete {
        g.delete_pass()?;
    }
    waits = 0;
    if protocol >= 31 {
        if late_delete {
            g.write_delete_done()?;
        }
        waits = 1;
    }
    g.wait_for(&from_receiver, waits)?;
    g.link_followers(false)?;
    g.finish_dirs()?;
    if let Some(skipped) = g.deleter.as_ref().map(|d| d.skipped).filter(|&n| n > 0) {
        shared.message(
            MsgTag::Warning,
            format!("Deletions stopped due to --max-delete limit ({skipped} skipped)\n"),
        )?;
        // Upstream's IOERR_DEL_LIMIT.
        g.io_error |= 4;
    }
    // The goodbye.
    g.write_done(1)?;
    Ok(g.io_error)
}

impl<'s, W: Write> Generator<'s, '_, W> {
    /// Wait for `count` progress messages from the receiver (phase ends,
    /// its end, the client's answer), reporting late verification failures.
    fn wait_for(&mut self, from_receiver: &Receiver<ToGenerator>, mut count: usize) -> Result<(), ReceiveError> {
        while count > 0 {
            match from_receiver.recv() {
                Ok(ToGenerator::PhaseDone | ToGenerator::ReceiverDone | ToGenerator::GoodbyeAnswered) => count -= 1,
                Ok(ToGenerator::Redo(ndx)) => {
                    self.io_error |= IoError::General.bit();
                    let name = &self.shared.files[ndx as usize].entry.name;
                    let text = cat(&[b"ERROR: ", name, b" failed verification -- update discarded.\n"]);
                    self.shared.message(MsgTag::ErrorXfer, text)?;
                }
                Ok(ToGenerator::Abort) | Err(_) => return Err(ReceiveError::Protocol("the receiver stopped".into())),
            }
        }
        Ok(())
    }

    /// Protocol >= 31: the deletion stats (with --delete) and the phase end
    /// that closes deleting.
    fn write_delete_done(&mut self) -> io::Result<()> {
        let Some(stats) = self.deleter.as_ref().map(|d| d.stats) else {
            return self.write_done(1);
        };
        let mut out = self.shared.out.lock().unwrap_or_else(|e| e.into_inner());
        self.ndx_out.write(&mut *out, NDX_DEL_STATS)?;
        let plain = stats.files - stats.dirs - stats.symlinks - stats.devices - stats.specials;
        for n in [plain, stats.dirs, stats.symlinks, stats.devices, stats.specials] {
            oxrsyncd_protocol::wire::write_varint(&mut *out, n)?;
        }
        self.ndx_out.write(&mut *out, NDX_DONE)?;
        out.flush()
    }

    /// `--delete-before` / `--delete-after`: every content directory of
    /// the list, in list order.
    fn delete_pass(&mut self) -> Result<(), ReceiveError> {
        let s = self.shared;
        for i in 0..s.files.len() {
            let f = &s.files[i];
            if f.active && f.entry.is_dir() && self.is_content_dir(&f.entry) {
                let rel = s.dest.path_of(&f.entry.name);
                if let Some(d) = self.deleter.as_mut() {
                    d.delete_in_dir(s, &f.entry.name, &rel)?;
                }
            }
        }
        Ok(())
    }

    /// `-H`: link every follower to its group's transferred file (now in
    /// place), replacing whatever other file held the name, and itemize
    /// it as upstream's `maybe_hard_link` does (`hf... name => leader`).
    ///
    /// `early`: the pass at the end of the first phase, for the files
    /// done by then (itemized); else the pass at the end for the rest
    /// (silent: the client reads no more items by then).
    fn link_followers(&mut self, early: bool) -> Result<(), ReceiveError> {
        let s = self.shared;
        for &(follower, leader) in &s.hard_links {
            // The early pass is skipped with --delay-updates (the files are
            // not in place before phase 2); the late pass does the rest.
            let due = if early {
                !self.redone.contains(&leader)
            } else {
                s.setup.options.delay_updates || self.redone.contains(&leader)
            };
            if !due {
                continue;
            }
            let (fe, le) = (&s.files[follower].entry, &s.files[leader].entry);
            let (frel, lrel) = (s.dest.path_of(&fe.name), s.dest.path_of(&le.name));
            let existing = s.look(&frel);
            let lmeta = match s.root.lstat(&lrel) {
                Ok(m) => Some(m),
                // A dry run's leader was never made: shown as linked all the same.
                Err(_) if s.setup.options.dry_run => None,
                Err(_) => continue,
            };
            let same_inode = |m: &Seen| lmeta.as_ref().is_some_and(|l| m.dev() == l.dev() && m.ino() == l.ino());
            if existing.as_ref().is_some_and(same_inode) {
                s.confirm(follower, false)?;
                continue;
            }
            let (fdir, fname) = s.root.parent_of(&frel)?;
            let (ldir, lname) = s.root.parent_of(&lrel)?;
            if existing.is_some() {
                let _ = fdir.unlink(&fname);
            }
            match fdir.link_from(&ldir, &lname, &fname) {
                Ok(()) => {
                    if early {
                        let iflags = item_flags(s.setup, fe, existing.as_ref(), item::LOCAL_CHANGE | item::XNAME_FOLLOWS);
                        self.send_item_named(follower, iflags, Some(&le.name))?;
                        self.old_protocol_line(cat(&[&fe.name, b" => ", &le.name, b"\n"]))?;
                    }
                    s.confirm(follower, false)?;
                }
                Err(err) => {
                    let what = cat(&[b"link ", &quoted(fe), b" => ", &quoted(le), b" failed"]);
                    self.report(syserr("generator", &what, &err))?;
                }
            }
        }
        Ok(())
    }

    /// Below protocol 29 the client itemizes only what it sends, and with
    /// `-v` upstream's generator names what it made itself (directories,
    /// links, nodes, hard links) in messages: this sends one such line.
    fn old_protocol_line(&self, text: Vec<u8>) -> io::Result<()> {
        let s = self.shared;
        if s.setup.protocol >= 29 || s.setup.verbosity() < 1 {
            return Ok(());
        }
        s.info(text)
    }

    /// A directory (or other non-file) stands where `e` comes: remove it,
    /// with everything in it only under `--delete` or `--force` (upstream's
    /// `delete_item` with DEL_FOR_*). Such removals are not deletions: not
    /// logged or counted. Returns whether the way is clear; if not, the
    /// client hears upstream's two lines and the entry is skipped.
    fn clear_the_way(&mut self, e: &FileEntry, rel: &Path, existing: &Seen, what: &str) -> Result<bool, ReceiveError> {
        let s = self.shared;
        let o = s.setup.options;
        if !existing.is_dir() {
            let (dir, name) = s.root.parent_of(rel)?;
            self.make_way(rel, &dir, &name)?;
            return Ok(true);
        }
        let name = &e.name;
        let removed = if o.delete_mode || o.force_delete {
            self.with_deleter(|d| d.make_room(s, &e.name, rel))?
        } else if s.root.is_dry_run() && !super::delete::children_of(s, rel).is_empty() {
            // What rmdir would say, as upstream finds out by listing.
            Err(io::Error::from_raw_os_error(libc::ENOTEMPTY))
        } else {
            let (dir, leaf) = s.root.parent_of(rel)?;
            dir.rmdir(&leaf)
        };
        match removed {
            Ok(()) => Ok(true),
            Err(err) => {
                if err.raw_os_error() == Some(libc::ENOTEMPTY) || err.raw_os_error() == Some(libc::EEXIST) {
                    s.info(cat(&[b"cannot delete non-empty directory: ", name, b"\n"]))?;
                } else {
                    let text = syserr("generator", &cat(&[b"delete_file: rmdir(", name, b") failed"]), &err);
                    s.message(MsgTag::ErrorXfer, text)?;
                }
                self.report(cat(&[b"could not make way for new ", what.as_bytes(), b": ", name, b"\n"]))?;
                Ok(false)
            }
        }
    }

    /// Remove the non-directory at `rel` (`name` in `dir`) for a new
    /// symlink or node; with `-b` it is kept (moved) first.
    fn make_way(
        &mut self,
        rel: &Path,
        dir: &crate::transfer::fs::module_dir::ModuleDir,
        name: &std::ffi::OsStr,
    ) -> Result<(), ReceiveError> {
        let s = self.shared;
        if let Some(backups) = &s.backups {
            match backups.keep(&s.root, rel, true) {
                Ok(crate::transfer::receive::backup::Kept::Moved) => return Ok(()),
                Ok(_) => {}
                Err(err) => {
                    let text =
                        oxrsyncd_protocol::message::rsyserr_as("generator", &format!("keep_backup failed: \"{}\"", rel.display()), &err);
                    self.report(text)?;
                    return Ok(());
                }
            }
        }
        let _ = dir.unlink(name);
        Ok(())
    }

    /// Whether a directory's contents are part of the transfer (upstream's
    /// FLAG_CONTENT_DIR), as the list says (see [`super::relative`]): with
    /// -r every directory but `-R`'s implied parents, else the top one.
    fn is_content_dir(&self, e: &FileEntry) -> bool {
        e.is_dir() && !e.no_content_dir
    }

    fn write_done(&mut self, count: usize) -> io::Result<()> {
        let mut out = self.shared.out.lock().unwrap_or_else(|e| e.into_inner());
        for _ in 0..count {
            self.ndx_out.write(&mut *out, NDX_DONE)?;
        }
        out.flush()
    }

    /// Tell the client what happened to entry `ndx` (from protocol 29,
    /// when it matters): it counts and prints it.
    fn send_item(&mut self, ndx: usize, iflags: u16) -> io::Result<()> {
        self.send_item_named(ndx, iflags, None)
    }

    /// [`Generator::send_item`] with the name upstream's item carries (a
    /// hard link's leader): such an item always goes out.
    fn send_item_named(&mut self, ndx: usize, iflags: u16, xname: Option<&[u8]>) -> io::Result<()> {
        let protocol = self.shared.setup.protocol;
        if protocol < 29 || !(significant(iflags) || xname.is_some_and(|x| !x.is_empty())) {
            return Ok(());
        }
        let mut out = self.shared.out.lock().unwrap_or_else(|e| e.into_inner());
        write_ndx_and_attrs(&mut *out, &mut self.ndx_out, ndx as i32, iflags, None, xname, protocol)
    }

    /// Upstream's `full_fname` of module-relative `rel` (`"."` for the
    /// module root).
    fn shown(&self, rel: &Path) -> Vec<u8> {
        let path = rel.as_os_str().as_bytes();
        fname_in(if path.is_empty() { b"." } else { path }, self.shared.setup.module_name)
    }

    fn report(&mut self, text: impl AsRef<[u8]>) -> io::Result<()> {
        self.io_error |= IoError::General.bit();
        self.shared.message(MsgTag::ErrorXfer, text)
    }

    /// One entry of the list.
    fn generate(&mut self, i: usize) -> Result<(), ReceiveError> {
        let s = self.shared;
        let f = &s.files[i];
        if !f.active {
            return Ok(());
        }
        let e = &f.entry;
        let o = s.setup.options;
        if let Some(dir) = &self.failed_dir {
            if e.name.len() > dir.len() && e.name.starts_with(dir) && e.name[dir.len()] == b'/' {
                return Ok(());
            }
            self.failed_dir = None;
        }
        if o.relative && o.no_implied_dirs && super::relative::is_implied_dir(e, s.setup.protocol) {
            // Sent only to carry the path; the client asked for it not to be made.
            return Ok(());
        }
        let rel = s.dest.path_of(&e.name);
        if e.mode == 0 {
            return self.missing_argument(e, &rel);
        }
        if o.relative && !o.dry_run {
            if let Err(err) = super::relative::make_parents(&s.root, &rel) {
                let parent = rel.parent().unwrap_or(Path::new("")).as_os_str().as_bytes();
                let what = cat(&[b"recv_generator: mkdir ", &fname_in(parent, s.setup.module_name), b" failed"]);
                return Ok(self.report(syserr("generator", &what, &err))?);
            }
        }
        if s.setup.daemon_filters.excludes(rel.as_os_str().as_bytes(), e.is_dir()) {
            let text = cat(&[
                b"ERROR: daemon refused to receive ",
                kind_word(e).as_bytes(),
                b" ",
                &quoted(e),
                b"\n",
            ]);
            return Ok(self.report(text)?);
        }
        let mut existing = s.look(&rel);
        if e.is_dir() && self.link_stands_for_dir(&rel) && existing.as_ref().is_some_and(|m| m.meta.file_type().is_symlink()) {
            // A link to a directory stands for the directory.
            if let Some(target) = s.root.stat(&rel).ok().filter(|m| m.is_dir()) {
                existing = Some(Seen::real(target));
            }
        }
        if s.setup.options.existing_only && existing.is_none() {
            // --existing: nothing new is created, of any kind.
            return Ok(());
        }
        if e.is_dir() {
            return self.directory(i, &rel, existing.as_ref());
        }
        if e.is_symlink() {
            return self.symlink(i, e, &rel, existing.as_ref());
        }
        if !e.is_reg() {
            return self.special(i, e, &rel, existing.as_ref());
        }
        if o.max_size.is_some_and(|m| e.size > m) || o.min_size.is_some_and(|m| e.size < m) {
            return Ok(());
        }
        if self.hlink_followers.contains(&i) {
            // Linked to its leader once the leader is in place.
            return Ok(());
        }
        let existing = match existing {
            Some(m) if !m.is_file() => {
                if !self.clear_the_way(e, &rel, &m, "regular file")? {
                    return Ok(());
                }
                None
            }
            other => other,
        };
        if self.settle_from_alt_dests(i, e, &rel, existing.as_ref())? {
            return Ok(());
        }
        match self.verdict(e, &rel, existing.as_ref()) {
            // --append: a file at least as long as the sender's is left alone.
            Verdict::Transfer(_) if o.append_mode > 0 && existing.as_ref().is_some_and(|m| m.is_file() && m.len() >= e.size) => {}
            Verdict::Transfer(_) => self.request(i, false, Some(existing.filter(|m| m.is_file())))?,
            Verdict::UpToDate => {
                // A partial file kept for it is not needed any more.
                if let Some(p) = s.staging.existing_partial(&s.root, &rel) {
                    s.staging.discard_partial(&s.root, &p);
                }
                // The content is there; bring its metadata in line.
                self.send_item(i, item_flags(s.setup, e, existing.as_ref(), 0))?;
                let (dir, name) = s.root.parent_of(&rel)?;
                let mode = attrs::dest_mode(s.setup, e, existing.as_ref().map(|m| m.mode()));
                if let Err(err) = attrs::apply(s.setup, &dir, &name, e, Some(mode)) {
                    self.report(err.text("generator", &self.shown(&rel)))?;
                }
                s.confirm(i, false)?;
            }
            Verdict::Skip => {}
        }
        Ok(())
    }

    /// Upstream's quick check, with the options that change it.
    fn verdict(&self, e: &FileEntry, rel: &Path, existing: Option<&Seen>) -> Verdict {
        let o = self.shared.setup.options;
        let Some(old) = existing.filter(|m| m.is_file()) else {
            return if o.existing_only && existing.is_none() {
                Verdict::Skip
            } else {
                Verdict::Transfer(item::IS_NEW)
            };
        };
        if o.ignore_existing {
            return Verdict::Skip;
        }
        if o.update_only && old.mtime() > e.mtime {
            return Verdict::Skip;
        }
        let mut why = 0;
        if old.len() != e.size {
            why |= item::REPORT_SIZE;
        }
        if o.preserve_times && old.mtime() != e.mtime {
            why |= item::REPORT_TIME;
        }
        if self.quick_check(e, rel, old) {
            Verdict::UpToDate
        } else {
            Verdict::Transfer(why)
        }
    }

    /// Upstream's `quick_check_ok` for a regular file `old` at `path`:
    /// same size and time (or checksum with `-c`; size alone with
    /// `--size-only`; never with `-I`).
    fn quick_check(&self, e: &FileEntry, path: &Path, old: &Seen) -> bool {
        let o = self.shared.setup.options;
        if old.len() != e.size {
            return false;
        }
        if o.always_checksum {
            return self.same_checksum(path, e);
        }
        if o.size_only {
            return true;
        }
        !o.ignore_times && old.mtime() == e.mtime
    }

    /// Upstream's `unchanged_attrs` for a regular file: times (with -t),
    /// permissions (-p, or the executable bits with -E) and owners (when
    /// they are kept) as the list has them.
    fn unchanged_attrs(&self, e: &FileEntry, old: &Seen) -> bool {
        let s = self.shared;
        let o = s.setup.options;
        if o.preserve_times && old.mtime() != e.mtime {
            return false;
        }
        if o.preserve_perms && old.mode() & 0o7777 != e.mode & 0o7777 {
            return false;
        }
        if !o.preserve_perms && o.preserve_executability && (old.mode() & 0o111 != 0) != (e.mode & 0o111 != 0) {
            return false;
        }
        if (s.setup.may_chown || s.setup.fake_super) && o.preserve_uid && old.uid() != e.uid {
            return false;
        }
        !(o.preserve_gid && old.gid() != e.gid)
    }

    /// `--compare-dest` / `--copy-dest` / `--link-dest` for file `i`
    /// (upstream's `try_dests_reg`): whether the entry was settled from
    /// one of the directories (left out, linked or copied).
    fn settle_from_alt_dests(&mut self, i: usize, e: &FileEntry, rel: &Path, existing: Option<&Seen>) -> Result<bool, ReceiveError> {
        let s = self.shared;
        let Some(alt) = s.alt_dests.as_ref() else { return Ok(false) };
        if existing.is_some() && alt.kind == AltDest::Copy {
            return Ok(false);
        }
        let found = alt.find(rel, |path| {
            let m = s.look(path).filter(|m| m.is_file())?;
            Some(if !self.quick_check(e, path, &m) {
                Match::Exists
            } else if self.unchanged_attrs(e, &m) {
                Match::Unchanged
            } else {
                Match::SameContent
            })
        });
        let Some((_, level, path)) = found else { return Ok(false) };
        let Some(meta) = s.look(&path) else { return Ok(false) };
        if level == Match::Unchanged && alt.kind != AltDest::Copy {
            let (dir, name) = s.root.parent_of(rel)?;
            if let Some(t) = existing {
                if alt.kind == AltDest::Link && t.dev() == meta.dev() && t.ino() == meta.ino() {
                    return Ok(false);
                }
                if let Err(err) = dir.unlink(&name) {
                    if err.kind() != io::ErrorKind::NotFound {
                        return Ok(false);
                    }
                }
            }
            if alt.kind == AltDest::Compare {
                self.send_item(i, item_flags(s.setup, e, Some(&meta), 0))?;
                s.confirm(i, false)?;
                return Ok(true);
            }
            let (from_dir, from_name) = s.root.parent_of(&path)?;
            if dir.link_from(&from_dir, &from_name, &name).is_ok() {
                // Itemized only at -ii, as upstream.
                s.confirm(i, false)?;
                return Ok(true);
            }
        } else if existing.is_some() || level < Match::SameContent {
            // Not settled here: an existing target goes through the quick
            // check, a mere basis is used by the request.
            return Ok(false);
        }
        // Same content: a local copy, with the list's attributes.
        match self.copy_local(e, &path, rel) {
            Ok(()) => {
                self.send_item(i, item_flags(s.setup, e, Some(&meta), item::LOCAL_CHANGE))?;
                s.confirm(i, false)?;
                Ok(true)
            }
            Err(err) => {
                let text = syserr("generator", &cat(&[b"copy of ", &quoted(e), b" failed"]), &err);
                self.report(text)?;
                Ok(true)
            }
        }
    }

    /// Copy `from` (module-relative) to `rel` through a temporary file,
    /// with `e`'s attributes.
    fn copy_local(&self, e: &FileEntry, from: &Path, rel: &Path) -> io::Result<()> {
        let s = self.shared;
        if s.setup.options.dry_run {
            // Itemized as copied; nothing is written.
            return Ok(());
        }
        let (dir, name) = s.root.parent_of(rel)?;
        let (out, temp) = dir.create_temp(&name)?;
        let copied = (|| {
            let mut src = s.root.open_read(from)?;
            io::copy(&mut src, &mut &out)?;
            let mode = attrs::dest_mode(s.setup, e, None);
            attrs::apply(s.setup, &dir, &temp, e, Some(mode))?;
            dir.rename(&temp, &name)
        })();
        if copied.is_err() {
            let _ = dir.unlink(&temp);
        }
        copied
    }

    /// `--fuzzy`: the list index (0: the file's own directory, then the
    /// `--*-dest` directories with `-yy`), the module-relative path and
    /// the name of the most similar file, if any.
    fn fuzzy_basis(&mut self, e: &FileEntry, rel: &Path) -> Option<(u8, std::path::PathBuf, Vec<u8>)> {
        let s = self.shared;
        let parent = rel.parent().unwrap_or(Path::new("")).to_path_buf();
        let mut dirs = vec![parent];
        if s.setup.options.fuzzy > 1 {
            if let Some(alt) = &s.alt_dests {
                dirs.extend(
                    (0..alt.len())
                        .filter_map(|j| alt.path(j, rel))
                        .map(|p| p.parent().unwrap_or(Path::new("")).to_path_buf()),
                );
            }
        }
        // Each directory is listed once; later files in it reuse the list.
        for d in &dirs {
            if !self.fuzzy_lists.contains_key(d) {
                self.fuzzy_lists.insert(d.clone(), list_candidates(&s.root, d));
            }
        }
        let lists: Vec<&[Candidate]> = dirs.iter().map(|d| self.fuzzy_lists[d].as_slice()).collect();
        let name = rel.file_name()?.as_bytes();
        let (i, found) = crate::transfer::receive::fuzzy::find(name, e.size, e.mtime, &lists)?;
        let path = dirs[i].join(std::ffi::OsStr::from_bytes(&found));
        Some((i as u8, path, found))
    }

    /// The `--*-dest` file that serves as the basis for a missing target
    /// (upstream: FNAMECMP_BASIS_DIR_LOW + j), if any.
    fn alt_basis(&self, rel: &Path) -> Option<(u8, std::path::PathBuf)> {
        let s = self.shared;
        let alt = s.alt_dests.as_ref()?;
        let (j, _, path) = alt.find(rel, |p| s.root.lstat(p).ok().filter(|m| m.is_file()).map(|_| Match::Exists))?;
        Some((j as u8, path))
    }

    /// `-c`: the whole-file checksum of what we have against the list's.
    fn same_checksum(&self, rel: &Path, e: &FileEntry) -> bool {
        use std::io::Read;
        let Some(theirs) = &e.checksum else { return false };
        let Ok(file) = self.shared.root.open_read(rel) else { return false };
        // The list's checksums are plain digests (no seed), as the sender's.
        let kind = match self.shared.params.kind {
            crate::transfer::delta::ChecksumKind::Md4Old => crate::transfer::delta::ChecksumKind::Md4,
            k => k,
        };
        let mut sum = FileSum::new(&crate::transfer::delta::ChecksumParams {
            kind,
            seed: 0,
            proper_seed_order: true,
        });
        let mut r = BufReader::with_capacity(256 * 1024, file);
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            match r.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => sum.update(&buf[..n]),
                Err(_) => return false,
            }
        }
        sum.finish() == *theirs
    }

    /// Ask the client for file `i`: its index, flags and block sums of
    /// our copy (none for a new file or `-W`). `redo`: the full-length
    /// strong sums of upstream's second pass.
    /// `looked`: the target as `generate` just found it (`Some(None)`: no
    /// regular file there), so a first request does not look again; a redo
    /// looks afresh.
    fn request(&mut self, i: usize, redo: bool, looked: Option<Option<Seen>>) -> Result<(), ReceiveError> {
        let s = self.shared;
        // Before the request can reach the client: its data is admitted.
        s.requested.mark(i);
        let protocol = s.setup.protocol;
        let e = &s.files[i].entry;
        let rel = s.dest.path_of(&e.name);
        let target = looked.unwrap_or_else(|| s.look(&rel).filter(|m| m.is_file()));
        // A partial file kept by an interrupted push is the better basis,
        // as upstream's.
        let partial = s.staging.existing_partial(&s.root, &rel);
        // Without a target, a file in a --*-dest directory is the basis.
        let alt = if partial.is_none() && target.is_none() {
            self.alt_basis(&rel)
        } else {
            None
        };
        // Still nothing: with --fuzzy, a similar file nearby.
        let fuzzy = if partial.is_none() && target.is_none() && alt.is_none() && s.setup.options.fuzzy > 0 {
            self.fuzzy_basis(e, &rel)
        } else {
            None
        };
        let (basis_rel, existing, basis_type) = match (&partial, &alt, &fuzzy) {
            (Some(p), _, _) => (p.clone(), s.look(p), Some(basis::PARTIAL_DIR)),
            (None, Some((j, path)), _) => (path.clone(), s.look(path), Some(*j)),
            (None, None, Some((i, path, _))) => (path.clone(), s.look(path), Some(basis::FUZZY + *i)),
            (None, None, None) => (rel.clone(), target.clone(), None),
        };
        let xname = fuzzy.as_ref().map(|(_, _, name)| name.as_slice());
        let base = if s.setup.options.always_checksum {
            item::TRANSFER | item::REPORT_CHANGE
        } else {
            item::TRANSFER
        };
        // Itemized against the real target (upstream's real_sx), or, when a
        // --*-dest file is the basis, against that file (it becomes real_sx).
        let against = if alt.is_some() { existing.as_ref() } else { target.as_ref() };
        let mut iflags = item_flags(s.setup, e, against, base);
        if basis_type.is_some() {
            iflags |= item::BASIS_TYPE_FOLLOWS;
        }
        if xname.is_some() {
            iflags |= item::XNAME_FOLLOWS;
        }
        let sizing = SumSizing {
            block_size: s.setup.options.block_size.map(|b| b as i32),
            csum_length: if redo {
                SUM_LENGTH
            } else {
                crate::transfer::delta::sums::SHORT_SUM_LENGTH
            },
        };
        let xfer_sum_len = s.params.kind.digest_len();
        if s.setup.options.dry_run {
            // -n: the item alone (upstream's !do_xfers); no sums, and the
            // client sends no data.
            let mut out = s.out.lock().unwrap_or_else(|e| e.into_inner());
            write_ndx_and_attrs(&mut *out, &mut self.ndx_out, i as i32, iflags, basis_type, xname, protocol)?;
            return Ok(());
        }
        // --append (first pass): the head alone says how much we keep; the
        // sender sends what follows. It also turns -W off.
        let appending = s.setup.options.append_mode > 0 && !redo;
        if appending {
            let head = existing
                .as_ref()
                .filter(|m| m.len() > 0)
                .and_then(|m| sum_sizes_sqroot(m.len(), protocol, xfer_sum_len, sizing))
                .unwrap_or_default();
            let mut out = s.out.lock().unwrap_or_else(|e| e.into_inner());
            write_ndx_and_attrs(&mut *out, &mut self.ndx_out, i as i32, iflags, basis_type, xname, protocol)?;
            write_sum_head(&mut *out, &head, protocol)?;
            return Ok(());
        }
        let sums = match existing {
            Some(old) if !s.setup.options.whole_file && old.len() > 0 => match s.root.open_read(&basis_rel) {
                Ok(file) => crate::transfer::delta::file_sums::block_sums_of_file(&file, old.len(), &s.params, protocol, sizing).ok(),
                Err(_) => None,
            },
            _ => None,
        };
        let mut out = s.out.lock().unwrap_or_else(|e| e.into_inner());
        write_ndx_and_attrs(&mut *out, &mut self.ndx_out, i as i32, iflags, basis_type, xname, protocol)?;
        match sums {
            Some(sums) => write_block_sums(&mut *out, &sums, protocol)?,
            None => write_sum_head(&mut *out, &SumHead::default(), protocol)?,
        }
        Ok(())
    }

    fn directory(&mut self, i: usize, rel: &Path, existing: Option<&Seen>) -> Result<(), ReceiveError> {
        let s = self.shared;
        let e = &s.files[i].entry;
        let old = existing.filter(|m| m.is_dir());
        // The destination the push created counts as new (upstream's
        // FLAG_DIR_CREATED); a new directory is compared with its namesake
        // in a --*-dest directory, if there is one (try_dests_non).
        let is_new = old.is_none() || (e.name == b"." && s.dest.created.is_some());
        let alt_dir = if is_new {
            s.alt_dests.as_ref().and_then(|alt| {
                alt.find(rel, |p| s.root.lstat(p).ok().filter(|m| m.is_dir()).map(|_| Match::Exists))
                    .and_then(|(_, _, p)| s.look(&p))
            })
        } else {
            None
        };
        let flags = match (&alt_dir, is_new) {
            (Some(m), _) => item_flags(s.setup, e, Some(m), item::LOCAL_CHANGE),
            (None, true) => item_flags(s.setup, e, None, item::LOCAL_CHANGE),
            (None, false) => item_flags(s.setup, e, old, 0),
        };
        self.send_item(i, flags)?;
        let created = match existing {
            Some(m) if m.is_dir() => {
                // An existing directory takes its mode now, as upstream's
                // generator does (what is backed up from it mirrors it);
                // a non-root session keeps owner rwx until the end.
                if s.setup.options.preserve_perms && !rel.as_os_str().is_empty() {
                    let mut mode = attrs::dest_mode(s.setup, e, Some(m.mode()));
                    if !s.setup.may_chown {
                        mode |= 0o700;
                    }
                    if mode != m.mode() & 0o7777 {
                        let (dir, name) = s.root.parent_of(&self.attr_path(rel))?;
                        let _ = dir.chmod(&name, mode);
                    }
                }
                false
            }
            Some(_) => {
                // A non-directory is in the way: replace it.
                let (dir, name) = s.root.parent_of(rel)?;
                if let Err(err) = dir.unlink(&name) {
                    let what = cat(&[b"delete_file: unlink ", &quoted(e), b" failed"]);
                    return Ok(self.report(syserr("generator", &what, &err))?);
                }
                self.make_dir(e, rel)?
            }
            None => self.make_dir(e, rel)?,
        };
        if self.failed_dir.as_deref() == Some(e.name.as_slice()) {
            // Not made: nothing to finish (upstream's FLAG_MISSING_DIR).
            return Ok(());
        }
        self.dirs.push((i, created));
        if s.setup.options.delete_timing == DeleteTiming::During && self.is_content_dir(e) {
            if let Some(d) = self.deleter.as_mut() {
                d.delete_in_dir(s, &e.name, rel)?;
            }
        }
        Ok(())
    }

    /// `--delete-missing-args`: an argument missing at the client arrives
    /// with mode 0, and what we have under its name goes (unless the
    /// client's filters protect it), as upstream's generator does.
    fn missing_argument(&mut self, e: &FileEntry, rel: &Path) -> Result<(), ReceiveError> {
        let s = self.shared;
        let o = s.setup.options;
        let Ok(existing) = s.root.lstat(rel) else { return Ok(()) };
        if s.client_filters.excludes(&e.name, existing.is_dir()) || o.dry_run {
            return Ok(());
        }
        let recurse = o.delete_mode || o.force_delete;
        self.with_deleter(|d| d.delete_missing(s, &e.name, rel, existing.mode(), recurse))?;
        Ok(())
    }

    /// Run `f` with the push's deleter, or, without `--delete`, with one
    /// made for this removal (logged and counted the same way).
    fn with_deleter<T>(&mut self, f: impl FnOnce(&mut Deleter<'s>) -> T) -> T {
        let s = self.shared;
        match self.deleter.as_mut() {
            Some(d) => f(d),
            None => f(&mut Deleter::new(
                Default::default(),
                &s.client_filters,
                false,
                s.setup.options.max_delete,
            )),
        }
    }

    /// Upstream's notice (info level NONREG, on unless `-q`) for a link or
    /// node the options do not transfer.
    fn skip_non_regular(&mut self, e: &FileEntry) -> Result<(), ReceiveError> {
        let s = self.shared;
        if !s.setup.options.quiet {
            s.info(cat(&[b"skipping non-regular file ", &quoted(e), b"\n"]))?;
        }
        Ok(())
    }

    /// Whether a symlink at `rel` stands for the directory it leads to:
    /// under `-K`, and always for the destination itself (upstream changes
    /// into it, so its `.` is the directory the link leads to; the link
    /// is never replaced).
    fn link_stands_for_dir(&self, rel: &Path) -> bool {
        self.shared.setup.options.keep_dirlinks || self.is_destination(rel)
    }

    /// Whether `rel` is the destination directory itself (the list's `.`).
    fn is_destination(&self, rel: &Path) -> bool {
        let s = self.shared;
        s.dest.rename_to.is_none() && rel == s.dest.dir
    }

    /// Where a directory's attributes are set: the directory itself, or
    /// the directory a symlink standing for it at `rel` leads to.
    fn attr_path(&self, rel: &Path) -> std::path::PathBuf {
        let s = self.shared;
        if self.link_stands_for_dir(rel) && s.root.lstat(rel).is_ok_and(|m| m.file_type().is_symlink()) {
            if let Some(physical) = s.root.physical_dir(rel) {
                return physical;
            }
        }
        rel.to_path_buf()
    }

    /// Make a directory we can fill (its final mode comes at the end);
    /// returns whether it was created.
    fn make_dir(&mut self, e: &FileEntry, rel: &Path) -> Result<bool, ReceiveError> {
        if rel.as_os_str().is_empty() {
            return Ok(false);
        }
        let (dir, name) = self.shared.root.parent_of(rel)?;
        match dir.mkdir(&name, 0o700) {
            Ok(()) => Ok(true),
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            Err(err) => {
                let text = syserr("generator", &cat(&[b"recv_generator: mkdir ", &self.shown(rel), b" failed"]), &err);
                self.report(text)?;
                self.shared
                    .message(MsgTag::Error, "*** Skipping any contents from this failed directory ***\n")?;
                self.failed_dir = Some(e.name.clone());
                Ok(false)
            }
        }
    }

    fn symlink(&mut self, i: usize, e: &FileEntry, rel: &Path, existing: Option<&Seen>) -> Result<(), ReceiveError> {
        let s = self.shared;
        if !s.setup.options.preserve_links {
            return self.skip_non_regular(e);
        }
        let Some(target) = &e.link_target else { return Ok(()) };
        let target = if s.setup.munge_symlinks {
            [crate::transfer::fs::symlinks::MUNGE_PREFIX, target.as_slice()].concat()
        } else {
            target.clone()
        };
        let (dir, name) = s.root.parent_of(rel)?;
        if let Some(m) = existing {
            let same_target = if m.is_fake_symlink() {
                crate::transfer::fs::fake_super::read_fake_link(&s.root, rel).is_ok_and(|t| t == target)
            } else {
                m.meta.file_type().is_symlink() && s.root.read_link(rel).is_ok_and(|t| t.as_os_str().as_bytes() == target.as_slice())
            };
            if same_target {
                self.send_item(i, item_flags(s.setup, e, Some(m), 0))?;
                let _ = attrs::apply(s.setup, &dir, &name, e, None);
                s.confirm(i, false)?;
                return Ok(());
            }
            if m.is_dir() {
                if !self.clear_the_way(e, rel, m, "symlink")? {
                    return Ok(());
                }
            } else {
                self.make_way(rel, &dir, &name)?;
            }
        }
        // A `fake super` module keeps the target in a regular file.
        let made = if s.setup.fake_super {
            dir.create_with(&name, &target)
        } else {
            dir.symlink(&target, &name)
        };
        if let Err(err) = made {
            let what = cat(&[b"symlink ", &quoted(e), b" -> \"", &target, b"\" failed"]);
            return Ok(self.report(syserr("generator", &what, &err))?);
        }
        let _ = attrs::apply(s.setup, &dir, &name, e, None);
        self.old_protocol_line(cat(&[&e.name, b" -> ", &target, b"\n"]))?;
        let was_link = existing.filter(|m| m.is_symlink());
        self.send_item(i, item_flags(s.setup, e, was_link, item::LOCAL_CHANGE | item::REPORT_CHANGE))?;
        // A new link counts as sent (the older --remove-sent-files too).
        s.confirm(i, true)?;
        Ok(())
    }

    /// Devices, fifos and sockets: only with -D (--devices/--specials),
    /// and devices only as root (or kept in a `fake super` module). One of
    /// the same kind (and device number) is left and brought up to date.
    fn special(&mut self, i: usize, e: &FileEntry, rel: &Path, existing: Option<&Seen>) -> Result<(), ReceiveError> {
        let s = self.shared;
        let o = s.setup.options;
        let is_device = matches!(e.mode & libc::S_IFMT, libc::S_IFCHR | libc::S_IFBLK);
        if (is_device && !o.preserve_devices) || (!is_device && !o.preserve_specials) {
            return self.skip_non_regular(e);
        }
        if is_device && !s.setup.may_chown && !s.setup.fake_super {
            return Ok(());
        }
        let (dir, name) = s.root.parent_of(rel)?;
        if let Some(m) = existing.filter(|m| m.is_special() && m.type_bits() == e.mode & libc::S_IFMT) {
            if !is_device || m.rdev() == (e.rdev_major, e.rdev_minor) {
                self.send_item(i, item_flags(s.setup, e, Some(m), 0))?;
                let mode = attrs::dest_mode(s.setup, e, Some(m.mode()));
                if let Err(err) = attrs::apply(s.setup, &dir, &name, e, Some(mode)) {
                    self.report(err.text("generator", &self.shown(rel)))?;
                }
                s.confirm(i, false)?;
                return Ok(());
            }
        }
        let what = if is_device { "device file" } else { "special file" };
        match existing {
            Some(m) if m.is_dir() && !self.clear_the_way(e, rel, m, what)? => return Ok(()),
            Some(m) if m.is_dir() => {}
            Some(_) => self.make_way(rel, &dir, &name)?,
            None => {}
        }
        let dev = libc::makedev(e.rdev_major, e.rdev_minor);
        // A `fake super` module keeps an empty regular file in its place.
        let made = if s.setup.fake_super {
            dir.create_with(&name, b"")
        } else {
            dir.mknod(&name, e.mode, dev)
        };
        if let Err(err) = made {
            return Ok(self.report(syserr("generator", &cat(&[b"mknod ", &quoted(e), b" failed"]), &err))?);
        }
        let mode = attrs::dest_mode(s.setup, e, None);
        let _ = attrs::apply(s.setup, &dir, &name, e, Some(mode));
        self.send_item(i, item_flags(s.setup, e, None, item::LOCAL_CHANGE | item::REPORT_CHANGE))?;
        self.old_protocol_line(cat(&[&e.name, b"\n"]))?;
        s.confirm(i, false)?;
        Ok(())
    }

    /// Directories get their final mode and time once nothing more is
    /// written into them (deepest first, so parents' times stay put).
    fn finish_dirs(&mut self) -> Result<(), ReceiveError> {
        let s = self.shared;
        for (i, created) in std::mem::take(&mut self.dirs).into_iter().rev() {
            let e = &s.files[i].entry;
            let rel = s.dest.path_of(&e.name);
            // A new directory gets the sender's mode (masked without -p);
            // an existing one keeps its own unless -p.
            let mut mode = (created || s.setup.options.preserve_perms).then(|| attrs::dest_mode(s.setup, e, None));
            // -K: as upstream, the mode goes to the directory the kept link
            // leads to (chmod follows), owner and times to the link itself.
            // A destination reached through a link is that directory
            // (upstream changed into it): everything goes there.
            let physical = self.attr_path(&rel);
            let target = if self.is_destination(&rel) { physical.clone() } else { rel.clone() };
            if physical != target {
                if let (Some(m), Ok((pdir, pname))) = (mode.take(), s.root.parent_of(&physical)) {
                    let _ = pdir.chmod(&pname, m);
                }
            }
            let (dir, name) = s.root.attr_target(&target)?;
            let result = attrs::apply(s.setup, &dir, &name, e, mode);
            if let Err(err) = result {
                self.report(err.text("generator", &self.shown(&rel)))?;
            }
        }
        Ok(())
    }
}

/// The regular files of directory `dir`, sorted by name (upstream's
/// `get_dirlist`, filters ignored).
fn list_candidates(root: &crate::transfer::fs::module_root::ModuleRoot, dir: &Path) -> Vec<Candidate> {
    let Ok(names) = root.read_dir(dir) else { return Vec::new() };
    let mut out: Vec<Candidate> = names
        .flatten()
        .filter_map(|n| {
            let m = root.lstat(&dir.join(&n)).ok().filter(|m| m.is_file())?;
            Some(Candidate {
                name: n.as_bytes().to_vec(),
                size: m.len(),
                mtime: m.mtime(),
            })
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// Upstream's `itemize()` (protocol >= 29 itemizes everything): how `e`
/// differs from what is there (`old`; None: it is new), on top of `base`.
fn item_flags(setup: &crate::transfer::receive::setup::ReceiveSetup<'_>, e: &FileEntry, old: Option<&Seen>, base: u16) -> u16 {
    let o = setup.options;
    let mut f = base;
    let Some(st) = old else {
        return f | item::IS_NEW;
    };
    let keep_time = o.preserve_times
        && if e.is_dir() {
            !o.omit_dir_times
        } else if e.is_symlink() {
            !o.omit_link_times
        } else {
            true
        };
    if e.is_reg() && e.size != st.len() {
        f |= item::REPORT_SIZE;
    }
    if keep_time {
        if st.mtime() != e.mtime {
            f |= item::REPORT_TIME;
        }
    } else if f & (item::TRANSFER | item::LOCAL_CHANGE) != 0 {
        f |= item::REPORT_TIME;
    }
    if o.preserve_atimes && !e.is_dir() && st.atime() != e.atime {
        f |= item::REPORT_ATIME;
    }
    // Linux cannot chmod a symlink: its permissions never differ.
    if !e.is_symlink() {
        if o.preserve_perms {
            if st.mode() & 0o7777 != e.mode & 0o7777 {
                f |= item::REPORT_PERMS;
            }
        } else if o.preserve_executability && ((st.mode() & 0o111 != 0) ^ (e.mode & 0o111 != 0)) {
            f |= item::REPORT_PERMS;
        }
    }
    if o.preserve_uid && (setup.may_chown || setup.fake_super) && st.uid() != e.uid {
        f |= item::REPORT_OWNER;
    }
    if o.preserve_gid && st.gid() != e.gid {
        f |= item::REPORT_GROUP;
    }
    f
}

/// Flags worth telling the client (upstream's SIGNIFICANT_ITEM_FLAGS).
fn significant(iflags: u16) -> bool {
    iflags & !(item::BASIS_TYPE_FOLLOWS | item::XNAME_FOLLOWS | item::LOCAL_CHANGE) != 0
}

/// The entry's name as upstream's messages print a file name.
/// `"name"`, as upstream quotes a file in messages.
fn quoted(e: &FileEntry) -> Vec<u8> {
    cat(&[b"\"", &e.name, b"\""])
}

fn kind_word(e: &FileEntry) -> &'static str {
    if e.is_dir() {
        "directory"
    } else {
        "file"
    }
}
