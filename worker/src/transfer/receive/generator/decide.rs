//! The per-entry decision: what each entry of the list is and what it
//! needs (made, skipped, up to date, or asked for), as upstream's
//! `recv_generator` decides it, with the item flags that say why.

use std::io::{BufReader, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use oxrsyncd_protocol::item;
use oxrsyncd_protocol::message::{cat, fname_in, syserr};
use oxrsyncd_protocol::mux::MsgTag;

use crate::transfer::delta::FileSum;
use crate::transfer::flist::FileEntry;
use crate::transfer::fs::fake_super::Seen;
use crate::transfer::receive::attrs;
use crate::transfer::receive::generator::flags::item_flags;
use crate::transfer::receive::generator::output::{kind_word, quoted};
use crate::transfer::receive::generator::state::{Generator, Verdict};
use crate::transfer::receive::setup::ReceiveError;

impl<'s, W: Write> Generator<'s, '_, W> {
    /// Entry `i` of the lists. With incremental recursion a directory is
    /// only made sure of here: it is handled in full when its own list
    /// comes (see [`Generator::generate_entry`]).
    pub(super) fn generate(&mut self, i: usize) -> Result<(), ReceiveError> {
        let list = self.list_for(i)?;
        let Some(f) = list.get(i) else { return Ok(()) };
        if !f.active {
            return Ok(());
        }
        let early_dir = self.shared.lists.inc_recurse && f.entry.is_dir();
        self.generate_entry(i, &f.entry, early_dir, list.group_of(i))
    }

    /// One entry, itemized as index `i` (upstream's `recv_generator`).
    /// `early_dir`: a directory in its parent's list; `group`: its `-H`
    /// group with incremental recursion.
    pub(super) fn generate_entry(&mut self, i: usize, e: &FileEntry, early_dir: bool, group: Option<i32>) -> Result<(), ReceiveError> {
        let s = self.shared;
        let o = s.setup.options;
        if let Some(dir) = &self.failed_dir {
            if e.name.len() > dir.len() && e.name.starts_with(dir) && e.name[dir.len()] == b'/' {
                return Ok(());
            }
            self.failed_dir = None;
        }
        if o.relative && o.no_implied_dirs && crate::transfer::receive::relative::is_implied_dir(e, s.setup.protocol) {
            // Sent only to carry the path; the client asked for it not to be made.
            return Ok(());
        }
        let rel = s.dest.path_of(&e.name);
        if e.mode == 0 {
            return self.missing_argument(e, &rel);
        }
        if o.relative && !o.dry_run {
            if let Err(err) = crate::transfer::receive::relative::make_parents(&s.root, &rel) {
                let parent = rel.parent().unwrap_or(Path::new("")).as_os_str().as_bytes();
                let what = cat(&[b"recv_generator: mkdir ", &fname_in(parent, s.setup.module_name), b" failed"]);
                return Ok(self.report(syserr("generator", &what, &err))?);
            }
        }
        if early_dir {
            return self.early_directory(e, &rel);
        }
        if s.setup.daemon_filters.excludes(rel.as_os_str().as_bytes(), e.is_dir()) {
            let text = cat(&[
                b"ERROR: daemon refused to receive ",
                kind_word(e).as_bytes(),
                b" ",
                &quoted(e),
                b"\n",
            ]);
            self.report(text)?;
            if e.is_dir() {
                // As upstream's generator: nothing below a refused
                // directory is looked at (or reported) either.
                s.message(MsgTag::Error, "*** Skipping any contents from this failed directory ***\n")?;
                self.failed_dir = Some(e.name.clone());
            }
            return Ok(());
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
            return self.directory(i, e, &rel, existing.as_ref());
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
        match group {
            Some(gnum) => {
                if self.follow_group(i, e, gnum)? {
                    return Ok(());
                }
                self.last_requested = None;
                self.regular_file(i, e, &rel, existing)?;
                self.lead_group(i, e, gnum)
            }
            None => self.regular_file(i, e, &rel, existing),
        }
    }

    /// A regular file: asked for unless it is up to date (or settled from
    /// a `--*-dest` directory, or left alone on purpose).
    fn regular_file(&mut self, i: usize, e: &FileEntry, rel: &Path, existing: Option<Seen>) -> Result<(), ReceiveError> {
        let s = self.shared;
        let o = s.setup.options;
        let rel = rel.to_path_buf();
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
                let iflags = self.perms_after_acl(e, existing.as_ref(), item_flags(s.setup, e, existing.as_ref(), 0));
                self.send_item(i, iflags)?;
                let (dir, name) = s.root.parent_of(&rel)?;
                let mode = attrs::dest_mode(s.setup, e, existing.as_ref().map(|m| m.mode()));
                let old_mtime = existing.as_ref().map_or(i64::MIN, |m| m.mtime());
                if let Err(err) = attrs::apply_settled(s.setup, &dir, &name, e, Some(mode), old_mtime) {
                    self.report(err.text("generator", &self.shown(&rel)))?;
                }
                s.confirm(i, false)?;
            }
            Verdict::Skip => {}
        }
        Ok(())
    }

    /// Upstream's quick check, with the options that change it.
    pub(super) fn verdict(&self, e: &FileEntry, rel: &Path, existing: Option<&Seen>) -> Verdict {
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
    pub(super) fn quick_check(&self, e: &FileEntry, path: &Path, old: &Seen) -> bool {
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
    pub(super) fn unchanged_attrs(&self, e: &FileEntry, old: &Seen) -> bool {
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

    /// `-c`: the whole-file checksum of what we have against the list's.
    pub(super) fn same_checksum(&self, rel: &Path, e: &FileEntry) -> bool {
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
}
