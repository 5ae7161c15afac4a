//! Sending a file list: per-entry "same as previous" compression state,
//! hard-link leader bookkeeping, the end-of-list marker (with io_error where
//! the protocol allows), the id lists and the protocol < 30 io_error int.
//! Mirrors upstream's send_file_entry / write_end_of_flist / send_file_list.

use std::collections::HashMap;

use crate::transfer::flist::entry::FileEntry;
use crate::transfer::flist::error::{show, FlistError};
use crate::transfer::flist::ids::{IdKind, IdList, IdNamer, SystemIdNamer};
use crate::transfer::flist::options::FlistOptions;
use crate::transfer::flist::wire30::{put_int, put_longint, put_shortint, put_varint, put_varint30, put_varlong30};
use crate::transfer::flist::xmit::*;
use crate::transfer::flist::MAXPATHLEN;
use oxrsyncd_protocol::wire::encode_varlong;

/// Encodes entries in sending order. One encoder per list: its state must
/// match the receiver's decoder byte for byte.
pub struct FlistEncoder {
    opts: FlistOptions,
    namer: Box<dyn IdNamer>,
    last_name: Vec<u8>,
    mode: u32,
    mtime: i64,
    /// `-U`: the previous non-directory's access time.
    atime: i64,
    uid: u32,
    gid: u32,
    rdev: u64,
    rdev_major: u32,
    /// Protocol < 30 hard-link dev of the previous linked entry.
    hl_dev: i64,
    /// Protocol >= 30: (dev, ino) -> index of the group leader (its list's
    /// ndx_start plus its sending position there).
    hl_leaders: HashMap<(u64, u64), u32>,
    sent: u32,
    /// Incremental recursion: the current list's first index, and how many
    /// entries it has so far (without it: 0 and `sent`).
    ndx_start: u32,
    in_list: u32,
    uids: IdList,
    gids: IdList,
    finished: bool,
}

impl FlistEncoder {
    /// An encoder that names ids with the system's passwd/group databases.
    pub fn new(opts: FlistOptions) -> Self {
        Self::with_namer(opts, Box::new(SystemIdNamer))
    }

    /// An encoder with an explicit id namer (tests, name converters).
    pub fn with_namer(opts: FlistOptions, namer: Box<dyn IdNamer>) -> Self {
        FlistEncoder {
            opts,
            namer,
            last_name: Vec::new(),
            mode: 0,
            mtime: 0,
            atime: 0,
            uid: 0,
            gid: 0,
            rdev: 0,
            rdev_major: 0,
            hl_dev: 0,
            hl_leaders: HashMap::new(),
            sent: 0,
            ndx_start: 0,
            in_list: 0,
            uids: IdList::default(),
            gids: IdList::default(),
            finished: false,
        }
    }

    /// An id named in an ACL (`-A`): recorded for the id lists like an
    /// owner's; its name when it is new and names are looked up (upstream's
    /// `numeric_ids ? NULL : add_uid(id)` in send_ida_entries).
    pub fn acl_id(&mut self, kind: IdKind, id: u32) -> Option<Vec<u8>> {
        if !self.opts.looks_up_names() {
            return None;
        }
        match kind {
            IdKind::User => self.uids.add(&*self.namer, kind, id),
            IdKind::Group => self.gids.add(&*self.namer, kind, id),
        }
    }

    /// The options this encoder was built with.
    pub fn options(&self) -> &FlistOptions {
        &self.opts
    }

    /// How many entries have been encoded (the next entry's sending index).
    pub fn count(&self) -> u32 {
        self.sent
    }

    /// Incremental recursion: the entries that follow form a new list whose
    /// first index is `ndx_start`. The "same as previous" state, the ids
    /// already named and the hard-link leaders carry over from earlier lists
    /// (upstream keeps them in statics and a session-wide table).
    pub fn start_list(&mut self, ndx_start: u32) {
        self.ndx_start = ndx_start;
        self.in_list = 0;
    }

    /// Encode one entry in *sending* order (the order it was built; both
    /// sides sort afterwards). Fails only for entries the wire cannot carry
    /// (empty/NUL-containing/overlong names, overlong symlink targets, a
    /// checksum of the wrong length); nothing is written then.
    ///
    /// This function stays long on purpose: it is upstream's
    /// `send_file_entry` field by field, in wire order (flags, name, size,
    /// times, mode, owners and their names, devices, link target, hard-link
    /// data, checksum), with each field's protocol-version and option
    /// conditions beside it. Split into helpers, the order and the
    /// conditions that tie one field's flag bits to the next field's bytes
    /// would no longer read side by side with upstream's, which is how it
    /// is checked.
    pub fn encode(&mut self, e: &FileEntry, out: &mut Vec<u8>) -> Result<(), FlistError> {
        self.check(e)?;
        let p = self.opts.protocol;
        let o = &self.opts;
        let mode = e.mode;
        let mut xflags: u32 = if is_dir(mode) {
            if p >= 30 {
                if e.no_content_dir {
                    XMIT_NO_CONTENT_DIR | if e.top_dir { XMIT_TOP_DIR } else { 0 }
                } else if e.top_dir {
                    XMIT_TOP_DIR
                } else {
                    0
                }
            } else if e.top_dir {
                XMIT_TOP_DIR
            } else {
                0
            }
        } else {
            0
        };

        if mode == self.mode {
            xflags |= XMIT_SAME_MODE;
        } else {
            self.mode = mode;
        }

        let this_rdev = makedev(e.rdev_major, e.rdev_minor);
        let sends_rdev = (o.preserve_devices && is_device(mode)) || (o.preserve_specials && is_special(mode) && p < 31);
        if o.preserve_devices && is_device(mode) {
            if p < 28 {
                if this_rdev == self.rdev {
                    xflags |= XMIT_SAME_RDEV_PRE28;
                } else {
                    self.rdev = this_rdev;
                }
            } else {
                self.rdev = this_rdev;
                if e.rdev_major == self.rdev_major {
                    xflags |= XMIT_SAME_RDEV_MAJOR;
                } else {
                    self.rdev_major = e.rdev_major;
                }
                if p < 30 && e.rdev_minor <= 0xFF {
                    xflags |= XMIT_RDEV_MINOR_8_PRE30;
                }
            }
        } else if o.preserve_specials && is_special(mode) && p < 31 {
            if p < 28 {
                xflags |= XMIT_SAME_RDEV_PRE28;
            } else {
                self.rdev = makedev(self.rdev_major, 0);
                xflags |= XMIT_SAME_RDEV_MAJOR;
                if p < 30 {
                    xflags |= XMIT_RDEV_MINOR_8_PRE30;
                }
            }
        } else if p < 28 {
            self.rdev = 0;
        }

        let first = self.last_name.is_empty();
        let names = o.looks_up_names();
        let mut user_name = None;
        let mut group_name = None;
        if !o.preserve_uid || (e.uid == self.uid && !first) {
            xflags |= XMIT_SAME_UID;
        } else {
            self.uid = e.uid;
            if names {
                user_name = self.uids.add(&*self.namer, IdKind::User, e.uid);
                if o.inc_recurse && user_name.is_some() {
                    xflags |= XMIT_USER_NAME_FOLLOWS;
                }
            }
        }
        if !o.preserve_gid || (e.gid == self.gid && !first) {
            xflags |= XMIT_SAME_GID;
        } else {
            self.gid = e.gid;
            if names {
                group_name = self.gids.add(&*self.namer, IdKind::Group, e.gid);
                if o.inc_recurse && group_name.is_some() {
                    xflags |= XMIT_GROUP_NAME_FOLLOWS;
                }
            }
        }
        if e.mtime == self.mtime {
            xflags |= XMIT_SAME_TIME;
        } else {
            self.mtime = e.mtime;
        }
        if e.mtime_nsec != 0 && p >= 31 {
            xflags |= XMIT_MOD_NSEC;
        }
        if o.preserve_atimes && !is_dir(mode) {
            if e.atime == self.atime {
                xflags |= XMIT_SAME_ATIME;
            } else {
                self.atime = e.atime;
            }
        }

        // Hard links: which entries take part is upstream make_file's rule.
        let linked = o.preserve_hard_links && if p >= 28 { !is_dir(mode) && e.nlink > 1 } else { is_reg(mode) };
        let mut leader_ndx: Option<u32> = None;
        if linked {
            if p >= 30 {
                match self.hl_leaders.get(&(e.dev, e.ino)) {
                    Some(&ndx) => leader_ndx = Some(ndx),
                    None => {
                        self.hl_leaders.insert((e.dev, e.ino), self.ndx_start + self.in_list);
                        xflags |= XMIT_HLINK_FIRST;
                    }
                }
            } else if e.dev as i64 == self.hl_dev {
                if p >= 28 {
                    xflags |= XMIT_SAME_DEV_PRE30;
                }
            } else {
                self.hl_dev = e.dev as i64;
            }
            xflags |= XMIT_HLINKED;
        }

        let l1 = self
            .last_name
            .iter()
            .zip(e.name.iter())
            .take(255)
            .take_while(|(a, b)| a == b)
            .count();
        let l2 = e.name.len() - l1;
        if l1 > 0 {
            xflags |= XMIT_SAME_NAME;
        }
        if l2 > 255 {
            xflags |= XMIT_LONG_NAME;
        }

        // Never let the flags read as the end-of-list marker.
        if o.varint_flags {
            put_varint(out, if xflags != 0 { xflags as i32 } else { XMIT_EXTENDED_FLAGS as i32 });
        } else if p >= 28 {
            if xflags == 0 && !is_dir(mode) {
                xflags |= XMIT_TOP_DIR;
            }
            if xflags & 0xFF00 != 0 || xflags == 0 {
                xflags |= XMIT_EXTENDED_FLAGS;
                put_shortint(out, xflags as u16);
            } else {
                out.push(xflags as u8);
            }
        } else {
            if xflags & 0xFF == 0 {
                xflags |= if is_dir(mode) { XMIT_LONG_NAME } else { XMIT_TOP_DIR };
            }
            out.push(xflags as u8);
        }
        if xflags & XMIT_SAME_NAME != 0 {
            out.push(l1 as u8);
        }
        if xflags & XMIT_LONG_NAME != 0 {
            put_varint30(out, p, l2 as i32);
        } else {
            out.push(l2 as u8);
        }
        out.extend_from_slice(&e.name[l1..]);
        self.last_name.clear();
        self.last_name.extend_from_slice(&e.name);
        self.sent += 1;
        self.in_list += 1;

        if let Some(ndx) = leader_ndx {
            put_varint(out, ndx as i32);
            if ndx >= self.ndx_start {
                // A follower in the same list: everything else comes from the leader.
                return Ok(());
            }
            // The leader is in an earlier (incremental) list: the whole entry follows.
        }

        let size = if is_device(mode) || is_special(mode) { 0 } else { e.size as i64 };
        put_varlong30(out, p, size, 3);
        if xflags & XMIT_SAME_TIME == 0 {
            if p >= 30 {
                out.extend_from_slice(&encode_varlong(e.mtime, 4));
            } else {
                put_int(out, e.mtime as i32);
            }
        }
        if xflags & XMIT_MOD_NSEC != 0 {
            put_varint(out, e.mtime_nsec as i32);
        }
        if xflags & XMIT_SAME_MODE == 0 {
            put_int(out, mode as i32);
        }
        if o.preserve_atimes && !is_dir(mode) && xflags & XMIT_SAME_ATIME == 0 {
            out.extend_from_slice(&encode_varlong(e.atime, 4));
        }
        if o.preserve_uid && xflags & XMIT_SAME_UID == 0 {
            if p < 30 {
                put_int(out, e.uid as i32);
            } else {
                put_varint(out, e.uid as i32);
                if xflags & XMIT_USER_NAME_FOLLOWS != 0 {
                    put_short_name(out, user_name.as_deref().unwrap_or_default());
                }
            }
        }
        if o.preserve_gid && xflags & XMIT_SAME_GID == 0 {
            if p < 30 {
                put_int(out, e.gid as i32);
            } else {
                put_varint(out, e.gid as i32);
                if xflags & XMIT_GROUP_NAME_FOLLOWS != 0 {
                    put_short_name(out, group_name.as_deref().unwrap_or_default());
                }
            }
        }
        if sends_rdev {
            if p < 28 {
                if xflags & XMIT_SAME_RDEV_PRE28 == 0 {
                    put_int(out, self.rdev as i32);
                }
            } else {
                if xflags & XMIT_SAME_RDEV_MAJOR == 0 {
                    put_varint30(out, p, dev_major(self.rdev) as i32);
                }
                let minor = dev_minor(self.rdev);
                if p >= 30 {
                    put_varint(out, minor as i32);
                } else if xflags & XMIT_RDEV_MINOR_8_PRE30 != 0 {
                    out.push(minor as u8);
                } else {
                    put_int(out, minor as i32);
                }
            }
        }
        if o.preserve_links && is_lnk(mode) {
            let target = e.link_target.as_deref().unwrap_or_default();
            put_varint30(out, p, target.len() as i32);
            out.extend_from_slice(target);
        }
        if linked && p < 30 {
            // Below 30 the dev travels 1-incremented so it is never zero.
            if xflags & XMIT_SAME_DEV_PRE30 == 0 {
                put_longint(out, self.hl_dev.wrapping_add(1));
            }
            put_longint(out, e.ino as i64);
        }
        if let Some(len) = o.checksum_len {
            if is_reg(mode) {
                match &e.checksum {
                    Some(sum) => out.extend_from_slice(sum),
                    None => out.resize(out.len() + len, 0),
                }
            } else if p < 28 {
                out.resize(out.len() + len, 0);
            }
        }
        Ok(())
    }

    fn check(&self, e: &FileEntry) -> Result<(), FlistError> {
        let bad = |why| Err(FlistError::Unencodable { name: show(&e.name), why });
        if self.finished {
            return Err(FlistError::Sequence("encode after finish"));
        }
        if e.name.is_empty() || e.name.contains(&0) {
            return bad("empty name or NUL byte in name");
        }
        if e.name.len() >= MAXPATHLEN {
            return bad("name longer than MAXPATHLEN");
        }
        // Mode 0 is a missing argument under --delete-missing-args.
        if !is_valid_type(e.mode) && e.mode != 0 {
            return bad("mode has no valid file type");
        }
        if let Some(t) = &e.link_target {
            if self.opts.preserve_links && e.is_symlink() && t.len() >= MAXPATHLEN {
                return bad("symlink target longer than MAXPATHLEN");
            }
        }
        if let (Some(len), Some(sum)) = (self.opts.checksum_len, &e.checksum) {
            if e.is_reg() && sum.len() != len {
                return bad("checksum length differs from the negotiated one");
            }
        }
        if e.size > i64::MAX as u64 {
            return bad("size exceeds 2^63");
        }
        Ok(())
    }

    /// End of list (with the io_error form when io_error != 0, per
    /// protocol), then the uid/gid name lists when upstream sends them, then
    /// (protocol < 30) the io_error int. At protocol 30 without CF_SAFE_FLIST
    /// a non-zero io_error must go out as MSG_IO_ERROR by the caller (see
    /// `FlistOptions::io_error_needs_msg`).
    pub fn finish(&mut self, io_error: i32, out: &mut Vec<u8>) {
        if self.finished {
            return;
        }
        self.finished = true;
        self.end_marker(io_error, out);
        let o = &self.opts;
        if !o.numeric_ids && !o.inc_recurse {
            if o.preserve_uid || o.preserve_acls {
                self.uids.send(o, &*self.namer, IdKind::User, out);
            }
            if o.preserve_gid || o.preserve_acls {
                self.gids.send(o, &*self.namer, IdKind::Group, out);
            }
        }
        if o.protocol < 30 {
            put_int(out, io_error);
        }
        self.hl_leaders.clear();
    }
}

impl FlistEncoder {
    /// Incremental recursion: end one list (upstream's write_end_of_flist).
    /// A non-zero `io_error` travels in the marker where the protocol has the
    /// safe form; nothing else follows (ids are named inline, and
    /// incremental recursion implies protocol >= 30). The encoder stays open
    /// for the next list.
    pub fn end_list(&mut self, io_error: i32, out: &mut Vec<u8>) {
        self.end_marker(io_error, out);
        self.in_list = 0;
    }

    fn end_marker(&self, io_error: i32, out: &mut Vec<u8>) {
        let carry = io_error != 0 && self.opts.use_safe_flist();
        if self.opts.varint_flags {
            put_varint(out, 0);
            put_varint(out, if carry { io_error } else { 0 });
        } else if carry {
            put_shortint(out, (XMIT_EXTENDED_FLAGS | XMIT_IO_ERROR_ENDLIST) as u16);
            put_varint(out, io_error);
        } else {
            out.push(0);
        }
    }
}

fn put_short_name(out: &mut Vec<u8>, name: &[u8]) {
    let name = &name[..name.len().min(255)];
    out.push(name.len() as u8);
    out.extend_from_slice(name);
}
