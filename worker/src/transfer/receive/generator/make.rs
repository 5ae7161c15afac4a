//! Making things: directories (their modes and times set last),
//! symlinks, devices and special files, clearing what is in the way, and
//! the entries a push may not make.

use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use oxrsyncd_protocol::item;
use oxrsyncd_protocol::message::{cat, syserr};
use oxrsyncd_protocol::mux::MsgTag;

use crate::transfer::flist::FileEntry;
use crate::transfer::fs::fake_super::Seen;
use crate::transfer::options::client::DeleteTiming;
use crate::transfer::receive::alt_dest::Match;
use crate::transfer::receive::attrs;
use crate::transfer::receive::generator::flags::item_flags;
use crate::transfer::receive::generator::output::quoted;
use crate::transfer::receive::generator::state::Generator;
use crate::transfer::receive::setup::ReceiveError;

impl<'s, W: Write> Generator<'s, '_, W> {
    /// A directory (or other non-file) stands where `e` comes: remove it,
    /// with everything in it only under `--delete` or `--force` (upstream's
    /// `delete_item` with DEL_FOR_*). Such removals are not deletions: not
    /// logged or counted. Returns whether the way is clear; if not, the
    /// client hears upstream's two lines and the entry is skipped.
    pub(super) fn clear_the_way(&mut self, e: &FileEntry, rel: &Path, existing: &Seen, what: &str) -> Result<bool, ReceiveError> {
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
        } else if s.root.is_dry_run() && !crate::transfer::receive::delete::children_of(s, rel).is_empty() {
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
    pub(super) fn make_way(
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
    pub(super) fn is_content_dir(&self, e: &FileEntry) -> bool {
        e.is_dir() && !e.no_content_dir
    }

    /// Incremental recursion: a directory met in its parent's list is only
    /// made sure of (made, when times are kept, so the parent's time can
    /// be set at once), as upstream's generator does; the rest waits for
    /// its own list. Errors show then.
    pub(super) fn early_directory(&mut self, e: &FileEntry, rel: &Path) -> Result<(), ReceiveError> {
        let s = self.shared;
        let o = s.setup.options;
        if !o.preserve_times
            || o.omit_dir_times
            || o.dry_run
            || o.existing_only
            || s.setup.daemon_filters.excludes(rel.as_os_str().as_bytes(), true)
        {
            return Ok(());
        }
        match s.look(rel) {
            Some(m) if m.is_dir() => return Ok(()),
            Some(_) if self.link_stands_for_dir(rel) && s.root.stat(rel).is_ok_and(|m| m.is_dir()) => return Ok(()),
            Some(_) => {
                let (dir, name) = s.root.parent_of(rel)?;
                if dir.unlink(&name).is_err() {
                    return Ok(());
                }
            }
            None => {}
        }
        let (dir, name) = s.root.parent_of(rel)?;
        if dir.mkdir(&name, 0o700).is_ok() {
            self.early_created.insert(e.name.clone());
        }
        Ok(())
    }

    /// A directory in full: itemized as index `i`, made or given its mode,
    /// its time kept for the end, and with `--delete` swept of what the
    /// list does not hold.
    pub(super) fn directory(&mut self, i: usize, e: &FileEntry, rel: &Path, existing: Option<&Seen>) -> Result<(), ReceiveError> {
        let s = self.shared;
        let made_early = self.early_created.remove(&e.name);
        let old = existing.filter(|m| m.is_dir() && !made_early);
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
            Some(_) if made_early => true,
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
        // Kept until the end, past the directory's list: charged for good.
        crate::transfer::limits::budget::charge(e.memory_cost(), "the directory tree")?;
        self.dirs.push((e.clone(), created));
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
    pub(super) fn missing_argument(&mut self, e: &FileEntry, rel: &Path) -> Result<(), ReceiveError> {
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

    /// Upstream's notice (info level NONREG, on unless `-q`) for a link or
    /// node the options do not transfer.
    pub(super) fn skip_non_regular(&mut self, e: &FileEntry) -> Result<(), ReceiveError> {
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
    pub(super) fn link_stands_for_dir(&self, rel: &Path) -> bool {
        self.shared.setup.options.keep_dirlinks || self.is_destination(rel)
    }

    /// Whether `rel` is the destination directory itself (the list's `.`).
    pub(super) fn is_destination(&self, rel: &Path) -> bool {
        let s = self.shared;
        s.dest.rename_to.is_none() && rel == s.dest.dir
    }

    /// Where a directory's attributes are set: the directory itself, or
    /// the directory a symlink standing for it at `rel` leads to.
    pub(super) fn attr_path(&self, rel: &Path) -> std::path::PathBuf {
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
    pub(super) fn make_dir(&mut self, e: &FileEntry, rel: &Path) -> Result<bool, ReceiveError> {
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

    pub(super) fn symlink(&mut self, i: usize, e: &FileEntry, rel: &Path, existing: Option<&Seen>) -> Result<(), ReceiveError> {
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
        // --safe-links: a link leading out of the tree is not made, judged
        // by the target as it would be stored (a munged one is absolute),
        // as upstream's generator does.
        if s.setup.options.safe_links && crate::transfer::fs::symlinks::is_unsafe(&target, &e.name) {
            if s.setup.verbosity() >= 1 {
                s.info(cat(&[b"ignoring unsafe symlink ", &quoted(e), b" -> \"", &target, b"\"\n"]))?;
            }
            return Ok(());
        }
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
    pub(super) fn special(&mut self, i: usize, e: &FileEntry, rel: &Path, existing: Option<&Seen>) -> Result<(), ReceiveError> {
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
    pub(super) fn finish_dirs(&mut self) -> Result<(), ReceiveError> {
        let s = self.shared;
        for (e, created) in std::mem::take(&mut self.dirs).into_iter().rev() {
            let e = &e;
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
            // As upstream's set_file_attrs, a directory whose time is still
            // the list's second (nothing changed in it) keeps its own.
            let now_mtime = s.root.lstat(&target).map_or(i64::MIN, |m| m.mtime());
            let result = attrs::apply_settled(s.setup, &dir, &name, e, mode, now_mtime);
            if let Err(err) = result {
                self.report(err.text("generator", &self.shown(&rel)))?;
            }
        }
        Ok(())
    }
}
