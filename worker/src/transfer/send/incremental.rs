//! The file lists a pull sends, with and without incremental recursion
//! (CF_INC_RECURSE): upstream's flist chain (`flist_new`, `flist_for_ndx`,
//! `flist_free`), its directory tree (`dir_flist`, `add_dirs_to_tree`) and
//! `send_file_list` / `send_extra_file_list` for a daemon sender.
//!
//! Without incremental recursion there is one list, walked whole, indexes
//! from 0. With it, the first list holds the arguments (and a `dir/`
//! argument's immediate contents) and every directory's contents follow in
//! a list of their own, walked only when it is due: the sender keeps
//! [`MIN_FILECNT_LOOKAHEAD`] entries ahead of the list the client is working
//! in, and the client releases each list with an `NDX_DONE` once it is done
//! with it. Memory is bounded by one node per directory (as upstream's
//! `dir_flist`) plus the lists in flight, not by the tree.
//!
//! Index rules (upstream `flist_new`): the first incremental list starts at
//! 1, each next one at the previous start + its length + 1; the gap index
//! (`ndx_start - 1`) names the list's parent directory. A list is announced
//! by `NDX_FLIST_OFFSET - dir_ndx`, where `dir_ndx` is the directory's
//! position in the directory tree (every directory of every list sent, in
//! sending-then-sorted order), and the last one is followed by
//! `NDX_FLIST_EOF`.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use crate::transfer::delta::ChecksumKind;
use crate::transfer::flist::{f_name_cmp, FileEntry, FlistEncoder};
use crate::transfer::send::walk::walker::{Notice, Walked, Walker};
use oxrsyncd_protocol::message::{self, cat, fname_in, syserr};
use oxrsyncd_protocol::mux::MsgTag;
use oxrsyncd_protocol::mux::MuxOut;
use oxrsyncd_protocol::ndx::{NdxCodec, NDX_FLIST_EOF, NDX_FLIST_OFFSET};
use oxrsyncd_protocol::IoError;

/// Upstream's MIN_FILECNT_LOOKAHEAD: how many entries the sender keeps
/// listed beyond the list the client is working in.
pub(crate) const MIN_FILECNT_LOOKAHEAD: i64 = 1000;
/// Upstream's IO_BUFFER_SIZE: list data held back (so that messages
/// overtake it, as upstream's output buffer lets them) up to this much.
const HELD_LIST_DATA: usize = 32 * 1024;

/// One list sent and not yet released by the client.
#[derive(Debug)]
pub(crate) struct SentList {
    /// Index of its first entry.
    pub ndx_start: i32,
    /// Directory-tree index of the directory whose contents it holds (-1:
    /// none), which `ndx_start - 1` names.
    pub parent: i32,
    /// That directory as an item (`ndx_start - 1`), when there is one.
    pub parent_dir: Option<ParentDir>,
    /// Entries in sorted (index) order, with the local path of each.
    pub entries: Vec<(FileEntry, PathBuf)>,
}

/// A list's parent directory, as a request for `ndx_start - 1` needs it.
#[derive(Debug, Clone)]
pub(crate) struct ParentDir {
    /// Its name in the transfer.
    pub name: String,
    /// Where it is read from.
    pub local: PathBuf,
    /// `-X`: its attribute set (sent with it in its own list).
    pub xattr_set: Option<u32>,
}

/// What an index names.
#[derive(Debug)]
pub(crate) enum Item {
    /// An entry of a list: its name and where it is read from.
    File { entry: FileEntry, local: PathBuf },
    /// A list's parent directory (`ndx_start - 1`).
    ParentDir(Option<ParentDir>),
}

/// The chain of lists in flight (upstream's `first_flist` .. `cur_flist`),
/// with the look-ahead counters.
#[derive(Debug, Default)]
pub(crate) struct FileLists {
    lists: VecDeque<SentList>,
    /// Sequence number of `lists[0]`.
    front_seq: u64,
    /// The list the client last asked about (upstream's cur_flist).
    cur: Option<u64>,
    /// Entries in the lists in flight (upstream file_total).
    file_total: i64,
    /// Entries in the lists up to and including `cur` (file_old_total).
    file_old_total: i64,
    inc_recurse: bool,
}

impl FileLists {
    fn new(inc_recurse: bool) -> Self {
        FileLists {
            inc_recurse,
            ..FileLists::default()
        }
    }

    /// Where the next list starts (upstream flist_new).
    fn next_ndx_start(&self) -> i32 {
        match self.lists.back() {
            Some(last) => last.ndx_start + last.entries.len() as i32 + 1,
            None => i32::from(self.inc_recurse),
        }
    }

    fn push(&mut self, list: SentList) {
        if self.lists.is_empty() {
            self.cur = Some(self.front_seq);
        }
        self.file_total += list.entries.len() as i64;
        self.lists.push_back(list);
    }

    /// The first list (the whole list without incremental recursion).
    pub(crate) fn first(&self) -> Option<&SentList> {
        self.lists.front()
    }

    /// Whether the first list has nothing in it (upstream's sender then
    /// has nothing to do and exits at once).
    pub(crate) fn first_is_empty(&self) -> bool {
        self.lists.front().is_none() || self.lists[0].entries.is_empty()
    }

    /// The highest index sent so far (for error messages).
    pub(crate) fn last_ndx(&self) -> i64 {
        self.lists
            .back()
            .map(|l| i64::from(l.ndx_start) + l.entries.len() as i64 - 1)
            .unwrap_or(-1)
    }

    /// Incremental recursion: the client is done with the oldest list
    /// (an `NDX_DONE` in phase 0). Returns true when lists remain, i.e.
    /// when the `NDX_DONE` only released a list (the caller echoes it);
    /// false when it also ends the phase, as in upstream's send_files.
    pub(crate) fn release_first(&mut self) -> bool {
        if !self.inc_recurse {
            return false;
        }
        let Some(first) = self.lists.pop_front() else {
            return false;
        };
        let used = first.entries.len() as i64;
        self.file_old_total -= used;
        self.file_total -= used;
        let freed = self.front_seq;
        self.front_seq += 1;
        if self.cur == Some(freed) {
            self.cur = if self.lists.is_empty() { None } else { Some(self.front_seq) };
        }
        if self.lists.is_empty() {
            return false;
        }
        if self.cur == Some(self.front_seq) {
            self.file_old_total = self.lists[0].entries.len() as i64;
        }
        true
    }

    /// The entry at `ndx`, without changing the current list.
    pub(crate) fn entry(&self, ndx: i32) -> Option<(&FileEntry, &PathBuf)> {
        let list = self
            .lists
            .iter()
            .find(|l| ndx >= l.ndx_start && i64::from(ndx) < i64::from(l.ndx_start) + l.entries.len() as i64)?;
        let (entry, local) = &list.entries[(ndx - list.ndx_start) as usize];
        Some((entry, local))
    }

    /// Upstream's flist_for_ndx plus the bookkeeping read_ndx_and_attrs
    /// does on the sender: `ndx` becomes the current list.
    pub(crate) fn find(&mut self, ndx: i32) -> Result<Item, String> {
        // Starts increase along the chain: the first list not ending
        // before `ndx`, if `ndx` is its parent index or one of its own.
        let end = |l: &SentList| i64::from(l.ndx_start) + l.entries.len() as i64;
        let pos = self.lists.partition_point(|l| end(l) <= i64::from(ndx));
        let pos = (pos < self.lists.len() && ndx >= self.lists[pos].ndx_start - 1).then_some(pos);
        let Some(pos) = pos else {
            let first = self.lists.front().map(|l| i64::from(l.ndx_start) - 1).unwrap_or(0);
            return Err(format!(
                "File-list index {ndx} not in {first} - {} (read_ndx_and_attrs)",
                self.last_ndx()
            ));
        };
        let seq = self.front_seq + pos as u64;
        if self.cur != Some(seq) {
            self.cur = Some(seq);
            self.file_old_total = self.lists.iter().take(pos + 1).map(|l| l.entries.len() as i64).sum();
        }
        let list = &self.lists[pos];
        let i = ndx - list.ndx_start;
        if i >= 0 {
            let (entry, local) = &list.entries[i as usize];
            Ok(Item::File {
                entry: entry.clone(),
                local: local.clone(),
            })
        } else if list.parent < 0 {
            Err(format!("File-list index {ndx} has no parent directory [sender]"))
        } else {
            Ok(Item::ParentDir(list.parent_dir.clone()))
        }
    }
}

/// A directory of the tree (upstream's dir_flist entry with its
/// parent/first-child/next-sibling links).
#[derive(Debug)]
struct DirNode {
    /// Name in the transfer, as the walk builds prefixes from it: bytes,
    /// which need not be UTF-8.
    name: Vec<u8>,
    /// Where it is read from.
    local: PathBuf,
    dev: u64,
    parent: i32,
    first_child: i32,
    next_sibling: i32,
    /// Same name as the directory before it in its list (FLAG_DUPLICATE).
    duplicate: bool,
    /// Its contents are part of the transfer (FLAG_CONTENT_DIR).
    content: bool,
    /// `-R`: requested paths below it, listed in its list (upstream's
    /// F_DIR_RELNAMES).
    relnames: Vec<Vec<u8>>,
    /// The per-directory merge rules in effect for its contents, once its
    /// list has been made (its subdirectories' lists start from them).
    frame: Option<std::rc::Rc<crate::transfer::filter::merge::Frame>>,
    /// `-X`: the directory's attribute set, for requests naming it as the
    /// parent of its own list.
    xattr_set: Option<u32>,
}

/// How the lists are built and sent.
pub(crate) struct ListSender<'a> {
    walker: &'a Walker<'a>,
    encoder: FlistEncoder,
    protocol: u32,
    inc_recurse: bool,
    ignore_errors: bool,
    /// `-c`: whole-file checksums go in the list, hashed (or found in the
    /// worker's cache) by this.
    checksum: Option<crate::transfer::send::flist_checksums::ListHasher>,
    /// Upstream's io_error, for the whole session.
    pub io_error: i32,
    /// Size of the regular files and symlinks listed (upstream total_size).
    pub total_size: u64,
    pub lists: FileLists,
    dirs: Vec<DirNode>,
    /// The directory whose list is due next (upstream send_dir_ndx).
    send_dir: i32,
    /// Every list has been sent (upstream flist_eof).
    pub eof: bool,
    /// List data (and list indexes) not yet handed to the multiplexer.
    /// Upstream's messages jump ahead of buffered output, so a client hears
    /// about an unreadable directory (or MSG_IO_ERROR) before the lists
    /// around it; holding the batch back here does the same. The caller
    /// must [`ListSender::flush`] before writing anything else.
    held: Vec<u8>,
    /// The merge rules of the transfer root, when the first list listed it
    /// (`mod/`): its top-level directories' lists start from them.
    top_frame: Option<std::rc::Rc<crate::transfer::filter::merge::Frame>>,
    /// `-X`: the attribute sets sent after each entry, and the state of
    /// their abbreviated values (the sender loop serves requests from it).
    pub xattrs: Option<crate::transfer::send::xattrs::XattrSender>,
    /// `-A`: the ACLs sent after each entry (before its attributes).
    acls: Option<crate::transfer::send::acls::AclSender>,
}

impl<'a> ListSender<'a> {
    pub(crate) fn new(walker: &'a Walker<'a>, encoder: FlistEncoder, ignore_errors: bool, checksum: Option<ChecksumKind>) -> Self {
        let opts = encoder.options().clone();
        ListSender {
            walker,
            protocol: opts.protocol,
            inc_recurse: opts.inc_recurse,
            encoder,
            ignore_errors,
            checksum: checksum.map(|kind| {
                let follow = walker.options.copy_links || walker.options.copy_unsafe_links;
                crate::transfer::send::flist_checksums::ListHasher::new(kind, follow)
            }),
            io_error: 0,
            total_size: 0,
            lists: FileLists::new(opts.inc_recurse),
            dirs: Vec::new(),
            send_dir: -1,
            eof: false,
            held: Vec::new(),
            top_frame: None,
            xattrs: None,
            acls: None,
        }
    }

    /// `-A`: send each entry's ACLs after it.
    pub(crate) fn with_acls(mut self, acls: crate::transfer::send::acls::AclSender) -> Self {
        self.acls = Some(acls);
        self
    }

    /// `-X`: send each entry's extended attributes after it.
    pub(crate) fn with_xattrs(mut self, xattrs: crate::transfer::send::xattrs::XattrSender) -> Self {
        self.xattrs = Some(xattrs);
        self
    }

    /// Hand the held list data to the multiplexer (before anything else is
    /// written, and before waiting for the client).
    pub(crate) fn flush<W: Write>(&mut self, out: &mut MuxOut<W>) -> io::Result<()> {
        if !self.held.is_empty() {
            out.write_all(&self.held)?;
            self.held.clear();
        }
        Ok(())
    }

    /// Hold a list's bytes; past upstream's buffer size they go out.
    fn hold<W: Write>(&mut self, bytes: &[u8], out: &mut MuxOut<W>) -> io::Result<()> {
        self.held.extend_from_slice(bytes);
        if self.held.len() >= HELD_LIST_DATA {
            self.flush(out)?;
        }
        Ok(())
    }

    /// Whether incremental recursion is on.
    pub(crate) fn inc_recurse(&self) -> bool {
        self.inc_recurse
    }

    /// io_error as the list end reports it (upstream sends 0 with --ignore-errors).
    fn reported_io_error(&self) -> i32 {
        if self.ignore_errors {
            0
        } else {
            self.io_error
        }
    }

    /// Upstream's send_file_list: the first (or only) list, and with
    /// incremental recursion `NDX_FLIST_EOF` when no directory has contents
    /// to send, or one more list when the first holds a single entry.
    pub(crate) fn send_first<W: Write>(&mut self, paths: &[Vec<u8>], out: &mut MuxOut<W>, ndx_out: &mut NdxCodec) -> io::Result<()> {
        let mut walked = if self.inc_recurse {
            self.walker.walk_top_level(paths)
        } else {
            self.walker.walk(paths)
        };
        let mut relnames = std::mem::take(&mut walked.relnames);
        self.top_frame = walked.dir_frame.take();
        let ndx_start = self.lists.next_ndx_start();
        self.encoder.start_list(ndx_start as u32);
        let mut bytes = Vec::new();
        let entries = self.encode(walked, &mut bytes, out)?;
        let io_error = self.reported_io_error();
        if self.inc_recurse {
            self.encoder.end_list(io_error, &mut bytes);
        } else {
            self.encoder.finish(io_error, &mut bytes);
        }
        self.hold(&bytes, out)?;
        if self.encoder.options().io_error_needs_msg(io_error) {
            out.message(MsgTag::IoError, &io_error.to_le_bytes())?;
        }
        let entries = self.sort(entries);
        let used = entries.len() as i64;
        if !self.inc_recurse {
            self.lists.push(SentList {
                ndx_start,
                parent: -1,
                parent_dir: None,
                entries,
            });
            self.lists.file_old_total += used;
            self.eof = true;
            return Ok(());
        }
        // The first list's parent is "." (tree index 0) when "." sorts first.
        let parent = match entries.first() {
            Some((e, _)) if basename(&e.name) == b"." => 0,
            _ => -1,
        };
        self.add_dirs_to_tree(-1, &entries, &mut relnames);
        let parent_dir = usize::try_from(parent).ok().map(|p| self.parent_dir(p));
        self.lists.push(SentList {
            ndx_start,
            parent,
            parent_dir,
            entries,
        });
        self.lists.file_old_total += used;
        if self.send_dir < 0 {
            ndx_out.write(&mut self.held, NDX_FLIST_EOF)?;
            self.eof = true;
        } else if self.lists.file_total == 1 {
            // One entry: send the next list now, so the client can tell
            // whether this is a one-file transfer.
            self.send_extra(1, out, ndx_out)?;
        }
        Ok(())
    }

    /// Upstream's send_extra_file_list: send directories' lists until at
    /// least `at_least` entries are listed beyond the client's current list
    /// (a negative value: at least one more list), or all are sent.
    pub(crate) fn send_extra<W: Write>(&mut self, at_least: i64, out: &mut MuxOut<W>, ndx_out: &mut NdxCodec) -> io::Result<()> {
        if self.eof {
            return Ok(());
        }
        let at_least = if at_least < 0 {
            self.lists.file_total - self.lists.file_old_total + 1
        } else {
            at_least
        };
        let save_io_error = self.io_error;
        while self.lists.file_total - self.lists.file_old_total < at_least {
            let first = self.send_dir as usize;
            let ndx_start = self.lists.next_ndx_start();
            ndx_out.write(&mut self.held, NDX_FLIST_OFFSET - first as i32)?;
            self.encoder.start_list(ndx_start as u32);
            let mut bytes = Vec::new();
            let mut relnames = Default::default();
            let mut entries = self.list_dir(first, &mut bytes, &mut relnames, out)?;
            // Directories of the same name that follow (repeated arguments)
            // share the list; the tree hangs their subdirectories on the last.
            let mut last = first;
            let mut prev_content = self.dirs[first].content;
            loop {
                let next = self.dirs[last].next_sibling;
                if next < 0 || !self.dirs[next as usize].duplicate {
                    break;
                }
                let next = next as usize;
                self.send_dir = next as i32;
                // Upstream skips a second scan of the same directory (same
                // name under the same argument directory).
                if self.dirs[next].local.parent() == self.dirs[first].local.parent() && prev_content {
                    self.dirs[next].content = false;
                }
                entries.extend(self.list_dir(next, &mut bytes, &mut relnames, out)?);
                prev_content = self.dirs[next].content;
                last = next;
            }
            let io_error = if self.io_error == save_io_error {
                0
            } else {
                self.reported_io_error()
            };
            self.encoder.end_list(io_error, &mut bytes);
            self.hold(&bytes, out)?;

            let entries = self.sort(entries);
            self.add_dirs_to_tree(last as i32, &entries, &mut relnames);
            let parent_dir = Some(self.parent_dir(first));
            self.lists.push(SentList {
                ndx_start,
                parent: first as i32,
                parent_dir,
                entries,
            });

            // Next: the first subdirectory, else the next sibling of the
            // nearest directory (going up) that has one.
            let mut d = last;
            if self.dirs[d].first_child >= 0 {
                self.send_dir = self.dirs[d].first_child;
                continue;
            }
            while self.dirs[d].next_sibling < 0 {
                let parent = self.dirs[d].parent;
                if parent < 0 {
                    ndx_out.write(&mut self.held, NDX_FLIST_EOF)?;
                    self.eof = true;
                    self.send_dir = -1;
                    return self.report_io_error(save_io_error, out);
                }
                d = parent as usize;
            }
            self.send_dir = self.dirs[d].next_sibling;
        }
        self.report_io_error(save_io_error, out)
    }

    /// Protocol 30 also reports new errors as MSG_IO_ERROR after a batch of lists.
    fn report_io_error<W: Write>(&self, save_io_error: i32, out: &mut MuxOut<W>) -> io::Result<()> {
        if self.io_error != save_io_error && self.protocol == 30 && !self.ignore_errors {
            out.message(MsgTag::IoError, &self.io_error.to_le_bytes())?;
        }
        Ok(())
    }

    /// Upstream's send1extra: one directory's contents (and with `-R` the
    /// paths waiting below it), encoded into `bytes`. Paths that wait below
    /// the directories of this list go into `relnames`.
    fn list_dir<W: Write>(
        &mut self,
        d: usize,
        bytes: &mut Vec<u8>,
        relnames: &mut crate::transfer::send::walk::walker::Relnames,
        out: &mut MuxOut<W>,
    ) -> io::Result<Vec<(FileEntry, PathBuf)>> {
        let waiting = std::mem::take(&mut self.dirs[d].relnames);
        let node = &self.dirs[d];
        // Module-relative already: the module root is "".
        let local = &node.local;
        if !node.content {
            if waiting.is_empty() {
                return Ok(Vec::new());
            }
            let mut walked = Walked::default();
            self.walker.walk_relnames(&node.name, local, &waiting, &mut walked);
            relnames.extend(std::mem::take(&mut walked.relnames));
            return self.encode(walked, bytes, out);
        }
        let mut walked = match self.walker.root.lstat(local) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // Gone since its parent was listed.
                self.io_error |= IoError::Vanished.bit();
                let shown = message::shown(&node.name, local.as_os_str().as_bytes());
                let text = cat(&[b"directory has vanished: ", &fname_in(shown, self.walker.module_name), b"\n"]);
                let tag = if self.protocol >= 28 { MsgTag::Warning } else { MsgTag::ErrorXfer };
                out.message(tag, &text)?;
                return Ok(Vec::new());
            }
            _ => {
                let prefix = [node.name.as_slice(), b"/"].concat();
                let parent_frame = match node.parent {
                    p if p >= 0 => self.dirs[p as usize].frame.clone(),
                    _ => self.top_frame.clone(),
                };
                self.walker.walk_dir_contents(local, &prefix, node.dev, parent_frame)
            }
        };
        if !waiting.is_empty() {
            self.walker.walk_relnames(&node.name, local, &waiting, &mut walked);
            relnames.extend(std::mem::take(&mut walked.relnames));
        }
        self.dirs[d].frame = walked.dir_frame.take();
        self.encode(walked, bytes, out)
    }

    /// Report a walk's notices, add its checksums (-c) and encode its
    /// entries; returns the entries that made it into the list.
    fn encode<W: Write>(&mut self, mut walked: Walked, bytes: &mut Vec<u8>, out: &mut MuxOut<W>) -> io::Result<Vec<(FileEntry, PathBuf)>> {
        if let Some(e) = self.walker.merge.take_over_budget() {
            return Err(io::Error::other(e));
        }
        send_notices(&walked.notices, out)?;
        self.io_error |= walked.io_error;
        if let Some(hasher) = &self.checksum {
            hasher.fill(self.walker.root, &mut walked.entries);
        }
        let mut kept = Vec::with_capacity(walked.entries.len());
        for (mut entry, path) in walked.entries {
            use crate::transfer::send::acls::AclSender;
            // -A, then -X: read first; a file whose ACLs or attributes
            // cannot be read is left out, as upstream leaves it out.
            let mut acls = None;
            if let Some(sender) = self.acls.as_ref().filter(|_| AclSender::carries(entry.mode)) {
                match sender.read_entry(self.walker.root, &path, entry.mode) {
                    Ok(read) => acls = Some(read),
                    Err(e) => {
                        self.io_error |= IoError::General.bit();
                        // Upstream names the file as it walked it.
                        let shown = message::shown(&entry.name, path.as_os_str().as_bytes());
                        if let Some(text) = e.message(&String::from_utf8_lossy(&shown)) {
                            out.message(MsgTag::ErrorXfer, text.as_bytes())?;
                        }
                        continue;
                    }
                }
            }
            let mut pending = None;
            if let Some(xattrs) = self.xattrs.as_ref() {
                match xattrs.read_entry(self.walker.root, &path, entry.mode) {
                    Ok(set) => pending = Some(set),
                    Err(e) => {
                        self.io_error |= IoError::General.bit();
                        use crate::transfer::send::xattrs::XattrError;
                        let shown = fname_in(message::shown(&entry.name, path.as_os_str().as_bytes()), self.walker.module_name);
                        let text = match &e {
                            XattrError::Io(io) => syserr("sender", &cat(&[b"get_xattr_names: llistxattr(", &shown, b",1024) failed"]), io),
                            XattrError::Value { name, err } => {
                                let what = cat(&[b"get_xattr_data: lgetxattr(", &shown, b",\"", name.as_bytes(), b"\",0) failed"]);
                                syserr("sender", &what, err)
                            }
                            other => format!("rsync: [sender] {other}\n").into_bytes(),
                        };
                        out.message(MsgTag::ErrorXfer, &text)?;
                        continue;
                    }
                }
            }
            match self.encoder.encode(&entry, bytes) {
                Ok(()) => {
                    if let (Some(read), Some(sender)) = (acls, self.acls.as_mut()) {
                        let encoder = &mut self.encoder;
                        sender.send(read, entry.mode, &mut |kind, id| encoder.acl_id(kind, id), bytes);
                    }
                    if let (Some(set), Some(xattrs)) = (pending, self.xattrs.as_mut()) {
                        entry.xattr_set = Some(xattrs.send(set, bytes));
                    }
                    if entry.is_reg() || entry.is_symlink() {
                        self.total_size += entry.size;
                    }
                    kept.push((entry, path));
                }
                Err(e) => {
                    self.io_error |= IoError::General.bit();
                    let text = format!("rsync: [sender] skipping {:?}: {}\n", String::from_utf8_lossy(&entry.name), e);
                    out.message(MsgTag::ErrorXfer, text.as_bytes())?;
                }
            }
        }
        Ok(kept)
    }

    /// Upstream's stable merge sort in f_name_cmp order; the sender keeps
    /// every entry (its slot is its index). With incremental recursion a
    /// directory named like the one before it is marked a duplicate.
    fn sort(&self, mut entries: Vec<(FileEntry, PathBuf)>) -> Vec<(FileEntry, PathBuf)> {
        let p = self.protocol;
        entries.sort_by(|a, b| f_name_cmp(&a.0.name, a.0.is_dir(), &b.0.name, b.0.is_dir(), p));
        entries
    }

    /// Directory `d` of the tree as the parent item of its list.
    fn parent_dir(&self, d: usize) -> ParentDir {
        ParentDir {
            name: String::from_utf8_lossy(&self.dirs[d].name).into_owned(),
            local: self.dirs[d].local.clone(),
            xattr_set: self.dirs[d].xattr_set,
        }
    }

    /// Upstream's add_dirs_to_tree: append a list's directories (sorted
    /// order) to the tree as children of `parent` (-1: top level).
    fn add_dirs_to_tree(
        &mut self,
        parent: i32,
        entries: &[(FileEntry, PathBuf)],
        relnames: &mut crate::transfer::send::walk::walker::Relnames,
    ) {
        let mut prev: i32 = -1;
        let mut prev_dir_name: Option<&[u8]> = None;
        for (entry, local) in entries {
            if !entry.is_dir() {
                continue;
            }
            let duplicate = prev_dir_name == Some(&entry.name[..]);
            prev_dir_name = Some(&entry.name);
            let idx = self.dirs.len() as i32;
            self.dirs.push(DirNode {
                name: entry.name.clone(),
                local: local.clone(),
                dev: entry.dev,
                parent,
                first_child: -1,
                next_sibling: -1,
                duplicate,
                content: !entry.no_content_dir,
                relnames: relnames.remove(&entry.name).unwrap_or_default(),
                frame: None,
                xattr_set: entry.xattr_set,
            });
            if basename(&entry.name) == b"." {
                continue;
            }
            if prev >= 0 {
                self.dirs[prev as usize].next_sibling = idx;
            } else if parent >= 0 {
                self.dirs[parent as usize].first_child = idx;
            } else {
                self.send_dir = idx;
            }
            prev = idx;
        }
    }
}

/// Send a walk's messages for the client.
pub(crate) fn send_notices<W: Write>(notices: &[Notice], out: &mut MuxOut<W>) -> io::Result<()> {
    for notice in notices {
        match notice {
            Notice::Error(text) => out.message(MsgTag::ErrorXfer, text)?,
            Notice::Warning(text) => out.message(MsgTag::Warning, text)?,
            Notice::Info(text) => out.message(MsgTag::Info, text)?,
        }
    }
    Ok(())
}

fn basename(name: &[u8]) -> &[u8] {
    match name.iter().rposition(|&b| b == b'/') {
        Some(i) => &name[i + 1..],
        None => name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(ndx_start: i32, parent: i32, n: usize) -> SentList {
        SentList {
            ndx_start,
            parent,
            parent_dir: None,
            entries: (0..n)
                .map(|i| {
                    (
                        FileEntry::new(format!("f{i}").into_bytes(), 0o100644),
                        PathBuf::from(format!("/m/f{i}")),
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn indexes_follow_upstream_numbering() {
        let mut l = FileLists::new(true);
        assert_eq!(l.next_ndx_start(), 1);
        l.push(list(1, 0, 3));
        l.file_old_total = 3;
        assert_eq!(l.next_ndx_start(), 5);
        l.push(list(5, 1, 2));
        assert_eq!(l.next_ndx_start(), 8);
        l.push(list(8, 2, 0));
        assert_eq!(l.next_ndx_start(), 9);
        // 0 is the first list's parent ("."), 4 the second's.
        assert!(matches!(l.find(0), Ok(Item::ParentDir(_))));
        assert!(matches!(l.find(3), Ok(Item::File { .. })));
        assert!(matches!(l.find(4), Ok(Item::ParentDir(_))));
        assert_eq!(l.file_old_total, 5);
        assert!(matches!(l.find(6), Ok(Item::File { ref entry, .. }) if entry.name == b"f1"));
        assert!(matches!(l.find(7), Ok(Item::ParentDir(_))));
        assert!(l.find(9).is_err());
        assert_eq!(l.last_ndx(), 7);
    }

    #[test]
    fn done_releases_lists_then_ends_the_phase() {
        let mut l = FileLists::new(true);
        l.push(list(1, -1, 2));
        l.file_old_total = 2;
        l.push(list(4, 0, 3));
        // The client moves on to the second list and releases the first.
        assert!(matches!(l.find(5), Ok(Item::File { .. })));
        assert_eq!(l.file_old_total, 5);
        assert!(l.release_first());
        assert_eq!((l.file_total, l.file_old_total), (3, 3));
        // Releasing the last list is the phase end.
        assert!(!l.release_first());
        assert!(!l.release_first());
        // Without incremental recursion NDX_DONE is always a phase end.
        let mut whole = FileLists::new(false);
        assert_eq!(whole.next_ndx_start(), 0);
        whole.push(list(0, -1, 2));
        assert!(!whole.release_first());
    }
}
