//! Reading the client's file lists on a push (upstream's `recv_file_list`
//! on the receiving side): each list decoded, charged to the session's
//! budget, its owners mapped and its links kept inside the module, sorted
//! with duplicates cleared. With incremental recursion the lists after the
//! first arrive in the middle of the transfer, each announced by the index
//! of the directory whose contents it holds, and a hostile client can name
//! any index at any time: upstream's checks, with its words, refuse a
//! directory index out of range, one whose entry was cleared as a
//! duplicate, a second list for the same directory, a list after every
//! list was freed, an entry outside the list's directory and a hard-link
//! group that no earlier list declared.

use std::collections::HashSet;
use std::io::Read;
use std::sync::Arc;

use bstr::ByteSlice;

use oxrsyncd_protocol::ndx::NDX_FLIST_OFFSET;

use crate::transfer::flist::error::FlistError;
use crate::transfer::flist::sort::sort_and_mark_duplicates;
use crate::transfer::flist::{FileEntry, FlistDecoder, FlistTrailer, HlinkRole};
use crate::transfer::fs::paths::{dir_depth, sanitize_link_target};
use crate::transfer::limits::budget::{self, Reservation};
use crate::transfer::receive::lists::{FileLists, RecvList};
use crate::transfer::receive::meta::MetaStore;
use crate::transfer::receive::owners;
use crate::transfer::receive::setup::{ReceiveError, ReceiveSetup};

/// How the pushed entries get our owners: `--usermap`/`--groupmap`
/// parsed once, names looked up unless numeric.
pub(crate) struct OwnerMaps {
    usermap: Option<owners::NameMap>,
    groupmap: Option<owners::NameMap>,
    /// Names are looked up here (no `--numeric-ids`, no module `numeric ids`).
    by_name: bool,
    /// The module's `name converter`, which names go through if it has one.
    converter: Option<std::sync::Arc<crate::name_converter::NameConverter>>,
    /// Inline user and group names already screened by [`OwnerMaps::screen`].
    screened: (usize, usize),
}

impl OwnerMaps {
    /// The session's maps, with their notices for the client.
    pub(crate) fn parse(setup: &ReceiveSetup<'_>) -> Result<(OwnerMaps, Vec<String>), ReceiveError> {
        let opts = setup.options;
        let mut notices = Vec::new();
        let ids = owners::LocalIds {
            converter: setup.name_converter.map(|c| &**c),
        };
        let mut parse_map = |text: Option<&String>, users: bool| -> Result<Option<owners::NameMap>, ReceiveError> {
            let Some(text) = text else { return Ok(None) };
            let (map, map_notices) = owners::NameMap::parse_with(text, users, ids).map_err(|e| ReceiveError::Usage(format!("{e}\n")))?;
            notices.extend(map_notices);
            Ok(Some(map))
        };
        let usermap = parse_map(opts.usermap.as_ref(), true)?;
        let groupmap = parse_map(opts.groupmap.as_ref(), false)?;
        let maps = OwnerMaps {
            usermap,
            groupmap,
            by_name: !opts.numeric_ids && !setup.module_numeric_ids,
            converter: setup.name_converter.cloned(),
            screened: (0, 0),
        };
        Ok((maps, notices))
    }

    /// Names the client sent with its entries (inline, as it does with
    /// incremental recursion) go to the name converter as they arrive, as
    /// upstream's receiver looks each up when it reads it: one it may not
    /// see is reported then, whatever comes after.
    pub(crate) fn screen(&mut self, trailer: &FlistTrailer) {
        let Some(c) = &self.converter else { return };
        let (users, groups) = (&trailer.inline_uid_names, &trailer.inline_gid_names);
        for (names, users, seen) in [(users, true, &mut self.screened.0), (groups, false, &mut self.screened.1)] {
            for (_, name) in names.iter().skip(*seen) {
                let _ = c.id_of(&String::from_utf8_lossy(name), users);
            }
            *seen = names.len();
        }
    }

    /// Give `entries` our ids, by the names the client sent (inline, and
    /// in the list's end without incremental recursion), and the ACLs
    /// received with them too (`-A`, whose inline names are the store's).
    fn apply(&self, trailer: &FlistTrailer, inline_only: bool, entries: &mut [FileEntry], meta: Option<&MetaStore>) {
        let names = |inline: &[(u32, Vec<u8>)], listed: &[(u32, Vec<u8>)]| -> Vec<(u32, Vec<u8>)> {
            let listed = if inline_only { &[][..] } else { listed };
            inline.iter().chain(listed).cloned().collect()
        };
        let uid_names = names(&trailer.inline_uid_names, &trailer.uid_names);
        let gid_names = names(&trailer.inline_gid_names, &trailer.gid_names);
        let owners = owners::Owners {
            uid_names: &uid_names,
            gid_names: &gid_names,
            usermap: self.usermap.as_ref(),
            groupmap: self.groupmap.as_ref(),
            by_name: self.by_name,
            ids: owners::LocalIds {
                converter: self.converter.as_deref(),
            },
        };
        owners.apply(entries);
        let Some(meta) = meta else { return };
        if !inline_only {
            owners.apply_to_acls(meta);
            return;
        }
        let (acl_users, acl_groups) = meta.inline_names();
        let uid_names: Vec<_> = uid_names.iter().cloned().chain(acl_users).collect();
        let gid_names: Vec<_> = gid_names.iter().cloned().chain(acl_groups).collect();
        owners::Owners {
            uid_names: &uid_names,
            gid_names: &gid_names,
            ..owners
        }
        .apply_to_acls(meta);
    }
}

/// A directory of the lists received (upstream's `dir_flist`): each
/// list's directories in sorted order, appended list after list. A later
/// list names its directory by the position here.
struct DirSlot {
    /// The directory's entry: the list of its contents starts with it.
    entry: FileEntry,
    /// False when its list cleared it as a duplicate.
    active: bool,
    /// Its contents arrived already (upstream's FLAG_GOT_DIR_FLIST).
    got_list: bool,
}

/// Reads every list of one push.
pub(crate) struct ListReader {
    decoder: FlistDecoder,
    protocol: u32,
    inc_recurse: bool,
    /// `-R`: names may start with a slash.
    relative: bool,
    /// Symlink targets are kept inside an unchrooted module.
    sanitize_links: bool,
    /// `-H` with incremental recursion: groups are tracked across lists.
    hard_link_groups: bool,
    owners: OwnerMaps,
    /// Upstream's `dir_flist` (incremental recursion only).
    dirs: Vec<DirSlot>,
    /// `-H`: the groups declared so far (by their first entry's index).
    known_groups: HashSet<i32>,
    /// Where the next list starts.
    next_ndx_start: i32,
    /// `-A`: the session's received ACLs, whose ids are mapped list by list.
    acls: Option<Arc<MetaStore>>,
}

/// A list decoding error as the push reports it.
pub(crate) fn list_error(e: FlistError) -> ReceiveError {
    match e {
        FlistError::UnsafeName { name } => ReceiveError::UnsafeName(name),
        FlistError::OverBudget(over) => ReceiveError::OutOfMemory(over),
        other => ReceiveError::Protocol(other.to_string()),
    }
}

impl ListReader {
    /// A reader that goes on from `decoder`, which read the first list's
    /// entries.
    pub(crate) fn new(decoder: FlistDecoder, setup: &ReceiveSetup<'_>, owners: OwnerMaps, inc_recurse: bool) -> ListReader {
        let opts = setup.options;
        ListReader {
            decoder,
            protocol: setup.protocol,
            inc_recurse,
            relative: opts.relative,
            sanitize_links: setup.sanitize_paths && !setup.munge_symlinks,
            hard_link_groups: inc_recurse && opts.preserve_hard_links,
            owners,
            dirs: Vec::new(),
            known_groups: HashSet::new(),
            next_ndx_start: i32::from(inc_recurse),
            acls: opts.preserve_acls.then(|| Arc::clone(&setup.meta)),
        }
    }

    /// Hard-link roles of the list just read, by receiving position.
    pub(crate) fn hlink_roles(&self) -> &[HlinkRole] {
        self.decoder.hlink_roles()
    }

    /// The first list, from its entries as decoded (`held`: their budget).
    pub(crate) fn first(&mut self, entries: Vec<FileEntry>, io_error: i32, held: Reservation) -> Result<RecvList, ReceiveError> {
        self.build(entries, io_error, None, held)
    }

    /// Incremental recursion: the list the client announced with index
    /// `wire_ndx` (`NDX_FLIST_OFFSET - dir_ndx`), read whole and checked.
    pub(crate) fn sublist<R: Read>(&mut self, wire_ndx: i32, input: &mut R, lists: &FileLists) -> Result<Arc<RecvList>, ReceiveError> {
        let dir_ndx = NDX_FLIST_OFFSET - wire_ndx;
        let used = self.dirs.len();
        if dir_ndx < 0 || dir_ndx as usize >= used {
            return Err(ReceiveError::Violation(format!(
                "Invalid dir index: {wire_ndx} ({NDX_FLIST_OFFSET} - {}) [receiver]\n",
                i64::from(NDX_FLIST_OFFSET) - used as i64 + 1
            )));
        }
        if lists.is_empty() {
            return Err(ReceiveError::Violation(
                "rsync: refusing sub-flist after final flist was freed\n".into(),
            ));
        }
        let slot = &mut self.dirs[dir_ndx as usize];
        if !slot.active {
            return Err(ReceiveError::Violation(format!(
                "rsync: refusing flist for cleared dir_ndx {dir_ndx}\n"
            )));
        }
        if slot.got_list {
            return Err(ReceiveError::Violation(format!(
                "rsync: refusing malicious duplicate flist for dir {dir_ndx}\n"
            )));
        }
        slot.got_list = true;
        self.decoder.start_list(self.next_ndx_start as usize);
        let mut held = budget::reserve(0, "the file list")?;
        let mut entries = Vec::new();
        while let Some(e) = self.decoder.next(input).map_err(list_error)? {
            // Kept twice: as received and sorted.
            held.grow(2 * e.memory_cost(), "the file list")?;
            entries.push(e);
            self.owners.screen(self.decoder.trailer());
        }
        let io_error = self.decoder.trailer().io_error;
        let list = self.build(entries, io_error, Some(dir_ndx as usize), held)?;
        Ok(Arc::new(list))
    }

    /// One list, decoded: checked, owners mapped, sorted, its directories
    /// added to the tree.
    fn build(
        &mut self,
        mut entries: Vec<FileEntry>,
        io_error: i32,
        dir_ndx: Option<usize>,
        held: Reservation,
    ) -> Result<RecvList, ReceiveError> {
        if self.inc_recurse {
            let parent = dir_ndx.map_or(&b""[..], |d| &self.dirs[d].entry.name[..]);
            check_in_dir(&entries, parent, self.relative)?;
        }
        if self.sanitize_links {
            sanitize_link_targets(&mut entries);
        }
        self.owners
            .apply(self.decoder.trailer(), self.inc_recurse, &mut entries, self.acls.as_deref());
        let files = sort_and_mark_duplicates(entries, self.protocol);
        let ndx_start = self.next_ndx_start;
        let groups = if self.hard_link_groups {
            self.hard_link_groups(&files, ndx_start)?
        } else {
            Vec::new()
        };
        let mut parent = dir_ndx.map(|d| self.dirs[d].entry.clone());
        if self.inc_recurse {
            for f in files.iter().filter(|f| f.entry.is_dir()) {
                // Kept for the session, past its list: charged for good.
                budget::charge(f.entry.memory_cost(), "the directory tree")?;
                self.dirs.push(DirSlot {
                    entry: f.entry.clone(),
                    active: f.active,
                    got_list: false,
                });
            }
            // The first list's parent is its "." (the transfer root), when
            // it has one; upstream trusts nothing else there.
            if dir_ndx.is_none() && files.iter().find(|f| f.active).is_some_and(|f| f.entry.name == b".") {
                parent = self.dirs.first().map(|d| d.entry.clone());
            }
            self.next_ndx_start = ndx_start + files.len() as i32 + 1;
        }
        Ok(RecvList::new(ndx_start, files, parent, groups, io_error, Some(held)))
    }

    /// `-H` across lists (upstream's `match_gnums`): each linked entry's
    /// group, named by the index of the group's first entry. A group this
    /// list does not declare must come from an earlier list.
    fn hard_link_groups(
        &mut self,
        files: &[crate::transfer::flist::SortedEntry],
        ndx_start: i32,
    ) -> Result<Vec<Option<i32>>, ReceiveError> {
        let roles = self.decoder.hlink_roles();
        let mut groups = vec![None; files.len()];
        let mut linked: Vec<(i32, usize)> = Vec::new();
        for (pos, f) in files.iter().enumerate() {
            let gnum = match roles.get(f.orig_index) {
                Some(HlinkRole::Leader) => ndx_start + f.orig_index as i32,
                Some(HlinkRole::Follower(first)) => *first as i32,
                _ => continue,
            };
            linked.push((gnum, pos));
        }
        linked.sort_unstable();
        for (gnum, pos) in linked {
            if !self.known_groups.contains(&gnum) {
                if gnum < ndx_start {
                    return Err(ReceiveError::Violation(format!(
                        "hard-link gnum {gnum} precedes flist start {ndx_start}\n"
                    )));
                }
                self.known_groups.insert(gnum);
            }
            if files[pos].active && files[pos].entry.is_reg() {
                groups[pos] = Some(gnum);
            }
        }
        Ok(groups)
    }
}

/// Incremental recursion: every entry of a list lies directly in the
/// list's directory (`parent`, empty for the first list), as upstream's
/// receiver checks before it keeps any.
fn check_in_dir(entries: &[FileEntry], parent: &[u8], relative: bool) -> Result<(), ReceiveError> {
    for e in entries {
        let mut dir = e.name.rsplit_once_str("/").map_or(&b""[..], |(dir, _)| dir);
        if relative {
            dir = dir.strip_prefix(b"/").unwrap_or(dir);
        }
        if dir != parent {
            return Err(ReceiveError::OutsideListDir(String::from_utf8_lossy(&e.name).into_owned()));
        }
    }
    Ok(())
}

/// A module that is not chrooted keeps received symlink targets inside
/// itself when it does not munge them, as upstream's `recv_file_entry`
/// sanitises each against the depth of the link's directory.
fn sanitize_link_targets(entries: &mut [FileEntry]) {
    for e in entries.iter_mut() {
        let depth = dir_depth(e.name.rsplit_once_str("/").map_or(&b""[..], |(dir, _)| dir));
        if let Some(target) = e.link_target.as_mut().filter(|t| !t.is_empty()) {
            *target = sanitize_link_target(target, depth);
        }
    }
}
