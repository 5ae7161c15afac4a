//! `--delete` on a push (upstream's `delete_in_dir` / `delete_item`): in
//! each directory of the list, what the module holds but the list does
//! not name is removed, directories with their contents, deepest first,
//! each reported to the client (MSG_DELETED, which it prints as
//! "deleting NAME") and counted for its `--stats`. Files the module's own
//! filters exclude, and those the client's rules protect, stay; so do
//! those that the per-directory merge files at the destination exclude
//! (`-F`'s `.rsync-filter`, any `dir-merge` rule the client sent).

use std::collections::HashSet;
use std::ffi::OsStr;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::transfer::filter::merge::MergeStack;
use crate::transfer::filter::rules::FilterList;
use crate::transfer::flist::f_name_cmp;
use crate::transfer::receive::backup::Kept;
use crate::transfer::receive::shared::Shared;
use oxrsyncd_protocol::message::{cat, syserr};
use oxrsyncd_protocol::mux::MsgTag;

/// Deletion counts, as upstream's `stats.deleted_*` (`files` counts all).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DeleteStats {
    pub files: i32,
    pub dirs: i32,
    pub symlinks: i32,
    pub devices: i32,
    pub specials: i32,
}

/// Deletion state for one push.
pub(crate) struct Deleter<'f> {
    /// Every name the list holds (active entries).
    listed: HashSet<Vec<u8>>,
    /// The client's rules for the receiving side.
    client_filters: &'f FilterList,
    /// The client's dir-merge rules, read from the destination's
    /// directories as each is cleaned.
    merge: MergeStack,
    /// The transfer's destination, module-relative (where merge files are
    /// first looked for).
    base: Vec<u8>,
    /// The sender could not read everything: deleting could lose data.
    skip_for_io_error: bool,
    warned: bool,
    pub stats: DeleteStats,
    /// `--max-delete`: how many may go (None: no limit).
    limit: Option<i64>,
    /// Deletions refused by the limit.
    pub skipped: u32,
}

impl<'f> Deleter<'f> {
    pub(crate) fn new(
        listed: HashSet<Vec<u8>>,
        client_filters: &'f FilterList,
        daemon_filters: &FilterList,
        base: &Path,
        skip_for_io_error: bool,
        limit: Option<i64>,
    ) -> Self {
        Deleter {
            listed,
            client_filters,
            merge: MergeStack::new(client_filters.merges.clone(), daemon_filters.clone()),
            base: base.as_os_str().as_bytes().to_vec(),
            skip_for_io_error,
            warned: false,
            stats: DeleteStats::default(),
            // Upstream: a negative limit means no deletions at all.
            limit: limit.map(|n| n.max(0)),
            skipped: 0,
        }
    }

    /// Incremental recursion: the names of the list now worked in, which
    /// holds the contents of the directory swept next.
    pub(crate) fn set_listed(&mut self, listed: HashSet<Vec<u8>>) {
        self.listed = listed;
    }

    /// The sender reported an I/O error in a later list: no deletions
    /// from now on.
    pub(crate) fn skip_from_now(&mut self) {
        self.skip_for_io_error = true;
    }

    /// Remove what directory `dir_name` (its name in the list; `.` for the
    /// destination itself, found at `rel`) holds that the list does not.
    pub(crate) fn delete_in_dir<W: Write>(&mut self, s: &Shared<'_, W>, dir_name: &[u8], rel: &Path) -> io::Result<()> {
        if self.skip_for_io_error {
            if !self.warned {
                self.warned = true;
                s.info("IO error encountered -- skipping file deletion\n")?;
            }
            return Ok(());
        }
        let protocol = s.setup.protocol;
        let mut children = children_of(s, rel);
        children.sort_by(|a, b| f_name_cmp(&a.0, a.1, &b.0, b.1, protocol));
        let frame = self.merge.frame_at(&s.root, &self.base, rel.as_os_str().as_bytes());
        // Merge rules left out for the budget would leave what they protect
        // unprotected: the push ends (exit 22) rather than delete it.
        if let Some(over) = self.merge.take_over_budget() {
            return Err(io::Error::other(over));
        }
        for (child, is_dir, mode) in children.into_iter().rev() {
            let name = if dir_name == b"." {
                child.clone()
            } else {
                [dir_name, b"/", &child].concat()
            };
            if self.listed.contains(&name) {
                continue;
            }
            let child_rel = rel.join(OsStr::from_bytes(&child));
            let module_path = child_rel.as_os_str().as_bytes();
            if s.setup.daemon_filters.excludes(module_path, is_dir)
                || self.client_filters.excludes_at(&name, module_path, is_dir, frame.as_deref())
            {
                continue;
            }
            self.delete_item(s, &name, &child_rel, mode)?;
        }
        Ok(())
    }

    /// Make room for a non-directory where directory `name` (at `rel`)
    /// stands (upstream's `delete_item` with DEL_FOR_*|DEL_RECURSE): what
    /// it holds is deleted as any deletion is (logged, counted, backed
    /// up), the directory itself silently. Returns the error that kept the
    /// directory, if one did.
    pub(crate) fn make_room<W: Write>(&mut self, s: &Shared<'_, W>, name: &[u8], rel: &Path) -> io::Result<Result<(), io::Error>> {
        let protocol = s.setup.protocol;
        let mut children = children_of(s, rel);
        children.sort_by(|a, b| f_name_cmp(&a.0, a.1, &b.0, b.1, protocol));
        for (child, _, mode) in children.into_iter().rev() {
            let child_name = [name, b"/", &child].concat();
            self.delete_item(s, &child_name, &rel.join(OsStr::from_bytes(&child)), mode)?;
        }
        let (dir, leaf) = s.root.parent_of(rel)?;
        Ok(dir.rmdir(&leaf))
    }

    /// `--delete-missing-args`: delete what is at `rel` for a missing
    /// argument, logged and counted as any deletion; a directory with
    /// contents only when `recurse` (`--delete` or `--force`).
    pub(crate) fn delete_missing<W: Write>(
        &mut self,
        s: &Shared<'_, W>,
        name: &[u8],
        rel: &Path,
        mode: u32,
        recurse: bool,
    ) -> io::Result<()> {
        let is_dir = mode & libc::S_IFMT == libc::S_IFDIR;
        if is_dir && !recurse && !children_of(s, rel).is_empty() {
            return s.info(cat(&[b"cannot delete non-empty directory: ", name, b"\n"]));
        }
        self.delete_item(s, name, rel, mode)
    }

    /// Delete one item (a directory with everything in it).
    fn delete_item<W: Write>(&mut self, s: &Shared<'_, W>, name: &[u8], rel: &Path, mode: u32) -> io::Result<()> {
        let is_dir = mode & libc::S_IFMT == libc::S_IFDIR;
        if is_dir {
            let protocol = s.setup.protocol;
            let mut children = children_of(s, rel);
            children.sort_by(|a, b| f_name_cmp(&a.0, a.1, &b.0, b.1, protocol));
            for (child, _, child_mode) in children.into_iter().rev() {
                let child_name = [name, b"/", &child].concat();
                self.delete_item(s, &child_name, &rel.join(OsStr::from_bytes(&child)), child_mode)?;
            }
        }
        if self.limit.is_some_and(|max| i64::from(self.stats.files) >= max) {
            self.skipped += 1;
            return Ok(());
        }
        let (dir, leaf) = s.root.parent_of(rel)?;
        let backups = s.backups.as_ref().filter(|b| !b.is_backup_file(name));
        let (what, done) = if is_dir {
            ("rmdir", dir.rmdir(&leaf))
        } else if let Some(b) = backups {
            // -b: the file is kept (moved) rather than removed.
            match b.keep(&s.root, rel, true) {
                Ok(Kept::Moved) => ("make_backup", Ok(())),
                Ok(_) => ("unlink", dir.unlink(&leaf)),
                Err(e) => ("make_backup", Err(e)),
            }
        } else {
            ("unlink", dir.unlink(&leaf))
        };
        match done {
            Ok(()) => {
                self.count(mode);
                // Directories travel with their trailing NUL (upstream's log_delete).
                let mut payload = name.to_vec();
                if is_dir {
                    payload.push(0);
                }
                let mut out = s.out.lock().unwrap_or_else(|e| e.into_inner());
                let o = s.setup.options;
                if s.setup.protocol >= 29 {
                    out.message_ahead(MsgTag::Deleted, &payload)?;
                } else if o.itemize {
                    // Upstream's server formats it with the client's "%i"
                    // alone: the name is not there.
                    out.message_ahead(MsgTag::Info, b"*deleting  \n")?;
                } else if s.setup.verbosity() > 0 {
                    let slash: &[u8] = if is_dir { b"/" } else { b"" };
                    out.message_ahead(MsgTag::Info, &cat(&[b"deleting ", name, slash, b"\n"]))?;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOTEMPTY) => {
                s.info(cat(&[b"cannot delete non-empty directory: ", name, b"\n"]))?;
            }
            Err(e) => {
                let what = cat(&[b"delete_file: ", what.as_bytes(), b"(", name, b") failed"]);
                s.message(MsgTag::ErrorXfer, syserr("generator", &what, &e))?;
            }
        }
        Ok(())
    }

    fn count(&mut self, mode: u32) {
        self.stats.files += 1;
        match mode & libc::S_IFMT {
            libc::S_IFREG => {}
            libc::S_IFDIR => self.stats.dirs += 1,
            libc::S_IFLNK => self.stats.symlinks += 1,
            libc::S_IFCHR | libc::S_IFBLK => self.stats.devices += 1,
            _ => self.stats.specials += 1,
        }
    }
}

/// The entries of module directory `rel`: name, whether a directory, mode.
pub(super) fn children_of<W: Write>(s: &Shared<'_, W>, rel: &Path) -> Vec<(Vec<u8>, bool, u32)> {
    let Ok(names) = s.root.read_dir(rel) else { return Vec::new() };
    let Ok(dir) = s.root.dir(rel) else { return Vec::new() };
    names
        .flatten()
        .filter_map(|n| {
            let st = dir.lstat(&n).ok()?;
            let mode = st.st_mode;
            Some((n.as_bytes().to_vec(), mode & libc::S_IFMT == libc::S_IFDIR, mode))
        })
        .collect()
}
